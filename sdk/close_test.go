package sdk_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// fillBuffer puts 1 KiB key frames (each closing the fragment before, with a
// tiny MinFragmentDuration) until the Block policy makes one give up: the
// buffer is full then and, with nothing ingesting, stays full. It returns the
// index of the next frame; the open fragment is empty.
func fillBuffer(t *testing.T, p *sdk.Producer) int {
	t.Helper()
	produce(t, p, 0, 10)
	for i := 11; i < 100; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := p.PutFrame(ctx, sdk.Frame{Track: 1, Timestamp: t0 + int64(i)*100*ms, Duration: 100 * ms, Key: true, Data: make([]byte, 1024)})
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return i + 1
		}
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	t.Fatal("the buffer never filled")
	return 0
}

// Close's deadline holds while a PutFrame waits for room in a full buffer
// (Block policy): Close gives up at its deadline, and the blocked PutFrame
// returns ErrClosed with its fragment reported as dropped.
func TestCloseDeadlineWhilePutFrameBlocks(t *testing.T) {
	r := newRig(t, false)
	a := &acks{}
	p, err := sdk.NewProducer(context.Background(), r.client(), sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)},
		MinFragmentDuration: time.Nanosecond, MaxFragmentSize: 16 << 10, BufferBytes: 16 << 10, OnDrop: a.onDrop})
	if err != nil {
		t.Fatal(err)
	}
	next := fillBuffer(t, p)
	put := func(i int) error {
		return p.PutFrame(context.Background(), sdk.Frame{Track: 1, Timestamp: t0 + int64(i)*100*ms, Duration: 100 * ms, Key: true, Data: make([]byte, 1024)})
	}
	if err := put(next); err != nil { // opens a fragment
		t.Fatal(err)
	}
	made := p.Stats().Fragments
	blocked := make(chan error, 1)
	go func() { blocked <- put(next + 1) }() // closes it: waits for room that never comes
	eventually(t, 5*time.Second, "PutFrame waiting for room", func() bool { return p.Stats().Fragments == made+1 })

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- p.Close(ctx) }()
	select {
	case err := <-closed:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close: %v, want its deadline's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close with a 300 ms deadline still blocked after 10 s")
	}
	select {
	case err := <-blocked:
		if !errors.Is(err, sdk.ErrClosed) {
			t.Fatalf("the blocked PutFrame returned %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked PutFrame did not return after Close")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.dropped) != 2 { // the one fillBuffer gave up, and the blocked one
		t.Fatalf("%d drop notices, want 2: %+v", len(a.dropped), a.dropped)
	}
}

// After Close nothing is taken silently: every way of putting data, and
// Flush, returns ErrClosed, and nothing more reaches the bus.
func TestPutsAfterCloseReturnErrClosed(t *testing.T) {
	r := newRig(t, true)
	ctx := context.Background()
	scalar := &signals.Scalar{SampleRate: 100, SampleType: signals.Float32, Channels: []signals.Channel{{Name: "x"}}}
	st, err := sdk.ScalarTrack(2, "x", scalar)
	if err != nil {
		t.Fatal(err)
	}
	ot, err := sdk.OpaqueTrack(3, "o", "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdk.NewProducer(ctx, r.client(), sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1), st, ot}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := sdk.NewSampleWriter(p, 2, scalar, sdk.SampleWriterOptions{Origin: t0, FrameSamples: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.PutFrame(ctx, sdk.Frame{Track: 1, Timestamp: t0, Duration: ms, Key: true, Data: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatal(err)
	}
	// The ingester acknowledges what it stores and the bus may then drop
	// it, so what is counted is the bus's last sequence: every message ever
	// published, stored or not.
	onBus := r.busLastSeq()
	// Bounded, so that a put taken after Close cannot hang a Flush.
	ctx, cancel = context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s := &signals.Samples{N: 10, Channels: 1, Type: signals.Float32, F32: make([]float32, 10), Start: t0 + int64(time.Second)}
	cases := []struct {
		name string
		call func() error
	}{
		{"PutFrame", func() error {
			return p.PutFrame(ctx, sdk.Frame{Track: 1, Timestamp: t0 + 10*ms, Duration: ms, Key: true, Data: []byte("after")})
		}},
		{"Flush", func() error { return p.Flush(ctx) }},
		{"PutFragmentMetadata", func() error { return p.PutFragmentMetadata("k", "v", false) }},
		{"PutOpaque", func() error { return p.PutOpaque(ctx, 3, t0+20*ms, 0, []byte("after"), true) }},
		{"PutSamples", func() error { return p.PutSamples(ctx, 2, scalar, s, codecs.Plain) }},
		{"SampleWriter", func() error { return w.WriteFloat32(ctx, make([]float32, 10)) }},
	}
	for _, tc := range cases {
		if err := tc.call(); !errors.Is(err, sdk.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", tc.name, err)
		}
	}
	if err := p.Close(cctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if n := r.busLastSeq(); n != onBus {
		t.Fatalf("bus sequence %d after Close, %d before: something was published after Close", n, onBus)
	}
}
