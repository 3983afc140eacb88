package replicate

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/service/replicate/replicatetest"
	"github.com/sensorium-io/sensorium/mkv"
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
