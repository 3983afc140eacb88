package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/sdk"
)

func opaque(n int) sdk.Track {
	return sdk.Track{Number: uint64(n), CodecID: "S_TEST/OPAQUE", Name: fmt.Sprint("t", n)}
}

func TestFragmentBoundaries(t *testing.T) {
	type frame struct {
		at, dur int64 // ms from t0
		key     bool
		size    int
	}
	every := func(n int, stepMS int64, keyEvery int, size int) []frame {
		var out []frame
		for i := 0; i < n; i++ {
			out = append(out, frame{at: int64(i) * stepMS, dur: stepMS, key: i%keyEvery == 0, size: size})
		}
		return out
	}
	cases := []struct {
		name   string
		cfg    sdk.ProducerConfig
		frames []frame
		want   []int // frames per fragment
	}{
		{"key frames, min 1 s", sdk.ProducerConfig{MinFragmentDuration: time.Second}, every(25, 100, 1, 10), []int{10, 10, 5}},
		{"key every 4th, min 1 s", sdk.ProducerConfig{MinFragmentDuration: time.Second}, every(30, 100, 4, 10), []int{12, 12, 6}},
		{"max duration", sdk.ProducerConfig{MinFragmentDuration: 2 * time.Second, MaxFragmentDuration: 2 * time.Second}, every(45, 100, 1, 10), []int{20, 20, 5}},
		{"max duration, sparse keys", sdk.ProducerConfig{MinFragmentDuration: 2 * time.Second, MaxFragmentDuration: 2 * time.Second}, every(45, 100, 5, 10), []int{20, 20, 5}},
		{"max size", sdk.ProducerConfig{MinFragmentDuration: 10 * time.Second, MaxFragmentSize: 64 << 10}, every(20, 10, 1, 10<<10), []int{6, 6, 6, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, false)
			cfg := tc.cfg
			cfg.Stream, cfg.Tracks, cfg.NoLive = "s", []sdk.Track{opaque(1)}, true
			p, err := sdk.NewProducer(context.Background(), r.client(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i, f := range tc.frames {
				data := make([]byte, f.size)
				data[0] = byte(i)
				if err := p.PutFrame(context.Background(), sdk.Frame{Track: 1, Timestamp: t0 + f.at*ms + 123456, Duration: f.dur * ms, Key: f.key, Data: data}); err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			_ = p.Flush(ctx) // no ingester: nothing becomes PERSISTED
			cancel()
			var frags []parsedFragment
			eventually(t, 5*time.Second, "fragments on the bus", func() bool {
				frags = r.busFragments()
				return len(frags) == len(tc.want)
			})
			next := 0
			for i, f := range frags {
				if len(f.blocks) != tc.want[i] {
					t.Fatalf("fragment %d has %d frames, want %d", i, len(f.blocks), tc.want[i])
				}
				first := tc.frames[next]
				if f.cluster != uint64((t0+first.at*ms+123456)/ms) || !f.blocks[0].Keyframe {
					t.Fatalf("fragment %d: cluster %d, first key %v", i, f.cluster, f.blocks[0].Keyframe)
				}
				// The server spans a fragment from its cluster time, the first
				// frame's cut to a millisecond: the duration counts from there
				// to the end of the last frame.
				last := tc.frames[next+len(f.blocks)-1]
				if want := t0 + (last.at+last.dur)*ms + 123456 - int64(f.cluster)*ms; int64(f.duration*1e6) != want {
					t.Fatalf("fragment %d: duration %v ms, want %v ns", i, f.duration, want)
				}
				for j, b := range f.blocks {
					fr := tc.frames[next+j]
					if int(b.Data[0]) != (next+j)%256 || b.Keyframe != fr.key || f.times[j] != (t0+fr.at*ms+123456)/ms*ms {
						t.Fatalf("fragment %d block %d: %+v at %d", i, j, b, f.times[j])
					}
				}
				if f.producerSeq != fmt.Sprint(i+1) || !strings.HasSuffix(f.msgID, fmt.Sprintf(":%d", i+1)) {
					t.Fatalf("fragment %d headers: seq %s msg id %s", i, f.producerSeq, f.msgID)
				}
				next += len(f.blocks)
			}
		})
	}
}

func TestPutFrameRefusals(t *testing.T) {
	r := newRig(t, false)
	p, err := sdk.NewProducer(context.Background(), r.client(), sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)},
		MaxFragmentDuration: time.Second, MinFragmentDuration: 100 * time.Millisecond, MaxFragmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	put := func(ts int64, key bool, size int) error {
		return p.PutFrame(ctx, sdk.Frame{Track: 1, Timestamp: t0 + ts*ms, Duration: 10 * ms, Key: key, Data: make([]byte, size)})
	}
	if err := put(0, false, 10); err == nil || !strings.Contains(err.Error(), "key frame") {
		t.Fatalf("first frame not key: %v", err)
	}
	if err := put(0, true, 10); err != nil {
		t.Fatal(err)
	}
	if err := put(-5, true, 10); err == nil || !strings.Contains(err.Error(), "back in time") {
		t.Fatalf("backwards: %v", err)
	}
	if err := p.PutFrame(ctx, sdk.Frame{Track: 9, Timestamp: t0, Key: true}); err == nil {
		t.Fatal("unknown track accepted")
	}
	if err := put(10, true, 70<<10); err == nil || !strings.Contains(err.Error(), "MAX_FRAGMENT_SIZE_REACHED") {
		t.Fatalf("oversize frame: %v", err)
	}
	if err := put(20, false, 10); err != nil {
		t.Fatal(err)
	}
	if err := put(1500, false, 10); err == nil || !strings.Contains(err.Error(), "key frames must come") {
		t.Fatalf("non-key frame at max duration: %v", err)
	}
	for i := 0; i < 10; i++ {
		if err := p.PutFragmentMetadata(fmt.Sprint("k", i), "v", i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.PutFragmentMetadata("k10", "v", false); err == nil {
		t.Fatal("an 11th tag accepted")
	}
	if err := p.PutFragmentMetadata("AWS_KINESISVIDEO_X", "v", false); err == nil {
		t.Fatal("reserved tag name accepted")
	}
}

func TestProducerConfigRefusals(t *testing.T) {
	r := newRig(t, false)
	nc := r.client()
	cases := map[string]sdk.ProducerConfig{
		"no stream":        {Tracks: []sdk.Track{opaque(1)}},
		"no tracks":        {Stream: "s"},
		"four tracks":      {Stream: "s", Tracks: []sdk.Track{opaque(1), opaque(2), opaque(3), opaque(4)}},
		"duplicate tracks": {Stream: "s", Tracks: []sdk.Track{opaque(1), opaque(1)}},
		"track 0":          {Stream: "s", Tracks: []sdk.Track{opaque(0)}},
		"max over 30 s":    {Stream: "s", Tracks: []sdk.Track{opaque(1)}, MaxFragmentDuration: 31 * time.Second},
		"min over max":     {Stream: "s", Tracks: []sdk.Track{opaque(1)}, MinFragmentDuration: 5 * time.Second, MaxFragmentDuration: 2 * time.Second},
		"size over 50 MB":  {Stream: "s", Tracks: []sdk.Track{opaque(1)}, MaxFragmentSize: 50_000_001},
		"tiny buffer":      {Stream: "s", Tracks: []sdk.Track{opaque(1)}, BufferBytes: 1024},
	}
	for name, cfg := range cases {
		if _, err := sdk.NewProducer(context.Background(), nc, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// produce closes n fragments of one 1 KiB key frame each (with a tiny
// MinFragmentDuration each frame closes the one before) and leaves one more open.
func produce(t *testing.T, p *sdk.Producer, from, n int) {
	t.Helper()
	for i := from; i < from+n+1; i++ { // the frame after the last closes it
		if err := p.PutFrame(context.Background(), sdk.Frame{Track: 1, Timestamp: t0 + int64(i)*100*ms, Duration: 100 * ms, Key: true, Data: make([]byte, 1024)}); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
}

func TestEventsAndClose(t *testing.T) {
	r := newRig(t, true)
	a := &acks{}
	p, err := sdk.NewProducer(context.Background(), r.client(), sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)}, MinFragmentDuration: time.Nanosecond, OnAck: a.onAck})
	if err != nil {
		t.Fatal(err)
	}
	produce(t, p, 0, 20)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if a.count(sdk.EventReceived) != 21 || a.count(sdk.EventPersisted) != 21 {
		t.Fatalf("events: %d RECEIVED, %d PERSISTED", a.count(sdk.EventReceived), a.count(sdk.EventPersisted))
	}
	seen := map[uint64]sdk.EventType{}
	for _, e := range a.events {
		if e.EventType == sdk.EventPersisted && seen[e.ProducerSequence] != sdk.EventReceived {
			t.Fatalf("PERSISTED before RECEIVED for %d", e.ProducerSequence)
		}
		seen[e.ProducerSequence] = e.EventType
	}
	if st := p.Stats(); st.Persisted != 21 || st.Buffered != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnknownStreamIsReported(t *testing.T) {
	r := newRig(t, true)
	a := &acks{}
	p, err := sdk.NewProducer(context.Background(), r.client(), sdk.ProducerConfig{Stream: "nope", Tracks: []sdk.Track{opaque(1)}, MinFragmentDuration: time.Nanosecond, OnAck: a.onAck})
	if err != nil {
		t.Fatal(err)
	}
	produce(t, p, 0, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err == nil || !strings.Contains(err.Error(), "refused 4") {
		t.Fatalf("Close: %v", err)
	}
	for _, e := range a.events {
		if e.EventType == sdk.EventError && e.ErrorID != wire.ErrStreamNotActive {
			t.Fatalf("error event %+v", e)
		}
	}
	if a.count(sdk.EventError) != 4 {
		t.Fatalf("%d ERROR events", a.count(sdk.EventError))
	}
}

// Block: with nothing acknowledging, PutFrame waits once the buffer is full,
// and gives up with the context, reporting the fragment it could not keep.
func TestBlockPolicy(t *testing.T) {
	r := newRig(t, false)
	a := &acks{}
	p, err := sdk.NewProducer(context.Background(), r.client(), sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)},
		MinFragmentDuration: time.Nanosecond, MaxFragmentSize: 16 << 10, BufferBytes: 16 << 10, OnDrop: a.onDrop})
	if err != nil {
		t.Fatal(err)
	}
	produce(t, p, 0, 10) // ~1.3 KiB fragments: about 12 fit
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var blocked error
	for i := 11; i < 40 && blocked == nil; i++ {
		blocked = p.PutFrame(ctx, sdk.Frame{Track: 1, Timestamp: t0 + int64(i)*100*ms, Duration: 100 * ms, Key: true, Data: make([]byte, 1024)})
	}
	if !errors.Is(blocked, context.DeadlineExceeded) {
		t.Fatalf("PutFrame with a full buffer: %v", blocked)
	}
	if st := p.Stats(); st.BufferedBytes > 16<<10 || st.Dropped != 1 {
		t.Fatalf("stats %+v", st)
	}
	eventually(t, 5*time.Second, "the drop notice", func() bool { a.mu.Lock(); defer a.mu.Unlock(); return len(a.dropped) == 1 })
}

// DropOldest: the newest data wins, memory stays bounded, drops are reported.
func TestDropOldestPolicy(t *testing.T) {
	r := newRig(t, false)
	a := &acks{}
	p, err := sdk.NewProducer(context.Background(), r.client(), sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)},
		MinFragmentDuration: time.Nanosecond, MaxFragmentSize: 16 << 10, BufferBytes: 16 << 10, Policy: sdk.DropOldest, OnDrop: a.onDrop})
	if err != nil {
		t.Fatal(err)
	}
	produce(t, p, 0, 100)
	st := p.Stats()
	if st.BufferedBytes > 16<<10 || st.Dropped < 80 {
		t.Fatalf("stats %+v", st)
	}
	eventually(t, 5*time.Second, "drop notices", func() bool { a.mu.Lock(); defer a.mu.Unlock(); return int64(len(a.dropped)) == st.Dropped })
	for i, d := range a.dropped {
		if d.Sequence != uint64(i+1) || d.Frames != 1 {
			t.Fatalf("drop %d: %+v", i, d)
		}
	}
}

// PERSISTED that never comes (no ingester while producing) is re-sent after
// PersistTimeout with a fresh msg id; the store keeps each fragment once.
func TestPersistTimeoutResends(t *testing.T) {
	r := newRig(t, false)
	a := &acks{}
	p, err := sdk.NewProducer(context.Background(), r.client(), sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)},
		MinFragmentDuration: time.Nanosecond, PersistTimeout: 300 * time.Millisecond, OnAck: a.onAck})
	if err != nil {
		t.Fatal(err)
	}
	produce(t, p, 0, 9)
	eventually(t, 5*time.Second, "RECEIVED", func() bool { return a.count(sdk.EventReceived) == 9 })
	time.Sleep(700 * time.Millisecond) // past PersistTimeout: re-sends go out
	r.startIngest()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	frags, err := r.st.Fragments("s", 0, 100)
	if err != nil || len(frags) != 10 {
		t.Fatalf("store holds %d fragments, want 10 (%v)", len(frags), err)
	}
	if st := p.Stats(); st.Resent == 0 {
		t.Fatalf("no re-sends: %+v", st)
	}
}

func TestLiveFrames(t *testing.T) {
	r := newRig(t, false)
	sub, err := r.nc.SubscribeSync(wire.NewSubjects("").Live("s"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdk.NewProducer(context.Background(), r.client(), sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.PutFrame(context.Background(), sdk.Frame{Track: 1, Timestamp: t0 + 5, Duration: 7, Key: true, Data: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := nats.Header{}
	for k, v := range map[string]string{wire.HeaderTimestamp: fmt.Sprint(t0 + 5), wire.HeaderDuration: "7", wire.HeaderTrack: "1", wire.HeaderKey: "1", wire.HeaderCodecID: "S_TEST/OPAQUE"} {
		want.Set(k, v)
		if m.Header.Get(k) != v {
			t.Fatalf("header %s = %q, want %q", k, m.Header.Get(k), v)
		}
	}
	if string(m.Data) != "hello" {
		t.Fatalf("payload %q", m.Data)
	}
}

func TestMetadataTags(t *testing.T) {
	r := newRig(t, false)
	p, err := sdk.NewProducer(context.Background(), r.client(), sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)}, MinFragmentDuration: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	_ = p.PutFragmentMetadata("site", "A", true)
	_ = p.PutFragmentMetadata("event", "start", false)
	produce(t, p, 0, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_ = p.Flush(ctx) // closes the third; nothing is ingesting, so it returns at the deadline
	cancel()
	var frags []parsedFragment
	eventually(t, 5*time.Second, "fragments", func() bool { frags = r.busFragments(); return len(frags) == 3 })
	got := func(f parsedFragment) string {
		var s []string
		for _, tg := range f.tags {
			s = append(s, tg.Name+"="+tg.Value)
		}
		return strings.Join(s, ",")
	}
	if got(frags[0]) != "site=A,event=start" || got(frags[1]) != "site=A" || got(frags[2]) != "site=A" {
		t.Fatalf("tags: %q %q %q", got(frags[0]), got(frags[1]), got(frags[2]))
	}
}

// A server that says nothing gets each overdue fragment again after
// PersistTimeout, then after twice that, four times … (up to 16 times): a
// silent or overloaded server is not buried in copies.
func TestPersistTimeoutBacksOff(t *testing.T) {
	r := newRig(t, false)
	p, err := sdk.NewProducer(context.Background(), r.client(), sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)},
		MinFragmentDuration: time.Nanosecond, PersistTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	produce(t, p, 0, 4) // 4 fragments close; nothing ingests
	time.Sleep(3 * time.Second)
	// Without backoff: 30 re-sends each. With it: at 0.1, 0.3, 0.7, 1.5 and
	// 3.1 s, so 4 each.
	if st := p.Stats(); st.Resent < 4*3 || st.Resent > 4*6 {
		t.Fatalf("%d re-sends of 4 fragments in 3 s with a 100 ms PersistTimeout: %+v", st.Resent, st)
	}
	r.startIngest()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// An idle producer does not tick: its send loop ticks (to re-send what is
// overdue) only while fragments wait for PERSISTED, so a gateway of
// thousands of producers that put a fragment a second costs little between
// them (the idle-fragment check still wakes each at most once a second). A
// fragment put after the idle spell wakes it and is stored, and a fragment
// whose PERSISTED is overdue is still re-sent.
func TestIdleProducerDoesNotTick(t *testing.T) {
	r := newRig(t, true)
	p, err := sdk.NewProducer(context.Background(), r.client(), sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)},
		MinFragmentDuration: time.Nanosecond, PersistTimeout: 300 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer closeSoon(p) // a failure with the ingester stopped must not wait for PERSISTED
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	put := func(i int64) {
		t.Helper()
		if err := p.PutFrame(ctx, sdk.Frame{Track: 1, Timestamp: t0 + i*100*ms, Duration: 100 * ms, Key: true, Data: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	put(0)
	// The tick that finds nothing pending stops the ticker; give it one
	// period to come, then watch for a whole second of idleness (the old
	// loop ticked ten times a second whatever it had to do).
	waitSendLoopIdle(t, p)
	idle := sdk.SendTicks(p)
	time.Sleep(time.Second)
	if n := sdk.SendTicks(p) - idle; n != 0 {
		t.Fatalf("the send loop ticked %d times in a second with nothing to do", n)
	}
	put(1)
	// Overdue: the ingester stops, so the next fragment's PERSISTED does not
	// come until a re-send after the ingester is back.
	r.stopIngest()
	for i := int64(2); i <= 3; i++ { // the key frame 3 closes the fragment of 2
		if err := p.PutFrame(ctx, sdk.Frame{Track: 1, Timestamp: t0 + i*100*ms, Duration: 100 * ms, Key: true, Data: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "a re-send of the overdue fragment", func() bool { return p.Stats().Resent > 0 })
	r.startIngest()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	frags, err := r.st.Fragments("s", 0, 100)
	if err != nil || len(frags) != 4 {
		t.Fatalf("store holds %d fragments, want 4 (%v)", len(frags), err)
	}
}

// A frame of one track may start a little before the open fragment's first
// frame (another track's: audio a few ms ahead of a video key frame), and
// its block then has a negative timecode; more than an int16 of ms before,
// the block's timecode would wrap around to a time 65 s later, so PutFrame
// refuses it and says why.
func TestFrameBeforeItsFragment(t *testing.T) {
	r := newRig(t, false)
	p, err := sdk.NewProducer(context.Background(), r.client(), sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1), opaque(2)},
		MinFragmentDuration: 20 * time.Second, MaxFragmentDuration: 30 * time.Second, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	put := func(track uint64, ts int64) error {
		return p.PutFrame(ctx, sdk.Frame{Track: track, Timestamp: ts, Duration: 100 * ms, Key: true, Data: []byte{byte(track)}})
	}
	if err := put(1, t0+40_000*ms); err != nil {
		t.Fatal(err)
	}
	if err := put(2, t0); err == nil || !strings.Contains(err.Error(), "before the open fragment's first frame") {
		t.Fatalf("a frame 40 s before its fragment: %v", err)
	}
	if err := put(2, t0+40_000*ms-1500*ms); err != nil {
		t.Fatalf("a frame 1.5 s before its fragment: %v", err)
	}
	fctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_ = p.Flush(fctx)
	cancel()
	var frags []parsedFragment
	eventually(t, 5*time.Second, "the fragment", func() bool { frags = r.busFragments(); return len(frags) == 1 })
	want := []int64{t0 + 40_000*ms, t0 + 38_500*ms}
	if got := frags[0].times; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("block times %v, want %v", got, want)
	}
}

// A reconnect while the producer is idle calls for no re-send: nothing was
// on the wire. The fragments put after it go out on the new connection once,
// even when their PERSISTED takes several of the send loop's ticks.
func TestReconnectWhileIdleResendsNothing(t *testing.T) {
	r := newRig(t, true)
	nc := r.client()
	p, err := sdk.NewProducer(context.Background(), nc, sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)},
		MinFragmentDuration: time.Nanosecond, PersistTimeout: 10 * time.Second, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer closeSoon(p) // a failure with the ingester stopped must not wait for PERSISTED
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	put := func(i int64) {
		t.Helper()
		if err := p.PutFrame(ctx, sdk.Frame{Track: 1, Timestamp: t0 + i*100*ms, Duration: 100 * ms, Key: true, Data: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	put(0)
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitSendLoopIdle(t, p)
	reconnects := nc.Stats().Reconnects
	if err := nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the reconnect", func() bool { return nc.Stats().Reconnects > reconnects && nc.IsConnected() })
	r.stopIngest() // PERSISTED waits: the send loop ticks meanwhile
	put(1)
	put(2) // closes the fragment of 1, which goes out
	eventually(t, 5*time.Second, "RECEIVED", func() bool { return p.Stats().Published >= 2 })
	ticks := sdk.SendTicks(p)
	eventually(t, 5*time.Second, "three ticks", func() bool { return sdk.SendTicks(p) >= ticks+3 })
	if st := p.Stats(); st.Resent != 0 {
		t.Fatalf("%d re-sends after a reconnect while idle: %+v", st.Resent, st)
	}
	r.startIngest()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if frags, err := r.st.Fragments("s", 0, 100); err != nil || len(frags) != 3 {
		t.Fatalf("store holds %d fragments, want 3 (%v)", len(frags), err)
	}
}

// waitSendLoopIdle waits until p's send loop has stopped ticking: no tick in
// 250 ms, more than two of its periods.
func waitSendLoopIdle(t *testing.T, p *sdk.Producer) {
	t.Helper()
	eventually(t, 5*time.Second, "the send loop going idle", func() bool {
		before := sdk.SendTicks(p)
		time.Sleep(250 * time.Millisecond)
		return sdk.SendTicks(p) == before
	})
}

// A PERSISTED event lost on the way (core NATS drops events to a slow
// consumer) while the producer keeps putting: the PERSISTED of the
// fragments after it says the server has it, so it is re-sent a quarter of
// PersistTimeout later and answered as a duplicate — not after 16 ×
// PersistTimeout, which is how long a fragment waits while events for
// others keep coming.
func TestLostPersistedIsResentWhenOvertaken(t *testing.T) {
	r := newRig(t, true)
	var mu sync.Mutex
	persisted := map[uint64]time.Time{}
	var lostAt time.Time
	p, err := sdk.NewProducer(context.Background(), r.client(), sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)},
		MinFragmentDuration: time.Nanosecond, PersistTimeout: 2 * time.Second, Logger: quiet(),
		OnAck: func(ev sdk.AckEvent) {
			if ev.EventType == sdk.EventPersisted {
				mu.Lock()
				persisted[ev.ProducerSequence] = time.Now()
				mu.Unlock()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer closeSoon(p)
	sdk.LoseEvents(p, func(ev sdk.AckEvent) bool {
		mu.Lock()
		defer mu.Unlock()
		if ev.EventType == sdk.EventPersisted && ev.ProducerSequence == 3 && lostAt.IsZero() {
			lostAt = time.Now()
			return true
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A fragment every 50 ms for 5 s: events never stop for PersistTimeout.
	for i := int64(0); i < 100; i++ {
		if err := p.PutFrame(ctx, sdk.Frame{Track: 1, Timestamp: t0 + i*50*ms, Duration: 50 * ms, Key: true, Data: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	lost, at := lostAt, persisted[3]
	mu.Unlock()
	switch {
	case lost.IsZero():
		t.Fatal("fragment 3's PERSISTED never came to be lost")
	case at.IsZero():
		t.Fatalf("fragment 3's PERSISTED was lost %s before the producer stopped putting, and has not come again", time.Since(lost).Round(time.Millisecond))
	case at.Sub(lost) > 2*time.Second:
		t.Fatalf("fragment 3 was PERSISTED again %s after its event was lost; want within a quarter of PersistTimeout and a tick", at.Sub(lost))
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	frags, err := r.st.Fragments("s", 0, 1000)
	if err != nil || len(frags) != 100 { // Flush closed the last
		t.Fatalf("the store holds %d fragments (%v), want 100, each once", len(frags), err)
	}
	if s := p.Stats(); s.Resent < 1 {
		t.Errorf("stats %+v: want the lost one re-sent", s)
	}
}
