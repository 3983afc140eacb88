package signals

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// SampleType is the numeric type of every sample of a signal. Its values are
// part of the description format (FORMAT.md): never renumber them.
type SampleType uint8

// The sample types. Zero is deliberately not a type, so a forgotten field fails
// validation instead of meaning something.
const (
	Int16   SampleType = 1
	Int32   SampleType = 2
	Float32 SampleType = 3
	Float64 SampleType = 4
)

// sampleTypeInfo is indexed by SampleType; the zero row stands for "unknown".
var sampleTypeInfo = [...]struct {
	name  string
	size  int
	arrow arrow.DataType
}{
	Int16:   {"int16", 2, arrow.PrimitiveTypes.Int16},
	Int32:   {"int32", 4, arrow.PrimitiveTypes.Int32},
	Float32: {"float32", 4, arrow.PrimitiveTypes.Float32},
	Float64: {"float64", 8, arrow.PrimitiveTypes.Float64},
}

// SampleTypes lists every valid sample type in code order.
func SampleTypes() []SampleType { return []SampleType{Int16, Int32, Float32, Float64} }

// Valid reports whether t is one of the defined sample types.
func (t SampleType) Valid() bool { return int(t) < len(sampleTypeInfo) && sampleTypeInfo[t].size != 0 }

// Size is the number of bytes of one sample, or 0 for an invalid type.
func (t SampleType) Size() int {
	if !t.Valid() {
		return 0
	}
	return sampleTypeInfo[t].size
}

// String returns the name used in APIs and documents ("float32"), or
// "sampletype(N)" for an invalid type.
func (t SampleType) String() string {
	if !t.Valid() {
		return fmt.Sprintf("sampletype(%d)", uint8(t))
	}
	return sampleTypeInfo[t].name
}

// ArrowType is the Arrow type of a column of samples of type t, or nil for an
// invalid type.
func (t SampleType) ArrowType() arrow.DataType {
	if !t.Valid() {
		return nil
	}
	return sampleTypeInfo[t].arrow
}

// ParseSampleType parses a name returned by String. Case is ignored because the
// names come from flags and config files typed by people.
func ParseSampleType(s string) (SampleType, error) {
	for _, t := range SampleTypes() {
		if strings.EqualFold(s, t.String()) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("signals: parse sample type %q: %w: want int16, int32, float32 or float64", s, ErrInvalid)
}

// MarshalText makes JSON and YAML show the name, not the number.
func (t SampleType) MarshalText() ([]byte, error) {
	if !t.Valid() {
		return nil, fmt.Errorf("signals: marshal sample type %d: %w", uint8(t), ErrInvalid)
	}
	return []byte(t.String()), nil
}

// UnmarshalText is the inverse of MarshalText.
func (t *SampleType) UnmarshalText(b []byte) error {
	v, err := ParseSampleType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}
