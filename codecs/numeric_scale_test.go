package codecs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
)

// adcFrames makes frames of a vibration signal as a real acquisition chain
// delivers it: int24 counts of a ±4 g converter times a sensitivity that is
// no power of two (9.80665 m/s² per g, times a calibration factor), rounded
// to float32 — with the multiply done in float64 or in float32.
func adcFrames(frames, n int, calib float64, f32mul bool, seed uint64) []*signals.Samples {
	rng := rand.New(rand.NewPCG(seed, seed))
	scale := 4 * 9.80665 / (1 << 23) * calib
	var out []*signals.Samples
	for f := range frames {
		s := &signals.Samples{Start: int64(f) * 1e8}
		s.Reset(signals.Float32, 1, n)
		for i := range n {
			t := float64(f*n+i) / 25600
			g := 0.3*math.Sin(2*math.Pi*29.6*t) + 0.1*math.Sin(2*math.Pi*163.4*t) + 0.03*rng.NormFloat64()
			k := math.Round(g * 9.80665 / scale)
			if f32mul {
				s.F32[i] = float32(k) * float32(scale)
			} else {
				s.F32[i] = float32(k * scale)
			}
		}
		out = append(out, s)
	}
	return out
}

// The numeric codec finds the scale of real converter output — sensitivities
// that are not powers of two, values of hundreds of thousands of counts where
// a float32 has no bits to spare — and codes it as well as the counts
// themselves would be coded.
func TestNumericFindsRealADCScale(t *testing.T) {
	for _, tt := range []struct {
		calib  float64
		f32mul bool
	}{{1, false}, {1, true}, {1.0123, false}, {0.99731, true}} {
		t.Run(fmt.Sprintf("calib %g f32mul %v", tt.calib, tt.f32mul), func(t *testing.T) {
			desc := testDesc(signals.Float32, 1)
			enc, err := NewScalarEncoder(desc, Numeric)
			if err != nil {
				t.Fatal(err)
			}
			scale := 4 * 9.80665 / (1 << 23) * tt.calib
			counts := testDesc(signals.Int32, 1)
			scaled, ours, asCounts := 0, 0, 0
			frames := adcFrames(40, 2560, tt.calib, tt.f32mul, 7)
			for _, s := range frames {
				// Stateless and with memory: both must find the scale.
				for _, frame := range [][]byte{mustFrame(t, desc, s), mustEncode(t, enc, s)} {
					got := &signals.Samples{}
					if err := DecodeScalarFrame(frame, desc, got); err != nil {
						t.Fatal(err)
					}
					sameSamples(t, got, s)
					if frame[ScalarHeaderSize] == modeScale {
						scaled++
					}
					ours += len(frame)
				}
				c := &signals.Samples{Start: s.Start}
				c.Reset(signals.Int32, 1, s.N)
				for i, v := range s.F32 {
					c.I32[i] = int32(math.Round(float64(v) / scale))
				}
				asCounts += 2 * len(mustFrame(t, counts, c))
			}
			if scaled < 2*len(frames)*95/100 {
				t.Errorf("%d of %d frames in scale mode", scaled, 2*len(frames))
			}
			if float64(ours) > 1.02*float64(asCounts) {
				t.Errorf("%d bytes, the counts as int32 take %d", ours, asCounts)
			}
		})
	}
}

// A NaN gap or a saturated burst sends one frame to xor; the next frame goes
// back to the scale the encoder remembers.
func TestScalarEncoderReturnsToScale(t *testing.T) {
	desc := testDesc(signals.Float32, 1)
	enc, err := NewScalarEncoder(desc, Auto)
	if err != nil {
		t.Fatal(err)
	}
	frames := adcFrames(6, 2560, 1, false, 3)
	for i := 500; i < 1500; i++ {
		frames[2].F32[i] = float32(math.NaN())
	}
	var modes []byte
	for _, s := range frames {
		frame := mustEncode(t, enc, s)
		got := &signals.Samples{}
		if err := DecodeScalarFrame(frame, desc, got); err != nil {
			t.Fatal(err)
		}
		sameSamples(t, got, s)
		modes = append(modes, frame[ScalarHeaderSize])
	}
	for i, m := range modes {
		if i != 2 && m != modeScale {
			t.Errorf("frame %d in mode %d, want scale (modes %v)", i, m, modes)
		}
	}
}

func TestNewScalarEncoderUnknownCodec(t *testing.T) {
	if _, err := NewScalarEncoder(testDesc(signals.Float32, 1), 77); err == nil {
		t.Fatal("codec 77 accepted")
	}
}

func mustFrame(t *testing.T, desc *signals.Scalar, s *signals.Samples) []byte {
	t.Helper()
	b, err := AppendScalarFrame(nil, desc, s, Numeric)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustEncode(t *testing.T, enc *ScalarEncoder, s *signals.Samples) []byte {
	t.Helper()
	b, err := enc.AppendFrame(nil, s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A calibration offset (v = counts × sensitivity + zero), and float64 values
// computed in two steps (counts × gain × sensitivity, each rounded), fit no
// exact scale; the affine mode codes them nearly as well as their counts,
// every value bit for bit — specials included.
func TestNumericAffine(t *testing.T) {
	const n, frames = 2560, 12
	sens := 4 * 9.80665 / (1 << 23) * 1.0123
	for _, tt := range []struct {
		name string
		typ  signals.SampleType
		v    func(k float64) float64
	}{
		{"float32 with offset", signals.Float32, func(k float64) float64 { return float64(float32(k*sens + 0.0123)) }},
		{"float64 with offset", signals.Float64, func(k float64) float64 { return k*sens - 273.15 }},
		{"float64 in two steps", signals.Float64, func(k float64) float64 { return k * 1.0123 * (4 * 9.80665 / (1 << 23)) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 5))
			desc := testDesc(tt.typ, 1)
			enc, err := NewScalarEncoder(desc, Auto)
			if err != nil {
				t.Fatal(err)
			}
			affine, ours, asCounts := 0, 0, 0
			for f := range frames {
				s := &signals.Samples{Start: int64(f) * 1e8}
				s.Reset(tt.typ, 1, n)
				c := &signals.Samples{Start: s.Start}
				c.Reset(signals.Int32, 1, n)
				for i := range n {
					x := float64(f*n + i)
					k := math.Round((0.3*math.Sin(x/140) + 0.03*rng.NormFloat64()) * 9.80665 / sens)
					c.I32[i] = int32(k)
					if tt.typ == signals.Float32 {
						s.F32[i] = float32(tt.v(k))
					} else {
						s.F64[i] = tt.v(k)
					}
				}
				if f == frames-1 { // the adversarial values among them
					for i, b := range specialF32 {
						if tt.typ == signals.Float32 {
							s.F32[i*97] = math.Float32frombits(b)
						}
					}
					for i, b := range specialF64 {
						if tt.typ == signals.Float64 {
							s.F64[i*97] = math.Float64frombits(b)
						}
					}
				}
				frame := mustEncode(t, enc, s)
				got := &signals.Samples{}
				if err := DecodeScalarFrame(frame, desc, got); err != nil {
					t.Fatal(err)
				}
				sameSamples(t, got, s)
				if frame[0] == byte(Numeric) && frame[ScalarHeaderSize] == modeAffine {
					affine++
				}
				ours += len(frame)
				asCounts += len(mustFrame(t, testDesc(signals.Int32, 1), c))
			}
			if affine < frames-1 {
				t.Errorf("%d of %d frames affine", affine, frames)
			}
			if limit := 1.15 * float64(asCounts); float64(ours) > limit {
				t.Errorf("%d bytes, the counts as int32 take %d", ours, asCounts)
			}
			t.Logf("%d bytes, the counts as int32 %d (%.3f)", ours, asCounts, float64(ours)/float64(asCounts))
		})
	}
}

// The ordered integers number the floats in order and are their own
// inverse: the affine mode's corrections are distances in representable
// values.
func TestOrderedFloats(t *testing.T) {
	f32 := []float32{float32(math.Inf(-1)), -math.MaxFloat32, -1, -math.SmallestNonzeroFloat32, float32(math.Copysign(0, -1)), 0, math.SmallestNonzeroFloat32, 1, math.MaxFloat32, float32(math.Inf(1))}
	for i, v := range f32 {
		b := math.Float32bits(v)
		if unordered32(ordered32(b)) != b {
			t.Errorf("float32 %v: not its own inverse", v)
		}
		if i > 0 && ordered32(b)-ordered32(math.Float32bits(f32[i-1])) < 1 {
			t.Errorf("float32 %v does not order after %v", v, f32[i-1])
		}
	}
	if d := ordered32(math.Float32bits(math.Nextafter32(1, 2))) - ordered32(math.Float32bits(1)); d != 1 {
		t.Errorf("the float32 after 1 is %d steps away", d)
	}
	f64 := []float64{math.Inf(-1), -math.MaxFloat64, -1, -math.SmallestNonzeroFloat64, math.Copysign(0, -1), 0, math.SmallestNonzeroFloat64, 1, math.MaxFloat64, math.Inf(1)}
	for i, v := range f64 {
		b := math.Float64bits(v)
		if unordered64(ordered64(b)) != b {
			t.Errorf("float64 %v: not its own inverse", v)
		}
		if i > 0 && ordered64(b)-ordered64(math.Float64bits(f64[i-1])) < 1 {
			t.Errorf("float64 %v does not order after %v", v, f64[i-1])
		}
	}
}

// Corrupt affine channels are errors wrapping ErrCorrupt.
func TestNumericAffineCorrupt(t *testing.T) {
	desc := testDesc(signals.Float32, 1)
	s := &signals.Samples{}
	s.Reset(signals.Float32, 1, 200)
	for i := range s.F32 {
		s.F32[i] = float32(math.Round(3000*math.Sin(float64(i)/9))*0.0012345 - 40)
	}
	good, err := numeric{}.AppendEncoded(nil, s)
	if err != nil {
		t.Fatal(err)
	}
	if good[0] != modeAffine {
		t.Fatalf("mode %d, want affine", good[0])
	}
	edit := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	putF64 := func(b []byte, at int, v float64) {
		bits := math.Float64bits(v)
		for i := range 8 {
			b[at+i] = byte(bits >> (8 * i))
		}
	}
	// One sample whose correction, 2⁴⁰ steps, leaves float32: k = 0 in one
	// fixed-width bit, the correction in 64.
	huge := []byte{modeAffine}
	huge = binary.LittleEndian.AppendUint64(huge, math.Float64bits(1))
	huge = binary.LittleEndian.AppendUint64(huge, 0)
	huge = append(huge, 0, residualsFixed, 1, 0, residualsFixed, 64)
	huge = binary.LittleEndian.AppendUint64(huge, zigzag(1<<40))
	for _, tt := range []struct {
		name string
		body []byte
	}{
		{"zero scale", edit(func(b []byte) { putF64(b, 1, 0) })},
		{"infinite scale", edit(func(b []byte) { putF64(b, 1, math.Inf(1)) })},
		{"NaN offset", edit(func(b []byte) { putF64(b, 9, math.NaN()) })},
		{"truncated mapping", good[:12]},
		{"truncated corrections", good[:len(good)-3]},
		{"trailing bytes", append(append([]byte(nil), good...), 0)},
		{"corrections out of float32", huge},
	} {
		n := 200
		if tt.name == "corrections out of float32" {
			n = 1
		}
		if err := (numeric{}).Decode(tt.body, desc, n, &signals.Samples{}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", tt.name, err)
		}
	}
}
