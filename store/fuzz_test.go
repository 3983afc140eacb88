package store

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

// The segment and index readers face whatever a crash or a bad disk left
// behind; they must reject it cleanly, never panic, never over-allocate.

func FuzzDecodeFragmentRecord(f *testing.F) {
	f.Add(appendFragmentRecord(nil, &fragmentRecord{Number: 7, ProducerID: "p", Payload: []byte("x")}))
	f.Add(appendFragmentRecord(nil, &fragmentRecord{}))
	f.Add(make([]byte, recordHeaderSize+fragmentFixedSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeFragmentRecord(b)
		if err != nil {
			return
		}
		// What decodes must encode back to the same bytes.
		again := appendFragmentRecord(nil, &r)
		if string(again) != string(b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzDecodeDedupe(f *testing.F) {
	d := newDedupeState()
	d.add("p1", 1, 5)
	d.add("p1", 3, 6)
	d.add("p2", 9, 7)
	f.Add(appendDedupe(nil, d))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeDedupe(b)
		if err != nil {
			return
		}
		_ = appendDedupe(nil, d)
	})
}

func FuzzParseIndexHeader(f *testing.F) {
	f.Add(make([]byte, indexHeaderSize))
	f.Add([]byte(indexMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseIndexHeader(b)
		if len(b) >= indexEntrySize {
			_, _ = decodeIndexEntry(b)
		}
		_ = checkSegmentHeader(b)
		_, _, _ = parseRecordHeader(b)
	})
}

func TestDedupeIntervals(t *testing.T) {
	var p producerState
	for _, s := range []uint64{5, 1, 3, 2, 4, 10, 8, 9, 7, 6, 20} {
		p.add(s)
	}
	if len(p.intervals) != 2 || p.intervals[0] != (interval{1, 10}) || p.intervals[1] != (interval{20, 20}) {
		t.Fatalf("intervals %v", p.intervals)
	}
	for s := uint64(0); s < 25; s++ {
		want := s >= 1 && s <= 10 || s == 20
		if p.contains(s) != want {
			t.Fatalf("contains(%d) = %v", s, !want)
		}
	}
}

// bytesFS is a read-only file system of one file held in memory, so that the
// fuzz targets below run the real readers without touching the disk.
type bytesFS struct {
	vfs.FS // nil: any other operation panics, which the readers must not need
	name   string
	data   []byte
}

func (b bytesFS) OpenFile(name string, flag int, _ fs.FileMode) (vfs.File, error) {
	if name != b.name || flag != os.O_RDONLY {
		return nil, fs.ErrNotExist
	}
	return &bytesFile{Reader: bytes.NewReader(b.data), name: name, size: int64(len(b.data))}, nil
}

type bytesFile struct {
	*bytes.Reader
	name string
	size int64
}

func (f *bytesFile) Write([]byte) (int, error)  { return 0, fs.ErrPermission }
func (f *bytesFile) Close() error               { return nil }
func (f *bytesFile) Sync() error                { return nil }
func (f *bytesFile) Truncate(int64) error       { return fs.ErrPermission }
func (f *bytesFile) Name() string               { return f.name }
func (f *bytesFile) Stat() (fs.FileInfo, error) { return bytesInfo{f}, nil }

type bytesInfo struct{ f *bytesFile }

func (i bytesInfo) Name() string       { return i.f.name }
func (i bytesInfo) Size() int64        { return i.f.size }
func (i bytesInfo) Mode() fs.FileMode  { return 0o640 }
func (i bytesInfo) ModTime() time.Time { return time.Time{} }
func (i bytesInfo) IsDir() bool        { return false }
func (i bytesInfo) Sys() any           { return nil }

// fuzzSegment is a small sound segment: header and three records.
func fuzzSegment() []byte {
	b := appendSegmentHeader(nil, 10)
	for i := uint64(10); i <= 12; i++ {
		b = appendFragmentRecord(b, &fragmentRecord{Number: i, ProducerID: "p", ProducerSeq: i, Payload: bytes.Repeat([]byte{byte(i)}, 40)})
	}
	return b
}

// The segment scanner (start-up repair's reader) on any bytes: no panic, no
// allocation beyond the file, every record it reports reads back at its
// offset as the same fragment, records never overlap, and what it calls the
// valid end and the damage lies inside the file.
func FuzzScanSegment(f *testing.F) {
	seg := fuzzSegment()
	f.Add(seg)
	f.Add(seg[:len(seg)-7])
	f.Add(append(append([]byte(nil), seg[:40]...), seg[60:]...))
	flipped := append([]byte(nil), seg...)
	flipped[segmentHeaderSize+20] ^= 1
	f.Add(flipped)
	f.Add([]byte(segmentMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		fsys := bytesFS{name: "s.seg", data: b}
		var recs []scannedRecord
		res, err := scanSegment(fsys, "s.seg", 10, func(r scannedRecord) { recs = append(recs, r) })
		if err != nil {
			if errors.Is(err, errSegmentVersion) {
				return
			}
			t.Fatalf("scan: %v", err)
		}
		if res.fileSize != int64(len(b)) || res.end < 0 || res.end > res.fileSize || res.tail == nil && res.end != res.fileSize ||
			res.tail != nil && res.tail.Offset != res.end {
			t.Fatalf("scan result %+v for %d bytes", res, len(b))
		}
		file, _ := fsys.OpenFile("s.seg", os.O_RDONLY, 0)
		prevEnd := int64(segmentHeaderSize)
		for _, r := range recs {
			if r.Offset < prevEnd || r.Offset+int64(r.Length) > res.end {
				t.Fatalf("record at %d+%d overlaps or lies past the valid end %d", r.Offset, r.Length, res.end)
			}
			prevEnd = r.Offset + int64(r.Length)
			got, _, err := readRecord(file, "s.seg", r.Offset, r.Length, nil)
			if err != nil || got.Number != r.Rec.Number || len(got.Payload) != r.PayloadLen {
				t.Fatalf("record %d at %d does not read back: %v", r.Rec.Number, r.Offset, err)
			}
		}
		for _, d := range res.damaged {
			if d.Err.Offset < 0 || d.next <= d.Err.Offset || d.next > res.end {
				t.Fatalf("damaged span %d..%d outside the file", d.Err.Offset, d.next)
			}
		}
	})
}

// The index file readers on any bytes: no panic, no allocation beyond the
// file, and an index that reads is consistent with its header.
func FuzzReadIndexFile(f *testing.F) {
	dir := f.TempDir()
	d := newDedupeState()
	d.add("p1", 1, 5)
	entries := []FragmentInfo{{Number: 10, ServerTime: 1, ProducerTime: 2, Duration: 3, Size: 40, offset: 32, recordLen: 121},
		{Number: 11, ServerTime: 4, ProducerTime: 5, Duration: 6, Size: 40, offset: 153, recordLen: 121}}
	path := filepath.Join(dir, "x.idx")
	if err := writeIndexFile(vfs.OS, path, entries, 274, d); err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	f.Add(good)
	f.Add(good[:indexHeaderSize])
	f.Add(good[:len(good)-1])
	f.Fuzz(func(t *testing.T, b []byte) {
		fsys := bytesFS{name: "x.idx", data: b}
		ih, herr := readIndexHeader(fsys, "x.idx")
		e, eerr := readIndexEntries(fsys, "x.idx")
		_, _ = readIndexDedupe(fsys, "x.idx")
		if herr == nil && eerr == nil && len(e) != ih.sum.count {
			t.Fatalf("%d entries for a header that says %d", len(e), ih.sum.count)
		}
	})
}
