package ingest

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/service/natsembed"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/store"
)

// rig is a bus, a store and a running ingester.
type rig struct {
	t      testing.TB
	ns     *natsembed.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	st     *store.Store
	cancel context.CancelFunc
	done   chan error
	subs   wire.Subjects
	in     *Ingester
}

func newRig(t *testing.T, storeDir, natsDir string) *rig {
	t.Helper()
	return newRigWith(t, storeDir, natsDir, nil)
}

// newRigWith is newRig with the store's options adjusted by tweak.
func newRigWith(t testing.TB, storeDir, natsDir string, tweak func(*store.Options)) *rig {
	t.Helper()
	return newRigOpts(t, storeDir, natsDir, tweak, nil)
}

// newRigOpts is newRigWith with the ingester's options adjusted by inTweak too.
func newRigOpts(t testing.TB, storeDir, natsDir string, tweak func(*store.Options), inTweak func(*Options)) *rig {
	t.Helper()
	ns, err := natsembed.Start(natsembed.Options{StoreDir: natsDir, DontListen: true})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	so := store.Options{Dir: storeDir, Logger: log, RetentionInterval: -1}
	if tweak != nil {
		tweak(&so)
	}
	st, err := store.Open(so)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, ns: ns, nc: nc, js: js, st: st, subs: wire.NewSubjects("")}
	ctx, cancel := context.WithCancel(context.Background())
	bs, cons, err := EnsureBus(ctx, js, BusConfig{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	io := Options{Store: st, NC: nc, Stream: bs, Consumer: cons, Logger: log}
	if inTweak != nil {
		inTweak(&io)
	}
	in := New(io)
	r.in = in
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- in.Run(ctx) }()
	t.Cleanup(r.close)
	return r
}

func (r *rig) close() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel = nil
	r.st.Close()
	r.nc.Close()
	r.ns.Stop()
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// fragmentBytes builds a canonical fragment at producer time ms with n frames.
func fragmentBytes(ms uint64, n int, tags []mkv.SimpleTag) []byte {
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, Duration: float64(n * 100)})
	b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: "S_SENSORIUM/SCALAR", CodecPrivate: []byte{1, 2, 3}}})
	if tags != nil {
		b = mkv.AppendTags(b, tags)
	}
	var blocks []mkv.Block
	for i := 0; i < n; i++ {
		blocks = append(blocks, mkv.Block{Track: 1, Timecode: int16(i * 100), Keyframe: true, Data: []byte{byte(i), 1, 2, 3}})
	}
	return mkv.AppendCluster(b, ms, blocks)
}

// publish sends a fragment and waits for its first server event.
func (r *rig) publish(stream string, data []byte, producer string, seq uint64, attempt ...int) wire.AckEvent {
	r.t.Helper()
	a := 0
	if len(attempt) > 0 {
		a = attempt[0]
	}
	return r.publishWith(stream, data, producer, seq, a, 0)
}

// publishWith sends a fragment with a msg id attempt and a predecessor (0:
// none) and waits for its first server event.
func (r *rig) publishWith(stream string, data []byte, producer string, seq uint64, attempt int, prev uint64) wire.AckEvent {
	r.t.Helper()
	sub, err := r.nc.SubscribeSync(r.subs.Ack(stream))
	if err != nil {
		r.t.Fatal(err)
	}
	defer sub.Unsubscribe()
	msg := nats.NewMsg(r.subs.Frag(stream))
	msg.Data = data
	if producer != "" {
		msg.Header.Set(wire.HeaderProducerID, producer)
		msg.Header.Set(wire.HeaderProducerSeq, strconv.FormatUint(seq, 10))
		msg.Header.Set(wire.HeaderMsgID, wire.MsgID(stream, producer, seq, attempt))
		if prev > 0 {
			msg.Header.Set(wire.HeaderProducerPrev, strconv.FormatUint(prev, 10))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.js.PublishMsg(ctx, msg); err != nil {
		r.t.Fatalf("publish: %v", err)
	}
	for {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			r.t.Fatalf("no ack event: %v", err)
		}
		var ev wire.AckEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			r.t.Fatal(err)
		}
		if producer == "" || ev.ProducerSequence == seq {
			return ev
		}
	}
}

func TestIngestPersistsAndRefuses(t *testing.T) {
	r := newRig(t, t.TempDir(), t.TempDir())
	if _, err := r.st.CreateStream(store.CreateStreamInput{Name: "pump.1", RetentionHours: 1}); err != nil {
		t.Fatal(err)
	}
	now := uint64(time.Now().UnixMilli())
	ev := r.publish("pump.1", fragmentBytes(now, 5, []mkv.SimpleTag{{Name: "site", Value: "A"}}), "p1", 1)
	if ev.EventType != wire.EventPersisted || ev.FragmentNumber == "" || ev.FragmentTimecode != int64(now) {
		t.Fatalf("first fragment: %+v", ev)
	}
	stored, err := r.st.Fragments("pump.1", 0, 10)
	if err != nil || len(stored) != 1 || stored[0].Duration != int64(500*time.Millisecond) {
		t.Fatalf("stored: %+v %v", stored, err)
	}
	// The same producer key again (a re-send after a lost ack): PERSISTED, duplicate.
	// A fresh bus id, as the SDK uses for a re-send, gets past the bus's dedupe.
	ev = r.publish("pump.1", fragmentBytes(now, 5, nil), "p1", 1, 1)
	if ev.EventType != wire.EventPersisted || !ev.Duplicate || ev.FragmentNumber != strconv.FormatUint(stored[0].Number, 10) {
		t.Fatalf("re-send: %+v", ev)
	}

	cases := []struct {
		name   string
		stream string
		data   []byte
		code   wire.ErrorCode
	}{
		{"unknown stream", "nope", fragmentBytes(now, 2, nil), wire.ErrStreamNotActive},
		{"garbage", "pump.1", []byte("this is not matroska at all"), wire.ErrInvalidMKVData},
		{"truncated", "pump.1", fragmentBytes(now+1000, 5, nil)[:150], wire.ErrInvalidMKVData},
		{"backwards", "pump.1", fragmentBytes(now-60000, 2, nil), wire.ErrFragmentTimecodeLesser},
		{"reserved tag", "pump.1", fragmentBytes(now+2000, 2, []mkv.SimpleTag{{Name: "AWS_KINESISVIDEO_CAMERA", Value: "1"}}), wire.ErrInvalidMKVData},
		{"timecode zero", "pump.1", fragmentBytes(0, 2, nil), wire.ErrInvalidProducerTimestamp},
		{"far future", "pump.1", fragmentBytes(now+48*3600*1000, 2, nil), wire.ErrInvalidProducerTimestamp},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := r.publish(tc.stream, tc.data, "bad", uint64(100+i))
			if ev.EventType != wire.EventError || ev.ErrorID != tc.code || ev.ErrorCode != tc.code.String() || ev.Message == "" {
				t.Fatalf("got %+v, want ERROR %v", ev, tc.code)
			}
		})
	}
	// The stream still takes good fragments, and so does another one.
	if _, err := r.st.CreateStream(store.CreateStreamInput{Name: "other", RetentionHours: 1}); err != nil {
		t.Fatal(err)
	}
	if ev := r.publish("other", fragmentBytes(now, 2, nil), "p2", 1); ev.EventType != wire.EventPersisted {
		t.Fatalf("other stream after bad input: %+v", ev)
	}
	ev = r.publish("pump.1", fragmentBytes(now+5000, 3, nil), "p1", 2)
	if ev.EventType != wire.EventPersisted {
		t.Fatalf("after bad input: %+v", ev)
	}
	if frags, _ := r.st.Fragments("pump.1", 0, 10); len(frags) != 2 {
		t.Fatalf("stored %d fragments, want 2", len(frags))
	}
}

func TestIngestLiveOnlyStream(t *testing.T) {
	r := newRig(t, t.TempDir(), t.TempDir())
	if _, err := r.st.CreateStream(store.CreateStreamInput{Name: "live", RetentionHours: 0}); err != nil {
		t.Fatal(err)
	}
	ev := r.publish("live", fragmentBytes(uint64(time.Now().UnixMilli()), 2, nil), "p", 1)
	if ev.EventType != wire.EventReceived || ev.Retained == nil || *ev.Retained || !ev.Terminal() {
		t.Fatalf("live-only: %+v", ev)
	}
}

// A fragment that must follow one the server has not seen is held back with
// RETRY, not stored out of order; once its predecessor is stored (or refused)
// it goes through.
func TestIngestHoldsBackFragmentsWhosePredecessorIsMissing(t *testing.T) {
	r := newRig(t, t.TempDir(), t.TempDir())
	if _, err := r.st.CreateStream(store.CreateStreamInput{Name: "s", RetentionHours: 1}); err != nil {
		t.Fatal(err)
	}
	now := uint64(time.Now().UnixMilli())
	withPrev := func(seq, prev uint64, attempt int, data []byte) wire.AckEvent {
		return r.publishWith("s", data, "p", seq, attempt, prev)
	}
	ev := withPrev(2, 1, 0, fragmentBytes(now+1000, 2, nil))
	if ev.EventType != wire.EventRetry || ev.After != 1 || ev.Terminal() {
		t.Fatalf("fragment 2 before 1: %+v", ev)
	}
	if ev := withPrev(1, 0, 0, fragmentBytes(now, 2, nil)); ev.EventType != wire.EventPersisted {
		t.Fatalf("fragment 1: %+v", ev)
	}
	if ev := withPrev(2, 1, 1, fragmentBytes(now+1000, 2, nil)); ev.EventType != wire.EventPersisted {
		t.Fatalf("fragment 2 after 1: %+v", ev)
	}
	// A predecessor that was refused does not hold its successor back.
	if ev := withPrev(3, 2, 0, []byte("garbage")); ev.EventType != wire.EventError {
		t.Fatalf("fragment 3: %+v", ev)
	}
	if ev := withPrev(4, 3, 0, fragmentBytes(now+3000, 2, nil)); ev.EventType != wire.EventPersisted {
		t.Fatalf("fragment 4 after a refused 3: %+v", ev)
	}
	if frags, _ := r.st.Fragments("s", 0, 10); len(frags) != 3 {
		t.Fatalf("stored %d fragments, want 3", len(frags))
	}
}

// TestInOrderWaitsForAGapItCannotRead: a consumer delivered messages 3 and 4
// but not 1 and 2 (its leader changed). While 1 and 2 cannot be read from the
// stream, nothing past them is applied; once they can, the batch is applied
// in bus order. Applying 3 and 4 first and calling 1 and 2 stale on their
// redelivery would lose them on this replica for good.
func TestInOrderWaitsForAGapItCannotRead(t *testing.T) {
	nc, js := embeddedBus(t, natsembed.Options{})
	ctx := context.Background()
	bs, cons, err := EnsureBus(ctx, js, BusConfig{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	subs := wire.NewSubjects("")
	var first uint64
	for i := range 4 {
		ack, err := js.Publish(ctx, subs.Frag("s"), fragmentBytes(uint64(1000*(i+1)), 1, nil))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = ack.Sequence
		}
	}
	in := New(Options{NC: nc, Stream: bs, Consumer: cons, Logger: quietLog(t)})
	delivered := func() []*busMsg {
		return []*busMsg{{subject: subs.Frag("s"), seq: first + 2}, {subject: subs.Frag("s"), seq: first + 3}}
	}
	seqs := func(ms []*busMsg) []uint64 {
		var out []uint64
		for _, m := range ms {
			out = append(out, m.seq)
		}
		return out
	}

	in.expect = first
	down, cancel := context.WithCancel(ctx)
	cancel() // the stream cannot be read
	if got := seqs(in.inOrder(down, delivered())); len(got) != 0 || in.expect != first {
		t.Fatalf("with the gap unreadable: applied %v, expecting %d next; want nothing, %d", got, in.expect, first)
	}
	got := seqs(in.inOrder(ctx, delivered()))
	want := []uint64{first, first + 1, first + 2, first + 3}
	if len(got) != len(want) || got[0] != want[0] || got[3] != want[3] || in.expect != first+4 {
		t.Fatalf("applied %v, expecting %d next; want %v, %d", got, in.expect, want, first+4)
	}
}
