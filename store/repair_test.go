package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
	"github.com/sensorium-io/sensorium/internal/platform/vfs/faultfs"
)

func activeSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "streams", "*", "*.seg"))
	if len(segs) == 0 {
		t.Fatal("no segment")
	}
	return segs[len(segs)-1]
}

// Torn tails: each case damages the end of the active segment the way a crash
// mid-write can, then restarts. Every fragment before the damage must be
// served; nothing after it.
func TestTornTailRepair(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, path string, size int64)
		keep   int // fragments that survive
		saved  bool
	}{
		{"half a record", func(t *testing.T, p string, size int64) { truncateFile(t, p, size-40) }, 9, true},
		{"only a header", func(t *testing.T, p string, size int64) {
			truncateFile(t, p, size-int64(len(frag(10, "p1").Payload))-fragmentFixedSize-2)
		}, 9, true},
		{"zeroed tail", func(t *testing.T, p string, size int64) { writeAt(t, p, size, make([]byte, 300)) }, 10, false},
		{"garbage tail", func(t *testing.T, p string, size int64) { writeAt(t, p, size, bytes.Repeat([]byte{0xAB}, 77)) }, 10, true},
		{"flipped byte in last record", func(t *testing.T, p string, size int64) { writeAt(t, p, size-5, []byte{0xFF}) }, 9, true},
		{"short header", func(t *testing.T, p string, size int64) { writeAt(t, p, size, []byte{1, 2, 3}) }, 10, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := newTestStore(t, dir, nil, nil)
			mustCreate(t, s, "a", 1)
			appendN(t, s, "a", 1, 10, 0)
			// Not closed: a torn tail is what a crash leaves (a clean stop
			// seals the segment, and its index covers its bytes).
			seg := activeSegment(t, dir)
			st, _ := os.Stat(seg)
			tc.damage(t, seg, st.Size())

			s = newTestStore(t, dir, nil, nil)
			defer s.Close()
			if len(s.Repairs) != 1 {
				t.Fatalf("repairs: %+v", s.Repairs)
			}
			if got := s.Repairs[0].Saved != ""; got != tc.saved {
				t.Fatalf("saved=%v, want %v (%+v)", got, tc.saved, s.Repairs[0])
			}
			checkAll(t, s, "a", 1, tc.keep)
			// The stream takes new fragments after the repair.
			appendN(t, s, "a", tc.keep+1, tc.keep+3, 0)
			checkAll(t, s, "a", 1, tc.keep+3)
		})
	}
}

func truncateFile(t *testing.T, p string, n int64) {
	t.Helper()
	if err := os.Truncate(p, n); err != nil {
		t.Fatal(err)
	}
}

func writeAt(t *testing.T, p string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// A power failure loses what was not fsynced, and only that.
func TestCrashLosesOnlyUnsynced(t *testing.T) {
	dir := t.TempDir()
	ffs := faultfs.New(vfs.OS)
	s := newTestStore(t, dir, ffs, func(o *Options) { o.SegmentMaxBytes = 3000 })
	mustCreate(t, s, "a", 1)
	appendN(t, s, "a", 1, 30, 4) // synced
	for i := 31; i <= 35; i++ {  // appended, never synced
		if _, err := s.Append("a", frag(i, "p1")); err != nil {
			t.Fatal(err)
		}
	}
	// Push the unsynced records to the file (as the page cache would hold them).
	st, _ := s.stream("a")
	st.wmu.Lock()
	if err := st.w.flush(); err != nil {
		t.Fatal(err)
	}
	st.wmu.Unlock()
	if err := ffs.Crash(); err != nil {
		t.Fatal(err)
	}
	// The crashed process never closes its files; a new one opens the directory.
	s2 := newTestStore(t, dir, nil, func(o *Options) { o.SegmentMaxBytes = 3000 })
	defer s2.Close()
	checkAll(t, s2, "a", 1, 30)
}

// A full disk fails the append cleanly; what was stored stays intact and
// appends resume when space returns.
func TestDiskFullThenRecover(t *testing.T) {
	dir := t.TempDir()
	ffs := faultfs.New(vfs.OS)
	s := newTestStore(t, dir, ffs, nil)
	defer s.Close()
	mustCreate(t, s, "a", 1)
	appendN(t, s, "a", 1, 5, 0)

	ffs.SetFault(func(op faultfs.Op, name string) error {
		if op == faultfs.OpWrite && filepath.Ext(name) == ".seg" {
			return syscall.ENOSPC
		}
		return nil
	})
	var err error
	for i := 6; i <= 8 && err == nil; i++ { // buffered appends succeed; the flush fails
		_, err = s.Append("a", frag(i, "p1"))
	}
	if err == nil {
		err = s.Sync("a")
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("want ENOSPC, got %v", err)
	}
	checkAll(t, s, "a", 1, 5)
	ffs.SetFault(nil)
	appendN(t, s, "a", 6, 9, 0)
	checkAll(t, s, "a", 1, 9)
}

// A failed fsync discards the batch: it may or may not be on disk, so it is
// not acknowledged and not served; the bus redelivers it.
func TestFsyncFailureDiscardsBatch(t *testing.T) {
	dir := t.TempDir()
	ffs := faultfs.New(vfs.OS)
	s := newTestStore(t, dir, ffs, nil)
	mustCreate(t, s, "a", 1)
	appendN(t, s, "a", 1, 5, 0)
	ffs.SetFault(func(op faultfs.Op, name string) error {
		if op == faultfs.OpSync && filepath.Ext(name) == ".seg" {
			return faultfs.ErrInjected
		}
		return nil
	})
	for i := 6; i <= 8; i++ {
		if _, err := s.Append("a", frag(i, "p1")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync("a"); !errors.Is(err, faultfs.ErrInjected) {
		t.Fatalf("Sync: %v", err)
	}
	checkAll(t, s, "a", 1, 5)
	ffs.SetFault(nil)
	// The redelivered fragments are not duplicates of anything.
	appendN(t, s, "a", 6, 8, 0)
	checkAll(t, s, "a", 1, 8)
	s.Close()
	s = newTestStore(t, dir, nil, nil)
	defer s.Close()
	checkAll(t, s, "a", 1, 8)
}

// A flipped byte inside a sealed segment makes that one fragment a clean
// error; its neighbours stay readable.
func TestCorruptRecordInSealedSegment(t *testing.T) {
	dir := t.TempDir()
	s := newTestStore(t, dir, nil, func(o *Options) { o.SegmentMaxBytes = 1 << 20 })
	mustCreate(t, s, "a", 1)
	appendN(t, s, "a", 1, 10, 0)
	st, _ := s.stream("a")
	st.wmu.Lock()
	if err := st.sealLocked(); err != nil {
		t.Fatal(err)
	}
	st.wmu.Unlock()
	infos, _ := s.Fragments("a", 0, 100)
	victim := infos[4]
	writeAt(t, st.segments[0].path, victim.offset+recordHeaderSize+fragmentFixedSize+10, []byte{0xEE})

	r, _ := s.NewReader("a")
	defer r.Close()
	for _, info := range infos {
		_, err := r.Read(info)
		var ce *CorruptionError
		switch {
		case info.Number == victim.Number && !errors.As(err, &ce):
			t.Fatalf("damaged fragment read: %v", err)
		case info.Number != victim.Number && err != nil:
			t.Fatalf("fragment %d: %v", info.Number, err)
		}
	}
	s.Close()
}

func TestDamagedIndexIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	tweak := func(o *Options) { o.SegmentMaxBytes = 1500 }
	s := newTestStore(t, dir, nil, tweak)
	mustCreate(t, s, "a", 1)
	appendN(t, s, "a", 1, 30, 0)
	s.Close()
	idx, _ := filepath.Glob(filepath.Join(dir, "streams", "*", "*.idx"))
	writeAt(t, idx[0], 20, []byte{0x99}) // header CRC fails
	truncateFile(t, idx[1], 100)         // cut short
	s = newTestStore(t, dir, nil, tweak)
	defer s.Close()
	checkAll(t, s, "a", 1, 30)
}
