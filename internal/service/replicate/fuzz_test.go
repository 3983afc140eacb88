package replicate

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/internal/service/replicate/replicatetest"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/signals"
)

// A schedule either is refused or reads back as itself.
func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"", "22:00-06:00", "12:00-13:00,22:00-06:00", "00:00-24:00", "25:00-01:00", "1:00-2:00", "22:00-06:00,,", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSchedule(in, time.UTC)
		if err != nil {
			return
		}
		again, err := ParseSchedule(s.String(), time.UTC)
		if s.Always() {
			if err != nil || !again.Always() {
				t.Fatalf("%q: an always-open schedule reads back as %q, %v", in, again.String(), err)
			}
			return
		}
		if err != nil || again.String() != s.String() {
			t.Fatalf("%q parsed as %q, which reads back as %q, %v", in, s.String(), again.String(), err)
		}
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		if next := s.NextOpen(now); next.IsZero() || !s.Open(next) {
			t.Fatalf("%q: NextOpen %v is not open", in, next)
		}
	})
}

// An edge's answer is cut into the documents asked for, or refused; never
// a panic, never a document that is not one.
func FuzzSplitChunks(f *testing.F) {
	origin := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	withNumber := func(k int, number string) []byte {
		doc := replicatetest.Fragment(origin, k, 64)
		// The server's tags go before the Cluster, as GetMedia writes them.
		rd := mkv.NewReader(bytes.NewReader(doc))
		for {
			it, err := rd.Next()
			if err != nil {
				return doc
			}
			if it.Kind == mkv.ItemClusterStart {
				out := append([]byte(nil), doc[:it.Offset]...)
				out = mkv.AppendTags(out, []mkv.SimpleTag{{Name: mkv.TagFragmentNumber, Value: number}})
				return append(out, doc[it.Offset:]...)
			}
		}
	}
	two := append(withNumber(0, "11"), withNumber(1, "12")...)
	f.Add(two)
	f.Add(two[:len(two)-3])
	f.Add(withNumber(0, "12"))
	f.Add([]byte{0x1a, 0x45, 0xdf, 0xa3, 0x80})
	f.Fuzz(func(t *testing.T, in []byte) {
		var docs [][]byte
		err := splitChunks(bytes.NewReader(in), "s", []string{"11", "12"}, func(c chunk) error {
			docs = append(docs, c.data)
			return nil
		})
		if err != nil {
			return
		}
		if len(docs) != 2 {
			t.Fatalf("no error and %d documents", len(docs))
		}
		for _, d := range docs {
			if !bytes.Contains(in, d) {
				t.Fatal("a document that is not a piece of the answer")
			}
			rd := mkv.NewReader(bytes.NewReader(d))
			for {
				_, err := rd.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("a document that does not read: %v", err)
				}
			}
		}
	})
}

// A fragment from the edge decimates or is refused; never a panic or a
// hang, and what comes out is a document the mkv reader reads.
func FuzzDecimateDocument(f *testing.F) {
	origin := time.Date(2026, 1, 1, 0, 0, 0, 3_300_000, time.UTC)
	desc := &signals.Scalar{SampleRate: 1000, SampleType: signals.Int16, Channels: []signals.Channel{{Name: "a"}, {Name: "b"}}}
	priv, _ := desc.MarshalBinary()
	var s signals.Samples
	s.Reset(signals.Int16, 2, 50)
	s.Start = origin.UnixNano()
	for i := range s.I16 {
		s.I16[i] = int16(i * 37)
	}
	frame, _ := codecs.AppendScalarFrame(nil, desc, &s, codecs.Plain)
	doc := mkv.AppendEBMLHeader(nil, "matroska")
	doc = mkv.AppendSegmentStart(doc)
	doc = mkv.AppendInfo(doc, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, Duration: 50})
	doc = mkv.AppendTracks(doc, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: signals.CodecIDScalar, CodecPrivate: priv}})
	doc = mkv.AppendCluster(doc, uint64(origin.UnixMilli()), []mkv.Block{{Track: 1, Keyframe: true, Data: frame}})
	f.Add(doc, 10)
	f.Add(doc, 3)
	f.Add(replicatetest.Fragment(origin, 1, 64), 10)
	f.Fuzz(func(t *testing.T, in []byte, factor int) {
		if factor < 2 || factor > 1000 {
			return
		}
		out, err := decimateDocument(in, factor)
		if err != nil {
			return
		}
		rd := mkv.NewReader(bytes.NewReader(out))
		for {
			_, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("a decimated document that does not read: %v", err)
			}
		}
	})
}
