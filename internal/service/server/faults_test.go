package server

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/testkit/faultproxy"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/store"
)

// A producer behind a faulty network — its connection cut, reset, stalled
// for seconds, throttled to a trickle, cut in the middle of a message — still gets every
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
		// Fragments are a few KiB, frames on the live subject ~1 KiB: a cut
		// after an odd number of bytes lands inside a message, most likely a
		// fragment's publish.
		{"cut mid-message", func() { proxy.CutAfter(2777) }},
		{"cut mid-message again", func() { proxy.CutAfter(10_001) }},
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
	// The first connection, then one after each fault that met a live one; a
	// fault that comes while the producer is still reconnecting meets none,
	// so fewer than one per fault is no failure, but some must have broken.
	if proxy.Accepted() < 3 {
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

// DropOldest behind a stalled link: the buffer stays within its bound, and
// the caller learns the fate of every fragment it handed over — PERSISTED,
// or reported through OnDrop with its frames and time span; both only for a
// fragment dropped while on the wire (Dropped.OnTheWire) that the server
// stored anyway. What is stored is every PERSISTED fragment once, in order;
// a stored fragment the caller was not told is PERSISTED must be one it was
// told may be stored (OnTheWire: its event can be lost while disconnected).
func TestProducerDropOldestUnderStall(t *testing.T) {
	if testing.Short() {
		t.Skip("fault loop: not in -short")
	}
	dir := t.TempDir()
	srv := startServer(t, dir)
	ctx := context.Background()
	newStream(t, srv, "lossy", 24)
	proxy, err := faultproxy.Start(strings.TrimPrefix(srv.NATSURL(), "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	nc, err := nats.Connect("nats://"+proxy.Addr(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	log := &persistedLog{persisted: map[uint64]sdk.AckEvent{}}
	var mu sync.Mutex
	dropped := map[uint64]sdk.Dropped{}
	track, _ := sdk.ScalarTrack(1, "vibration", pumpDesc)
	const bufferBytes = 64 << 10
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{
		Stream: "lossy", Tracks: []sdk.Track{track}, OnAck: log.onAck, BufferBytes: bufferBytes, MaxFragmentSize: 16 << 10, Policy: sdk.DropOldest,
		OnDrop: func(d sdk.Dropped) {
			mu.Lock()
			dropped[d.Sequence] = d
			mu.Unlock()
		},
		MinFragmentDuration: 100 * time.Millisecond, MaxFragmentDuration: 100 * time.Millisecond, PersistTimeout: time.Second,
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
	var maxBuffered int64
	produced := produceUntil(ctx, w, 500*time.Microsecond, stop, func() { maxBuffered = max(maxBuffered, p.Stats().BufferedBytes) })
	for log.count() < 20 {
		time.Sleep(10 * time.Millisecond)
	}
	proxy.Stall(4 * time.Second)
	time.Sleep(5 * time.Second)
	for start := log.count(); log.count() < start+20; {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	if err := <-produced; err != nil {
		t.Fatalf("producing: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cerr := p.Close(cctx)
	st := p.Stats()
	if st.Dropped == 0 {
		t.Fatalf("nothing dropped in a 4 s stall with a %d KiB buffer: the test proves nothing (%+v)", bufferBytes>>10, st)
	}
	if cerr == nil || !strings.Contains(cerr.Error(), "dropped") || strings.Contains(cerr.Error(), "not PERSISTED") {
		t.Fatalf("Close: %v, want it to say fragments were dropped and nothing else is pending", cerr)
	}
	if maxBuffered > bufferBytes {
		t.Errorf("the buffer held %d bytes, bound %d", maxBuffered, bufferBytes)
	}
	mu.Lock()
	defer mu.Unlock()
	for seq := uint64(1); seq <= uint64(st.Fragments); seq++ {
		_, ok := log.persisted[seq]
		d, gone := dropped[seq]
		switch {
		case ok && gone && !d.OnTheWire:
			t.Fatalf("fragment %d was PERSISTED, and dropped before it was ever sent", seq)
		case !ok && !gone:
			t.Fatalf("fragment %d was neither PERSISTED nor reported dropped", seq)
		case gone && (d.Frames == 0 || d.End <= d.Start || d.Bytes == 0):
			t.Fatalf("drop notice without the frames it lost: %+v", d)
		}
	}
	nc.Close()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	stored := storedSequences(t, filepath.Join(dir, "store"), "lossy")
	late := 0
	for seq := range stored {
		if _, ok := log.persisted[seq]; !ok {
			if d, gone := dropped[seq]; !gone || !d.OnTheWire {
				t.Fatalf("producer sequence %d is stored, but the caller was told neither PERSISTED nor that it may be (%+v)", seq, d)
			}
			late++
		}
	}
	for seq := range log.persisted {
		if !stored[seq] {
			t.Fatalf("LOST: producer sequence %d PERSISTED but not stored", seq)
		}
	}
	t.Logf("%d fragments: %d PERSISTED (%d of them after their drop notice), %d dropped, %d stored without a PERSISTED the producer heard; buffer peak %d KiB of %d",
		st.Fragments, len(log.persisted), st.PersistedAfterDrop, len(dropped), late, maxBuffered>>10, bufferBytes>>10)
}

// storedSequences opens a stopped server's store and returns the producer
// sequences of a stream's fragments, checking each is stored once, in order.
func storedSequences(t *testing.T, dir, stream string) map[uint64]bool {
	t.Helper()
	ring, err := store.LoadKeyring(nil, filepath.Join(filepath.Dir(dir), "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Options{Dir: dir, RetentionInterval: -1, Logger: testLogger(t), Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	infos, err := st.Fragments(stream, 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := st.NewReader(stream)
	defer r.Close()
	out := map[uint64]bool{}
	var last uint64
	for _, info := range infos {
		f, err := r.Read(info)
		if err != nil {
			t.Fatalf("fragment %d: %v", info.Number, err)
		}
		if out[f.ProducerSeq] || f.ProducerSeq <= last {
			t.Fatalf("producer sequence %d stored twice or out of order (after %d)", f.ProducerSeq, last)
		}
		out[f.ProducerSeq], last = true, f.ProducerSeq
	}
	return out
}

// A stalled server — the process frozen (SIGSTOP), its connections open and
// silent — once briefly and once past the SDK's publish timeout: the
// producer waits or re-sends, and when the server thaws every fragment is
// PERSISTED exactly once, in order.
func TestProducerSurvivesStalledServer(t *testing.T) {
	if testing.Short() {
		t.Skip("fault loop: not in -short")
	}
	dir := t.TempDir()
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	c := startChild(t, dir, natsAddr, httpAddr)
	ctx := context.Background()
	if _, err := sdk.NewClient(c.http, nil).CreateStream(ctx, sdk.CreateStreamInput{StreamName: "frozen", DataRetentionInHours: 24}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(c.url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	log := &persistedLog{persisted: map[uint64]sdk.AckEvent{}}
	track, _ := sdk.ScalarTrack(1, "vibration", pumpDesc)
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{
		Stream: "frozen", Tracks: []sdk.Track{track}, OnAck: log.onAck, Policy: sdk.Block,
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
	produced := produceUntil(ctx, w, time.Millisecond, stop, nil)
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
	freeze := func(d time.Duration) {
		_ = c.cmd.Process.Signal(syscall.SIGSTOP)
		time.Sleep(d)
		_ = c.cmd.Process.Signal(syscall.SIGCONT)
	}
	waitFor(20, "start")
	freeze(2 * time.Second)
	waitFor(20, "after a 2 s stall")
	freeze(12 * time.Second) // past the 10 s publish timeout: publishes fail and are re-sent
	waitFor(20, "after a 12 s stall")
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
	c.stop(t)
	checkStoredExactlyOnce(t, filepath.Join(dir, "store"), "frozen", log)
	t.Logf("%d fragments PERSISTED across two stalls; %d re-sends, %d failed publishes", log.count(), st.Resent, st.PublishFailures)
}
