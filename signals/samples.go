package signals

import (
	"fmt"
	"math"
)

// Samples is a block of interleaved samples: sample i of channel c is at
// i*Channels+c of the slice that matches Type. Interleaving is the order sensors
// and ADCs produce and the order the plain codec stores, so a block moves from a
// producer to the wire without a transpose.
//
// A Samples is meant to be reused: Reset and the codecs' Decode keep the
// capacity of every slice, so a reader that decodes frame after frame into one
// Samples stops allocating once the largest frame has been seen.
type Samples struct {
	Start    int64 // ns since the Unix epoch of sample 0
	N        int   // samples per channel
	Channels int
	Type     SampleType

	// Exactly one is used, the one matching Type, with len == N*Channels; the
	// others have length 0 (their capacity is kept for reuse).
	I16 []int16
	I32 []int32
	F32 []float32
	F64 []float64
}

// Reset makes s hold n samples of channels channels of type t, reusing the
// capacity of its slices. Start is left alone. The sample values are not
// cleared: whoever calls Reset overwrites them (a decoder) or reads them as
// garbage. Negative counts are taken as 0, and a count whose element total does
// not fit an int leaves every slice empty, so Validate reports it rather than a
// panic in make. Callers that take n from untrusted input check it against that
// input first, because Reset allocates n*channels elements.
func (s *Samples) Reset(t SampleType, channels, n int) {
	channels, n = max(channels, 0), max(n, 0)
	s.N, s.Channels, s.Type = n, channels, t
	s.I16, s.I32, s.F32, s.F64 = s.I16[:0], s.I32[:0], s.F32[:0], s.F64[:0]
	size := t.Size()
	if size == 0 || (channels != 0 && n > math.MaxInt/size/channels) {
		return
	}
	total := n * channels
	switch t {
	case Int16:
		s.I16 = resize(s.I16, total)
	case Int32:
		s.I32 = resize(s.I32, total)
	case Float32:
		s.F32 = resize(s.F32, total)
	case Float64:
		s.F64 = resize(s.F64, total)
	}
}

func resize[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

// Len is the number of values in the block, N*Channels.
func (s *Samples) Len() int { return s.N * s.Channels }

// Value is value i of the block (sample i/Channels of channel i%Channels)
// as a float64, exact for every sample type.
func (s *Samples) Value(i int) float64 {
	switch s.Type {
	case Int16:
		return float64(s.I16[i])
	case Int32:
		return float64(s.I32[i])
	case Float32:
		return float64(s.F32[i])
	}
	return s.F64[i]
}

// Validate checks that s is a consistent block of the signal d: same sample
// type and channel count, and the matching slice holds exactly N*Channels values
// while the others are empty. It checks only the fields of d it uses (d is
// validated once per track, see Scalar.Validate). The error wraps ErrInvalid.
func (s *Samples) Validate(d *Scalar) error {
	if err := s.validate(d); err != nil {
		return fmt.Errorf("signals: samples: %w", err)
	}
	return nil
}

func (s *Samples) validate(d *Scalar) error {
	if d == nil {
		return fmt.Errorf("%w: nil description", ErrInvalid)
	}
	if s.Type != d.SampleType {
		return fmt.Errorf("%w: sample type %s, the signal has %s", ErrInvalid, s.Type, d.SampleType)
	}
	if s.Channels != len(d.Channels) {
		return fmt.Errorf("%w: %d channels, the signal has %d", ErrInvalid, s.Channels, len(d.Channels))
	}
	return s.checkLengths()
}

// checkLengths is the part of Validate that needs no description; codecs call
// it (through CheckLengths) before they encode.
func (s *Samples) checkLengths() error {
	if !s.Type.Valid() {
		return fmt.Errorf("%w: unknown sample type %d", ErrInvalid, uint8(s.Type))
	}
	if s.N < 0 || s.Channels < 1 || s.Channels > MaxChannels {
		return fmt.Errorf("%w: %d samples of %d channels", ErrInvalid, s.N, s.Channels)
	}
	if s.N > math.MaxInt/s.Type.Size()/s.Channels {
		return fmt.Errorf("%w: %d samples of %d channels overflow", ErrInvalid, s.N, s.Channels)
	}
	want := s.N * s.Channels
	lens := [...]struct {
		t SampleType
		n int
	}{{Int16, len(s.I16)}, {Int32, len(s.I32)}, {Float32, len(s.F32)}, {Float64, len(s.F64)}}
	for _, l := range lens {
		switch {
		case l.t == s.Type && l.n != want:
			return fmt.Errorf("%w: %s slice holds %d values, want %d (%d samples × %d channels)",
				ErrInvalid, l.t, l.n, want, s.N, s.Channels)
		case l.t != s.Type && l.n != 0:
			return fmt.Errorf("%w: type is %s but the %s slice holds %d values", ErrInvalid, s.Type, l.t, l.n)
		}
	}
	return nil
}

// CheckLengths checks what Validate checks that does not need a description:
// a valid type, a channel count in 1..MaxChannels, and slice lengths that match
// N*Channels. Codecs call it before encoding a block.
func (s *Samples) CheckLengths() error {
	if err := s.checkLengths(); err != nil {
		return fmt.Errorf("signals: samples: %w", err)
	}
	return nil
}
