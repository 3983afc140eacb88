//go:build linux

package sdk_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/service/natsembed"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/simulate/pump"
)

// SENSORIUM_SPOOL_BACKLOG sets BenchmarkSpoolCatchUp's backlog of the pump
// (default 10m, made in about 20 s; "1h" is the hour, made in a few
// minutes).
const envBacklog = "SENSORIUM_SPOOL_BACKLOG"

// The catch-up producer's subprocess: TestSpoolCatchUpChild reads these.
const (
	envCatchUpChild = "SENSORIUM_SPOOL_CATCHUP" // the spool folder
	envCatchUpLast  = "SENSORIUM_SPOOL_CATCHUP_LAST"
	envCatchUpLive  = "SENSORIUM_SPOOL_CATCHUP_LIVE" // the live data's origin, ns
)

const pumpRate = 25600.0

var pumpDesc = &signals.Scalar{SampleRate: pumpRate, SampleType: signals.Float32,
	Channels: []signals.Channel{{Name: "x", Unit: "g"}, {Name: "y", Unit: "g"}, {Name: "z", Unit: "g"}}}

func pumpConfig(tb testing.TB, dir string) sdk.ProducerConfig {
	track, err := sdk.ScalarTrack(1, "vibration", pumpDesc)
	if err != nil {
		tb.Fatal(err)
	}
	// A 16 MiB send window (BufferBytes) bounds what the producer holds in
	// memory: more than the 32 publishes in flight need.
	return sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{track}, NoLive: true, Logger: quiet(),
		BufferBytes: 16 << 20, Spool: &sdk.SpoolConfig{Dir: dir, Budget: 8 << 30}}
}

// BenchmarkSpoolCatchUp measures catch-up: a backlog of the pump (3-axis
// vibration at 25.6 kHz) spooled while the producer had no server is sent
// by a producer restarted on the spool, in a process of its own, to a
// server on loopback, while the pump's live frames keep coming in real
// time. It reports the backlog's length over the time from the restart to
// its last fragment PERSISTED (× real time; the issue asks ≥ 20), MB/s,
// and the producer process's peak resident memory beside the backlog's
// size: the backlog is streamed from disk, so the peak does not grow with
// it (run it with SENSORIUM_SPOOL_BACKLOG=2m and =10m to compare).
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
	var ratio, mbps, rss, size float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		origin := time.Now().Add(-backlog - time.Minute).UnixNano()
		last, samples := spoolPumpOffline(b, dir, origin, backlog)
		spooled := spoolBytes(b, dir)
		srv := startSpoolServer(b)

		cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolCatchUpChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envCatchUpChild+"="+dir, envNATS+"="+srv.natsURL(),
			envCatchUpLast+"="+strconv.FormatUint(last, 10), envCatchUpLive+"="+strconv.FormatInt(origin+pumpDesc.SampleTime(0, int(samples)), 10))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		var took time.Duration
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "CAUGHTUP "); ok {
				ns, _ := strconv.ParseInt(v, 10, 64)
				took = time.Duration(ns)
			}
		}
		b.StopTimer()
		if err := cmd.Wait(); err != nil || took == 0 {
			b.Fatalf("the catch-up producer: %v", err)
		}
		ratio += backlog.Seconds() / took.Seconds()
		mbps += float64(spooled) / 1e6 / took.Seconds()
		rss += float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) * 1024 / 1e6 // KiB on Linux
		size += float64(spooled) / 1e6
		srv.stop()
	}
	n := float64(b.N)
	b.ReportMetric(ratio/n, "x_realtime")
	b.ReportMetric(mbps/n, "MB/s")
	b.ReportMetric(backlog.Seconds(), "backlog_s")
	b.ReportMetric(size/n, "backlog_MB")
	b.ReportMetric(rss/n, "producer_peak_RSS_MB")
	b.ReportMetric(0, "ns/op")
}

// spoolPumpOffline spools backlog of the pump in dir with no server to take
// it (the producer's NATS server has no Sensorium bus) and returns the last
// sequence and the samples made.
func spoolPumpOffline(b *testing.B, dir string, origin int64, backlog time.Duration) (uint64, int64) {
	offline, err := natsembed.Start(natsembed.Options{StoreDir: b.TempDir(), DontListen: true})
	if err != nil {
		b.Fatal(err)
	}
	defer offline.Stop()
	nc, err := offline.Connect()
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	p, err := sdk.NewProducer(context.Background(), nc, pumpConfig(b, dir))
	if err != nil {
		b.Fatal(err)
	}
	w, err := sdk.NewSampleWriter(p, 1, pumpDesc, sdk.SampleWriterOptions{Origin: origin})
	if err != nil {
		b.Fatal(err)
	}
	sim := pump.New(pumpRate, int64(pumpRate*60), 7)
	buf := make([]float32, 3*int(pumpRate)/10) // 100 ms
	for sim.Samples() < int64(backlog.Seconds()*pumpRate) {
		sim.Fill(buf)
		if err := w.WriteFloat32(context.Background(), buf); err != nil {
			b.Fatal(err)
		}
	}
	_ = closeNow(p) // its open fragment is spooled too
	return uint64(p.Stats().Fragments), sim.Samples()
}

// spoolBytes is the size of the spool's segment files.
func spoolBytes(b *testing.B, dir string) int64 {
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".seg") {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
	}
	return n
}

// TestSpoolCatchUpChild is BenchmarkSpoolCatchUp's producer: it runs only in
// the benchmark's subprocess. It restarts on the spool, keeps putting the
// pump's live frames in real time, and prints how long the backlog took to
// be PERSISTED.
func TestSpoolCatchUpChild(t *testing.T) {
	dir := os.Getenv(envCatchUpChild)
	if dir == "" {
		t.Skip("the producer of BenchmarkSpoolCatchUp; runs in its subprocess")
	}
	last, _ := strconv.ParseUint(os.Getenv(envCatchUpLast), 10, 64)
	liveOrigin, _ := strconv.ParseInt(os.Getenv(envCatchUpLive), 10, 64)
	start := time.Now()
	nc, err := nats.Connect(os.Getenv(envNATS))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	caughtUp := make(chan struct{})
	cfg := pumpConfig(t, dir)
	cfg.OnAck = func(ev sdk.AckEvent) {
		if ev.EventType == sdk.EventPersisted && ev.ProducerSequence == last {
			close(caughtUp) // the server applies a producer's fragments in order
		}
	}
	p, err := sdk.NewProducer(context.Background(), nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w, err := sdk.NewSampleWriter(p, 1, pumpDesc, sdk.SampleWriterOptions{Origin: liveOrigin})
	if err != nil {
		t.Fatal(err)
	}
	sim := pump.New(pumpRate, int64(pumpRate*60), 8)
	buf := make([]float32, 3*int(pumpRate)/10)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-caughtUp:
			done = true
		case <-tick.C: // live frames, in real time, while the backlog goes
			sim.Fill(buf)
			if err := w.WriteFloat32(context.Background(), buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	fmt.Printf("CAUGHTUP %d\n", time.Since(start).Nanoseconds())
	_ = closeNow(p) // the live fragments not yet PERSISTED stay spooled
}
