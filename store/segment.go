package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

// Segment file layout (FORMAT.md): a 32-byte header, then records back to back.
const (
	segmentMagic      = "SNSRSEG1"
	segmentHeaderSize = 32
	segmentVersion    = 1
	segmentExt        = ".seg"
	indexExt          = ".idx"

	// writeBufferSize is how much the active segment gathers before a write(2).
	writeBufferSize = 1 << 20
)

func segmentName(first uint64) string { return fmt.Sprintf("%020d", first) }

// parseSegmentName returns the first fragment number of a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(base) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(base, 10, 64)
	return n, err == nil
}

func appendSegmentHeader(dst []byte, first uint64) []byte {
	var h [segmentHeaderSize]byte
	copy(h[:8], segmentMagic)
	le := binary.LittleEndian
	le.PutUint16(h[8:], segmentVersion)
	le.PutUint64(h[16:], first)
	le.PutUint32(h[28:], crc32.Checksum(h[:28], castagnoli))
	return append(dst, h[:]...)
}

// errSegmentVersion is a sound segment header of another format version:
// not damage, and never repaired away.
var errSegmentVersion = errors.New("segment format version is not supported")

func checkSegmentHeader(h []byte) error {
	if len(h) < segmentHeaderSize {
		return errShortHeader
	}
	if string(h[:8]) != segmentMagic {
		return errors.New("not a segment file (bad magic)")
	}
	le := binary.LittleEndian
	if le.Uint32(h[28:]) != crc32.Checksum(h[:28], castagnoli) {
		return errBadChecksum
	}
	if v := le.Uint16(h[8:]); v != segmentVersion {
		return fmt.Errorf("%w: %d (this build reads %d)", errSegmentVersion, v, segmentVersion)
	}
	return nil
}

// segmentWriter appends records to the active segment file. After a failed
// write or fsync it refuses further appends (a sticky error) until rollback
// cuts the file back to what was last synced.
type segmentWriter struct {
	fs   vfs.FS
	path string
	// f is the open file; nil while the writer is parked (openfiles.go):
	// everything is synced and the file was closed to bound open files, to be
	// reopened by the next write.
	f      vfs.File
	size   int64  // bytes appended, including those still in buf
	synced int64  // file length at the last successful fsync
	buf    []byte // appended bytes not yet written to f; grows as needed, up to about writeBufferSize
	err    error  // sticky
	// dirPending: the file is new and its directory entry is not yet
	// durable; the next sync makes it so.
	dirPending bool
	// files, when set, is told when the file is opened and closed.
	files *openFiles
	owner *stream
}

// createSegment creates a new segment file whose first fragment is first.
func createSegment(fsys vfs.FS, dir string, first uint64) (*segmentWriter, error) {
	path := filepath.Join(dir, segmentName(first)+segmentExt)
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("store: create segment %s: %w", path, err)
	}
	// The buffer starts small and grows with what a sync gathers: a slow
	// stream keeps a few KiB, not writeBufferSize, which at thousands of
	// streams was most of the server's memory.
	w := &segmentWriter{fs: fsys, path: path, f: f}
	w.buf = appendSegmentHeader(w.buf, first)
	w.size = int64(len(w.buf))
	// The file and its directory entry must be durable before any record in
	// it is acknowledged: the first sync does both (dirPending). Not here:
	// appends run one stream after another, syncs of many streams run side
	// by side, and a directory fsync per stream in the appends made every
	// stream's first fragment after a start (and each hourly new segment)
	// wait for all the others'.
	w.dirPending = true
	return w, nil
}

// openSegmentForAppend reopens an existing segment whose valid content ends at
// size (after repair), positioned to append.
func openSegmentForAppend(fsys vfs.FS, path string, size int64) (*segmentWriter, error) {
	f, err := fsys.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("store: open segment %s: %w", path, err)
	}
	if _, err := f.Seek(size, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("store: open segment %s: seek: %w", path, err)
	}
	return &segmentWriter{fs: fsys, path: path, f: f, size: size, synced: size}, nil
}

// append adds an encoded record; it returns the record's offset.
func (w *segmentWriter) append(rec *fragmentRecord) (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	off := w.size
	if rec.encodedSize() >= writeBufferSize {
		// A large record (a fragment of megabytes) goes to the file from
		// where it is: copied into the buffer, it would grow the buffer to
		// its size, and a pooled buffer keeps that size.
		if err := w.flush(); err != nil {
			return 0, err
		}
		if err := w.writeRecord(rec); err != nil {
			return 0, err
		}
		w.size += int64(rec.encodedSize())
		return off, nil
	}
	if w.buf == nil && rec.encodedSize() >= bigBuffer/2 {
		w.buf = *writeBufs.Get().(*[]byte)
	}
	w.buf = appendFragmentRecord(w.buf, rec)
	w.size += int64(rec.encodedSize())
	if len(w.buf) >= writeBufferSize {
		if err := w.flush(); err != nil {
			return 0, err
		}
	}
	return off, nil
}

// writeRecord writes rec to the file as appendFragmentRecord would lay it
// out, without copying its payload: the header and producer id, then the
// payload. A failure is sticky, as flush's.
func (w *segmentWriter) writeRecord(rec *fragmentRecord) error {
	if err := w.reopen(); err != nil {
		return err
	}
	h := recordPrefix(rec, fragmentFixedSize+len(rec.ProducerID)+len(rec.Payload))
	crc := crc32.Checksum(h[8:], castagnoli)
	crc = crc32.Update(crc, castagnoli, []byte(rec.ProducerID))
	crc = crc32.Update(crc, castagnoli, rec.Payload)
	binary.LittleEndian.PutUint32(h[4:], crc)
	head := append(h[:], rec.ProducerID...)
	for _, part := range [][]byte{head, rec.Payload} {
		if _, err := w.f.Write(part); err != nil {
			w.err = fmt.Errorf("store: write segment %s: %w", w.path, err)
			return w.err
		}
	}
	return nil
}

func (w *segmentWriter) flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	if err := w.reopen(); err != nil {
		return err
	}
	if _, err := w.f.Write(w.buf); err != nil {
		w.err = fmt.Errorf("store: write segment %s: %w", w.path, err)
		return w.err
	}
	w.buf = w.buf[:0]
	return nil
}

// sync writes what is buffered and fsyncs the file.
func (w *segmentWriter) sync() error {
	if err := w.flush(); err != nil {
		return err
	}
	w.releaseBuffer()
	if w.synced == w.size {
		return nil
	}
	if err := w.f.Sync(); err != nil {
		w.err = fmt.Errorf("store: fsync segment %s: %w", w.path, err)
		return w.err
	}
	if w.dirPending {
		if err := syncDirAt(w.fs, siteSegment, filepath.Dir(w.path)); err != nil {
			w.err = fmt.Errorf("store: create segment %s: sync dir: %w", w.path, err)
			return w.err
		}
		w.dirPending = false
	}
	w.synced = w.size
	return nil
}

// bigBuffer is the capacity from which a flushed write buffer goes back to
// the shared pool instead of staying with its stream: a stream that once
// gathered a large batch would otherwise keep that much memory while idle,
// and 10,000 of them a great deal.
const bigBuffer = 64 << 10

// writeBufs are the large write buffers, shared by all streams.
var writeBufs = sync.Pool{New: func() any { return new([]byte) }}

// releaseBuffer gives an empty large buffer back to the pool.
func (w *segmentWriter) releaseBuffer() {
	if len(w.buf) == 0 && cap(w.buf) >= bigBuffer {
		b := w.buf[:0]
		writeBufs.Put(&b)
		w.buf = nil
	}
}

// flushed reports whether everything appended has reached the file (written,
// maybe not yet durable) and the writer holds no error.
func (w *segmentWriter) flushed() bool { return w.err == nil && len(w.buf) == 0 }

// rollback cuts the file back to its last synced length and clears the sticky
// error, so that appends can start again from a known-good end. What was
// appended since the last sync is gone; the bus still holds it (unacked).
func (w *segmentWriter) rollback() error {
	w.buf = w.buf[:0]
	if w.f == nil {
		// Parked: the file was closed holding exactly the synced bytes, and
		// nothing reached it since (a write reopens it first).
		w.size = w.synced
		w.err = nil
		return nil
	}
	if err := w.f.Truncate(w.synced); err != nil {
		w.err = fmt.Errorf("store: truncate segment %s to %d: %w", w.path, w.synced, err)
		return w.err
	}
	if _, err := w.f.Seek(w.synced, io.SeekStart); err != nil {
		w.err = fmt.Errorf("store: seek segment %s: %w", w.path, err)
		return w.err
	}
	w.size = w.synced
	w.err = nil
	return nil
}

func (w *segmentWriter) close() error {
	err := w.sync()
	if cerr := w.closeFile(); err == nil {
		err = cerr
	}
	return err
}

// closeFile closes the file without syncing (a parked writer has none open).
func (w *segmentWriter) closeFile() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if w.files != nil {
		w.files.closed(w.owner)
	}
	return err
}

// idle reports whether the writer can be parked: everything it was given is
// written and fsynced, and it holds no error.
func (w *segmentWriter) idle() bool {
	return w.f != nil && w.err == nil && len(w.buf) == 0 && w.synced == w.size
}

// park closes the file of an idle writer and lets go of its buffer; the next
// write reopens it. The caller holds the stream's wmu and checked idle.
func (w *segmentWriter) park() error {
	w.buf = nil
	err := w.closeFile()
	if err != nil {
		// Nothing was unsynced, so nothing is lost; the next write reopens.
		return fmt.Errorf("store: park segment %s: %w", w.path, err)
	}
	return nil
}

// reopen opens the file of a parked writer again, positioned at its end.
func (w *segmentWriter) reopen() error {
	if w.f != nil {
		return nil
	}
	// A failure here is not sticky: nothing was written, so the next write
	// may simply try again (a full file table empties).
	f, err := w.fs.OpenFile(w.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("store: reopen segment %s: %w", w.path, err)
	}
	if _, err := f.Seek(w.synced, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("store: reopen segment %s: seek: %w", w.path, err)
	}
	w.f = f
	if w.files != nil {
		w.files.reopens.Add(1)
		w.files.opened(w.owner)
	}
	return nil
}

// readRecord reads and verifies one record at off of length n from an open segment.
func readRecord(f vfs.File, path string, off int64, n int, buf []byte) (fragmentRecord, []byte, error) {
	buf = resize(buf, n)
	if _, err := f.ReadAt(buf, off); err != nil {
		if errors.Is(err, io.EOF) {
			return fragmentRecord{}, buf, &CorruptionError{Path: path, Offset: off, Err: errShortRecord}
		}
		return fragmentRecord{}, buf, fmt.Errorf("store: read %s at %d: %w", path, off, err)
	}
	r, err := decodeFragmentRecord(buf)
	if err != nil {
		return r, buf, &CorruptionError{Path: path, Offset: off, Err: err}
	}
	return r, buf, nil
}

// resize returns b with length n, reusing its array when it is big enough.
// The first min(len(b), n) bytes are kept.
func resize(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	nb := make([]byte, n)
	copy(nb, b)
	return nb
}
