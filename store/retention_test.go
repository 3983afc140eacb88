package store

import (
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestRetentionDeletesWholeSegments(t *testing.T) {
	dir := t.TempDir()
	clock := &testClock{t: time.Unix(0, base)}
	s := newTestStore(t, dir, nil, func(o *Options) { o.Now = clock.Now; o.SegmentMaxBytes = 1500 })
	defer s.Close()
	info := mustCreate(t, s, "a", 1)
	appendN(t, s, "a", 1, 40, 0) // fragments at base+1s … base+40s

	clock.t = time.Unix(0, base).Add(30 * time.Minute)
	if n := s.EnforceRetention(); n != 0 {
		t.Fatalf("deleted %d segments inside retention", n)
	}
	// One hour and 20 s later: fragments up to 20 s are out of retention.
	clock.t = time.Unix(0, base).Add(time.Hour + 20*time.Second + 6*time.Millisecond)
	if n := s.EnforceRetention(); n == 0 {
		t.Fatal("nothing deleted")
	}
	got, _ := s.Fragments("a", 0, 100)
	if got[0].Number <= 10 || got[0].Number > 210 || got[len(got)-1].Number != 400 {
		t.Fatalf("after retention: first %d last %d", got[0].Number, got[len(got)-1].Number)
	}
	for _, f := range got[1:] { // only the first survivor may be older than the cut
		if f.ServerTime < base+20*int64(time.Second) {
			t.Fatalf("fragment %d is past retention", f.Number)
		}
	}
	// Lowering retention to 0 removes everything, the active segment included.
	d, _ := s.DescribeStream(StreamRef{Name: "a"})
	if err := s.UpdateDataRetention(StreamRef{ARN: info.ARN}, d.Version, false, 1); err != nil {
		t.Fatal(err)
	}
	s.EnforceRetention()
	if got, _ := s.Fragments("a", 0, 100); len(got) != 0 {
		t.Fatalf("retention 0 kept %d fragments", len(got))
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "streams", "*", "*.*"))
	segs = slices.DeleteFunc(segs, func(p string) bool { return filepath.Base(p) == dataKeysFile || filepath.Base(p) == dataKeysBackupFile }) // data keys stay for new records
	if len(segs) != 0 {
		t.Fatalf("files left: %v", segs)
	}
	// New fragments go live-only.
	if res, err := s.Append("a", frag(41, "p1")); err != nil || res.Status != LiveOnly {
		t.Fatalf("append after retention 0: %v %v", res, err)
	}
}
