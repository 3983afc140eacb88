package spool

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
	"github.com/sensorium-io/sensorium/internal/platform/vfs/faultfs"
)

func rec(seq uint64, size int) *Record {
	data := bytes.Repeat([]byte{byte(seq)}, size)
	return &Record{Seq: seq, Start: int64(seq) * 1000, End: int64(seq)*1000 + 999, Frames: int(seq % 7), Data: data}
}

func open(t *testing.T, o Options) (*Spool, []Repair) {
	t.Helper()
	s, m, reps, err := Open(o, Meta{ProducerID: "p-test", Stream: "s", FirstSequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	if m.ProducerID != "p-test" || m.Stream != "s" {
		t.Fatalf("meta %+v", m)
	}
	return s, reps
}

// live reads every live record through a Reader.
func live(t *testing.T, s *Spool) []uint64 {
	t.Helper()
	r := s.NewReader()
	defer r.Close()
	var out []uint64
	after := uint64(0)
	for {
		rc, ok, err := r.Next(after, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		want := rec(rc.Seq, len(rc.Data))
		if !bytes.Equal(rc.Data, want.Data) || rc.Start != want.Start || rc.End != want.End || rc.Frames != want.Frames {
			t.Fatalf("record %d read back differs", rc.Seq)
		}
		out = append(out, rc.Seq)
		after = rc.Seq
	}
}

func seqs(lo, hi uint64, skip ...uint64) []uint64 {
	var out []uint64
next:
	for x := lo; x <= hi; x++ {
		for _, s := range skip {
			if s == x {
				continue next
			}
		}
		out = append(out, x)
	}
	return out
}

func TestAppendDoneReopen(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, Budget: 1 << 20, SegmentBytes: 10 << 10}
	s, _ := open(t, o)
	for i := uint64(1); i <= 40; i++ {
		if err := s.Append(rec(i, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WaitSynced(context.Background(), 40); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 20; i++ {
		if err := s.Done(i, Persisted); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Done(25, Refused); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Live != 19 || st.Segments > 3 {
		t.Fatalf("stats %+v: whole segments of done records must go", st)
	}
	if got := live(t, s); fmt.Sprint(got) != fmt.Sprint(seqs(21, 40, 25)) {
		t.Fatalf("live %v", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, reps := open(t, o)
	defer s.Close()
	if len(reps) != 0 {
		t.Fatalf("repairs of a clean spool: %+v", reps)
	}
	if got := live(t, s); fmt.Sprint(got) != fmt.Sprint(seqs(21, 40, 25)) {
		t.Fatalf("after reopen, live %v", got)
	}
	if high, end := s.High(); high != 40 || end != 40999 {
		t.Fatalf("high %d end %d", high, end)
	}
	if first, ok := s.FirstLive(); !ok || first != 21 {
		t.Fatalf("first live %d %v", first, ok)
	}
}

// Everything done, every segment gone: a reopened spool still knows the
// highest sequence and where its time got to, so a restarted producer
// never reuses a sequence.
func TestHighSurvivesEmptySpool(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, Budget: 1 << 20, SegmentBytes: 4 << 10}
	s, _ := open(t, o)
	for i := uint64(1); i <= 30; i++ {
		if err := s.Append(rec(i, 1000)); err != nil {
			t.Fatal(err)
		}
		if err := s.Done(i, Persisted); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, _ = open(t, o)
	defer s.Close()
	if high, end := s.High(); high != 30 || end != 30999 {
		t.Fatalf("high %d end %d", high, end)
	}
	if st := s.Stats(); st.Live != 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := s.Append(rec(30, 10)); err == nil {
		t.Fatal("a reused sequence was taken")
	}
}

// Torn and damaged tails are cut at the first record that does not check;
// the cut bytes are kept beside the segment; what precedes is intact.
func TestTornTailRepair(t *testing.T) {
	cases := []struct {
		name   string
		damage func(b []byte) []byte // the last segment's bytes
		live   []uint64
	}{
		{"half a header", func(b []byte) []byte { return append(b, 7, 0, 0) }, seqs(1, 10)},
		{"half a record", func(b []byte) []byte { return b[:len(b)-500] }, seqs(1, 9)},
		{"zeros after the last record", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }, seqs(1, 10)},
		{"flipped payload byte", func(b []byte) []byte { b[len(b)-3] ^= 0xff; return b }, seqs(1, 9)},
		{"no header at all", func(b []byte) []byte { return b[:3] }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := Options{Dir: dir, Budget: 1 << 20, SegmentBytes: 1 << 20}
			s, _ := open(t, o)
			for i := uint64(1); i <= 10; i++ {
				if err := s.Append(rec(i, 1000)); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			path := filepath.Join(dir, segmentName(1))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.damage(b), 0o644); err != nil {
				t.Fatal(err)
			}
			s, reps := open(t, o)
			defer s.Close()
			if len(reps) != 1 || reps[0].File != path {
				t.Fatalf("repairs %+v", reps)
			}
			if _, err := os.Stat(path + ".broken"); err != nil {
				t.Fatalf("cut bytes not kept: %v", err)
			}
			if got := live(t, s); fmt.Sprint(got) != fmt.Sprint(tc.live) {
				t.Fatalf("live %v, want %v", got, tc.live)
			}
			// The repaired spool takes appends again above what it holds.
			high, _ := s.High()
			if err := s.Append(rec(high+1, 100)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A power cut keeps what the group fsync made durable: every record Synced
// covered is there after the crash, torn or lost writes after it are cut.
func TestPowerCutKeepsSynced(t *testing.T) {
	dir := t.TempDir()
	for round := 0; round < 3; round++ {
		ffs := faultfs.New(vfs.OS)
		o := Options{Dir: dir, Budget: 8 << 20, SegmentBytes: 64 << 10, FS: ffs}
		s, _ := open(t, o)
		high, _ := s.High()
		base := high
		for i := base + 1; i <= base+50; i++ {
			if err := s.Append(rec(i, 3000)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.WaitSynced(context.Background(), base+50); err != nil {
			t.Fatal(err)
		}
		for i := base + 51; i <= base+60; i++ { // written, maybe not synced
			if err := s.Append(rec(i, 3000)); err != nil {
				t.Fatal(err)
			}
		}
		synced := s.Synced()
		if err := ffs.Crash(); err != nil {
			t.Fatal(err)
		}
		_ = s.Close() // the dead process's lock goes with it; its files stay as the crash left them
		s, _ = open(t, Options{Dir: dir, Budget: 8 << 20, SegmentBytes: 64 << 10})
		got := live(t, s)
		if uint64(len(got)) < synced || got[0] != 1 {
			t.Fatalf("round %d: %d records survive (first %v), %d were synced", round, len(got), got[:1], synced)
		}
		for i, q := range got {
			if q != uint64(i+1) {
				t.Fatalf("round %d: record %d is %d", round, i, q)
			}
		}
		s.Close()
	}
}

// The budget: Append refuses what does not fit; DropOldestSegment frees the
// oldest segment, reporting every live record it held.
func TestBudget(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, Budget: 40 << 10, SegmentBytes: 10 << 10}
	s, _ := open(t, o)
	defer s.Close()
	var n uint64
	for {
		err := s.Append(rec(n+1, 2000))
		if err == ErrFull {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if st := s.Stats(); st.DiskBytes > o.Budget || n < 15 {
		t.Fatalf("%d records, stats %+v", n, st)
	}
	if err := s.Done(2, Persisted); err != nil {
		t.Fatal(err)
	}
	var dropped []uint64
	recs, err := s.DropOldestSegment()
	for _, r := range recs {
		dropped = append(dropped, r.Seq)
		if r.Start != int64(r.Seq)*1000 || r.End != int64(r.Seq)*1000+999 || r.Frames != int(r.Seq%7) {
			t.Errorf("drop report %+v", r)
		}
	}
	if err != nil || len(dropped) < 2 || dropped[0] != 1 || dropped[1] != 3 {
		t.Fatalf("dropped %v (%v)", dropped, err)
	}
	if !s.Room(rec(n+1, 2000).Size()) {
		t.Fatalf("no room after dropping a segment: %+v", s.Stats())
	}
	if err := s.Append(rec(n+1, 2000)); err != nil {
		t.Fatal(err)
	}
	if got := live(t, s); got[0] != dropped[len(dropped)-1]+1 {
		t.Fatalf("live after drop starts at %d", got[0])
	}
}

// A spool is one producer's: a second Open while the first holds it fails.
func TestSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, Options{Dir: dir, Budget: 1 << 20})
	defer s.Close()
	if _, _, _, err := Open(Options{Dir: dir, Budget: 1 << 20}, Meta{ProducerID: "x"}); err == nil || !strings.Contains(err.Error(), "another producer") {
		t.Fatalf("second open: %v", err)
	}
}

// A spool of one producer is not opened as another's: Open returns the
// metadata it holds for the caller to compare.
func TestMetaIsKept(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, Options{Dir: dir, Budget: 1 << 20})
	s.Close()
	s, m, _, err := Open(Options{Dir: dir, Budget: 1 << 20}, Meta{ProducerID: "other", Stream: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if m.ProducerID != "p-test" || m.Stream != "s" || m.FirstSequence != 1 {
		t.Fatalf("meta %+v", m)
	}
}

// The group commit: many appends, few fsyncs, and Synced catches up.
func TestGroupSync(t *testing.T) {
	s, _ := open(t, Options{Dir: t.TempDir(), Budget: 64 << 20})
	defer s.Close()
	start := time.Now()
	for i := uint64(1); i <= 200; i++ {
		if err := s.Append(rec(i, 256<<10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WaitSynced(context.Background(), 200); err != nil {
		t.Fatal(err)
	}
	t.Logf("200 × 256 KiB appended and synced in %v", time.Since(start))
}

func TestSeqSet(t *testing.T) {
	var s seqSet
	for _, x := range []uint64{5, 7, 6, 1, 2, 10, 3} {
		s.add(x)
	}
	if fmt.Sprint(s.iv) != "[{1 3} {5 7} {10 10}]" {
		t.Fatalf("intervals %v", s.iv)
	}
	cases := []struct{ x, next uint64 }{{0, 0}, {1, 4}, {4, 4}, {5, 8}, {9, 9}, {10, 11}, {12, 12}}
	for _, c := range cases {
		if got := s.nextAbsent(c.x); got != c.next {
			t.Errorf("nextAbsent(%d) = %d, want %d", c.x, got, c.next)
		}
	}
	s.addRange(4, 9)
	if fmt.Sprint(s.iv) != "[{1 10}]" {
		t.Fatalf("after addRange(4, 9): %v", s.iv)
	}
	s.dropBelow(6)
	if fmt.Sprint(s.iv) != "[{6 10}]" || s.contains(5) || !s.contains(6) {
		t.Fatalf("after dropBelow(6): %v", s.iv)
	}
}

// One old record stays live while thousands after it are done: the done
// log compacts to a few intervals (it does not grow without bound nor
// compact at every mark), and a reopened spool still knows what is done.
func TestDoneLogStaysSmall(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, Budget: 64 << 20, SegmentBytes: 64 << 10}
	s, _ := open(t, o)
	const n = 20000
	for i := uint64(1); i <= n; i++ {
		if err := s.Append(rec(i, 100)); err != nil {
			t.Fatal(err)
		}
		if i != 3 {
			if err := s.Done(i, Persisted); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.Close()
	fi, err := os.Stat(filepath.Join(dir, doneFile))
	if err != nil || fi.Size() > 4096*2*DoneEntrySize {
		t.Fatalf("done log: %v, %v", fi.Size(), err)
	}
	s, _ = open(t, o)
	defer s.Close()
	if got := live(t, s); fmt.Sprint(got) != "[3]" {
		t.Fatalf("live after reopen: %v", got)
	}
	if st := s.Stats(); st.Segments != 1 {
		t.Fatalf("stats %+v: segments of done records must go", st)
	}
}

// A sequence the spool has fsynced (and so may have been published) is
// never numbered again, even when a power cut keeps the deletion of the
// segments that held it and loses everything else but the done log's
// fsynced part: the high mark goes into the done log with each group fsync.
func TestSyncedHighOutlivesItsSegments(t *testing.T) {
	dir := t.TempDir()
	ffs := faultfs.New(vfs.OS)
	o := Options{Dir: dir, Budget: 1 << 20, SegmentBytes: 4 << 10, FS: ffs}
	s, _ := open(t, o)
	for i := uint64(1); i <= 20; i++ {
		if err := s.Append(rec(i, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WaitSynced(context.Background(), 20); err != nil {
		t.Fatal(err)
	}
	// The power cut: what was not fsynced is lost; then the segments'
	// deletion is what survived of the rest.
	if err := ffs.Crash(); err != nil {
		t.Fatal(err)
	}
	_ = s.Close() // the dead process's lock goes with it
	segs, err := filepath.Glob(filepath.Join(dir, "*"+segExt))
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments %v, %v", segs, err)
	}
	for _, p := range segs {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	o.FS = nil
	s, _ = open(t, o)
	defer s.Close()
	if high, _ := s.High(); high < 20 {
		t.Fatalf("after the segments went, high is %d: sequences up to 20 were synced and may be stored", high)
	}
}
