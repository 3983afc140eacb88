package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

// ErrDamaged is returned by Reader.Next for a record whose bytes no longer
// check (the disk changed them after Open): the record comes back without
// its data, for the caller to give up and report.
var ErrDamaged = errors.New("spool: damaged record")

// Reader streams live records from disk in sequence order, one at a time:
// the spool's backlog is never loaded whole. One goroutine uses a Reader.
type Reader struct {
	s        *Spool
	f        vfs.File
	segFirst uint64 // the open file's segment
	off      int64  // where the next record of that file starts
	offSeq   uint64 // sequence of the record before off (0: none)
}

// NewReader returns a reader of the spool.
func (s *Spool) NewReader() *Reader { return &Reader{s: s} }

// Close closes the reader's file.
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// Next returns the oldest live record whose sequence is above after, with
// its data read from disk; ok is false when there is none (yet), or when
// that record's data is larger than limit: then rec holds its sequence and
// span, without data, and nothing was read.
func (r *Reader) Next(after uint64, limit int) (rec Record, ok bool, err error) {
	s := r.s
	for {
		s.mu.Lock()
		var seg *segment
		for _, g := range s.segs {
			if g.live > 0 && g.present.last() > after {
				seg = g
				break
			}
		}
		if seg == nil {
			s.mu.Unlock()
			return Record{}, false, nil
		}
		first, path, size, last := seg.first, seg.path, seg.size, seg.present.last()
		s.mu.Unlock()

		if r.f == nil || r.segFirst != first || r.offSeq > after {
			if err := r.open(path, first); errors.Is(err, fs.ErrNotExist) {
				continue // all done and deleted meanwhile: look again
			} else if err != nil {
				return Record{}, false, err
			}
		}
		for r.off < size {
			h, _, err := readRecordAt(r.f, r.off, size, nil, false)
			if err != nil {
				return Record{}, false, fmt.Errorf("spool: read %s: %w", path, err)
			}
			at := r.off
			r.off += RecordHeaderSize + int64(h.bodyLen)
			r.offSeq = h.seq
			s.mu.Lock()
			done := s.isDone(h.seq)
			s.mu.Unlock()
			if h.seq <= after || done {
				continue
			}
			rec := Record{Seq: h.seq, Start: h.start, End: h.end, Frames: h.frames, Bytes: h.bodyLen - RecordFixedSize}
			if h.bodyLen-RecordFixedSize > limit {
				r.off, r.offSeq = at, 0 // read it again next time
				return rec, false, nil
			}
			var body []byte
			if _, body, err = readRecordAt(r.f, at, size, &body, true); err != nil {
				return rec, false, fmt.Errorf("%w: %s at %d: %v", ErrDamaged, path, at, err)
			}
			rec.Data = body[RecordFixedSize:]
			return rec, true, nil
		}
		after = max(after, last) // nothing live above after in this segment
	}
}

func (r *Reader) open(path string, first uint64) error {
	_ = r.Close()
	f, err := r.s.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("spool: open %s: %w", path, err)
	}
	r.f, r.segFirst, r.off, r.offSeq = f, first, int64(len(SegmentMagic)), 0
	return nil
}
