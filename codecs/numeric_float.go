package codecs

import (
	"math"
	"slices"
)

// Mapping floats to integers: the part of the numeric codec that finds what
// the sensor counted in.

// pow10 holds the powers of ten that are exact in float64 (up to 10^22), so
// that k / pow10[e] is the correctly rounded decimal k·10^-e — the float a
// parser makes of the text a logger printed.
var pow10 = func() (p [23]float64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// maxDecimalExp is the largest exponent the encoder tries per sample type:
// beyond it a float's digits are all significant and no decimal mapping
// exists.
func maxDecimalExp(f32 bool) int {
	if f32 {
		return 9
	}
	return 18
}

// maxMappedInt bounds k so that float64(k) is exact.
const maxMappedInt = 1 << 53

// floatMapping is how a float channel maps to integers.
type floatMapping struct {
	mode  byte // modeScale, modeDecimal or modeXor
	scale float64
	exp   byte
}

// value is what k decodes to, widened to float64; the caller narrows to
// float32 for float32 channels, which rounds exactly as the encoder checked.
func (m floatMapping) value(k int64, f32 bool) float64 {
	var v float64
	if m.mode == modeScale {
		v = float64(k) * m.scale
	} else {
		v = float64(k) / pow10[m.exp]
	}
	if f32 {
		return float64(float32(v))
	}
	return v
}

// toInt maps v to its integer under m and reports whether it decodes back to
// exactly v's bits.
func (m floatMapping) toInt(v float64, f32 bool) (int64, bool) {
	var x float64
	if m.mode == modeScale {
		x = math.Round(v / m.scale)
	} else {
		x = math.Round(v * pow10[m.exp])
	}
	if !(math.Abs(x) < maxMappedInt) { // also false for NaN
		return 0, false
	}
	k := int64(x)
	return k, math.Float64bits(m.value(k, f32)) == math.Float64bits(v)
}

// apply maps f into k and returns the indexes of the exceptions (appended to
// exc). An exception's k repeats the previous k, so it costs the predictor
// little.
func (m floatMapping) apply(f []float64, k []int64, exc []int, f32 bool) []int {
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

// exceptions counts the values of probe that m does not map exactly.
func (m floatMapping) exceptions(probe []float64, f32 bool) int {
	n := 0
	for _, v := range probe {
		if _, ok := m.toInt(v, f32); !ok {
			n++
		}
	}
	return n
}

// chooseFloatMapping tries a decimal and a scale mapping on a probe of the
// channel and returns the one with the fewest exceptions over the whole
// channel, or xor when both leave too many.
func chooseFloatMapping(f []float64, f32 bool) floatMapping {
	probe := probeValues(f, 64)
	var cands []floatMapping
	for e := 0; e <= maxDecimalExp(f32); e++ {
		m := floatMapping{mode: modeDecimal, exp: byte(e)}
		if m.exceptions(probe, f32) == 0 {
			cands = append(cands, m)
			break
		}
	}
	if s, ok := detectScale(f, f32); ok {
		cands = append(cands, floatMapping{mode: modeScale, scale: s})
	}
	// Score each by what it will cost: the bits of its integers (a decimal
	// 10^-8 and a scale 2^-8 may both be exact, with very different k) plus
	// its exceptions, stored verbatim.
	best, bestCost := floatMapping{mode: modeXor}, math.Inf(1)
	size := 8.0
	if f32 {
		size = 4
	}
	for _, m := range cands {
		exc, bitsK := m.cost(f, f32)
		if exc > len(f)/maxExceptionShare {
			continue
		}
		if c := bitsK + float64(exc)*(size+1)*8; c < bestCost {
			best, bestCost = m, c
		}
	}
	return best
}

// cost returns how many values of f m leaves as exceptions and the bit
// lengths of the integers it maps the others to, summed.
func (m floatMapping) cost(f []float64, f32 bool) (int, float64) {
	exc, total := 0, 0.0
	for _, v := range f {
		k, ok := m.toInt(v, f32)
		if !ok {
			exc++
			continue
		}
		total += float64(bitLen(zigzag(k)))
	}
	return exc, total
}

// probeValues returns up to n finite values spread evenly over f.
func probeValues(f []float64, n int) []float64 {
	step := max(1, len(f)/n)
	out := make([]float64, 0, n)
	for i := 0; i < len(f) && len(out) < n; i += step {
		if !math.IsInf(f[i], 0) && !math.IsNaN(f[i]) {
			out = append(out, f[i])
		}
	}
	return out
}

// detectScale finds s such that the channel's values are integers times s,
// rounded to the sample type — the shape of every ADC's output. It starts
// from the smallest gap between distinct values (a few counts), divides it
// down to one count, refines it by least squares, and finally narrows it to
// the interval every probed value allows: v was rounded from k·s, so s lies
// within half an ulp of v, divided by k.
func detectScale(f []float64, f32 bool) (float64, bool) {
	vals := distinctFinite(f, 512)
	if len(vals) < 2 {
		return 0, false
	}
	s := unitGap(vals, smallGap(vals))
	if !(s > 0) || math.IsInf(s, 0) {
		return 0, false
	}
	s = refineScale(vals, s)
	// The sample fixes s to a few parts in 10^10; every value of the channel
	// narrows it further, so few are left as exceptions.
	s = narrowScale(f, s, f32)
	if !(s > 0) || math.IsInf(s, 0) || math.IsNaN(s) {
		return 0, false
	}
	best, bestExc := s, len(vals)+1
	for _, c := range []float64{s, float64(float32(s))} { // a driver may scale in float32
		m := floatMapping{mode: modeScale, scale: c}
		if e := m.exceptions(vals, f32); e < bestExc {
			best, bestExc = c, e
		}
	}
	return best, true
}

// smallGap is a small gap between neighbouring distinct values: the 1st
// percentile rather than the minimum, so that a stray subnormal next to 0 or
// another outlier does not decide the unit.
func smallGap(vals []float64) float64 {
	gaps := make([]float64, 0, len(vals)-1)
	for i := 1; i < len(vals); i++ {
		gaps = append(gaps, vals[i]-vals[i-1])
	}
	slices.Sort(gaps)
	return gaps[len(gaps)/100]
}

// onScale reports whether v is within 1 % of a whole multiple of s, not too
// large for its k to be exact: outliers (specials, values from elsewhere)
// fail and are left out of the estimates.
func onScale(v, s float64) (float64, bool) {
	x := v / s
	k := math.Round(x)
	return k, k != 0 && math.Abs(k) < maxMappedInt && math.Abs(x-k) < 0.01
}

// distinctFinite returns up to n finite values of f, sorted, without repeats.
func distinctFinite(f []float64, n int) []float64 {
	step := max(1, len(f)/n)
	out := make([]float64, 0, min(n, len(f)))
	for i := 0; i < len(f); i += step {
		if v := f[i]; !math.IsInf(v, 0) && !math.IsNaN(v) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// unitGap divides the smallest gap by the smallest d (1..8) for which most
// small gaps are whole multiples of gap/d: the smallest gap seen may be two
// or three counts when the frame is short.
func unitGap(vals []float64, gap float64) float64 {
	for d := 1.0; d <= 8; d++ {
		s := gap / d
		good, total := 0, 0
		for i := 1; i < len(vals) && total < 512; i++ {
			x := (vals[i] - vals[i-1]) / s
			if x > 1000 {
				continue // relative rounding error grows with the gap
			}
			total++
			if math.Abs(x-math.Round(x)) < 0.02 {
				good++
			}
		}
		if total > 0 && good*10 >= total*9 {
			return s
		}
	}
	return 0
}

// refineScale re-estimates s by least squares over the values whose k is
// small enough to be right at the current precision, widening as s improves.
func refineScale(vals []float64, s float64) float64 {
	for lim := 16.0; lim < 16*maxMappedInt; lim *= 16 {
		var num, den float64
		wider := false // a value on the scale was left out: widen and repeat
		for _, v := range vals {
			k, ok := onScale(v, s)
			switch {
			case ok && math.Abs(k) <= lim:
				num += v * k
				den += k * k
			case ok:
				wider = true
			}
		}
		if den > 0 {
			s = num / den
		}
		if !wider {
			return s
		}
	}
	return s
}

// narrowScale intersects, over every finite value, the interval of scales that
// round k·s to exactly that value, and returns its middle; if the values
// disagree (some are not multiples) it returns s unchanged.
func narrowScale(vals []float64, s float64, f32 bool) float64 {
	lo, hi := 0.0, math.Inf(1)
	for _, v := range vals {
		k, ok := onScale(v, s) // false for NaN and ±Inf too
		if !ok {
			continue
		}
		h := halfULP(v, f32)
		a, b := (v-h)/k, (v+h)/k
		if a > b {
			a, b = b, a
		}
		lo, hi = max(lo, a), min(hi, b)
	}
	if lo > hi || math.IsInf(hi, 0) {
		return s
	}
	return lo + (hi-lo)/2
}

// halfULP is half the spacing of the sample type's floats at v.
func halfULP(v float64, f32 bool) float64 {
	if f32 {
		x := float32(math.Abs(v))
		return float64(math.Nextafter32(x, float32(math.Inf(1)))-x) / 2
	}
	x := math.Abs(v)
	return (math.Nextafter(x, math.Inf(1)) - x) / 2
}
