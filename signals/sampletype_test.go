package signals

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

func TestSampleType(t *testing.T) {
	tests := []struct {
		t     SampleType
		name  string
		size  int
		arrow arrow.DataType
	}{
		{Int16, "int16", 2, arrow.PrimitiveTypes.Int16},
		{Int32, "int32", 4, arrow.PrimitiveTypes.Int32},
		{Float32, "float32", 4, arrow.PrimitiveTypes.Float32},
		{Float64, "float64", 8, arrow.PrimitiveTypes.Float64},
	}
	if len(tests) != len(SampleTypes()) {
		t.Fatalf("table covers %d types, SampleTypes has %d", len(tests), len(SampleTypes()))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.t.Valid() || tt.t.Size() != tt.size || tt.t.String() != tt.name || !arrow.TypeEqual(tt.t.ArrowType(), tt.arrow) {
				t.Errorf("%d: valid %v size %d name %q arrow %v", tt.t, tt.t.Valid(), tt.t.Size(), tt.t, tt.t.ArrowType())
			}
			for _, s := range []string{tt.name, upper(tt.name)} {
				got, err := ParseSampleType(s)
				if err != nil || got != tt.t {
					t.Errorf("ParseSampleType(%q) = %v, %v", s, got, err)
				}
			}
			b, err := json.Marshal(tt.t)
			if err != nil || string(b) != `"`+tt.name+`"` {
				t.Fatalf("json = %s, %v", b, err)
			}
			var back SampleType
			if err := json.Unmarshal(b, &back); err != nil || back != tt.t {
				t.Errorf("json back = %v, %v", back, err)
			}
		})
	}
}

func TestSampleTypeInvalid(t *testing.T) {
	for _, st := range []SampleType{0, 5, 255} {
		if st.Valid() || st.Size() != 0 || st.ArrowType() != nil || st.String() == "" {
			t.Errorf("%d: valid %v size %d arrow %v name %q", st, st.Valid(), st.Size(), st.ArrowType(), st)
		}
		if _, err := st.MarshalText(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%d: MarshalText error %v", st, err)
		}
	}
	for _, s := range []string{"", "int8", "float", "float32 ", "uint16"} {
		if _, err := ParseSampleType(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseSampleType(%q) error %v, want ErrInvalid", s, err)
		}
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
