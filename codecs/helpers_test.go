package codecs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
)

// allChannels is a pool of valid channels; descriptions take a prefix of it.
var allChannels = func() []signals.Channel {
	chs := make([]signals.Channel, signals.MaxChannels)
	for i := range chs {
		chs[i] = signals.Channel{Name: fmt.Sprintf("ch%d", i), Unit: "V"}
	}
	return chs
}()

func testDesc(t signals.SampleType, channels int) *signals.Scalar {
	return &signals.Scalar{SampleRate: 25600, SampleType: t, Channels: allChannels[:channels]}
}

// The values a codec is most likely to mangle, in their bit patterns.
var (
	special16  = []int16{math.MinInt16, math.MaxInt16, 0, -1, 1, math.MinInt16 + 1}
	special32  = []int32{math.MinInt32, math.MaxInt32, 0, -1, 1, math.MinInt32 + 1}
	specialF32 = []uint32{
		0x7fc00001, // quiet NaN, payload 1
		0x7f800001, // signalling NaN
		0xffc12345, // negative NaN with a payload
		0x80000000, // -0
		0x00000000, // +0
		0x7f800000, // +Inf
		0xff800000, // -Inf
		0x00000001, // smallest subnormal
		0x807fffff, // largest negative subnormal
		0x00800000, // smallest normal
		0x7f7fffff, // max float32
		0xff7fffff, // -max float32
	}
	specialF64 = []uint64{
		0x7ff8000000000001, 0x7ff0000000000001, 0xfff8dead0000beef,
		0x8000000000000000, 0, 0x7ff0000000000000, 0xfff0000000000000,
		1, 0x800fffffffffffff, 0x0010000000000000, 0x7fefffffffffffff, 0xffefffffffffffff,
	}
)

// testSamples returns n samples of channels channels of type t: the special
// values first, then random bit patterns (every pattern is a valid sample).
func testSamples(t signals.SampleType, channels, n int, seed uint64) *signals.Samples {
	rng := rand.New(rand.NewPCG(seed, 7))
	s := &signals.Samples{Start: 1_700_000_000_123_456_789 + int64(seed)}
	s.Reset(t, channels, n)
	for i := 0; i < s.Len(); i++ {
		r := rng.Uint64()
		switch t {
		case signals.Int16:
			s.I16[i] = int16(r)
			if i < len(special16) {
				s.I16[i] = special16[i]
			}
		case signals.Int32:
			s.I32[i] = int32(r)
			if i < len(special32) {
				s.I32[i] = special32[i]
			}
		case signals.Float32:
			s.F32[i] = math.Float32frombits(uint32(r))
			if i < len(specialF32) {
				s.F32[i] = math.Float32frombits(specialF32[i])
			}
		case signals.Float64:
			s.F64[i] = math.Float64frombits(r)
			if i < len(specialF64) {
				s.F64[i] = math.Float64frombits(specialF64[i])
			}
		}
	}
	return s
}

// refPlain encodes s with encoding/binary, independently of this package's
// fast paths.
func refPlain(t *testing.T, s *signals.Samples) []byte {
	t.Helper()
	var data any
	switch s.Type {
	case signals.Int16:
		data = s.I16
	case signals.Int32:
		data = s.I32
	case signals.Float32:
		data = s.F32
	case signals.Float64:
		data = s.F64
	}
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, data); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sameSamples compares two blocks bit for bit (floats by their bits, so NaN
// payloads and -0 count).
func sameSamples(t *testing.T, got, want *signals.Samples) {
	t.Helper()
	if got.Start != want.Start || got.N != want.N || got.Channels != want.Channels || got.Type != want.Type {
		t.Fatalf("header: got start %d n %d ch %d %s, want start %d n %d ch %d %s",
			got.Start, got.N, got.Channels, got.Type, want.Start, want.N, want.Channels, want.Type)
	}
	if len(got.I16) != len(want.I16) || len(got.I32) != len(want.I32) || len(got.F32) != len(want.F32) || len(got.F64) != len(want.F64) {
		t.Fatalf("slice lengths differ")
	}
	for i := range want.I16 {
		if got.I16[i] != want.I16[i] {
			t.Fatalf("I16[%d] = %d, want %d", i, got.I16[i], want.I16[i])
		}
	}
	for i := range want.I32 {
		if got.I32[i] != want.I32[i] {
			t.Fatalf("I32[%d] = %d, want %d", i, got.I32[i], want.I32[i])
		}
	}
	for i := range want.F32 {
		if g, w := math.Float32bits(got.F32[i]), math.Float32bits(want.F32[i]); g != w {
			t.Fatalf("F32[%d] bits %#08x, want %#08x", i, g, w)
		}
	}
	for i := range want.F64 {
		if g, w := math.Float64bits(got.F64[i]), math.Float64bits(want.F64[i]); g != w {
			t.Fatalf("F64[%d] bits %#016x, want %#016x", i, g, w)
		}
	}
}

// allocatedBytes returns the bytes f allocates per call, over a few calls.
func allocatedBytes(f func()) uint64 {
	const runs = 16
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / runs
}
