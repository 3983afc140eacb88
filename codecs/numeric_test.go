package codecs

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
)

// gPerCount is the resolution of a 24-bit ±5 V ADC behind a 100 mV/g
// accelerometer, the chain of the pump simulator.
const gPerCount = 10.0 / (1 << 24) / 0.1

// numericInputs are the signals the numeric codec must keep bit for bit, with
// the mode it should pick for their first channel (-1: any).
func numericInputs() []struct {
	name string
	s    *signals.Samples
	mode int
} {
	rng := rand.New(rand.NewPCG(1, 2))
	type in = struct {
		name string
		s    *signals.Samples
		mode int
	}
	var out []in
	add := func(name string, t signals.SampleType, ch, n, mode int, v func(i, c int) float64) {
		s := &signals.Samples{Start: goldenStart}
		s.Reset(t, ch, n)
		for i := range n {
			for c := range ch {
				x := v(i, c)
				switch t {
				case signals.Int16:
					s.I16[i*ch+c] = int16(x)
				case signals.Int32:
					s.I32[i*ch+c] = int32(x)
				case signals.Float32:
					s.F32[i*ch+c] = float32(x)
				case signals.Float64:
					s.F64[i*ch+c] = x
				}
			}
		}
		out = append(out, in{name, s, mode})
	}
	adc := func(i, c int) float64 {
		g := 0.1*math.Sin(float64(i)*0.01+float64(c)) + 0.02*rng.NormFloat64()
		return float64(int64(math.Round(g/gPerCount))) * gPerCount // counts are integers: no -0
	}
	for _, t := range signals.SampleTypes() {
		name := t.String()
		isInt := t == signals.Int16 || t == signals.Int32
		intMode := func(m int) int {
			if isInt {
				return modeInt
			}
			return m
		}
		add(name+"/empty", t, 2, 0, -1, func(i, c int) float64 { return 0 })
		add(name+"/one", t, 1, 1, -1, func(i, c int) float64 { return 7 })
		add(name+"/two", t, 3, 2, -1, func(i, c int) float64 { return float64(i - c) })
		add(name+"/constant", t, 2, 3000, intMode(modeDecimal), func(i, c int) float64 { return 42 })
		add(name+"/zero", t, 1, 100, intMode(modeDecimal), func(i, c int) float64 { return 0 })
		add(name+"/step", t, 2, 5000, intMode(-1), func(i, c int) float64 { return float64(100 * (i / 1000)) })
		add(name+"/ramp", t, 1, 40000, intMode(modeDecimal), func(i, c int) float64 { return float64(i%30000 - 15000) })
		add(name+"/white noise", t, 3, 2560, intMode(modeDecimal), func(i, c int) float64 { return math.Round(1000 * rng.NormFloat64()) })
		if !isInt {
			add(name+"/adc vibration", t, 3, 2560, modeScale, adc)
			add(name+"/decimal temperature", t, 1, 600, modeDecimal, func(i, c int) float64 {
				return math.Round(2000+100*math.Sin(float64(i)/100)) / 100
			})
			// A calibrated chain: counts × sensitivity + zero; and for float64
			// counts × gain × sensitivity, rounded twice.
			add(name+"/calibrated", t, 1, 200, modeAffine, func(i, c int) float64 {
				k := math.Round(3000 * math.Sin(float64(i)/9))
				if t == signals.Float32 {
					return float64(float32(k*0.0012345 - 40))
				}
				return k * 1.0123 * 0.0012345
			})
			add(name+"/random floats", t, 2, 1000, map[bool]int{true: -1, false: modeXor}[t == signals.Float32], func(i, c int) float64 { return rng.Float64()*2 - 1 })
			add(name+"/huge and tiny", t, 1, 100, -1, func(i, c int) float64 { return math.Ldexp(rng.Float64(), rng.IntN(200)-100) })
		}
	}
	// The adversarial values among sensor data: each is an exception of a
	// mapped channel.
	for _, t := range []signals.SampleType{signals.Float32, signals.Float64} {
		n := 2560
		s := &signals.Samples{Start: goldenStart}
		s.Reset(t, 1, n)
		for i := range n {
			if t == signals.Float32 {
				s.F32[i] = float32(adc(i, 0))
				if i%97 == 0 {
					s.F32[i] = math.Float32frombits(specialF32[(i/97)%len(specialF32)])
				}
			} else {
				s.F64[i] = adc(i, 0)
				if i%97 == 0 {
					s.F64[i] = math.Float64frombits(specialF64[(i/97)%len(specialF64)])
				}
			}
		}
		out = append(out, in{t.String() + "/specials among adc", s, modeScale})
		out = append(out, in{t.String() + "/all specials", testSamples(t, 1, len(specialF32), 9), -1})
	}
	for _, t := range []signals.SampleType{signals.Int16, signals.Int32} {
		out = append(out, in{t.String() + "/min max and random", testSamples(t, 2, 3000, 5), modeInt})
	}
	return out
}

func TestNumericRoundTrip(t *testing.T) {
	for _, tt := range numericInputs() {
		t.Run(tt.name, func(t *testing.T) {
			desc := testDesc(tt.s.Type, tt.s.Channels)
			frame, err := AppendScalarFrame(nil, desc, tt.s, Numeric)
			if err != nil {
				t.Fatal(err)
			}
			got := &signals.Samples{}
			if err := DecodeScalarFrame(frame, desc, got); err != nil {
				t.Fatal(err)
			}
			sameSamples(t, got, tt.s)
			raw := tt.s.Len() * tt.s.Type.Size()
			t.Logf("%d bytes of samples → %d (%.3f)", raw, len(frame)-ScalarHeaderSize, float64(len(frame)-ScalarHeaderSize)/float64(max(raw, 1)))
			if tt.mode >= 0 && tt.s.N > 0 {
				if mode := frame[ScalarHeaderSize]; int(mode) != tt.mode {
					t.Errorf("channel 0 coded in mode %d, want %d", mode, tt.mode)
				}
			}
		})
	}
}

// The codec must approach the entropy of what it codes: white Gaussian ADC
// noise of σ counts carries log2(σ·√(2πe)) bits per sample, and the residual
// coder's tokens cost a fraction of a bit on top.
func TestNumericNearEntropy(t *testing.T) {
	for _, sigma := range []float64{4, 300, 20000} {
		rng := rand.New(rand.NewPCG(3, uint64(sigma)))
		s := &signals.Samples{}
		s.Reset(signals.Float32, 1, 25600)
		for i := range s.F32 {
			s.F32[i] = float32(float64(int64(math.Round(sigma*rng.NormFloat64()))) * gPerCount)
		}
		body, err := numeric{}.AppendEncoded(nil, s)
		if err != nil {
			t.Fatal(err)
		}
		bits := float64(8*len(body)) / float64(s.N)
		entropy := math.Log2(sigma * math.Sqrt(2*math.Pi*math.E))
		t.Logf("σ %g counts: %.2f bits per sample, entropy %.2f", sigma, bits, entropy)
		if bits > entropy+0.6 {
			t.Errorf("σ %g counts: %.2f bits per sample, more than 0.6 over the entropy %.2f", sigma, bits, entropy)
		}
	}
}

// Values of every bit length, including the 57..64-bit path of the reader.
func TestResidualStream(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, n := range []int{0, 1, 7, huff4Min - 1, huff4Min, residualBlock, residualBlock + 1, 3*residualBlock + 5} {
		for _, maxBits := range []int{0, 1, 12, 40, 64} {
			r := make([]uint64, n)
			for i := range r {
				if maxBits > 0 {
					b := 1 + rng.IntN(maxBits)
					r[i] = rng.Uint64() >> (64 - b)
				}
			}
			enc := appendResiduals([]byte("x"), r)
			got := make([]uint64, n)
			rest, err := decodeResiduals(append(enc[1:], "tail"...), got)
			if err != nil {
				t.Fatalf("n %d bits %d: %v", n, maxBits, err)
			}
			if string(rest) != "tail" {
				t.Fatalf("n %d bits %d: rest %q", n, maxBits, rest)
			}
			for i := range r {
				if got[i] != r[i] {
					t.Fatalf("n %d bits %d: value %d = %#x, want %#x", n, maxBits, i, got[i], r[i])
				}
			}
		}
	}
}

// Corrupt bodies are errors wrapping ErrCorrupt: each field the decoder checks.
func TestNumericCorrupt(t *testing.T) {
	desc := testDesc(signals.Float32, 1)
	s := &signals.Samples{}
	s.Reset(signals.Float32, 1, 100)
	for i := range s.F32 {
		s.F32[i] = float32(float64(i%7) * gPerCount)
	}
	s.F32[5] = float32(math.NaN())
	good, err := numeric{}.AppendEncoded(nil, s)
	if err != nil {
		t.Fatal(err)
	}
	if good[0] != modeScale {
		t.Fatalf("mode %d, want scale", good[0])
	}
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tt := range []struct {
		name string
		body []byte
		desc *signals.Scalar
	}{
		{"unknown mode", edit(func(b []byte) []byte { b[0] = 9; return b }), desc},
		{"int mode for floats", edit(func(b []byte) []byte { b[0] = modeInt; return b }), desc},
		{"float mode for ints", good, testDesc(signals.Int32, 1)},
		{"negative scale", edit(func(b []byte) []byte { b[8] |= 0x80; return b }), desc},
		{"exception count over n", edit(func(b []byte) []byte { b[9] = 101; return b }), desc},
		{"trailing bytes", append(append([]byte(nil), good...), 0), desc},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := numeric{}.Decode(tt.body, tt.desc, 100, &signals.Samples{})
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode = %v, want ErrCorrupt", err)
			}
		})
	}
	// An int32 value that does not fit an int16 channel.
	wide := &signals.Samples{}
	wide.Reset(signals.Int32, 1, 3)
	copy(wide.I32, []int32{1, 70000, 3})
	body, _ := numeric{}.AppendEncoded(nil, wide)
	if err := (numeric{}).Decode(body, testDesc(signals.Int16, 1), 3, &signals.Samples{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("int16 channel with 70000: %v", err)
	}
}

// Auto picks the numeric codec for sensor data, a byte codec or plain for
// noise without structure, and always names its pick in the frame.
func TestAuto(t *testing.T) {
	for _, tt := range numericInputs() {
		t.Run(tt.name, func(t *testing.T) {
			desc := testDesc(tt.s.Type, tt.s.Channels)
			frame, err := AppendScalarFrame([]byte("p"), desc, tt.s, Auto)
			if err != nil {
				t.Fatal(err)
			}
			frame = frame[1:]
			h, err := ParseScalarHeader(frame)
			if err != nil || h.Codec == Auto {
				t.Fatalf("header %+v: %v", h, err)
			}
			for _, id := range []ID{Plain, Numeric, ShuffleZstd} {
				other, err := AppendScalarFrame(nil, desc, tt.s, id)
				if err != nil {
					t.Fatal(err)
				}
				if len(other) < len(frame) && (id == Plain || id == Numeric) {
					t.Errorf("auto chose %v (%d bytes), %v makes %d", h.Codec, len(frame), id, len(other))
				}
			}
			got := &signals.Samples{}
			if err := DecodeScalarFrame(frame, desc, got); err != nil {
				t.Fatal(err)
			}
			sameSamples(t, got, tt.s)
		})
	}
}

// writeMissing writes the golden files that do not exist yet, leaving the
// others as they are: the way to add a golden without rewriting the old ones.
var writeMissing = flag.Bool("write-missing-goldens", false, "write only the golden files in testdata/golden that do not exist yet")

// Golden numeric frames: a change of the numeric format fails here, and so
// does an encoder that codes them larger than it once did.
func TestNumericGolden(t *testing.T) {
	for _, tt := range numericInputs() {
		file := map[string]string{
			"float32/adc vibration":       "numeric_float32_adc.hex",
			"float64/decimal temperature": "numeric_float64_decimal.hex",
			"float32/specials among adc":  "numeric_float32_specials.hex",
			"int16/white noise":           "numeric_int16_noise.hex",
			"int32/ramp":                  "numeric_int32_ramp.hex",
			"float64/random floats":       "numeric_float64_xor.hex",
			"float32/calibrated":          "numeric_float32_affine.hex",
			"float64/calibrated":          "numeric_float64_affine.hex",
		}[tt.name]
		if file == "" {
			continue
		}
		t.Run(file, func(t *testing.T) {
			desc := testDesc(tt.s.Type, tt.s.Channels)
			// The goldens keep to the first 64 samples: enough for every field.
			s := firstSamples(tt.s, 64)
			got, err := AppendScalarFrame(nil, desc, s, Numeric)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", file)
			if _, err := os.Stat(path); *update || errors.Is(err, os.ErrNotExist) && *writeMissing {
				comment := fmt.Sprintf("# numeric scalar frame: %s, %d channels, %d samples\n# regenerate with: go test ./codecs -run Golden -update\n", tt.name, s.Channels, s.N)
				var b bytes.Buffer
				b.WriteString(comment)
				for i := 0; i < len(got); i += 32 {
					fmt.Fprintf(&b, "%x\n", got[i:min(i+32, len(got))])
				}
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := readHex(path)
			if err != nil {
				t.Fatal(err)
			}
			// The golden bytes pin the format: they must decode to the samples
			// forever. The encoder may find a better encoding than it did when
			// they were written (it searches harder for a scale), never a
			// larger one.
			out := &signals.Samples{}
			if err := DecodeScalarFrame(want, desc, out); err != nil {
				t.Fatal(err)
			}
			sameSamples(t, out, s)
			if len(got) > len(want) {
				t.Errorf("the numeric codec now writes %d bytes for what took %d:\n got %x\nwant %x", len(got), len(want), got, want)
			}
		})
	}
}

// firstSamples returns the first n samples of s (a copy).
func firstSamples(s *signals.Samples, n int) *signals.Samples {
	n = min(n, s.N)
	out := &signals.Samples{Start: s.Start}
	out.Reset(s.Type, s.Channels, n)
	k := n * s.Channels
	copy(out.I16, s.I16[:min(k, len(s.I16))])
	copy(out.I32, s.I32[:min(k, len(s.I32))])
	copy(out.F32, s.F32[:min(k, len(s.F32))])
	copy(out.F64, s.F64[:min(k, len(s.F64))])
	return out
}

func BenchmarkNumericDecode(b *testing.B) {
	for _, tt := range numericInputs() {
		if tt.s.N < 2000 {
			continue
		}
		desc := testDesc(tt.s.Type, tt.s.Channels)
		frame, err := AppendScalarFrame(nil, desc, tt.s, Numeric)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tt.name, func(b *testing.B) {
			out := &signals.Samples{}
			b.SetBytes(int64(tt.s.Len() * tt.s.Type.Size()))
			b.ReportAllocs()
			for b.Loop() {
				if err := DecodeScalarFrame(frame, desc, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNumericEncode(b *testing.B) {
	for _, tt := range numericInputs() {
		if tt.s.N < 2000 {
			continue
		}
		desc := testDesc(tt.s.Type, tt.s.Channels)
		b.Run(tt.name, func(b *testing.B) {
			var buf []byte
			b.SetBytes(int64(tt.s.Len() * tt.s.Type.Size()))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = AppendScalarFrame(buf[:0], desc, tt.s, Numeric); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
