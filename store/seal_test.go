package store

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
	"github.com/sensorium-io/sensorium/internal/platform/vfs/faultfs"
)

// segmentFiles returns the stream folder's segment and index files by first
// number (20-digit name).
func segmentFiles(t *testing.T, dir string) (segs, idx []string) {
	t.Helper()
	for _, ext := range []string{"seg", "idx"} {
		m, err := filepath.Glob(filepath.Join(dir, "streams", "*", "*."+ext))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			name := strings.TrimSuffix(filepath.Base(p), "."+ext)
			if ext == "seg" {
				segs = append(segs, name)
			} else {
				idx = append(idx, name)
			}
		}
	}
	return segs, idx
}

// checkSealed checks FORMAT.md's rule: every segment but the newest has an
// index; the newest has one too when sealedNewest.
func checkSealed(t *testing.T, dir string, sealedNewest bool) {
	t.Helper()
	segs, idx := segmentFiles(t, dir)
	has := map[string]bool{}
	for _, n := range idx {
		has[n] = true
	}
	for i, n := range segs {
		want := i < len(segs)-1 || sealedNewest
		if has[n] != want {
			t.Fatalf("segments %v, indexes %v: segment %s sealed=%v, want %v", segs, idx, n, has[n], want)
		}
	}
}

// After a restart the newest segment is sealed at once (the next append
// starts a new one), so only a running store's active segment lacks an index.
func TestRestartSealsNewestSegment(t *testing.T) {
	dir := t.TempDir()
	s := newTestStore(t, dir, nil, nil)
	mustCreate(t, s, "a", 1)
	appendN(t, s, "a", 1, 10, 0)
	checkSealed(t, dir, false)
	s.Close()

	s = newTestStore(t, dir, nil, nil)
	checkSealed(t, dir, true)
	appendN(t, s, "a", 11, 12, 0)
	if segs, _ := segmentFiles(t, dir); len(segs) != 2 {
		t.Fatalf("segments after restart and append: %v", segs)
	}
	checkSealed(t, dir, false)
	if res, err := s.Append("a", frag(5, "p1")); err != nil || res.Status != AlreadyApplied {
		t.Fatalf("redelivery of fragment 5: %v %v", res, err)
	}
	checkAll(t, s, "a", 1, 12)
	s.Close()

	// The index written at start-up serves the next start, dedupe state
	// included: no rescan, and a re-sent fragment is still a duplicate.
	s = newTestStore(t, dir, nil, nil)
	defer s.Close()
	checkSealed(t, dir, true)
	if len(s.Repairs) != 0 {
		t.Fatalf("repairs: %+v", s.Repairs)
	}
	resend := frag(7, "p1")
	resend.Number = 1000
	resend.ProducerTime = frag(12, "").ProducerTime
	if res, err := s.Append("a", resend); err != nil || res.Status != Duplicate {
		t.Fatalf("re-sent fragment 7: %v %v", res, err)
	}
	checkAll(t, s, "a", 1, 12)
}

// When the index cannot be written at start-up, the store still opens and
// serves the segment; the first append seals it before it starts a new
// segment, or fails while it cannot.
func TestSealAtStartupFailureIsRetried(t *testing.T) {
	dir := t.TempDir()
	s := newTestStore(t, dir, nil, nil)
	mustCreate(t, s, "a", 1)
	appendN(t, s, "a", 1, 5, 0)
	// Not closed, as after a crash: a clean stop would seal the segment.

	ffs := faultfs.New(vfs.OS)
	ffs.SetFault(func(op faultfs.Op, name string) error {
		if op == faultfs.OpRename && filepath.Ext(name) == indexExt {
			return faultfs.ErrInjected
		}
		return nil
	})
	s = newTestStore(t, dir, ffs, nil)
	defer s.Close()
	checkSealed(t, dir, false)
	checkAll(t, s, "a", 1, 5)
	if _, err := s.Append("a", frag(6, "p1")); err == nil {
		t.Fatal("append started a new segment in front of an unsealed one")
	}
	if segs, _ := segmentFiles(t, dir); len(segs) != 1 {
		t.Fatalf("segments: %v", segs)
	}
	ffs.SetFault(nil)
	appendN(t, s, "a", 6, 7, 0)
	checkSealed(t, dir, false)
	if segs, _ := segmentFiles(t, dir); len(segs) != 2 {
		t.Fatalf("segments: %v", segs)
	}
	checkAll(t, s, "a", 1, 7)
}

// Retention after a restart: the oldest segment (written before the restart)
// expires and goes; the active segment the restart began is neither sealed
// nor closed by it, and takes the next append.
func TestRetentionAfterRestartLeavesActiveSegment(t *testing.T) {
	dir := t.TempDir()
	clock := &testClock{t: time.Unix(0, base)}
	tweak := func(o *Options) { o.Now = clock.Now }
	s := newTestStore(t, dir, nil, tweak)
	mustCreate(t, s, "a", 1)
	appendN(t, s, "a", 1, 5, 0)
	s.Close()

	s = newTestStore(t, dir, nil, tweak)
	defer s.Close()
	appendN(t, s, "a", 6, 10, 0)
	// Fragments 1–5 are past the hour; 6–10 are not.
	clock.t = time.Unix(0, frag(5, "").ServerTime).Add(time.Hour + time.Millisecond)
	if n := s.EnforceRetention(); n != 1 {
		t.Fatalf("retention removed %d segments, want 1", n)
	}
	segs, idx := segmentFiles(t, dir)
	if len(segs) != 1 || segs[0] != segmentName(60) || len(idx) != 0 {
		t.Fatalf("after retention: segments %v, indexes %v; want the active segment %s alone, unsealed", segs, idx, segmentName(60))
	}
	appendN(t, s, "a", 11, 12, 0)
	if segs, _ := segmentFiles(t, dir); len(segs) != 1 {
		t.Fatalf("the append after retention started a new segment: %v", segs)
	}
	checkAll(t, s, "a", 6, 12)
}
