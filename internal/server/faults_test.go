package server

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/faultproxy"
	"github.com/sensorium-io/sensorium/sdk"
)

// A producer behind a faulty network — its connection cut, reset, stalled
// for seconds and throttled to a trickle, mid-fragment — still gets every
// fragment it made PERSISTED exactly once, in order, and keeps its buffer
// within its bound.
func TestProducerSurvivesNetworkFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault loop: not in -short")
	}
	dir := t.TempDir()
	srv := startServer(t, dir)
	ctx := context.Background()
	newStream(t, srv, "faulty", 24)
	proxy, err := faultproxy.Start(strings.TrimPrefix(srv.NATSURL(), "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	nc, err := nats.Connect("nats://"+proxy.Addr(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), nats.ReconnectBufSize(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	log := &persistedLog{persisted: map[uint64]sdk.AckEvent{}}
	track, _ := sdk.ScalarTrack(1, "vibration", pumpDesc)
	const bufferBytes = 4 << 20
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{
		Stream: "faulty", Tracks: []sdk.Track{track}, OnAck: log.onAck, BufferBytes: bufferBytes, Policy: sdk.Block,
		MinFragmentDuration: 200 * time.Millisecond, MaxFragmentDuration: time.Second, PersistTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	w, err := sdk.NewSampleWriter(p, 1, pumpDesc, sdk.SampleWriterOptions{Origin: time.Now().Add(-time.Hour).Truncate(time.Millisecond).UnixNano(), FrameSamples: 100})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var maxBuffered int64 // written by the producing goroutine until produced ends
	produced := produceUntil(ctx, w, 300*time.Microsecond, stop, func() { maxBuffered = max(maxBuffered, p.Stats().BufferedBytes) })
	waitFor := func(more int, what string) {
		t.Helper()
		want := log.count() + more
		deadline := time.Now().Add(60 * time.Second)
		for log.count() < want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: stuck at %d PERSISTED", what, log.count())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	faults := []struct {
		name   string
		inject func()
	}{
		{"cut", func() { proxy.Cut() }},
		{"reset", func() { proxy.Reset() }},
		{"stall 3 s", func() { proxy.Stall(3 * time.Second) }},
		{"slow link", func() { proxy.SetRate(64 << 10); time.Sleep(2 * time.Second); proxy.SetRate(0) }},
		{"cut again", func() { proxy.Cut() }},
	}
	waitFor(20, "start")
	for _, f := range faults {
		f.inject()
		waitFor(20, "after "+f.name)
	}
	close(stop)
	if err := <-produced; err != nil {
		t.Fatalf("producing: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatalf("producer close: %v; ERROR events: %+v", err, log.errors)
	}
	if len(log.errors) > 0 {
		t.Fatalf("ERROR events: %+v", log.errors)
	}
	st := p.Stats()
	if int64(log.count()) != st.Fragments {
		t.Fatalf("%d fragments made, %d PERSISTED", st.Fragments, log.count())
	}
	if maxBuffered > bufferBytes {
		t.Errorf("the buffer held %d bytes, bound %d", maxBuffered, bufferBytes)
	}
	if proxy.Accepted() < 4 { // the first connection, then one after each cut and the reset
		t.Errorf("the producer connected %d times: the faults did not break its connections", proxy.Accepted())
	}
	nc.Close()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	checkStoredExactlyOnce(t, filepath.Join(dir, "store"), "faulty", log)
	t.Logf("%d fragments PERSISTED through %d faults over %d connections; %d re-sends; buffer peak %d KiB",
		log.count(), len(faults), proxy.Accepted(), st.Resent, maxBuffered>>10)
}
