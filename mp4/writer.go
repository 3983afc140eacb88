package mp4

import (
	"errors"
	"io"
)

// Writer writes a fragmented MP4 file: the initialization segment, the
// fragments as they come, and at Close an mfra (movie fragment random
// access) that lists where each fragment starts, so that a player seeks
// without reading every moof. It holds one fragment header at a time and a
// 16-byte entry per fragment and track for the mfra, never the media. The
// first write error sticks: later calls return it and write nothing. A
// Writer is not safe for concurrent use.
type Writer struct {
	w      io.Writer
	n      int64 // bytes written
	movie  *Movie
	seq    uint32
	buf    []byte
	random map[uint32][]randomAccess // per track
	closed bool
	err    error
}

// randomAccess is a tfra entry: the presentation time of a fragment's
// first sample and where its moof starts.
type randomAccess struct {
	time, moof uint64
	traf       byte // the track's traf in the moof, from 1
}

// NewWriter writes m's initialization segment to w.
func NewWriter(w io.Writer, m *Movie) (*Writer, error) {
	init, err := AppendInit(nil, m)
	if err != nil {
		return nil, err
	}
	mw := &Writer{w: w, movie: m, random: map[uint32][]randomAccess{}}
	mw.write(init)
	return mw, mw.err
}

func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.w.Write(b)
	w.n += int64(n)
	w.err = err
}

// Written is the bytes written so far.
func (w *Writer) Written() int64 { return w.n }

// Err is the first error the Writer met.
func (w *Writer) Err() error { return w.err }

// WriteFragment writes one fragment. Its Sequence is set to the Writer's
// next (1, 2, …), whatever it was.
func (w *Writer) WriteFragment(f *Fragment) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("mp4: WriteFragment after Close")
	}
	w.seq++
	f.Sequence = w.seq
	var err error
	if w.buf, err = f.AppendHeader(w.buf[:0]); err != nil {
		return err // the caller's fragment, not the file, is wrong: not sticky
	}
	at := w.n
	for i := range f.Runs {
		r := &f.Runs[i]
		t := int64(r.DecodeTime) + int64(r.Samples[0].CompositionOffset)
		w.random[r.Track] = append(w.random[r.Track], randomAccess{time: uint64(max(t, 0)), moof: uint64(at), traf: byte(min(i+1, 255))})
	}
	var n int64
	n, w.err = writeFragment(w.w, w.buf, f)
	w.n += n
	return w.err
}

// Close writes the mfra. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil || w.closed {
		return w.err
	}
	w.closed = true
	b, mfra := startBox(w.buf[:0], "mfra")
	for _, t := range w.movie.Tracks {
		entries := w.random[t.ID]
		var at int
		b, at = startFullBox(b, "tfra", 1, 0)
		b = u32(b, t.ID)
		b = u32(b, 0) // length_size_of_traf_num, _trun_num, _sample_num: one byte each
		b = u32(b, uint32(len(entries)))
		for _, e := range entries {
			b = u64(b, e.time)
			b = u64(b, e.moof)
			b = append(b, e.traf, 1, 1) // traf_number, trun_number, sample_number
		}
		b = endBox(b, at)
	}
	b, at := startFullBox(b, "mfro", 0, 0)
	b = u32(b, uint32(len(b)-mfra+4)) // the whole mfra's size, this field included
	b = endBox(b, at)
	b = endBox(b, mfra)
	w.buf = b
	w.write(b)
	return w.err
}
