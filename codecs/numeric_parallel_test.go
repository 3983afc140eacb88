package codecs

import (
	"bytes"
	"math"
	"runtime"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/simulate/pump"
)

// TestParallelChannelsEncodeTheSameFrames: a frame whose channels are
// encoded side by side is byte for byte the frame encoded one channel after
// the other, frame after frame through one encoder (whose per-channel
// mapping hints carry over), for every sample type, and decodes to the
// samples put.
func TestParallelChannelsEncodeTheSameFrames(t *testing.T) {
	const rate = 25600
	p := pump.New(rate, rate*3, 7)
	f32 := make([]float32, 3*rate)
	var inputs []*signals.Samples
	for range 4 {
		p.Fill(f32)
		s := &signals.Samples{}
		s.Reset(signals.Float32, 3, rate)
		copy(s.F32, f32)
		inputs = append(inputs, s)
	}
	f64 := &signals.Samples{}
	f64.Reset(signals.Float64, 6, 10000)
	i16 := &signals.Samples{}
	i16.Reset(signals.Int16, 2, 9000)
	i32 := &signals.Samples{}
	i32.Reset(signals.Int32, 4, parallelMinSamples)
	for i := range f64.F64 {
		f64.F64[i] = math.Sin(float64(i)/37) * float64(1+i%6)
		if i%997 == 0 {
			f64.F64[i] = math.NaN()
		}
	}
	for i := range i16.I16 {
		i16.I16[i] = int16(i*31%2000 - 1000)
	}
	for i := range i32.I32 {
		i32.I32[i] = int32(i*i%100003 - 50000)
	}
	inputs = append(inputs, f64, i16, i32)

	encode := func(procs int) [][]byte {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		encs := map[signals.SampleType]*ScalarEncoder{}
		var out [][]byte
		for _, s := range inputs {
			enc := encs[s.Type]
			if enc == nil {
				var err error
				if enc, err = NewScalarEncoder(testDesc(s.Type, s.Channels), Numeric); err != nil {
					t.Fatal(err)
				}
				encs[s.Type] = enc
			}
			b, err := enc.AppendFrame(nil, s)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
		return out
	}
	serial, parallel := encode(1), encode(4)
	for i, s := range inputs {
		if !bytes.Equal(serial[i], parallel[i]) {
			t.Fatalf("input %d (%s × %d): parallel frame differs from serial (%d vs %d bytes)", i, s.Type, s.Channels, len(parallel[i]), len(serial[i]))
		}
		got := &signals.Samples{}
		if err := DecodeScalarFrame(parallel[i], testDesc(s.Type, s.Channels), got); err != nil {
			t.Fatalf("input %d: %v", i, err)
		}
		if !sameSamplesBits(got, s) {
			t.Fatalf("input %d: decoded samples differ", i)
		}
	}
}

// sameSamplesBits compares two sample blocks bit for bit (NaN payloads, -0).
func sameSamplesBits(a, b *signals.Samples) bool {
	if a.Type != b.Type || a.Channels != b.Channels || a.N != b.N {
		return false
	}
	for i := range b.F32 {
		if math.Float32bits(a.F32[i]) != math.Float32bits(b.F32[i]) {
			return false
		}
	}
	for i := range b.F64 {
		if math.Float64bits(a.F64[i]) != math.Float64bits(b.F64[i]) {
			return false
		}
	}
	return bytes.Equal(int16Bytes(a.I16), int16Bytes(b.I16)) && equalInt32(a.I32, b.I32)
}

func int16Bytes(v []int16) []byte {
	b := make([]byte, 0, 2*len(v))
	for _, x := range v {
		b = append(b, byte(x), byte(x>>8))
	}
	return b
}

func equalInt32(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
