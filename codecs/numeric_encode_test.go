package codecs

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
)

// The encoder's fast loops (mapInts, chooseOrder's, packResidualBits,
// appendFixed) must give the bytes the straightforward code gave, which the
// references below keep: the format is what old frames were written with.

// refApply is apply as it was: toInt for every value.
func refApply(m floatMapping, f []float64, k []int64, exc []int, f32 bool) []int {
	var prev int64
	for i, v := range f {
		x, ok := m.toInt(v, f32)
		if !ok {
			exc = append(exc, i)
			x = prev
		}
		k[i] = x
		prev = x
	}
	return exc
}

// refChooseOrder is chooseOrder as it was.
func refChooseOrder(k []int64) int {
	var cost [3]int
	for i := range k {
		var p1, p2 int64
		if i >= 1 {
			p1 = k[i-1]
		}
		if i >= 2 {
			p2 = 2*k[i-1] - k[i-2]
		} else {
			p2 = p1
		}
		cost[0] += bitLen(zigzag(k[i]))
		cost[1] += bitLen(zigzag(k[i] - p1))
		cost[2] += bitLen(zigzag(k[i] - p2))
	}
	best := 0
	for o := 1; o < 3; o++ {
		if cost[o] < cost[best] {
			best = o
		}
	}
	return best
}

// refAppendResiduals is appendResiduals as it was, with bitWriter.
func refAppendResiduals(dst []byte, r []uint64) []byte {
	var h residualScratch
	tok := make([]byte, len(r))
	var w bitWriter
	width := 0
	for i, v := range r {
		n := bits.Len64(v)
		tok[i] = byte(n)
		width = max(width, n)
		if n > 1 {
			w.write(v, uint(n-1))
		}
	}
	packed := w.flush()
	start := len(dst)
	dst = append(dst, residualsTokens)
	for at := 0; at < len(tok); at += residualBlock {
		block := tok[at:min(at+residualBlock, len(tok))]
		lo, hi := block[0], block[0]
		for _, t := range block {
			lo, hi = min(lo, t), max(hi, t)
		}
		dst = appendTokenBlock(dst, block, lo, hi, &h.huff)
	}
	dst = binary.AppendUvarint(dst, uint64(len(packed)))
	dst = append(dst, packed...)
	if fixed := 2 + (len(r)*width+7)/8; width > 0 && fixed < len(dst)-start {
		dst = append(dst[:start], residualsFixed, byte(width))
		var fw bitWriter
		fw.buf = dst
		for _, v := range r {
			fw.writeWide(v, uint(width))
		}
		dst = fw.flush()
	}
	return dst
}

// mappingValues returns n values for m to map: most on its grid, some off
// it by less than a step, some halfway between two steps (where rounding
// ties), specials, subnormals and values too large to map, in runs and
// alone.
func mappingValues(rng *rand.Rand, m floatMapping, n int, f32 bool, amp float64) []float64 {
	f := make([]float64, n)
	step := m.scale
	if m.mode == modeDecimal {
		step = 1 / pow10[m.exp]
	}
	k := int64(rng.NormFloat64() * amp)
	for i := range f {
		k += int64(rng.NormFloat64() * amp / 10)
		var v float64
		switch x := rng.IntN(100); {
		case x < 70:
			v = m.value(k, f32)
		case x < 78:
			v = (float64(k) + rng.Float64() - 0.5) * step
		case x < 84:
			v = (float64(k) + 0.5) * step
		case x < 86:
			v = []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 0, 5e-324, -1e-310, 1e-40, math.MaxFloat64, -math.MaxFloat32}[rng.IntN(10)]
		case x < 90:
			v = float64(int64(1)<<(40+rng.IntN(20))+int64(rng.IntN(1000))) * step
		case x < 95:
			v = m.value(int64(rng.Uint64()>>(64-rng.IntN(56))), f32) // wide k
		default:
			v = math.Float64frombits(rng.Uint64())
		}
		if f32 {
			v = float64(float32(v))
		}
		f[i] = v
	}
	return f
}

// TestMapIntsMatchesToInt checks apply's loop against toInt value by value
// for scale and decimal mappings of both sample types, scales that are
// powers of two and not, tiny, huge and subnormal, on values on and off the
// grid, ties, specials and huge quotients; and that applyUpTo gives up
// exactly when the exceptions exceed its limit, with the same ones.
func TestMapIntsMatchesToInt(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	scales := []float64{1, 0.5, 1.0 / 3, 5.9604644775390625e-06, 9.80665 / (1 << 23), float64(float32(0.1)), 1e-300, 5e-324, 1e-310, 1e300, 3e38, 2.5, 1 << 20}
	for trial := range 600 {
		f32 := trial%2 == 0
		var m floatMapping
		if trial%3 == 0 {
			m = floatMapping{mode: modeDecimal, exp: byte(rng.IntN(maxDecimalExp(f32) + 1))}
		} else {
			s := scales[rng.IntN(len(scales))]
			if rng.IntN(3) == 0 {
				s *= 1 + rng.Float64()
			}
			m = floatMapping{mode: modeScale, scale: s}
		}
		amp := math.Pow(10, float64(rng.IntN(12)))
		f := mappingValues(rng, m, 1+rng.IntN(700), f32, amp)
		want, got := make([]int64, len(f)), make([]int64, len(f))
		we := refApply(m, f, want, nil, f32)
		ge := m.apply(f, got, nil, f32)
		if !slices.Equal(we, ge) || !slices.Equal(want, got) {
			for i := range f {
				if want[i] != got[i] {
					t.Fatalf("trial %d (%+v, float32 %v): value %d (%g) maps to %d, toInt to %d", trial, m, f32, i, f[i], got[i], want[i])
				}
			}
			t.Fatalf("trial %d (%+v, float32 %v): exceptions %v, toInt's %v", trial, m, f32, ge, we)
		}
		sk := make([]int64, len(f)) // the same channel read in place from interleaved samples
		if se, ok := m.applySamples(channelSamples(rng, f, f32), 1, sk, nil, len(f)); !ok || !slices.Equal(se, we) || !slices.Equal(sk, want) {
			t.Fatalf("trial %d (%+v, float32 %v): read in place, mapped otherwise", trial, m, f32)
		}
		limit := rng.IntN(len(we) + 2)
		le, ok := m.applyUpTo(f, got, nil, f32, limit)
		if ok != (len(we) <= limit) || !slices.Equal(le, we[:min(len(we), limit+1)]) {
			t.Fatalf("trial %d: limit %d of %d exceptions: ok %v, %d found", trial, limit, len(we), ok, len(le))
		}
	}
}

// channelSamples returns samples of three channels whose channel 1 is f
// (of the type f32 says) and the others noise.
func channelSamples(rng *rand.Rand, f []float64, f32 bool) *signals.Samples {
	s := &signals.Samples{}
	if f32 {
		s.Reset(signals.Float32, 3, len(f))
		for i := range s.F32 {
			s.F32[i] = float32(rng.NormFloat64())
		}
		for i, v := range f {
			s.F32[i*3+1] = float32(v)
		}
	} else {
		s.Reset(signals.Float64, 3, len(f))
		for i := range s.F64 {
			s.F64[i] = rng.NormFloat64()
		}
		for i, v := range f {
			s.F64[i*3+1] = v
		}
	}
	return s
}

// TestChooseAppliedMatchesChoose runs one hint through choose and apply and
// another through chooseApplied over a series of frames that change their
// mapping now and then (a new scale, a NaN gap, noise), and checks that
// both pick the same mappings, map to the same integers and remember the
// same.
func TestChooseAppliedMatchesChoose(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, f32 := range []bool{false, true} {
		var ha, hb mappingHint
		m := floatMapping{mode: modeScale, scale: 5.9604644775390625e-06}
		for frame := range 200 {
			switch rng.IntN(10) {
			case 0:
				m = floatMapping{mode: modeDecimal, exp: byte(rng.IntN(4))}
			case 1:
				m = floatMapping{mode: modeScale, scale: math.Ldexp(1+rng.Float64(), -rng.IntN(30))}
			}
			f := mappingValues(rng, m, 64+rng.IntN(2000), f32, 1000)
			if rng.IntN(4) == 0 { // a frame on the grid but for a few
				for i := range f {
					f[i] = m.value(int64(i*7-3000), f32)
				}
				for range rng.IntN(len(f) / 40) {
					f[rng.IntN(len(f))] = math.NaN()
				}
			}
			if f32 { // a float32 channel holds these values (a NaN's payload narrowed)
				for i, v := range f {
					f[i] = float64(float32(v))
				}
			}
			ma := ha.choose(f, f32)
			ka := make([]int64, len(f))
			var ea []int
			if ma.mode == modeScale || ma.mode == modeDecimal {
				ea = refApply(ma, f, ka, nil, f32)
			}
			s := channelSamples(rng, f, f32)
			var sc numericScratch
			mb, applied := hb.chooseApplied(s, 1, &sc)
			if !applied {
				if !slices.EqualFunc(sc.f, f, func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }) {
					t.Fatalf("float32 %v, frame %d: not applied, and sc.f is not the channel", f32, frame)
				}
				if mb.mode == modeScale || mb.mode == modeDecimal {
					sc.exc = mb.apply(sc.f, sc.k, sc.exc[:0], f32)
				}
			}
			kb, eb := sc.k, sc.exc
			if ma != mb || ha != hb {
				t.Fatalf("float32 %v, frame %d: chose %+v (hint %+v), choose %+v (hint %+v)", f32, frame, mb, hb, ma, ha)
			}
			if (ma.mode == modeScale || ma.mode == modeDecimal) && (!slices.Equal(ka, kb) || !slices.Equal(ea, eb)) {
				t.Fatalf("float32 %v, frame %d: mapped otherwise", f32, frame)
			}
		}
	}
}

// TestChooseOrderMatchesReference checks the branch-free loop at every
// short length (where the first two values are special) and on series of
// every shape: constant, ramps, noise, steps of every width, extremes that
// wrap.
func TestChooseOrderMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for trial := range 3000 {
		k := make([]int64, []int{0, 1, 2, 3, 4, 5, 17, 256}[trial%8])
		w := rng.IntN(64)
		var x, d int64
		for i := range k {
			switch trial % 5 {
			case 0: // noise
				x = int64(rng.Uint64() >> (63 - w))
			case 1: // ramp with noise
				d += int64(rng.IntN(3)) - 1
				x += d + int64(rng.Uint64()>>(63-w))
			case 2: // random walk
				x += int64(rng.NormFloat64() * math.Ldexp(1, w/2))
			case 3: // extremes
				x = []int64{math.MinInt64, math.MaxInt64, 0, -1, 1}[rng.IntN(5)]
			case 4: // constant with a jump
				if rng.IntN(50) == 0 {
					x = int64(rng.Uint64())
				}
			}
			k[i] = x
		}
		r1, r2 := make([]uint64, len(k)), make([]uint64, len(k))
		if got, want := chooseOrder(k, r1, r2), refChooseOrder(k); got != want {
			t.Fatalf("trial %d (%d values): order %d, want %d", trial, len(k), got, want)
		}
		for o, r := range [][]uint64{r1, r2} {
			want := make([]uint64, max(0, len(k)-o-1))
			residuals(k, o+1, want)
			if !slices.Equal(r[:len(want)], want) {
				t.Fatalf("trial %d (%d values): the order-%d residuals differ", trial, len(k), o+1)
			}
		}
	}
}

// TestAppendResidualsMatchesReference checks the residual stream against
// the one bitWriter made, byte for byte: values of every width 0 to 64,
// alone and mixed, lengths that are odd and span token blocks, and flat
// distributions, where the fixed layout wins.
func TestAppendResidualsMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	lengths := []int{0, 1, 2, 3, 7, 8, 9, 30, 100, 1023, 2561, residualBlock + 5}
	for width := 0; width <= 64; width++ {
		for li, n := range lengths {
			if n > 3000 && width%8 != 3 {
				continue // the long ones for some widths: they are slow in the reference
			}
			for kind := range 3 {
				r := make([]uint64, n)
				for i := range r {
					var v uint64
					switch kind {
					case 0: // all of this width: the fixed layout
						if width > 0 {
							v = 1<<(width-1) | rng.Uint64()>>(65-width)
						}
					case 1: // up to this width, flat: fixed or tokens
						if width > 0 {
							v = rng.Uint64() >> (64 - width)
						}
					case 2: // Gaussian of this width with outliers: tokens
						v = zigzag(int64(rng.NormFloat64() * math.Ldexp(1, width/2)))
						if width > 0 && rng.IntN(100) == 0 {
							v = rng.Uint64() >> (64 - width)
						}
					}
					r[i] = v
				}
				prefix := []byte{byte(li), 0xA5}
				want := refAppendResiduals(slices.Clone(prefix), r)
				got := appendResiduals(slices.Clone(prefix), r)
				if !bytes.Equal(got, want) {
					t.Fatalf("width %d, %d values, kind %d: %d bytes, want %d (layout %d, want %d)", width, n, kind, len(got), len(want), got[2], want[2])
				}
			}
		}
	}
}
