package codecs

import (
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
