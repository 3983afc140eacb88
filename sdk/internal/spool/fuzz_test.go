package spool

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen opens a spool whose segment file and done log hold arbitrary
// bytes, as a crash or a failing disk may leave them: Open never panics,
// cuts the segment at the first record that does not check, and every
// record it then serves checks; the spool takes appends after.
func FuzzOpen(f *testing.F) {
	seg := []byte(SegmentMagic)
	for i := uint64(1); i <= 3; i++ {
		seg = appendRecord(seg, rec(i, int(i)*10))
	}
	done := appendDone([]byte(DoneMagic), Persisted, 2)
	done = appendDone(appendDone(done, kindFrom, 1), kindTo, 1)
	f.Add(seg, done)
	f.Add(seg[:len(seg)-5], done[:len(done)-3])
	f.Add(append(append([]byte{}, seg...), make([]byte, 40)...), []byte(DoneMagic))
	f.Add([]byte(SegmentMagic+"\x1d\x00\x00\x00"), []byte{})
	f.Fuzz(func(t *testing.T, seg, done []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(1)), seg, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, doneFile), done, 0o644); err != nil {
			t.Fatal(err)
		}
		s, _, reps, err := Open(Options{Dir: dir, Budget: 1 << 30}, Meta{ProducerID: "p", Stream: "s", FirstSequence: 1})
		if err != nil {
			return // refusing is fine; panicking is not
		}
		defer s.Close()
		for _, r := range reps {
			if r.Offset < 0 || r.Dropped < 0 || r.Offset+r.Dropped > int64(len(seg)) {
				t.Fatalf("repair %+v of a %d-byte segment", r, len(seg))
			}
		}
		rd := s.NewReader()
		defer rd.Close()
		after := uint64(0)
		for n := 0; ; n++ {
			r, ok, err := rd.Next(after, 1<<30)
			if err != nil || !ok {
				break
			}
			if r.Seq <= after || !bytes.Contains(seg, r.Data) {
				t.Fatalf("record %d after %d does not come from the segment", r.Seq, after)
			}
			after = r.Seq
		}
		high, _ := s.High()
		if high == ^uint64(0) {
			return
		}
		if err := s.Append(rec(high+1, 10)); err != nil {
			t.Fatalf("append after open: %v", err)
		}
	})
}
