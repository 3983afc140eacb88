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
	"github.com/sensorium-io/sensorium/internal/testkit/faultproxy"
	"github.com/sensorium-io/sensorium/sdk"
)

// stockPayload is a stock nats-server's max_payload.
const stockPayload = 1 << 20

// busChunks reads every message on a bus: its size and chunk header.
func busChunks(t *testing.T, bus jetstream.Stream) (sizes []int, chunks []string) {
	t.Helper()
	info, err := bus.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := bus.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(m.Data))
		chunks = append(chunks, m.Header.Get(wire.HeaderChunk))
	}
	return sizes, chunks
}

// A stock nats-server takes 1 MB messages: a fragment larger than that goes
// as chunks of at most max_payload with their headers; the default
// MaxFragmentSize shrinks to fit one message; a server whose max_payload is
// too small for a fragment even in wire.MaxChunks chunks is refused at
// NewProducer with both numbers.
func TestMaxFragmentSizeAgainstServerMaxPayload(t *testing.T) {
	start := func(maxPayload int32) (*nats.Conn, jetstream.Stream) {
		ns, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), DontListen: true, MaxPayload: maxPayload})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ns.Stop)
		nc, err := ns.Connect()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		bus, _, err := ingest.EnsureBus(context.Background(), js, ingest.BusConfig{MaxMsgSize: maxPayload}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return nc, bus
	}
	nc, bus := start(stockPayload)
	cases := []struct {
		name   string
		size   int // MaxFragmentSize
		frame  int // one frame of this size
		chunks int // messages on the bus
	}{
		{"default", 0, 512 << 10, 1},
		{"largest in one message", stockPayload - sdk.PublishHeaderBytes, stockPayload - sdk.PublishHeaderBytes - 1024, 1},
		{"4 MiB", 4 << 20, 3 << 20, 4},
	}
	seen := 0
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := sdk.NewProducer(context.Background(), nc, sdk.ProducerConfig{Stream: fmt.Sprint("s", i), Tracks: []sdk.Track{opaque(1)}, MaxFragmentSize: tc.size, NoLive: true})
			if err != nil {
				t.Fatal(err)
			}
			defer closeSoon(p)
			if err := p.PutFrame(context.Background(), sdk.Frame{Track: 1, Timestamp: t0, Duration: ms, Key: true, Data: make([]byte, tc.frame)}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			_ = p.Flush(ctx) // nothing ingests: it ends at the deadline
			cancel()
			var sizes []int
			var chunks []string
			eventually(t, 10*time.Second, "the fragment on the bus", func() bool {
				sizes, chunks = busChunks(t, bus)
				return len(sizes) == seen+tc.chunks
			})
			sizes, chunks = sizes[seen:], chunks[seen:]
			seen += tc.chunks
			for k, size := range sizes {
				if size > stockPayload-sdk.PublishHeaderBytes {
					t.Errorf("message %d of the fragment is %d bytes, over max_payload less headers", k+1, size)
				}
				want := ""
				if tc.chunks > 1 {
					want = fmt.Sprintf("%d/%d", k+1, tc.chunks)
				}
				if chunks[k] != want {
					t.Errorf("message %d: %s %q, want %q", k+1, wire.HeaderChunk, chunks[k], want)
				}
			}
		})
	}
	if _, err := sdk.NewProducer(context.Background(), nc, sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)}, MaxFragmentSize: 50_000_001, NoLive: true}); err == nil {
		t.Fatal("a MaxFragmentSize over 50 MB was accepted")
	}
	tiny, _ := start(8 << 10)
	_, err := sdk.NewProducer(context.Background(), tiny, sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)}, MaxFragmentSize: 40_000_000, NoLive: true})
	if err == nil || !strings.Contains(err.Error(), "8192") || !strings.Contains(err.Error(), "40000000") {
		t.Fatalf("40 MB fragments on an 8 KiB max_payload: %v", err)
	}
}

// A producer that reconnects to a server with a smaller max_payload sends
// the fragments that no longer fit one message as chunks for that server:
// nothing is refused, and the bus gets every chunk within its limit.
func TestFragmentChunkedForASmallerServer(t *testing.T) {
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
	defer closeSoon(p)
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
	bus, _, err := ingest.EnsureBus(context.Background(), js, ingest.BusConfig{MaxMsgSize: stockPayload}, 0)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the reconnect to the 1 MB server", func() bool { return nc.IsConnected() && nc.MaxPayload() == stockPayload })

	if err := p.PutFrame(context.Background(), sdk.Frame{Track: 1, Timestamp: t0, Duration: ms, Key: true, Data: make([]byte, 2<<20)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_ = p.Flush(ctx) // nothing ingests: it ends at the deadline
	cancel()
	eventually(t, 10*time.Second, "the fragment RECEIVED", func() bool { return a.count(sdk.EventReceived) == 1 })
	if n := a.count(sdk.EventError); n != 0 {
		t.Fatalf("%d ERROR events", n)
	}
	// (The producer may have sent it twice, a fresh copy for the reconnect
	// it noticed after the first: each copy is whole.)
	sizes, chunks := busChunks(t, bus)
	for k := range sizes {
		if want := fmt.Sprintf("%d/3", k%3+1); len(sizes)%3 != 0 || chunks[k] != want || sizes[k] > stockPayload-sdk.PublishHeaderBytes {
			t.Fatalf("the bus holds %d messages %q of %d bytes, want the fragment in 3 chunks each within max_payload", len(sizes), chunks, sizes)
		}
	}
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

// A fragment of more chunks than the producer's publish window
// (MaxPublishesInFlight) on a link too slow to free a slot within the
// client's stall wait (a 4K camera's 40 MB fragments on a cellular uplink,
// here 38 chunks of 4 KiB at 16 KB/s) goes out once, chunk after chunk: the
// producer waits for the window instead of starting the fragment over from
// its first chunk, which on such a link never ended.
func TestManyChunksOnASlowLink(t *testing.T) {
	const maxPayload = 8 << 10
	ns, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Port: -1, MaxPayload: maxPayload})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	direct, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	js, _ := jetstream.New(direct)
	bus, _, err := ingest.EnsureBus(context.Background(), js, ingest.BusConfig{MaxMsgSize: maxPayload}, 0)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := faultproxy.Start(ns.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	proxy.SetRate(16_000)
	nc, err := nats.Connect("nats://" + proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	a := &acks{}
	p, err := sdk.NewProducer(context.Background(), nc, sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)}, MaxFragmentSize: 200_000, NoLive: true, OnAck: a.onAck,
		PublishTimeout: 30 * time.Second}) // the whole fragment takes 10 s on this link
	if err != nil {
		t.Fatal(err)
	}
	defer closeSoon(p)
	if err := p.PutFrame(context.Background(), sdk.Frame{Track: 1, Timestamp: t0, Duration: ms, Key: true, Data: make([]byte, 150_000)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_ = p.Flush(ctx) // nothing ingests: it ends at the deadline
	cancel()
	eventually(t, 40*time.Second, "the fragment RECEIVED", func() bool { return a.count(sdk.EventReceived) == 1 })
	sizes, chunks := busChunks(t, bus)
	if len(sizes) <= sdk.MaxPublishesInFlight || !strings.HasSuffix(chunks[0], fmt.Sprintf("/%d", len(sizes))) {
		t.Fatalf("the bus holds %d messages %q, want one fragment in more chunks than the window of %d", len(sizes), chunks, sdk.MaxPublishesInFlight)
	}
	if st := p.Stats(); st.PublishFailures != 0 || st.Resent != 0 {
		t.Fatalf("the fragment was sent again (stats %+v)", st)
	}
}
