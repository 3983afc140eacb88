package mkv

import (
	"bufio"
	"io"
	"slices"
)

// Low-level input of the Reader: every byte goes through these methods so
// that r.off is always the stream offset of the next unread byte.

// elemHeader is an element's ID and size as read from the stream.
type elemHeader struct {
	id     uint32
	off    int64 // offset of the ID's first byte
	hdrLen int   // bytes of ID plus size field
	size   int64 // body size, UnknownSize when unknown
	raw    [maxIDLen + maxSizeLen]byte
}

func (h *elemHeader) bodyOff() int64 { return h.off + int64(h.hdrLen) }

// end is the offset just past the element, or UnknownSize.
func (h *elemHeader) end() int64 {
	if h.size < 0 {
		return UnknownSize
	}
	return h.bodyOff() + h.size
}

// total is the element length including its header, or UnknownSize.
func (h *elemHeader) total() int64 {
	if h.size < 0 {
		return UnknownSize
	}
	return int64(h.hdrLen) + h.size
}

// peek returns the next n bytes without consuming them. It returns io.EOF
// only when the stream ended exactly here; a partial read is a
// TruncatedError.
func (r *Reader) peek(n int, what string) ([]byte, error) {
	b, err := r.br.Peek(n)
	if len(b) == n {
		return b, nil
	}
	if err == bufio.ErrBufferFull {
		// Only an input in memory has a read buffer smaller than an element
		// (NewReader sizes it to the input; NewBytesReader's is 64 bytes,
		// but it peeks only element headers, at most 12): the buffer holds
		// all that is left, fewer bytes than n, so the input ends here.
		err = io.EOF
	}
	if err == io.EOF {
		if len(b) == 0 {
			return nil, io.EOF
		}
		return nil, &TruncatedError{Offset: r.off + int64(len(b)), What: what}
	}
	return nil, r.ioErr(err)
}

func (r *Reader) ioErr(err error) error {
	if err == nil {
		err = io.ErrNoProgress
	}
	return &ReadError{Offset: r.off, Err: err}
}

// truncated turns io.EOF and io.ErrUnexpectedEOF into a TruncatedError at
// the current offset; errors that already carry an offset pass through and
// any other error becomes a ReadError.
func (r *Reader) truncated(err error, what string) error {
	switch err.(type) {
	case *TruncatedError, *ReadError, *SyntaxError:
		return err
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return &TruncatedError{Offset: r.off, What: what}
	}
	return r.ioErr(err)
}

// peekID returns the ID of the next element without consuming it, or
// io.EOF at a clean end of stream.
func (r *Reader) peekID() (uint32, int, error) {
	b, err := r.peek(1, "element ID")
	if err != nil {
		return 0, 0, err
	}
	id, n := parseID(b)
	if n > len(b) {
		if b, err = r.peek(n, "element ID"); err != nil {
			return 0, 0, r.truncated(err, "element ID")
		}
		id, n = parseID(b)
	}
	if n == 0 {
		return 0, 0, syntaxErr(r.off, "invalid element ID %#x", b[:min(len(b), maxIDLen)])
	}
	return id, n, nil
}

// readHeader consumes the next element header. It returns io.EOF at a clean
// end of stream. unknownOK is the ID that may have an unknown size here
// (0: none). parentEnd, when not UnknownSize, is the offset the element must
// end by.
func (r *Reader) readHeader(unknownOK uint32, parentEnd int64) (elemHeader, error) {
	h := elemHeader{off: r.off}
	id, n, err := r.peekID()
	if err != nil {
		return h, err
	}
	b, err := r.peek(n+1, "element size")
	if err != nil {
		return h, r.truncated(err, "element size")
	}
	size, m, unknown := parseSize(b[n:])
	if m > len(b)-n {
		if b, err = r.peek(n+m, "element size"); err != nil {
			return h, r.truncated(err, "element size")
		}
		size, m, unknown = parseSize(b[n:])
	}
	if m == 0 {
		return h, syntaxErr(r.off+int64(n), "invalid size of %s", elementName(id))
	}
	h.id, h.hdrLen, h.size = id, n+m, int64(size)
	copy(h.raw[:], b[:n+m])
	if unknown {
		if id != unknownOK {
			return h, syntaxErr(h.off, "%s has an unknown size, which only a Segment or a Cluster in a Segment may have", elementName(id))
		}
		h.size = UnknownSize
	}
	if parentEnd != UnknownSize && h.bodyOff() > parentEnd {
		return h, syntaxErr(h.off, "header of %s runs past its parent, which ends at offset %d",
			elementName(id), parentEnd)
	}
	if parentEnd != UnknownSize && h.size != UnknownSize && h.end() > parentEnd {
		return h, syntaxErr(h.off, "%s of %d bytes runs past its parent, which ends at offset %d",
			elementName(id), h.total(), parentEnd)
	}
	_, _ = r.br.Discard(n + m) // peeked above, cannot fail
	r.off += int64(n + m)
	return h, nil
}

// skip discards the body of h without holding it in memory.
func (r *Reader) skip(h *elemHeader) error {
	n := h.size
	for n > 0 {
		step := int(min(n, 1<<30))
		k, err := r.br.Discard(step)
		r.off += int64(k)
		n -= int64(k)
		if err != nil {
			return r.truncated(err, elementName(h.id))
		}
	}
	return nil
}

// readAppend reads n bytes and appends them to dst. It grows dst only as
// data actually arrives (doubling, from at most 64 KiB), so a size field that
// lies about a body the stream does not hold costs no more memory than the
// bytes the stream does hold.
func (r *Reader) readAppend(dst []byte, n int64, what string) ([]byte, error) {
	want := len(dst) + int(n)
	for len(dst) < want {
		if len(dst) == cap(dst) {
			grow := min(want-len(dst), max(len(dst), 64<<10))
			dst = slices.Grow(dst, grow)
		}
		end := min(want, cap(dst))
		k, err := io.ReadFull(r.br, dst[len(dst):end])
		dst = dst[:len(dst)+k]
		r.off += int64(k)
		if err != nil {
			return dst, r.truncated(err, what)
		}
	}
	return dst, nil
}
