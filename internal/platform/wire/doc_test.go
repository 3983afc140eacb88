package wire

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestNATSDocMatchesCode keeps docs/NATS.md, which non-Go clients follow, in
// step with the names the code uses.
func TestNATSDocMatchesCode(t *testing.T) {
	b, err := os.ReadFile("../../../docs/NATS.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	s := NewSubjects("")
	want := []string{
		"`" + strings.Replace(s.Frag("X"), "X", "<stream>", 1) + "`",
		"`" + strings.Replace(s.Live("X"), "X", "<stream>", 1) + "`",
		"`" + strings.Replace(s.Ack("X"), "X", "<stream>", 1) + "`",
		"`" + s.BusStream() + "`",
		"`" + HeaderMsgID + "`", "`" + HeaderProducerID + "`", "`" + HeaderProducerSeq + "`", "`" + HeaderProducerPrev + "`",
		"`" + string(EventRetry) + "`", "`" + string(EventPersisted) + "`", "`" + string(EventError) + "`",
		"`" + HeaderTimestamp + "`", "`" + HeaderDuration + "`", "`" + HeaderTrack + "`",
		"`" + HeaderKey + "`", "`" + HeaderCodecID + "`",
		"`" + SubjectToken("pump.1") + "`",
		MsgID("<stream>", "<producer id>", 0, 0)[:len("<stream>/<producer id>:")],
		"`" + HeaderStreamARN + "`",
		"`" + HeaderChunk + "`", "`" + HeaderFragmentSize + "`", ChunkMsgID("<fragment's id>", 2),
		"`" + strconv.Itoa(MaxChunks) + "`",
	}
	sharded := Subjects{Prefix: DefaultPrefix, Shards: 3}
	src, dst := sharded.ShardMapping()
	want = append(want, "`"+sharded.BusShard(0)+"`", src, strings.Replace(dst, "(3,", "(K,", 1),
		"`"+strings.Replace(strings.Replace(sharded.Marker("X"), "X", "<stream>", 1), "."+strconv.Itoa(sharded.ShardOf("X"))+".", ".<k>.", 1)+"`")
	for _, c := range []ErrorCode{ErrMaxFragmentSize, ErrMaxFragmentDuration, ErrFragmentTimecodeLesser, ErrMoreThanAllowedTracks,
		ErrInvalidMKVData, ErrInvalidProducerTimestamp, ErrStreamNotActive, ErrFragmentMetadataLimit, ErrTrackNumberMismatch} {
		want = append(want, "`"+c.String()+"`")
	}
	for _, w := range want {
		if !strings.Contains(doc, w) {
			t.Errorf("docs/NATS.md does not mention %s", w)
		}
	}
}

func TestSubjectTokenRoundTrip(t *testing.T) {
	for _, name := range []string{"pump-1", "pump.1", "a.b.c", "..", "x_y"} {
		if got := StreamFromToken(SubjectToken(name)); got != name {
			t.Errorf("%q → %q", name, got)
		}
		s := NewSubjects("")
		if got, ok := s.StreamOfFrag(s.Frag(name)); !ok || got != name {
			t.Errorf("StreamOfFrag(Frag(%q)) = %q, %v", name, got, ok)
		}
	}
	if _, ok := NewSubjects("").StreamOfFrag("sensorium.live.x"); ok {
		t.Error("a live subject parsed as a fragment subject")
	}
}

// TestBusSubjects: a shard's subjects and a creation marker parse back to
// their stream, on a sharded bus and on a single node's.
func TestBusSubjects(t *testing.T) {
	for _, shards := range []int{0, 1, 4} {
		s := Subjects{Prefix: "sensorium", Shards: shards}
		for _, name := range []string{"pump-1", "a.b.c", "x_y"} {
			k := s.ShardOf(name)
			if k < 0 || (shards > 1 && k >= shards) || (shards <= 1 && k != 0) {
				t.Fatalf("%d shards: ShardOf(%s) = %d", shards, name, k)
			}
			if got, marker, ok := s.ParseBus(s.Marker(name)); !ok || !marker || got != name {
				t.Errorf("%d shards: ParseBus(Marker(%s)) = %q, %v, %v", shards, name, got, marker, ok)
			}
			if got, ok := s.StreamOfFrag(s.Frag(name)); !ok || got != name {
				t.Errorf("%d shards: StreamOfFrag(Frag(%s)) = %q, %v", shards, name, got, ok)
			}
			if _, ok := s.StreamOfFrag(s.Marker(name)); ok {
				t.Errorf("%d shards: a marker parsed as a fragment", shards)
			}
		}
		for _, bad := range []string{"sensorium.bus.1", "sensorium.bus.1.x.other", "sensorium.frag.x.y"} {
			if _, _, ok := s.ParseBus(bad); ok {
				t.Errorf("ParseBus(%s) accepted", bad)
			}
		}
	}
}
