package wire

import (
	"os"
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
	}
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
