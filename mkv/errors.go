package mkv

import (
	"errors"
	"fmt"
	"io"
)

// SyntaxError reports malformed EBML or Matroska data: an invalid VINT, a
// child larger than its parent, a block before the cluster Timecode, and so
// on. The Reader stops at the first one; Next keeps returning it.
type SyntaxError struct {
	Offset int64  // stream offset of the offending element or byte
	Msg    string // what is wrong, naming the element
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("mkv: malformed data at offset %d: %s", e.Offset, e.Msg)
}

// TruncatedError reports input that ended inside an element. It wraps
// io.ErrUnexpectedEOF, so errors.Is(err, io.ErrUnexpectedEOF) holds.
type TruncatedError struct {
	Offset int64  // stream offset where the data ended
	What   string // the element or field being read
}

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("mkv: unexpected end of data at offset %d in %s", e.Offset, e.What)
}

// Unwrap lets errors.Is match io.ErrUnexpectedEOF.
func (e *TruncatedError) Unwrap() error { return io.ErrUnexpectedEOF }

// ErrTooLarge is wrapped by the error the Reader returns when an element it
// must hold in memory is larger than MaxElementSize, or when Tracks or Tags
// hold more entries than the reader accepts. The data may be well formed; the
// reader refuses to buffer it.
var ErrTooLarge = errors.New("mkv: element exceeds reader limit")

func syntaxErr(off int64, format string, args ...any) error {
	return &SyntaxError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

func tooLarge(off int64, id uint32, size, limit int64) error {
	return fmt.Errorf("mkv: %s at offset %d has %d bytes, limit %d: %w",
		elementName(id), off, size, limit, ErrTooLarge)
}

// ReadError is an error returned by the underlying io.Reader, with the
// offset at which it happened.
type ReadError struct {
	Offset int64
	Err    error
}

func (e *ReadError) Error() string {
	return fmt.Sprintf("mkv: read at offset %d: %v", e.Offset, e.Err)
}

func (e *ReadError) Unwrap() error { return e.Err }
