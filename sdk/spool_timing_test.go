package sdk_test

import (
	"context"
	"os"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/service/natsembed"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/simulate/pump"
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

// SENSORIUM_SPOOL_BACKLOG sets BenchmarkSpoolCatchUp's backlog of the pump
// (default 10m, which makes it in about 15 s; "1h" is the hour).
const envBacklog = "SENSORIUM_SPOOL_BACKLOG"

// BenchmarkSpoolCatchUp measures catch-up: a backlog of the pump (3-axis
// vibration at 25.6 kHz) spooled while the producer had no server, sent
// when a producer restarts on the spool next to an in-process server on
// loopback, while the pump's live frames keep coming in real time. It
// reports the backlog's length over the time from the restart to its last
// fragment PERSISTED (× real time; the issue asks ≥ 20), and MB/s.
//
//	go test ./sdk -run '^$' -bench BenchmarkSpoolCatchUp -benchtime 1x
func BenchmarkSpoolCatchUp(b *testing.B) {
	backlog := 10 * time.Minute
	if v := os.Getenv(envBacklog); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second {
			b.Fatalf("%s=%q: want a duration of at least 10s", envBacklog, v)
		}
		backlog = d
	}
	const rate = 25600.0
	desc := &signals.Scalar{SampleRate: rate, SampleType: signals.Float32,
		Channels: []signals.Channel{{Name: "x", Unit: "g"}, {Name: "y", Unit: "g"}, {Name: "z", Unit: "g"}}}
	track, err := sdk.ScalarTrack(1, "vibration", desc)
	if err != nil {
		b.Fatal(err)
	}
	var ratio, mbps float64
	var peakHeap, backlogBytes uint64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		origin := time.Now().Add(-backlog - time.Minute).UnixNano()
		sim := pump.New(rate, int64(rate*60), 7)
		buf := make([]float32, 3*int(rate)/10) // 100 ms

		// The backlog: the producer's NATS server has no Sensorium bus, so
		// nothing is taken and everything stays in the spool.
		offline, err := natsembed.Start(natsembed.Options{StoreDir: b.TempDir(), DontListen: true})
		if err != nil {
			b.Fatal(err)
		}
		onc, err := offline.Connect()
		if err != nil {
			b.Fatal(err)
		}
		cfg := sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{track}, NoLive: true, Logger: quiet(),
			Spool: &sdk.SpoolConfig{Dir: dir, Budget: 8 << 30}}
		p, err := sdk.NewProducer(context.Background(), onc, cfg)
		if err != nil {
			b.Fatal(err)
		}
		w, err := sdk.NewSampleWriter(p, 1, desc, sdk.SampleWriterOptions{Origin: origin})
		if err != nil {
			b.Fatal(err)
		}
		for sim.Samples() < int64(backlog.Seconds()*rate) {
			sim.Fill(buf)
			if err := w.WriteFloat32(context.Background(), buf); err != nil {
				b.Fatal(err)
			}
		}
		_ = closeNow(p)                     // its open fragment is spooled too
		last := uint64(p.Stats().Fragments) // the backlog is sequences 1 to last
		onc.Close()
		offline.Stop()

		r := newRig(b, true)
		runtime.GC() // what making the backlog left is not the catch-up's
		caughtUp := make(chan struct{})
		cfg.OnAck = func(ev sdk.AckEvent) {
			if ev.EventType == sdk.EventPersisted && ev.ProducerSequence == last {
				close(caughtUp) // the server applies a producer's fragments in order
			}
		}
		b.StartTimer()
		start := time.Now()
		p, err = sdk.NewProducer(context.Background(), r.client(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		spooled := p.Stats().SpoolBytes
		backlogBytes = uint64(spooled)
		// Live frames keep coming in real time while the backlog goes.
		w, err = sdk.NewSampleWriter(p, 1, desc, sdk.SampleWriterOptions{Origin: origin + desc.SampleTime(0, int(sim.Samples()))})
		if err != nil {
			b.Fatal(err)
		}
		stop, done := make(chan struct{}), make(chan struct{})
		heapDone := make(chan struct{})
		go func() { // the live heap at each GC, server included, while the backlog streams
			defer close(heapDone)
			sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
					metrics.Read(sample)
					peakHeap = max(peakHeap, sample[0].Value.Uint64())
				}
			}
		}()
		go func() {
			defer close(done)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					sim.Fill(buf)
					if err := w.WriteFloat32(context.Background(), buf); err != nil {
						b.Error(err)
						return
					}
				}
			}
		}()
		<-caughtUp
		took := time.Since(start)
		b.StopTimer()
		close(stop)
		<-done
		<-heapDone
		_ = closeNow(p)
		ratio += backlog.Seconds() / took.Seconds()
		mbps += float64(spooled) / 1e6 / took.Seconds()
	}
	b.ReportMetric(ratio/float64(b.N), "x_realtime")
	b.ReportMetric(mbps/float64(b.N), "MB/s")
	b.ReportMetric(backlog.Seconds(), "backlog_s")
	b.ReportMetric(float64(backlogBytes)/1e6, "backlog_MB")
	// The whole process's live heap: producer, bus and store. It stays far
	// below the backlog: the spool is streamed, never loaded.
	b.ReportMetric(float64(peakHeap)/1e6, "peak_live_heap_MB")
	b.ReportMetric(0, "ns/op")
}
