package signals

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
)

// Field is one per-element field of a multi-element kind (a detection's
// range, a point's intensity), as ROS2's PointField declares one: a name, a
// numeric type and a unit.
type Field struct {
	Name string     // 1..MaxNameLen bytes of UTF-8, unique, not TimeField
	Type SampleType // int16, int32, float32 or float64
	Unit string     // may be empty
}

// MaxFields bounds the fields of one description.
const MaxFields = 256

// validateFields checks names, types and units.
func validateFields(fs []Field) error {
	if len(fs) > MaxFields {
		return fmt.Errorf("%w: %d fields, at most %d", ErrInvalid, len(fs), MaxFields)
	}
	seen := map[string]bool{}
	for i, f := range fs {
		switch {
		case f.Name == "" || len(f.Name) > MaxNameLen || !utf8.ValidString(f.Name):
			return fmt.Errorf("%w: field %d name %q is not 1 to %d bytes of UTF-8", ErrInvalid, i, f.Name, MaxNameLen)
		case f.Name == TimeField || f.Name == "frame_time" || f.Name == "index":
			return fmt.Errorf("%w: field name %q is reserved for query results", ErrInvalid, f.Name)
		case seen[f.Name]:
			return fmt.Errorf("%w: field %q appears twice", ErrInvalid, f.Name)
		case !f.Type.Valid():
			return fmt.Errorf("%w: field %q has unknown type %d", ErrInvalid, f.Name, uint8(f.Type))
		case len(f.Unit) > MaxUnitLen || !utf8.ValidString(f.Unit):
			return fmt.Errorf("%w: field %q unit is not ≤ %d bytes of UTF-8", ErrInvalid, f.Name, MaxUnitLen)
		}
		seen[f.Name] = true
	}
	return nil
}

// appendFields writes u16 count, then per field: u8 name length, name, u8
// type, u8 unit length, unit.
func appendFields(dst []byte, fs []Field) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(fs)))
	for _, f := range fs {
		dst = append(dst, byte(len(f.Name)))
		dst = append(dst, f.Name...)
		dst = append(dst, byte(f.Type), byte(len(f.Unit)))
		dst = append(dst, f.Unit...)
	}
	return dst
}

// parseFields reads what appendFields wrote from b at off.
func parseFields(b []byte, off int) ([]Field, int, error) {
	if len(b)-off < 2 {
		return nil, off, fmt.Errorf("%w: field count truncated at offset %d", ErrInvalid, off)
	}
	n := int(binary.LittleEndian.Uint16(b[off:]))
	off += 2
	if n > MaxFields || n*4 > len(b)-off { // each field takes at least 4 bytes
		return nil, off, fmt.Errorf("%w: %d fields in %d bytes", ErrInvalid, n, len(b)-off)
	}
	s := string(b)
	fs := make([]Field, n)
	var err error
	for i := range fs {
		if fs[i].Name, off, err = readString(s, off); err != nil {
			return nil, off, fmt.Errorf("%w: field %d name: %v", ErrInvalid, i, err)
		}
		if off >= len(b) {
			return nil, off, fmt.Errorf("%w: field %d type truncated", ErrInvalid, i)
		}
		fs[i].Type = SampleType(b[off])
		if fs[i].Unit, off, err = readString(s, off+1); err != nil {
			return nil, off, fmt.Errorf("%w: field %d unit: %v", ErrInvalid, i, err)
		}
	}
	return fs, off, nil
}

// FieldIndex returns the index of the field named name, or -1.
func FieldIndex(fs []Field, name string) int {
	for i, f := range fs {
		if f.Name == name {
			return i
		}
	}
	return -1
}

// ArrowField returns the Arrow field of f, with its unit as metadata.
func (f Field) ArrowField() arrow.Field {
	af := arrow.Field{Name: f.Name, Type: f.Type.ArrowType()}
	if f.Unit != "" {
		af.Metadata = arrow.NewMetadata([]string{MetaUnit}, []string{f.Unit})
	}
	return af
}

// appendPreamble writes the description preamble of kind at version.
func appendPreamble(dst []byte, kind Kind, version uint8) []byte {
	dst = append(dst, descMagic...)
	return append(dst, version, byte(kind))
}

// checkPreamble checks b's preamble names kind at version.
func checkPreamble(b []byte, kind Kind, version uint8) error {
	k, v, err := parsePreamble(b)
	if err != nil {
		return err
	}
	if k != kind || v != version {
		return fmt.Errorf("%w: kind %s version %d, want %s version %d", ErrInvalid, k, v, kind, version)
	}
	return nil
}
