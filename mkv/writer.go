package mkv

import (
	"fmt"
	"io"
)

// Writer writes a stream of Matroska documents to an io.Writer through the
// Append functions, one element per Write call. It keeps the first write
// error: every later call returns it without writing, so a caller can issue
// a sequence of writes and check Err once. A Writer is not safe for
// concurrent use. It reuses one buffer, which grows to the largest cluster
// written.
type Writer struct {
	w   io.Writer
	buf []byte
	err error
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// WriteHeader writes the EBML header that starts a document.
func (w *Writer) WriteHeader(docType string) error {
	return w.flush(AppendEBMLHeader(w.buf[:0], docType))
}

// StartSegment writes the start of an unknown-size Segment.
func (w *Writer) StartSegment() error { return w.flush(AppendSegmentStart(w.buf[:0])) }

// WriteInfo writes the segment Info.
func (w *Writer) WriteInfo(info Info) error { return w.flush(AppendInfo(w.buf[:0], info)) }

// WriteTracks writes the Tracks element.
func (w *Writer) WriteTracks(tracks []TrackEntry) error {
	return w.flush(AppendTracks(w.buf[:0], tracks))
}

// WriteTags writes a Tags element (nothing when tags is empty).
func (w *Writer) WriteTags(tags []SimpleTag) error { return w.flush(AppendTags(w.buf[:0], tags)) }

// WriteCluster writes a Cluster of known size.
func (w *Writer) WriteCluster(timecode uint64, blocks []Block) error {
	if w.err != nil { // skip encoding what cannot be written
		return w.err
	}
	return w.flush(AppendCluster(w.buf[:0], timecode, blocks))
}

// WriteRaw writes b as is, e.g. an element kept from Item.Raw.
func (w *Writer) WriteRaw(b []byte) error {
	if w.err != nil {
		return w.err
	}
	return w.write(b)
}

// Err returns the first error a write returned, or nil.
func (w *Writer) Err() error { return w.err }

// flush writes b, which was appended to w.buf, and keeps it as the buffer
// for the next element.
func (w *Writer) flush(b []byte) error {
	w.buf = b
	if w.err != nil {
		return w.err
	}
	return w.write(b)
}

func (w *Writer) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if _, err := w.w.Write(b); err != nil {
		w.err = fmt.Errorf("mkv: write: %w", err)
	}
	return w.err
}
