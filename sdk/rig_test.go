package sdk_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/ingest"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/service/natsembed"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/store"
)

// rig is an embedded bus and a store, with an ingester that can be started
// and stopped: a producer's whole world, with real parts.
type rig struct {
	t      testing.TB
	ns     *natsembed.Server
	nc     *nats.Conn // the server side's connection
	js     jetstream.JetStream
	bus    jetstream.Stream
	cons   jetstream.Consumer
	st     *store.Store
	cancel context.CancelFunc
	done   chan error
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newRig(t testing.TB, ingesting bool) *rig {
	t.Helper()
	ns, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), DontListen: true})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	st, err := store.Open(store.Options{Dir: t.TempDir(), Logger: quiet(), RetentionInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	bus, cons, err := ingest.EnsureBus(context.Background(), js, ingest.BusConfig{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, ns: ns, nc: nc, js: js, bus: bus, cons: cons, st: st}
	if _, err := st.CreateStream(store.CreateStreamInput{Name: "s", RetentionHours: 1}); err != nil {
		t.Fatal(err)
	}
	if ingesting {
		r.startIngest()
	}
	t.Cleanup(func() {
		r.stopIngest()
		st.Close()
		nc.Close()
		ns.Stop()
	})
	return r
}

func (r *rig) startIngest() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	in := ingest.New(ingest.Options{Store: r.st, NC: r.nc, Stream: r.bus, Consumer: r.cons, Logger: quiet()})
	go func() { r.done <- in.Run(ctx) }()
}

func (r *rig) stopIngest() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.cancel = nil
	}
}

// client returns a producer-side connection.
func (r *rig) client() *nats.Conn {
	nc, err := r.ns.Connect()
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(nc.Close)
	return nc
}

// busFragments returns the fragments on the bus, in order, parsed.
func (r *rig) busFragments() []parsedFragment {
	r.t.Helper()
	info, err := r.bus.Info(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	var out []parsedFragment
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := r.bus.GetMsg(context.Background(), seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			r.t.Fatal(err)
		}
		out = append(out, parse(r.t, m.Data, m.Header))
	}
	return out
}

// busLastSeq is the sequence of the last message published to the bus,
// whether or not the ingester has since stored and removed it.
func (r *rig) busLastSeq() uint64 {
	r.t.Helper()
	info, err := r.bus.Info(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return info.State.LastSeq
}

// parsedFragment is what a test checks of a fragment.
type parsedFragment struct {
	producerSeq string
	msgID       string
	cluster     uint64
	duration    float64
	blocks      []mkv.Block
	times       []int64
	tags        []mkv.SimpleTag
}

func parse(t testing.TB, data []byte, h nats.Header) parsedFragment {
	t.Helper()
	p := parsedFragment{producerSeq: h.Get(wire.HeaderProducerSeq), msgID: h.Get(wire.HeaderMsgID)}
	mr := mkv.NewReader(bytes.NewReader(data))
	for {
		it, err := mr.Next()
		if errors.Is(err, io.EOF) {
			return p
		}
		if err != nil {
			t.Fatalf("fragment does not parse: %v", err)
		}
		switch it.Kind {
		case mkv.ItemInfo:
			p.duration = it.Info.Duration
		case mkv.ItemTags:
			p.tags = append(p.tags, it.Tags...)
		case mkv.ItemClusterStart:
			p.cluster = it.Timecode
		case mkv.ItemBlock:
			b := *it.Block
			b.Data = append([]byte(nil), b.Data...)
			p.blocks = append(p.blocks, b)
			p.times = append(p.times, it.Time)
		}
	}
}

// acks records every event a producer delivers.
type acks struct {
	mu      sync.Mutex
	events  []sdk.AckEvent
	dropped []sdk.Dropped
}

func (a *acks) onAck(ev sdk.AckEvent) { a.mu.Lock(); a.events = append(a.events, ev); a.mu.Unlock() }
func (a *acks) onDrop(d sdk.Dropped)  { a.mu.Lock(); a.dropped = append(a.dropped, d); a.mu.Unlock() }

func (a *acks) count(typ sdk.EventType) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, e := range a.events {
		if e.EventType == typ {
			n++
		}
	}
	return n
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).UnixNano()

const ms = int64(time.Millisecond)
