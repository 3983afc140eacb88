package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
	"github.com/sensorium-io/sensorium/internal/platform/vfs/faultfs"
)

// TestOpenSegmentFilesAreBounded writes to more streams than the cap of open
// segment files, in turns, as an ingester does with many slow streams: the
// number open never passes the cap, every fragment reads back, and a parked
// file is reopened by the next write in the right place.
func TestOpenSegmentFilesAreBounded(t *testing.T) {
	const streams, rounds, maxOpen = 20, 6, 4
	dir := t.TempDir()
	s := newTestStore(t, dir, nil, func(o *Options) { o.MaxOpenSegments = maxOpen })
	names := make([]string, streams)
	for i := range names {
		names[i] = fmt.Sprintf("s%02d", i)
		mustCreate(t, s, names[i], 24)
	}
	most := 0
	for r := 1; r <= rounds; r++ {
		for _, name := range names {
			appendN(t, s, name, r, r, 0)
			most = max(most, s.Stats().OpenSegmentFiles)
		}
	}
	if most > maxOpen {
		t.Errorf("%d segment files were open at once, cap %d", most, maxOpen)
	}
	st := s.Stats()
	if st.SegmentReopens < int64(streams*(rounds-1)-maxOpen) {
		t.Errorf("%d reopens for %d streams written in %d turns with %d files open: files were not closed", st.SegmentReopens, streams, rounds, maxOpen)
	}
	for _, name := range names {
		checkAll(t, s, name, 1, rounds)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = newTestStore(t, dir, nil, func(o *Options) { o.MaxOpenSegments = maxOpen })
	defer s.Close()
	for _, name := range names {
		appendN(t, s, name, rounds+1, rounds+1, 0)
	}
	for _, name := range names {
		checkAll(t, s, name, 1, rounds+1)
	}
}

// TestParkedSegmentSurvivesAPowerCut: what was synced before a file was
// closed to stay under the cap is durable, and what a reopened file took
// after it is durable once synced, through a power cut.
func TestParkedSegmentSurvivesAPowerCut(t *testing.T) {
	dir := t.TempDir()
	ffs := faultfs.New(vfs.OS)
	s := newTestStore(t, dir, ffs, func(o *Options) { o.MaxOpenSegments = 1 })
	mustCreate(t, s, "a", 24)
	mustCreate(t, s, "b", 24)
	appendN(t, s, "a", 1, 3, 0)
	appendN(t, s, "b", 1, 3, 0) // parks a
	appendN(t, s, "a", 4, 5, 0) // reopens a, parks b
	if _, err := s.Append("b", frag(6, "p1")); err != nil {
		t.Fatal(err)
	} // appended, never synced: not acknowledged, may go
	if err := ffs.Crash(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = newTestStore(t, dir, vfs.OS, nil)
	defer s.Close()
	checkAll(t, s, "a", 1, 5)
	checkAll(t, s, "b", 1, 3)
}

// TestReopenFailureIsRetried: a parked file that cannot be reopened (here:
// too many open files) fails that write; the stream is rolled back, and the
// next write, once the file opens again, goes on where the durable data
// ends.
func TestReopenFailureIsRetried(t *testing.T) {
	dir := t.TempDir()
	ffs := faultfs.New(vfs.OS)
	s := newTestStore(t, dir, ffs, func(o *Options) { o.MaxOpenSegments = 1 })
	defer s.Close()
	mustCreate(t, s, "a", 24)
	mustCreate(t, s, "b", 24)
	appendN(t, s, "a", 1, 2, 0)
	appendN(t, s, "b", 1, 2, 0) // parks a
	emfile := errors.New("too many open files")
	ffs.SetFault(func(op faultfs.Op, name string) error {
		if op == faultfs.OpOpen && strings.HasPrefix(filepath.Base(filepath.Dir(name)), "a") {
			return emfile
		}
		return nil
	})
	if _, err := s.Append("a", frag(3, "p1")); err != nil {
		t.Fatalf("Append buffers and needs no file: %v", err)
	}
	if err := s.Sync("a"); !errors.Is(err, emfile) {
		t.Fatalf("Sync with the file unopenable: %v, want %v", err, emfile)
	}
	ffs.SetFault(nil)
	appendN(t, s, "a", 3, 4, 0)
	checkAll(t, s, "a", 1, 4)
	checkAll(t, s, "b", 1, 2)
}

// TestIdleStreamsKeepNoBigBuffers: a stream that wrote large fragments does
// not keep a buffer of their size once they are synced; with thousands of
// streams those buffers were most of a server's memory.
func TestIdleStreamsKeepNoBigBuffers(t *testing.T) {
	s := newTestStore(t, t.TempDir(), nil, nil)
	defer s.Close()
	const streams = 20
	big := make([]byte, 256<<10)
	for i := range streams {
		name := fmt.Sprintf("s%02d", i)
		mustCreate(t, s, name, 24)
		for n := 1; n <= 3; n++ {
			f := frag(n, "p1")
			f.Payload = append(f.Payload, big...)
			if _, err := s.Append(name, f); err != nil {
				t.Fatal(err)
			}
		}
	}
	names := make([]string, streams)
	for i := range names {
		names[i] = fmt.Sprintf("s%02d", i)
	}
	for i, err := range s.SyncStreams(names) {
		if err != nil {
			t.Fatalf("%s: %v", names[i], err)
		}
	}
	for _, name := range names {
		st, err := s.stream(name)
		if err != nil {
			t.Fatal(err)
		}
		st.wmu.Lock()
		held := cap(st.w.buf)
		st.wmu.Unlock()
		if held >= bigBuffer {
			t.Errorf("%s holds a %d-byte write buffer while idle", name, held)
		}
	}
	for _, name := range names {
		infos, err := s.Fragments(name, 0, 1<<30)
		if err != nil || len(infos) != 3 {
			t.Fatalf("%s: %d fragments, %v", name, len(infos), err)
		}
		r, _ := s.NewReader(name)
		for i, info := range infos {
			got, err := r.Read(info)
			if err != nil || len(got.Payload) != len(frag(i+1, "p1").Payload)+len(big) {
				t.Fatalf("%s/%d: %v, %d bytes", name, info.Number, err, len(got.Payload))
			}
		}
		r.Close()
	}
}
