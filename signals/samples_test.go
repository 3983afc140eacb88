package signals

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestSamplesReset(t *testing.T) {
	var s Samples
	s.Reset(Float32, 3, 2560)
	if s.Type != Float32 || s.Channels != 3 || s.N != 2560 || len(s.F32) != 3*2560 || s.Len() != 3*2560 {
		t.Fatalf("after Reset: %+v", s)
	}
	if err := s.Validate(vib3()); err != nil {
		t.Fatal(err)
	}
	p := &s.F32[0]
	s.Reset(Float32, 3, 100) // shrinking keeps the buffer
	if &s.F32[0] != p || len(s.F32) != 300 {
		t.Error("Reset did not reuse the buffer")
	}
	s.Reset(Int16, 2, 10) // switching type keeps the other buffer's capacity
	if len(s.F32) != 0 || cap(s.F32) < 3*2560 || len(s.I16) != 20 {
		t.Errorf("after a type switch: len F32 %d cap %d len I16 %d", len(s.F32), cap(s.F32), len(s.I16))
	}
	s.Reset(Float32, 3, 2560)
	if &s.F32[0] != p {
		t.Error("switching back reallocated")
	}
	if allocs := testing.AllocsPerRun(100, func() { s.Reset(Float32, 3, 2000); s.Reset(Int16, 2, 10) }); allocs != 0 {
		t.Errorf("Reset allocates %v times once warm", allocs)
	}
	for _, bad := range []struct {
		t    SampleType
		c, n int
	}{{0, 3, 10}, {Float32, -1, 10}, {Float32, 3, -10}, {Float64, 2, math.MaxInt / 4}} {
		s.Reset(bad.t, bad.c, bad.n) // must not panic or allocate absurdly
		if len(s.I16)+len(s.I32)+len(s.F32)+len(s.F64) != 0 {
			t.Errorf("Reset(%v, %d, %d) left values", bad.t, bad.c, bad.n)
		}
	}
}

func TestSamplesValidate(t *testing.T) {
	d := vib3()
	ok := func() *Samples {
		s := &Samples{}
		s.Reset(Float32, 3, 4)
		return s
	}
	tests := []struct {
		name string
		edit func(s *Samples)
		d    *Scalar
		msg  string
	}{
		{"nil description", func(*Samples) {}, nil, "nil description"},
		{"type mismatch", func(s *Samples) { s.Reset(Float64, 3, 4) }, d, "sample type float64, the signal has float32"},
		{"channel mismatch", func(s *Samples) { s.Reset(Float32, 2, 4) }, d, "2 channels, the signal has 3"},
		{"short slice", func(s *Samples) { s.F32 = s.F32[:11] }, d, "holds 11 values, want 12"},
		{"N lies", func(s *Samples) { s.N = 5 }, d, "holds 12 values, want 15"},
		{"negative N", func(s *Samples) { s.N = -1 }, d, "-1 samples"},
		{"second slice used", func(s *Samples) { s.I16 = make([]int16, 12) }, d, "the int16 slice holds 12"},
		{"overflow", func(s *Samples) { s.N = math.MaxInt / 2 }, d, "overflow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok()
			tt.edit(s)
			err := s.Validate(tt.d)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Validate = %v, want ErrInvalid containing %q", err, tt.msg)
			}
		})
	}
	empty := &Samples{}
	empty.Reset(Float32, 3, 0)
	if err := empty.Validate(d); err != nil {
		t.Errorf("an empty block is valid: %v", err)
	}
	if err := (&Samples{Type: 9, Channels: 1}).CheckLengths(); !errors.Is(err, ErrInvalid) {
		t.Errorf("CheckLengths on unknown type = %v", err)
	}
}
