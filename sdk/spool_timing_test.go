package sdk_test

import (
	"context"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/sdk"
)

// BenchmarkSpoolCost measures what the spool costs a producer: the same
// 256 KiB fragments through the same in-process server (bus, ingester,
// store, each fsyncing) from a producer without a spool and from one with
// it, alternately in the same run. It reports each one's throughput from
// the first PutFrame to the last PERSISTED, the time PutFrame took, and the
// ratio spool/plain (1 = free; the issue asks ≥ 0.9). Both share one disk
// here; a device spools to its own.
//
//	go test ./sdk -run '^$' -bench BenchmarkSpoolCost -benchtime 3x
func BenchmarkSpoolCost(b *testing.B) {
	const (
		fragments = 64
		fragSize  = 256 << 10
		frameSize = fragSize - 512 // the fragment's MKV framing and tracks take the rest
	)
	r := newRig(b, true)
	nc := r.client()
	data := make([]byte, frameSize)
	for i := range data {
		data[i] = byte(i * 31)
	}
	next := 0
	pass := func(spooled bool) (total, puts time.Duration) {
		cfg := sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)}, MinFragmentDuration: time.Nanosecond,
			MaxFragmentSize: 1 << 20, NoLive: true, Logger: quiet()}
		if spooled {
			cfg.Spool = &sdk.SpoolConfig{Dir: b.TempDir(), Budget: 1 << 30}
		}
		p, err := sdk.NewProducer(context.Background(), nc, cfg)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		start := time.Now()
		for i := 0; i < fragments; i++ {
			if err := p.PutFrame(ctx, sdk.Frame{Track: 1, Timestamp: t0 + int64(next)*100*ms, Duration: 100 * ms, Key: true, Data: data}); err != nil {
				b.Fatal(err)
			}
			next++
		}
		puts = time.Since(start)
		if err := p.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		total = time.Since(start)
		if err := p.Close(ctx); err != nil {
			b.Fatal(err)
		}
		return total, puts
	}
	pass(false) // warm up the bus and the store
	var plain, spool, plainPuts, spoolPuts time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t, p := pass(false)
		plain, plainPuts = plain+t, plainPuts+p
		t, p = pass(true)
		spool, spoolPuts = spool+t, spoolPuts+p
	}
	b.StopTimer()
	mb := float64(b.N*fragments*fragSize) / 1e6
	b.ReportMetric(mb/plain.Seconds(), "plain_MB/s")
	b.ReportMetric(mb/spool.Seconds(), "spool_MB/s")
	b.ReportMetric(plain.Seconds()/spool.Seconds(), "spool/plain")
	b.ReportMetric(mb/plainPuts.Seconds(), "plain_put_MB/s")
	b.ReportMetric(mb/spoolPuts.Seconds(), "spool_put_MB/s")
	b.ReportMetric(0, "ns/op")
}
