package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/store"
)

// bigFragment is a fragment of about size bytes: frames of 1 MiB of noise
// (incompressible, so that nothing on the way could shrink it unnoticed).
func bigFragment(ms uint64, size int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, Duration: 1000})
	b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeVideo, CodecID: "V_MPEG4/ISO/AVC"}})
	var blocks []mkv.Block
	for i := 0; len(blocks)*(1<<20) < size; i++ {
		data := make([]byte, 1<<20)
		for k := 0; k < len(data); k += 8 {
			v := rng.Uint64()
			for j := 0; j < 8 && k+j < len(data); j++ {
				data[k+j] = byte(v >> (8 * j))
			}
		}
		blocks = append(blocks, mkv.Block{Track: 1, Timecode: int16(i * 10), Keyframe: i == 0, Data: data})
	}
	return mkv.AppendCluster(b, ms, blocks)
}

// publishChunks puts a fragment on the bus as chunks of at most chunk
// bytes (only the chunks whose index only lets through, when it is set)
// and returns the bus sequence of each chunk published.
func (r *rig) publishChunks(stream string, data []byte, producer string, seq uint64, attempt int, chunk int, only func(int) bool) []uint64 {
	r.t.Helper()
	parts, headers := wire.SplitFragment(wire.FragmentHeader(stream, producer, seq, 0, attempt), data, chunk)
	var seqs []uint64
	for k, part := range parts {
		if only != nil && !only(k+1) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ack, err := r.js.PublishMsg(ctx, &nats.Msg{Subject: r.subs.Frag(stream), Data: part, Header: headers[k]})
		cancel()
		if err != nil {
			r.t.Fatalf("publish chunk %d: %v", k+1, err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs
}

// events collects a stream's acknowledgement events.
func (r *rig) events(stream string) func(seq uint64) (wire.AckEvent, bool) {
	r.t.Helper()
	got := make(chan wire.AckEvent, 64)
	sub, err := r.nc.Subscribe(r.subs.Ack(stream), func(m *nats.Msg) {
		var ev wire.AckEvent
		if json.Unmarshal(m.Data, &ev) == nil {
			got <- ev
		}
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = sub.Unsubscribe() })
	return func(seq uint64) (wire.AckEvent, bool) {
		deadline := time.After(20 * time.Second)
		for {
			select {
			case ev := <-got:
				if ev.ProducerSequence == seq {
					return ev, true
				}
			case <-deadline:
				return wire.AckEvent{}, false
			}
		}
	}
}

func (r *rig) storedPayload(stream string, number uint64) []byte {
	r.t.Helper()
	info, err := r.st.Fragment(stream, number)
	if err != nil {
		r.t.Fatalf("fragment %d: %v", number, err)
	}
	rd, err := r.st.NewReader(stream)
	if err != nil {
		r.t.Fatal(err)
	}
	defer rd.Close()
	f, err := rd.Read(info)
	if err != nil {
		r.t.Fatalf("read fragment %d: %v", number, err)
	}
	return bytes.Clone(f.Payload)
}

func wantPayload(t *testing.T, data []byte) []byte {
	t.Helper()
	f, ferr := ParseFragment(data, Limits{}, time.Now())
	if ferr != nil {
		t.Fatalf("the test's fragment does not parse: %v", ferr)
	}
	return f.Payload
}

// busEmpty waits until the bus holds no message: every chunk was
// acknowledged or dropped.
func (r *rig) busEmpty() {
	r.t.Helper()
	poll.Until(r.t, 20*time.Second, 20*time.Millisecond, func() error {
		s, err := r.js.Stream(context.Background(), r.subs.BusShard(0))
		if err != nil {
			return err
		}
		info, err := s.Info(context.Background())
		if err != nil {
			return err
		}
		if n := info.State.Msgs; n != 0 {
			return fmt.Errorf("the bus holds %d messages", n)
		}
		return nil
	})
}

// TestChunkedFragmentIsStoredWhole: a 20 MiB fragment as chunks (one bus
// message taking 4 MiB here, so chunks of wire.ChunkTarget),
// with another stream's fragments between its chunks, is stored as one
// fragment numbered by its last chunk, byte for byte; a re-send of it is a
// duplicate; and the bus keeps none of its chunks. With its chunks kept in
// memory, and read back from the bus when ChunkMemory is full.
func TestChunkedFragmentIsStoredWhole(t *testing.T) {
	for name, memory := range map[string]int{"in memory": 0, "read back from the bus": 1} {
		t.Run(name, func(t *testing.T) { testChunkedFragmentIsStoredWhole(t, memory) })
	}
}

func testChunkedFragmentIsStoredWhole(t *testing.T, memory int) {
	r := newRigOpts(t, t.TempDir(), t.TempDir(), nil, func(o *Options) { o.ChunkMemory = memory })
	for _, name := range []string{"cam", "pump"} {
		if _, err := r.st.CreateStream(store.CreateStreamInput{Name: name, RetentionHours: 1}); err != nil {
			t.Fatal(err)
		}
	}
	camEvents := r.events("cam")
	now := uint64(time.Now().UnixMilli())
	big := bigFragment(now, 20<<20, 1)
	parts, headers := wire.SplitFragment(wire.FragmentHeader("cam", "cam-1", 1, 0, 0), big, 4<<20)
	if want := (len(big) + wire.ChunkTarget - 1) / wire.ChunkTarget; len(parts) != want {
		t.Fatalf("%d chunks, want %d", len(parts), want)
	}
	var last uint64
	for k, part := range parts {
		ack, err := r.js.PublishMsg(context.Background(), &nats.Msg{Subject: r.subs.Frag("cam"), Data: part, Header: headers[k]})
		if err != nil {
			t.Fatal(err)
		}
		last = ack.Sequence
		if k < 3 { // another stream goes on meanwhile
			if ev := r.publish("pump", fragmentBytes(now+uint64(k)*1000, 3, nil), "pump-1", uint64(k+1)); ev.EventType != wire.EventPersisted {
				t.Fatalf("pump fragment %d between cam's chunks: %+v", k+1, ev)
			}
		}
	}
	ev, ok := camEvents(1)
	if !ok || ev.EventType != wire.EventPersisted || ev.FragmentNumber != strconv.FormatUint(last, 10) {
		t.Fatalf("the chunked fragment: %+v (got one: %v), want PERSISTED as fragment %d", ev, ok, last)
	}
	if got := r.storedPayload("cam", last); !bytes.Equal(got, wantPayload(t, big)) {
		t.Fatalf("stored %d bytes, not the %d put", len(got), len(wantPayload(t, big)))
	}
	frags, _ := r.st.Fragments("cam", 0, 10)
	if len(frags) != 1 {
		t.Fatalf("cam holds %d fragments, want 1", len(frags))
	}
	r.busEmpty()
	// A re-send (a fresh attempt: new message ids) is the same fragment.
	r.publishChunks("cam", big, "cam-1", 1, 1, 4<<20, nil)
	if ev, ok := camEvents(1); !ok || ev.EventType != wire.EventPersisted || !ev.Duplicate {
		t.Fatalf("re-send: %+v", ev)
	}
	r.busEmpty()
}

// TestChunkedFragmentRefusals: what cannot be put together is answered, and
// the stream goes on.
func TestChunkedFragmentRefusals(t *testing.T) {
	r := newRig(t, t.TempDir(), t.TempDir())
	if _, err := r.st.CreateStream(store.CreateStreamInput{Name: "cam", RetentionHours: 1}); err != nil {
		t.Fatal(err)
	}
	next := r.events("cam")
	now := uint64(time.Now().UnixMilli())
	frag := bigFragment(now, 3<<20, 2)

	// A chunk missing before the last: the producer is asked to send again.
	r.publishChunks("cam", frag, "p", 1, 0, 1<<20, func(i int) bool { return i != 2 })
	if ev, ok := next(1); !ok || ev.EventType != wire.EventRetry {
		t.Fatalf("a chunk missing: %+v, want RETRY", ev)
	}
	// Sent again whole, it is stored.
	r.publishChunks("cam", frag, "p", 1, 1, 1<<20, nil)
	if ev, ok := next(1); !ok || ev.EventType != wire.EventPersisted || ev.Duplicate {
		t.Fatalf("sent again: %+v", ev)
	}

	// Declared over the limit: MAX_FRAGMENT_SIZE_REACHED at the last chunk.
	over := bigFragment(now+2000, 2<<20, 3)
	parts, headers := wire.SplitFragment(wire.FragmentHeader("cam", "p", 2, 0, 0), over, 1<<20)
	for k, part := range parts {
		headers[k][wire.HeaderFragmentSize] = []string{strconv.Itoa(MaxFragmentSizeDefault + 1)}
		if _, err := r.js.PublishMsg(context.Background(), &nats.Msg{Subject: r.subs.Frag("cam"), Data: part, Header: headers[k]}); err != nil {
			t.Fatal(err)
		}
	}
	if ev, ok := next(2); !ok || ev.EventType != wire.EventError || ev.ErrorID != wire.ErrMaxFragmentSize {
		t.Fatalf("over the limit: %+v", ev)
	}

	// A malformed chunk header: INVALID_MKV_DATA.
	m := nats.NewMsg(r.subs.Frag("cam"))
	m.Data = over[:1000]
	for k, v := range wire.FragmentHeader("cam", "p", 3, 0, 0) {
		m.Header[k] = v
	}
	m.Header.Set(wire.HeaderChunk, "3/2")
	m.Header.Set(wire.HeaderFragmentSize, "5000")
	if _, err := r.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if ev, ok := next(3); !ok || ev.EventType != wire.EventError || ev.ErrorID != wire.ErrInvalidMKVData {
		t.Fatalf("malformed chunk header: %+v", ev)
	}
	r.busEmpty()
	frags, _ := r.st.Fragments("cam", 0, 10)
	if len(frags) != 1 {
		t.Fatalf("cam holds %d fragments, want the one sent whole", len(frags))
	}
}

// TestAbandonedChunksAreDropped: a producer that died part way through a
// fragment's chunks leaves them on the bus only until the ingester gives up
// waiting for the last; a later whole send of the fragment is stored.
func TestAbandonedChunksAreDropped(t *testing.T) {
	r := newRigOpts(t, t.TempDir(), t.TempDir(), nil, func(o *Options) { o.ChunkPatience = 400 * time.Millisecond })
	if _, err := r.st.CreateStream(store.CreateStreamInput{Name: "cam", RetentionHours: 1}); err != nil {
		t.Fatal(err)
	}
	next := r.events("cam")
	frag := bigFragment(uint64(time.Now().UnixMilli()), 4<<20, 4)
	r.publishChunks("cam", frag, "p", 1, 0, 1<<20, func(i int) bool { return i <= 2 })
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		if n := r.in.Stats().ChunksAbandoned; n != 2 {
			return fmt.Errorf("%d chunks abandoned, want 2", n)
		}
		return nil
	})
	r.busEmpty()
	r.publishChunks("cam", frag, "p", 1, 1, 1<<20, nil)
	if ev, ok := next(1); !ok || ev.EventType != wire.EventPersisted {
		t.Fatalf("the fragment sent again whole: %+v", ev)
	}
}

// TestChunksSurviveARestart: the ingester's process dies with some of a
// fragment's chunks held; the next one, given the rest, stores the fragment
// from the chunks the bus kept.
func TestChunksSurviveARestart(t *testing.T) {
	storeDir, natsDir := t.TempDir(), t.TempDir()
	r := newRig(t, storeDir, natsDir)
	if _, err := r.st.CreateStream(store.CreateStreamInput{Name: "cam", RetentionHours: 1}); err != nil {
		t.Fatal(err)
	}
	frag := bigFragment(uint64(time.Now().UnixMilli()), 5<<20, 5)
	r.publishChunks("cam", frag, "p", 1, 0, 1<<20, func(i int) bool { return i <= 4 })
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		c, err := r.js.Consumer(context.Background(), r.subs.BusShard(0), DefaultReplica)
		if err != nil {
			return err
		}
		ci, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if ci.NumAckPending != 4 || ci.NumPending != 0 {
			return fmt.Errorf("%d chunks delivered and held, %d not delivered; want 4 held", ci.NumAckPending, ci.NumPending)
		}
		return nil
	})
	r.close()

	r = newRig(t, storeDir, natsDir)
	next := r.events("cam")
	r.publishChunks("cam", frag, "p", 1, 0, 1<<20, func(i int) bool { return i > 4 })
	ev, ok := next(1)
	if !ok || ev.EventType != wire.EventPersisted || ev.Duplicate {
		t.Fatalf("after the restart: %+v", ev)
	}
	n, _ := strconv.ParseUint(ev.FragmentNumber, 10, 64)
	if got := r.storedPayload("cam", n); !bytes.Equal(got, wantPayload(t, frag)) {
		t.Fatalf("stored %d bytes, not the %d put", len(got), len(wantPayload(t, frag)))
	}
	r.busEmpty()
}
