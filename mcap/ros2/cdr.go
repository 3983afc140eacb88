package ros2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed CDR message")

// decoder reads CDR: primitives aligned to their size from the end of the
// 4-byte encapsulation header; the first error sticks.
type decoder struct {
	b   []byte // the message after the encapsulation header
	off int
	be  bool
	err error
}

func newDecoder(msg []byte) (*decoder, error) {
	if len(msg) < 4 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the encapsulation header", ErrMalformed, len(msg))
	}
	// CDR_BE 0x0000, CDR_LE 0x0001; XCDR2's PLAIN_CDR2 0x0006/0x0007 keep
	// the same layout for these final types, but with 4-byte alignment
	// of 8-byte values.
	kind := msg[1]
	if msg[0] != 0 || kind > 0x0b {
		return nil, fmt.Errorf("%w: unknown encapsulation % x", ErrMalformed, msg[:2])
	}
	switch kind {
	case 0, 1:
	default:
		return nil, fmt.Errorf("%w: encapsulation % x is not plain CDR (XCDR1); this decoder reads what ROS 2 writes", ErrMalformed, msg[:2])
	}
	return &decoder{b: msg[4:], be: kind&1 == 0}, nil
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d of %d", ErrMalformed, what, d.off+4, len(d.b)+4)
	}
}

func (d *decoder) align(n int) {
	if r := d.off % n; r != 0 {
		d.off += n - r
	}
}

func (d *decoder) need(n int, what string) bool {
	if d.err != nil {
		return false
	}
	if n < 0 || len(d.b)-d.off < n {
		d.fail("truncated " + what)
		return false
	}
	return true
}

func (d *decoder) u8() uint8 {
	if !d.need(1, "uint8") {
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) u16() uint16 {
	d.align(2)
	if !d.need(2, "uint16") {
		return 0
	}
	var v uint16
	if d.be {
		v = binary.BigEndian.Uint16(d.b[d.off:])
	} else {
		v = binary.LittleEndian.Uint16(d.b[d.off:])
	}
	d.off += 2
	return v
}

func (d *decoder) u32() uint32 {
	d.align(4)
	if !d.need(4, "uint32") {
		return 0
	}
	var v uint32
	if d.be {
		v = binary.BigEndian.Uint32(d.b[d.off:])
	} else {
		v = binary.LittleEndian.Uint32(d.b[d.off:])
	}
	d.off += 4
	return v
}

func (d *decoder) u64() uint64 {
	d.align(8)
	if !d.need(8, "uint64") {
		return 0
	}
	var v uint64
	if d.be {
		v = binary.BigEndian.Uint64(d.b[d.off:])
	} else {
		v = binary.LittleEndian.Uint64(d.b[d.off:])
	}
	d.off += 8
	return v
}

func (d *decoder) f64() float64 { return math.Float64frombits(d.u64()) }

// str reads a string: a uint32 length counting the NUL, the bytes, the NUL.
func (d *decoder) str() string {
	n := d.u32()
	if !d.need(int(min(n, math.MaxInt32)), "string") {
		return ""
	}
	s := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	if len(s) > 0 && s[len(s)-1] == 0 {
		s = s[:len(s)-1]
	}
	return string(s)
}

// bytes reads a uint8[] sequence, aliasing the message.
func (d *decoder) bytes() []byte {
	n := d.u32()
	if !d.need(int(min(n, math.MaxInt32)), "uint8[]") {
		return nil
	}
	v := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return v
}

// encoder writes little-endian CDR after the CDR_LE encapsulation header.
type encoder struct{ b []byte }

func newEncoder(dst []byte) *encoder {
	return &encoder{b: append(dst[:0], 0, 1, 0, 0)}
}

func (e *encoder) align(n int) {
	for (len(e.b)-4)%n != 0 {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) u8(v uint8) { e.b = append(e.b, v) }
func (e *encoder) u32(v uint32) {
	e.align(4)
	e.b = binary.LittleEndian.AppendUint32(e.b, v)
}
func (e *encoder) u64(v uint64) {
	e.align(8)
	e.b = binary.LittleEndian.AppendUint64(e.b, v)
}
func (e *encoder) f64(v float64) { e.u64(math.Float64bits(v)) }
func (e *encoder) str(s string) {
	e.u32(uint32(len(s) + 1))
	e.b = append(append(e.b, s...), 0)
}
func (e *encoder) bytes(v []byte) {
	e.u32(uint32(len(v)))
	e.b = append(e.b, v...)
}
