package api

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/signals"
)

// liveTestFeed is a feed whose track 1 is a 3-channel float32 signal at
// rate, decoded as live.go decodes it (its description given, as the
// stream's newest fragment would give it).
func liveTestFeed(t *testing.T, rate float64) (*liveFeed, *signals.Scalar) {
	t.Helper()
	desc := &signals.Scalar{SampleRate: rate, SampleType: signals.Float32,
		Channels: []signals.Channel{{Name: "x", Unit: "g"}, {Name: "y", Unit: "g"}, {Name: "z", Unit: "g"}}}
	dec, err := codecs.NewArrowDecoder(desc, codecs.ArrowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	feed := &liveFeed{stream: "s", followers: map[*liveFollower]struct{}{}, decoders: map[uint64]*liveDecoder{
		1: {desc: desc, dec: dec, rb: array.NewRecordBuilder(memory.DefaultAllocator, dec.Schema()), fc: &codecs.FragmentContext{Tags: map[string]string{}}, rate: rate},
	}}
	return feed, desc
}

// liveMsg is a live frame message of n samples per channel from start,
// sample i of channel c being value(i, c).
func liveMsg(t *testing.T, desc *signals.Scalar, start int64, n int, value func(i, c int) float32) *nats.Msg {
	t.Helper()
	s := &signals.Samples{Start: start}
	s.Reset(signals.Float32, 3, n)
	for i := range n {
		for c := range 3 {
			s.F32[i*3+c] = value(i, c)
		}
	}
	data, err := codecs.AppendScalarFrame(nil, desc, s, codecs.Plain)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("sensorium.live.s")
	m.Header.Set(wire.HeaderTrack, "1")
	m.Header.Set(wire.HeaderTimestamp, strconv.FormatInt(start, 10))
	m.Header.Set(wire.HeaderDuration, strconv.FormatInt(int64(float64(n)/desc.SampleRate*1e9), 10))
	m.Header.Set(wire.HeaderKey, "1")
	m.Header.Set(wire.HeaderCodecID, signals.CodecIDScalar)
	m.Data = data
	return m
}

func decodeEvent(t *testing.T, ev []byte) liveEvent {
	t.Helper()
	s := string(ev)
	if !strings.HasPrefix(s, "event: frame\ndata: ") || !strings.HasSuffix(s, "\n\n") {
		t.Fatalf("not a frame event: %q", s)
	}
	var out liveEvent
	if err := json.Unmarshal([]byte(strings.TrimSuffix(strings.TrimPrefix(s, "event: frame\ndata: "), "\n\n")), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func f32s(t *testing.T, b64 string) []float32 {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(b)%4 != 0 {
		t.Fatalf("not base64 of float32s: %v", err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// A frame of few samples goes out as its values; one of many as the min
// and max of livePoints buckets, which hold every sample's extremes.
func TestLiveEventSamplesAndBuckets(t *testing.T) {
	const start = int64(1_800_000_000_000_000_000)
	for _, tc := range []struct {
		name    string
		n       int
		buckets bool
	}{
		{"few samples: the values", 100, false},
		{"exactly livePoints: the values", livePoints, false},
		{"many samples: min and max per bucket", 2560, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			feed, desc := liveTestFeed(t, 25600)
			f := &liveFollower{events: make(chan []byte, liveQueue)}
			feed.followers[f] = struct{}{}
			value := func(i, c int) float32 { return float32(math.Sin(float64(i)/7)) + float32(c) }
			feed.onFrame(liveMsg(t, desc, start, tc.n, value))
			ev := decodeEvent(t, <-f.events)
			if ev.Error != "" || ev.Rows != tc.n || ev.Kind != "scalar" || len(ev.Columns) != 3 || ev.Columns[0].Unit != "g" {
				t.Fatalf("event %+v", ev)
			}
			if math.Abs(ev.T0-msOf(start)) > 1e-3 || math.Abs(ev.Step-1e3/25600) > 1e-9 {
				t.Errorf("t0 %v step %v, want %v and %v", ev.T0, ev.Step, msOf(start), 1e3/25600)
			}
			for c, col := range ev.Columns {
				if !tc.buckets {
					vals := f32s(t, col.Values)
					if len(vals) != tc.n {
						t.Fatalf("channel %d: %d values, want %d", c, len(vals), tc.n)
					}
					for i, v := range vals {
						if v != value(i, c) {
							t.Fatalf("channel %d sample %d: %v, want %v", c, i, v, value(i, c))
						}
					}
					continue
				}
				mins, maxs := f32s(t, col.Min), f32s(t, col.Max)
				if len(mins) != livePoints || len(maxs) != livePoints || ev.Buckets != livePoints {
					t.Fatalf("channel %d: %d/%d buckets, want %d", c, len(mins), len(maxs), livePoints)
				}
				for b := range livePoints {
					lo, hi := b*tc.n/livePoints, (b+1)*tc.n/livePoints
					mn, mx := float32(math.Inf(1)), float32(math.Inf(-1))
					for i := lo; i < hi; i++ {
						mn, mx = min(mn, value(i, c)), max(mx, value(i, c))
					}
					if mins[b] != mn || maxs[b] != mx {
						t.Fatalf("channel %d bucket %d: [%v, %v], want [%v, %v]", c, b, mins[b], maxs[b], mn, mx)
					}
				}
			}
		})
	}
}

// A follower that reads nothing holds liveQueue events, never more: the
// frames after are counted as dropped, and a follower that keeps up loses
// none meanwhile.
func TestLiveSlowFollowerDropsFrames(t *testing.T) {
	feed, desc := liveTestFeed(t, 1000)
	slow := &liveFollower{events: make(chan []byte, liveQueue)}
	fast := &liveFollower{events: make(chan []byte, liveQueue)}
	feed.followers[slow] = struct{}{}
	feed.followers[fast] = struct{}{}
	const frames = 10 * liveQueue
	got := 0
	for i := range frames {
		feed.onFrame(liveMsg(t, desc, int64(i)*100_000_000, 100, func(i, c int) float32 { return float32(i) }))
		for len(fast.events) > 0 {
			<-fast.events
			got++
		}
	}
	if len(slow.events) != liveQueue || cap(slow.events) != liveQueue {
		t.Errorf("the slow follower holds %d events (capacity %d), want %d", len(slow.events), cap(slow.events), liveQueue)
	}
	if d := slow.dropped.Load(); d != frames-liveQueue {
		t.Errorf("the slow follower lost %d frames, want %d", d, frames-liveQueue)
	}
	if got != frames || fast.dropped.Load() != 0 {
		t.Errorf("the follower that kept up got %d of %d frames and lost %d", got, frames, fast.dropped.Load())
	}
}

// A follower of one track gets that track's frames only.
func TestLiveTrackFilter(t *testing.T) {
	feed, desc := liveTestFeed(t, 1000)
	other := &liveFollower{track: 2, events: make(chan []byte, liveQueue)}
	feed.followers[other] = struct{}{}
	feed.onFrame(liveMsg(t, desc, 0, 10, func(i, c int) float32 { return 0 }))
	if len(other.events) != 0 {
		t.Errorf("a follower of track 2 got a frame of track 1")
	}
}

func TestMaxPool(t *testing.T) {
	vals := make([]float32, 256*64)
	vals[200*64+33] = 7
	out, r, c := maxPool(vals, 256, 64, 4096)
	if r*c > 4096 || len(out) != r*c {
		t.Fatalf("pooled to %d×%d (%d values)", r, c, len(out))
	}
	n := 0
	for _, v := range out {
		if v == 7 {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the peak is in %d pooled cells, want 1", n)
	}
}
