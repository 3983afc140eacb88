package sdk_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/ingest"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/service/natsembed"
	"github.com/sensorium-io/sensorium/sdk"
)

// stockPayload is a stock nats-server's max_payload.
const stockPayload = 1 << 20

// A stock nats-server takes 1 MB messages: a MaxFragmentSize that cannot fit
// is refused with both numbers; the default shrinks to fit.
func TestMaxFragmentSizeAgainstServerMaxPayload(t *testing.T) {
	ns, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), DontListen: true, MaxPayload: stockPayload})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cases := []struct {
		name    string
		size    int
		wantErr []string // substrings of the error; nil: accepted
	}{
		{"4 MiB", 4 << 20, []string{"4194304", "1048576", "max_payload", fmt.Sprint(stockPayload - sdk.PublishHeaderBytes)}},
		{"1 MiB", 1 << 20, []string{"1048576", "max_payload"}},
		{"largest that fits", stockPayload - sdk.PublishHeaderBytes, nil},
		{"default", 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := sdk.NewProducer(context.Background(), nc, sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)}, MaxFragmentSize: tc.size, NoLive: true})
			if tc.wantErr != nil {
				if err == nil {
					closeSoon(p)
					t.Fatal("accepted")
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Fatalf("error %q does not say %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer closeSoon(p)
			// The fragment limit is what the server takes: a frame of the
			// server's max_payload cannot be put.
			err = p.PutFrame(context.Background(), sdk.Frame{Track: 1, Timestamp: t0, Key: true, Data: make([]byte, stockPayload)})
			if err == nil || !strings.Contains(err.Error(), "MAX_FRAGMENT_SIZE_REACHED") {
				t.Fatalf("a frame of the server's max_payload: %v", err)
			}
		})
	}
}

// A producer that reconnects to a server with a smaller max_payload gets
// nats.ErrMaxPayload for a large fragment: that is final. The fragment is
// refused with an ERROR event (MAX_FRAGMENT_SIZE_REACHED) and leaves the
// buffer, instead of being re-sent forever, and later fragments still go.
func TestFragmentOverServerMaxPayloadIsRefused(t *testing.T) {
	dir := t.TempDir()
	big, err := natsembed.Start(natsembed.Options{StoreDir: dir, Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	port := big.Addr().(*net.TCPAddr).Port
	a := &acks{}
	nc, err := nats.Connect(big.URL(), nats.ReconnectWait(20*time.Millisecond), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	p, err := sdk.NewProducer(context.Background(), nc, sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)}, NoLive: true, OnAck: a.onAck})
	if err != nil {
		t.Fatal(err)
	}
	big.Stop()
	small, err := natsembed.Start(natsembed.Options{StoreDir: dir, Port: port, MaxPayload: stockPayload})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(small.Stop)
	snc, err := small.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(snc.Close)
	js, _ := jetstream.New(snc)
	if _, _, err := ingest.EnsureBus(context.Background(), js, ingest.BusConfig{}, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the reconnect to the 1 MB server", func() bool { return nc.IsConnected() && nc.MaxPayload() == stockPayload })

	if err := p.PutFrame(context.Background(), sdk.Frame{Track: 1, Timestamp: t0, Duration: ms, Key: true, Data: make([]byte, 2<<20)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v (the fragment is still being re-sent)", err)
	}
	eventually(t, 5*time.Second, "the ERROR event", func() bool { return a.count(sdk.EventError) == 1 })
	var refused *sdk.AckEvent
	a.mu.Lock()
	for i, e := range a.events {
		if e.EventType == sdk.EventError {
			refused = &a.events[i]
		}
	}
	a.mu.Unlock()
	if refused == nil || refused.ErrorID != wire.ErrMaxFragmentSize || refused.ErrorCode != "MAX_FRAGMENT_SIZE_REACHED" ||
		refused.ProducerSequence != 1 || !strings.Contains(refused.Message, "1048576") {
		t.Fatalf("ERROR event %+v, want MAX_FRAGMENT_SIZE_REACHED (4001) for sequence 1 naming the 1048576-byte max_payload", refused)
	}
	if st := p.Stats(); st.Errors != 1 || st.Buffered != 0 {
		t.Fatalf("stats %+v, want 1 error and nothing buffered", st)
	}
	// The producer goes on: a small fragment reaches the bus.
	if err := p.PutFrame(context.Background(), sdk.Frame{Track: 1, Timestamp: t0 + 10*ms, Duration: ms, Key: true, Data: make([]byte, 1024)}); err != nil {
		t.Fatal(err)
	}
	fctx, fcancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_ = p.Flush(fctx) // nothing ingests: it ends at the deadline
	fcancel()
	eventually(t, 10*time.Second, "the next fragment RECEIVED", func() bool { return a.count(sdk.EventReceived) == 1 })
}

// MaxFragmentSize counts the fragment's metadata tags: ten persistent 1 KiB
// tags and a 64 KiB limit give fragments of at most 64 KiB, and a tag that
// would take the open fragment past the limit is refused.
func TestMaxFragmentSizeCountsTags(t *testing.T) {
	r := newRig(t, false)
	const limit = 64 << 10
	p, err := sdk.NewProducer(context.Background(), r.client(), sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)},
		MinFragmentDuration: 10 * time.Second, MaxFragmentSize: limit, NoLive: true})
	if err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("v", 1024)
	for i := 0; i < 9; i++ {
		if err := p.PutFragmentMetadata(fmt.Sprint("k", i), value, true); err != nil {
			t.Fatal(err)
		}
	}
	frames := 0
	put := func() {
		t.Helper()
		if err := p.PutFrame(context.Background(), sdk.Frame{Track: 1, Timestamp: t0 + int64(frames)*10*ms, Duration: 10 * ms, Key: true, Data: make([]byte, 1000)}); err != nil {
			t.Fatalf("frame %d: %v", frames, err)
		}
		frames++
	}
	// The first fragment closes when a frame no longer fits: n frames do.
	for p.Stats().Fragments == 0 {
		put()
	}
	n := frames - 1
	for i := 1; i < n; i++ { // the second fragment holds n frames too: it is full
		put()
	}
	// Less room is left in it than a frame of 1000 bytes needs, so a 1 KiB
	// tag does not fit.
	if err := p.PutFragmentMetadata("k9", value, true); err == nil || !strings.Contains(err.Error(), "MAX_FRAGMENT_SIZE_REACHED") {
		t.Fatalf("a tag past MaxFragmentSize: %v", err)
	}
	put() // closes the second fragment
	if err := p.PutFragmentMetadata("k9", value, true); err != nil {
		t.Fatalf("a tag that fits: %v", err)
	}
	for i := 0; i < 3*n; i++ {
		put()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_ = p.Flush(ctx)
	cancel()
	eventually(t, 5*time.Second, "every frame on the bus", func() bool { _, got := r.busSizes(); return got == frames })
	sizes, _ := r.busSizes()
	if len(sizes) < 5 {
		t.Fatalf("%d fragments, want at least 5", len(sizes))
	}
	for i, size := range sizes {
		if size > limit {
			t.Errorf("fragment %d is %d bytes, more than MaxFragmentSize %d", i, size, limit)
		}
	}
}

// closeSoon closes p, giving up on what is not PERSISTED within a second.
func closeSoon(p *sdk.Producer) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = p.Close(ctx)
}

// busSizes returns the size of each fragment on the bus, and their frames.
func (r *rig) busSizes() ([]int, int) {
	r.t.Helper()
	info, err := r.bus.Info(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	var sizes []int
	frames := 0
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := r.bus.GetMsg(context.Background(), seq)
		if err != nil {
			r.t.Fatal(err)
		}
		sizes = append(sizes, len(m.Data))
		frames += len(parse(r.t, m.Data, m.Header).blocks)
	}
	return sizes, frames
}
