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

// Retention follows UpdateDataRetention, on the store's clock: lowered, the
// next pass deletes every segment whose newest fragment is now past it, and
// keeps every fragment still inside; raised, nothing more goes and nothing
// comes back; the change survives a restart.
func TestRetentionAfterUpdateDataRetention(t *testing.T) {
	dir := t.TempDir()
	hour := int64(time.Hour)
	clock := &testClock{t: time.Unix(0, base)}
	// Segments of 5 fragments: 1–5, 6–10 … 36–40.
	tweak := func(o *Options) { o.Now = clock.Now; o.SegmentMaxFragments = 5; o.SegmentMaxAge = 1000 * time.Hour }
	s := newTestStore(t, dir, nil, tweak)
	info := mustCreate(t, s, "a", 48)
	// 40 fragments, one an hour of server time.
	for i := 1; i <= 40; i++ {
		f := frag(i, "p1")
		f.ServerTime, f.ProducerTime = base+int64(i)*hour, base+int64(i)*hour
		if _, err := s.Append("a", f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync("a"); err != nil {
		t.Fatal(err)
	}
	now := base + 41*hour
	clock.t = time.Unix(0, now)
	if n := s.EnforceRetention(); n != 0 {
		t.Fatalf("retention 48 h deleted %d segments of fragments at most 40 h old", n)
	}
	check := func(retentionHours int64, wantFirst uint64) {
		t.Helper()
		got, err := s.Fragments("a", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		cutoff := now - retentionHours*hour
		if len(got) == 0 || got[0].Number != wantFirst || got[len(got)-1].Number != 400 {
			t.Fatalf("retention %d h: fragments %v", retentionHours, numbers(got))
		}
		// Whole segments: only the first survivor's segment may hold
		// fragments past retention, and only because a newer one shares it.
		for _, f := range got[5:] {
			if f.ServerTime < cutoff {
				t.Fatalf("retention %d h: fragment %d (server time %d h) is past it", retentionHours, f.Number, (f.ServerTime-base)/hour)
			}
		}
	}
	d, _ := s.DescribeStream(StreamRef{Name: "a"})
	if err := s.UpdateDataRetention(StreamRef{ARN: info.ARN}, d.Version, false, 38); err != nil { // 48 → 10 h
		t.Fatal(err)
	}
	if n := s.EnforceRetention(); n != 6 {
		t.Fatalf("retention lowered to 10 h deleted %d segments, want the 6 wholly older than 31 h", n)
	}
	check(10, 310) // fragments 31… (segment 31–35 holds 31, newest 35 is within)
	d, _ = s.DescribeStream(StreamRef{Name: "a"})
	if err := s.UpdateDataRetention(StreamRef{Name: "a"}, d.Version, true, 90); err != nil { // 10 → 100 h
		t.Fatal(err)
	}
	if n := s.EnforceRetention(); n != 0 {
		t.Fatalf("retention raised deleted %d segments", n)
	}
	check(100, 310)
	s.Close()

	s = newTestStore(t, dir, nil, tweak)
	defer s.Close()
	if d, _ := s.DescribeStream(StreamRef{Name: "a"}); d.RetentionHours != 100 {
		t.Fatalf("retention after restart: %d h", d.RetentionHours)
	}
	d, _ = s.DescribeStream(StreamRef{Name: "a"})
	if err := s.UpdateDataRetention(StreamRef{Name: "a"}, d.Version, false, 99); err != nil { // 100 → 1 h
		t.Fatal(err)
	}
	clock.t = time.Unix(0, base+40*hour+30*int64(time.Minute)) // cut-off 39.5 h: 36–40 stays
	if n := s.EnforceRetention(); n != 1 {
		t.Fatalf("retention 1 h after restart deleted %d segments, want 1 (31–35)", n)
	}
	got, _ := s.Fragments("a", 0, 100)
	if len(got) != 5 || got[len(got)-1].Number != 400 || got[0].Number != 360 {
		t.Fatalf("retention 1 h after restart: fragments %v", numbers(got))
	}
}
