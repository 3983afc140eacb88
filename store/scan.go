package store

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

// Scanning a segment (FORMAT.md, "Start-up and repair"). A segment without a
// sound index is read record by record. What is not a valid record is one of
// two things, and they are told apart by what follows it:
//
//   - a torn tail: nothing valid follows, up to the end of the file. A crash
//     left a write half done; nothing in it was acknowledged (PERSISTED
//     follows the fsync that covers every byte before it), so repair may cut
//     it from the newest segment.
//   - damage inside: a valid record follows (the scanner looks for the next
//     one, byte by byte). Bytes changed after they were written — a bit flip,
//     a bad sector — in records that may well have been acknowledged, as may
//     every record after them. Nothing is cut: the records around the damage
//     are served and the damaged span is reported.
//
// A damaged segment header is damage inside too when records follow it: the
// file's name already says which fragment it starts with.

// scannedRecord is a record found by scanSegment.
type scannedRecord struct {
	Offset     int64
	Length     int
	PayloadLen int
	Rec        fragmentRecord // Payload is not retained
}

// segmentScan is what scanSegment found.
type segmentScan struct {
	fileSize int64
	// end is where the last valid record ends: the file size, or where a
	// torn tail starts.
	end int64
	// tail says why the bytes from end on are not records; nil when there
	// are none.
	tail *CorruptionError
	// damaged are the spans inside the segment that are not valid records
	// but are followed by one; the scan went on after each.
	damaged []damagedSpan
}

// damagedSpan is damage inside a segment: from Err.Offset to next, where a
// valid record starts again.
type damagedSpan struct {
	Err  *CorruptionError
	next int64
}

// maxResyncBytes bounds how far past a bad record the scanner looks for a
// valid one: beyond a segment's size nothing can be found anyway.
const maxResyncBytes = 1 << 31

// scanSegment reads a segment from the start, verifying every record, and
// calls fn for each valid one in file order. Records must carry numbers above
// first-1 and rising for the scanner to resume at them after damage. Memory
// stays bounded by the read window and the largest record. An error is an
// I/O failure or a segment of another format version, never damage.
func scanSegment(fsys vfs.FS, path string, first uint64, fn func(scannedRecord)) (segmentScan, error) {
	var res segmentScan
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return res, fmt.Errorf("store: open segment %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return res, fmt.Errorf("store: stat segment %s: %w", path, err)
	}
	res.fileSize = st.Size()
	w := &window{f: f, size: res.fileSize}
	hdr, err := w.at(0, segmentHeaderSize)
	if err != nil {
		return res, fmt.Errorf("store: read segment %s: %w", path, err)
	}
	if hdr == nil {
		res.tail = &CorruptionError{Path: path, Offset: 0, Err: errShortHeader}
		return res, nil
	}
	var last uint64 // number of the last valid record
	if first > 0 {
		last = first - 1
	}
	off := int64(segmentHeaderSize)
	if herr := checkSegmentHeader(hdr); errors.Is(herr, errSegmentVersion) {
		return res, fmt.Errorf("store: segment %s: %w", path, herr)
	} else if herr != nil {
		next, ok, err := w.find(segmentHeaderSize, last)
		if err != nil {
			return res, fmt.Errorf("store: read segment %s: %w", path, err)
		}
		if !ok {
			res.tail = &CorruptionError{Path: path, Offset: 0, Err: herr}
			return res, nil
		}
		res.damaged = append(res.damaged, damagedSpan{Err: &CorruptionError{Path: path, Offset: 0, Err: herr}, next: next})
		off = next
	}
	for {
		if off == res.fileSize {
			res.end = off
			return res, nil
		}
		rec, r, rerr, err := w.record(off)
		if err != nil {
			return res, fmt.Errorf("store: read segment %s at %d: %w", path, off, err)
		}
		if rerr == nil {
			pl := len(r.Payload)
			r.Payload = nil
			fn(scannedRecord{Offset: off, Length: len(rec), PayloadLen: pl, Rec: r})
			last = r.Number
			off += int64(len(rec))
			continue
		}
		next, ok, err := w.find(off+1, last)
		if err != nil {
			return res, fmt.Errorf("store: read segment %s: %w", path, err)
		}
		if !ok {
			res.end, res.tail = off, &CorruptionError{Path: path, Offset: off, Err: rerr}
			return res, nil
		}
		res.damaged = append(res.damaged, damagedSpan{Err: &CorruptionError{Path: path, Offset: off, Err: rerr}, next: next})
		off = next
	}
}

// window reads a file through a buffer that slides forward, so that a
// sequential scan costs one read per MiB and a search for the next record can
// look at every offset.
type window struct {
	f    vfs.File
	size int64
	off  int64 // file offset of buf[0]
	buf  []byte
}

const windowSize = 1 << 20

// at returns the n bytes at off, valid until the next call; nil when the
// file ends first.
func (w *window) at(off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 || off+int64(n) > w.size {
		return nil, nil
	}
	if off >= w.off && off+int64(n) <= w.off+int64(len(w.buf)) {
		return w.buf[off-w.off : off-w.off+int64(n)], nil
	}
	want := int(min(int64(max(n, windowSize)), w.size-off))
	w.buf = resize(w.buf, want)
	if _, err := w.f.ReadAt(w.buf, off); err != nil && !errors.Is(err, io.EOF) {
		w.buf = w.buf[:0]
		return nil, err
	}
	w.off = off
	return w.buf[:n], nil
}

// record decodes the record at off. rerr says why it is not a valid record;
// err is an I/O failure.
func (w *window) record(off int64) (rec []byte, r fragmentRecord, rerr, err error) {
	h, err := w.at(off, recordHeaderSize)
	if err != nil {
		return nil, r, nil, err
	}
	if h == nil {
		return nil, r, errShortHeader, nil
	}
	bodyLen, _, herr := parseRecordHeader(h)
	if herr != nil {
		return nil, r, herr, nil
	}
	rec, err = w.at(off, recordHeaderSize+bodyLen)
	if err != nil {
		return nil, r, nil, err
	}
	if rec == nil {
		return nil, r, errShortRecord, nil
	}
	r, rerr = decodeFragmentRecord(rec)
	return rec, r, rerr, nil
}

// find looks for the first valid record at or after from whose number is
// above last: where scanning can resume after damage.
func (w *window) find(from int64, last uint64) (int64, bool, error) {
	for p := from; p+recordHeaderSize <= w.size && p-from < maxResyncBytes; p++ {
		h, err := w.at(p, recordHeaderSize)
		if err != nil {
			return 0, false, err
		}
		if h == nil {
			break
		}
		// Cheap tests first: most offsets fail on the type and version bytes.
		if h[8] != recordTypeFragment || h[9] != recordVersion {
			continue
		}
		_, r, rerr, err := w.record(p)
		if err != nil {
			return 0, false, err
		}
		if rerr == nil && r.Number > last {
			return p, true, nil
		}
	}
	return 0, false, nil
}
