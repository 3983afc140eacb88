package replicate

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/service/replicate/replicatetest"
	"github.com/sensorium-io/sensorium/sdk"
)

// BenchmarkCatchUp copies a backlog of 256 KiB fragments from the edge to
// the centre with the replicator (fresh state each time), and beside it
// with the way to copy a stream before it: the edge's GetMediaForFragmentList
// output put into the centre with PutMedia in one session, as `sensorium
// get | sensorium import` does (which keeps no dedupe key across sessions),
// with PutMedia's per-stream byte limit lifted for the peer.
// It reports MB/s of each and their ratio. The replicator writes the
// centre over its NATS (nats), or with PutMedia (http; its centre stream made
// beforehand with the byte limit lifted, as the peer's).
//
//	go test ./internal/service/replicate -run '^$' -bench CatchUp -benchtime 3x
func BenchmarkCatchUp(b *testing.B) {
	for _, via := range []string{ViaNATS, ViaHTTP} {
		b.Run(via, func(b *testing.B) { benchCatchUp(b, via) })
	}
}

func benchCatchUp(b *testing.B, via string) {
	const (
		frags = 120
		size  = 256 << 10
	)
	e := startServer(b, b.TempDir())
	defer e.Shutdown(context.Background())
	c := startServer(b, b.TempDir())
	defer c.Shutdown(context.Background())
	edge, centre := sdk.NewClient(e.HTTPURL(), nil), sdk.NewClient(c.HTTPURL(), nil)
	ctx := context.Background()
	if _, err := edge.CreateStream(ctx, sdk.CreateStreamInput{StreamName: "pump", DataRetentionInHours: 1}); err != nil {
		b.Fatal(err)
	}
	p, err := replicatetest.NewProducer(e.NATSURL(), "pump", time.Now().Add(-time.Hour).Truncate(time.Millisecond), size)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	if err := p.Put(frags, time.Minute); err != nil {
		b.Fatal(err)
	}
	list, err := replicatetest.List(ctx, edge, "pump")
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	nums := make([]string, len(list))
	for i, f := range list {
		total += f.FragmentSizeInBytes
		nums[i] = f.FragmentNumber
	}
	waitAll := func(stream string) {
		for {
			l, err := replicatetest.List(ctx, centre, stream)
			if err == nil && len(l) >= frags {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Without PutMedia's byte limit (12.5 MB/s by default, the service's),
	// which the replicator's NATS path does not pass through.
	noLimit := map[string]string{"sensorium:putmedia-bytes-per-second": "10000000000"}
	var ours, peer time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		prefix := fmt.Sprintf("r%d-", i)
		if via == ViaHTTP {
			if _, err := centre.CreateStream(ctx, sdk.CreateStreamInput{StreamName: prefix + "pump", DataRetentionInHours: 1, Tags: noLimit}); err != nil {
				b.Fatal(err)
			}
		}
		began := time.Now()
		r, err := New(Config{Edge: edge, Centre: centre, Via: via, CentreNATS: c.NATSURL(), Streams: []string{"pump"}, CentreNamePrefix: prefix,
			RetentionHours: 1, StateDir: b.TempDir(), Poll: 5 * time.Millisecond, Discover: time.Hour, Logger: testLogger(b)})
		if err != nil {
			b.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(rctx) }()
		waitAll(prefix + "pump")
		ours += time.Since(began)
		cancel()
		<-done

		peerStream := fmt.Sprintf("peer%d", i)
		began = time.Now()
		if _, err := centre.CreateStream(ctx, sdk.CreateStreamInput{StreamName: peerStream, DataRetentionInHours: 1, Tags: noLimit}); err != nil {
			b.Fatal(err)
		}
		body, err := edge.GetMediaForFragmentList(ctx, sdk.ByName("pump"), nums)
		if err != nil {
			b.Fatal(err)
		}
		persisted := 0
		err = centre.PutMedia(ctx, sdk.PutMediaInput{Stream: sdk.ByName(peerStream), Body: body}, func(ev sdk.AckEvent) {
			if ev.EventType == "PERSISTED" {
				persisted++
			}
		})
		body.Close()
		if err != nil || persisted != frags {
			b.Fatalf("peer: %d persisted, %v", persisted, err)
		}
		waitAll(peerStream)
		peer += time.Since(began)
	}
	b.StopTimer()
	mb := float64(total) * float64(b.N) / 1e6
	b.ReportMetric(mb/ours.Seconds(), "MB/s")
	b.ReportMetric(mb/peer.Seconds(), "peer-MB/s")
	b.ReportMetric(peer.Seconds()/ours.Seconds(), "×peer")
	b.Logf("%d fragments of %d KiB (%.1f MB): replicate %.1f MB/s, GetMediaForFragmentList → PutMedia %.1f MB/s (%.2f×)",
		frags, size>>10, float64(total)/1e6, mb/ours.Seconds(), mb/peer.Seconds(), peer.Seconds()/ours.Seconds())
}
