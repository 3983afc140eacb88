package signals

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Layout of a Scalar description, version 1 (FORMAT.md, "Scalar description").
// These constants are the format: a test checks them against the document.
const (
	scalarVersion = 1

	offSampleType   = 6  // u8 SampleType
	offReserved     = 7  // u8, must be 0
	offSampleRate   = 8  // f64 IEEE 754, Hz
	offChannelCount = 16 // u16, 1..MaxChannels
	offChannels     = 18 // channel entries: u8 name length, name, u8 unit length, unit
	scalarFixedSize = offChannels

	// minChannelSize is an entry with an empty name and unit: the two length
	// bytes. Parsing checks count*minChannelSize against the input before it
	// allocates the channel slice.
	minChannelSize = 2
)

// MarshalBinary returns the track's CodecPrivate (FORMAT.md). It fails only when
// d is invalid.
func (d *Scalar) MarshalBinary() ([]byte, error) {
	return d.AppendBinary(nil)
}

// AppendBinary appends the encoding of MarshalBinary to dst. On error dst is
// returned unchanged.
func (d *Scalar) AppendBinary(dst []byte) ([]byte, error) {
	if err := d.validate(); err != nil {
		return dst, fmt.Errorf("signals: marshal scalar: %w", err)
	}
	size := scalarFixedSize
	for _, c := range d.Channels {
		size += minChannelSize + len(c.Name) + len(c.Unit)
	}
	// Appended in offset order; the golden files in testdata and the FORMAT.md
	// test catch a field that moves.
	dst = slices.Grow(dst, size)
	dst = append(dst, descMagic...)
	dst = append(dst, scalarVersion, byte(KindScalar), byte(d.SampleType), 0)
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(d.SampleRate))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(d.Channels)))
	for _, c := range d.Channels {
		dst = append(dst, byte(len(c.Name)))
		dst = append(dst, c.Name...)
		dst = append(dst, byte(len(c.Unit)))
		dst = append(dst, c.Unit...)
	}
	return dst, nil
}

// UnmarshalBinary replaces d with the description in b (see ParseScalar). On
// error d is unchanged.
func (d *Scalar) UnmarshalBinary(b []byte) error {
	p, err := ParseScalar(b)
	if err != nil {
		return err
	}
	*d = *p
	return nil
}

// ParseScalar parses a track's CodecPrivate written by MarshalBinary. It is
// strict: another kind, an unknown version, a non-zero reserved byte, truncated
// or trailing bytes and every value Validate rejects are errors wrapping
// ErrInvalid. It never panics, and it allocates only in proportion to len(b).
func ParseScalar(b []byte) (*Scalar, error) {
	d, err := parseScalar(b)
	if err != nil {
		return nil, fmt.Errorf("signals: parse scalar: %w", err)
	}
	return d, nil
}

func parseScalar(b []byte) (*Scalar, error) {
	kind, version, err := parsePreamble(b)
	if err != nil {
		return nil, err
	}
	if kind != KindScalar {
		return nil, fmt.Errorf("%w: kind %s at offset %d, want %s", ErrInvalid, kind, offKind, KindScalar)
	}
	if version != scalarVersion {
		return nil, fmt.Errorf("%w: unsupported version %d at offset %d, want %d", ErrInvalid, version, offVersion, scalarVersion)
	}
	if len(b) < scalarFixedSize {
		return nil, fmt.Errorf("%w: truncated: %d bytes, the fixed part needs %d", ErrInvalid, len(b), scalarFixedSize)
	}
	if r := b[offReserved]; r != 0 {
		return nil, fmt.Errorf("%w: reserved byte at offset %d is %#x, want 0", ErrInvalid, offReserved, r)
	}
	n := int(binary.LittleEndian.Uint16(b[offChannelCount:]))
	if n < 1 || n > MaxChannels {
		return nil, fmt.Errorf("%w: %d channels at offset %d: want 1 to %d", ErrInvalid, n, offChannelCount, MaxChannels)
	}
	rest := b[offChannels:]
	if len(rest) < n*minChannelSize {
		return nil, fmt.Errorf("%w: truncated: %d channels need at least %d bytes after offset %d, have %d",
			ErrInvalid, n, n*minChannelSize, offChannels, len(rest))
	}
	// One string for every name and unit: a single allocation, bounded by len(b).
	all := string(rest)
	chs := make([]Channel, n)
	off := 0
	for i := range chs {
		if chs[i].Name, off, err = readString(all, off); err != nil {
			return nil, fmt.Errorf("%w: channel %d name at offset %d: %v", ErrInvalid, i, offChannels+off, err)
		}
		if chs[i].Unit, off, err = readString(all, off); err != nil {
			return nil, fmt.Errorf("%w: channel %d unit at offset %d: %v", ErrInvalid, i, offChannels+off, err)
		}
	}
	if off != len(all) {
		return nil, fmt.Errorf("%w: %d trailing bytes at offset %d", ErrInvalid, len(all)-off, offChannels+off)
	}
	d := &Scalar{
		SampleRate: math.Float64frombits(binary.LittleEndian.Uint64(b[offSampleRate:])),
		SampleType: SampleType(b[offSampleType]),
		Channels:   chs,
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// readString reads a u8 length and that many bytes at off.
func readString(s string, off int) (string, int, error) {
	if off >= len(s) {
		return "", off, fmt.Errorf("truncated: no length byte")
	}
	n := int(s[off])
	off++
	if len(s)-off < n {
		return "", off - 1, fmt.Errorf("truncated: length %d, %d bytes left", n, len(s)-off)
	}
	return s[off : off+n], off + n, nil
}
