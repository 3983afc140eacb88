package codecs

import (
	"math"
	"slices"

	"github.com/sensorium-io/sensorium/signals"
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
	mode   byte // modeScale, modeDecimal, modeAffine or modeXor
	scale  float64
	offset float64 // modeAffine
	exp    byte
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
	exc, _ = m.applyUpTo(f, k, exc, f32, len(f))
	return exc
}

// applyUpTo is apply that gives up, returning false, once more than limit
// values are exceptions; k is then only partly filled. It gives each value
// the k and verdict toInt gives, by a faster route (mapInts).
func (m floatMapping) applyUpTo(f []float64, k []int64, exc []int, f32 bool, limit int) ([]int, bool) {
	if f32 {
		return mapInts[float64, float32](m, f, 0, 1, k[:len(f)], exc, limit)
	}
	return mapInts[float64, float64](m, f, 0, 1, k[:len(f)], exc, limit)
}

// applySamples is applyUpTo on channel c of s (float32 or float64) read in
// place: a frame that its remembered mapping fits needs no widened copy.
func (m floatMapping) applySamples(s *signals.Samples, c int, k []int64, exc []int, limit int) ([]int, bool) {
	if s.Type == signals.Float32 {
		return mapInts[float32, float32](m, s.F32, c, s.Channels, k[:s.N], exc, limit)
	}
	return mapInts[float64, float64](m, s.F64, c, s.Channels, k[:s.N], exc, limit)
}

// mapSlow is mapInts value by value through toInt, for scales whose
// reciprocal is not a normal float.
func mapSlow[S float32 | float64](m floatMapping, src []S, at, stride int, k []int64, exc []int, f32 bool, limit int) ([]int, bool) {
	var prev int64
	for i, j := 0, at; i < len(k); i, j = i+1, j+stride {
		if x, ok := m.toInt(float64(src[j]), f32); ok {
			prev = x
		} else if exc = append(exc, i); len(exc) > limit {
			return exc, false
		}
		k[i] = prev
	}
	return exc, true
}

// Rounding by the float adder: for |x| < 2^51, (x + roundMagic) − roundMagic
// is x rounded to the nearest integer, ties to even, in two additions
// (math.Round is a call of some twenty instructions on amd64).
const (
	roundMagic = 0x1.8p52
	fastIntMax = 1 << 45 // |x| below which a reciprocal's quotient is close enough (mapInts)
)

// mapInts is apply's loop for one sample type T (the rounding of the check
// is a conversion, not a branch, in each instantiation), over the values
// src[at], src[at+stride], … (len(k) of them): a channel of interleaved
// samples read in place, or a slice. It gives each value exactly toInt's k
// and verdict, faster:
//
//   - a scale mapping's quotient v / scale is taken as v × (1 / scale). That
//     product is within 2^-51 of |v / scale| relatively (two roundings of
//     2^-53, the reciprocal being a normal float): below 2^45 it is off by
//     less than 2^-6, so when it lies within 0.25 of an integer, v / scale
//     rounds to the same integer. Otherwise (a value off the grid, a
//     special, a huge quotient) toInt decides. The tests cannot tell a
//     looser bound from this one (values both integers near a tie map back
//     to are too rare to meet by chance): this bound is what keeps k.
//   - the quotient (or a decimal's product v × 10^e) is rounded by
//     roundMagic, which differs from math.Round only on ties (x.5): those,
//     and values too large for it, go to toInt.
//
// The check that k gives back v is toInt's, to the bit.
func mapInts[S, T float32 | float64](m floatMapping, src []S, at, stride int, k []int64, exc []int, limit int) ([]int, bool) {
	_, f32 := any(T(0)).(float32)
	if len(k) > 0 && at+(len(k)-1)*stride >= len(src) {
		panic("codecs: mapInts: source too short")
	}
	var inv, p float64
	if m.mode == modeScale {
		if inv = 1 / m.scale; !(inv >= 0x1p-1022 && inv <= math.MaxFloat64) { // not a normal float: the bound above does not hold
			return mapSlow(m, src, at, stride, k, exc, f32, limit)
		}
	} else {
		p = pow10[m.exp]
	}
	for i := 0; i < len(k); i++ {
		// The runs take the values they can, and stop at one that toInt
		// must decide or that is an exception: calls and appends stay out
		// of their loops, which keep everything in registers.
		if m.mode == modeScale {
			i = scaledInts[S, T](src, at, stride, k, i, inv, m.scale)
		} else {
			i = decimalInts[S, T](src, at, stride, k, i, p)
		}
		if i == len(k) {
			break
		}
		var prev int64 // an exception's k repeats the one before (which is k[i-1] also after one)
		if i > 0 {
			prev = k[i-1]
		}
		x, ok := m.toInt(float64(src[at+i*stride]), f32)
		if !ok {
			if exc = append(exc, i); len(exc) > limit {
				return exc, false
			}
			x = prev
		}
		k[i] = x
	}
	return exc, true
}

// scaledInts maps values from the i-th on by a scale s whose reciprocal is
// inv, as mapInts describes, into k, and returns the index of the first it
// cannot take: one whose quotient is not within 0.25 of an integer below
// 2^45, or an exception.
func scaledInts[S, T float32 | float64](src []S, at, stride int, k []int64, i int, inv, s float64) int {
	for j := at + i*stride; i < len(k); i, j = i+1, j+stride {
		v := float64(src[j])
		x := v * inv
		r := (x + roundMagic) - roundMagic
		kk := int64(r)
		// |x − r| ≤ 0.25 as a square (math.Abs goes through an integer
		// register on amd64; NaN fails the comparison) and |k| < 2^45 as
		// one unsigned comparison (a NaN or huge r converts to −2^63).
		if d := x - r; !(d*d <= 0.25*0.25 && uint64(kk+fastIntMax) < 2*fastIntMax) {
			return i
		}
		if math.Float64bits(float64(T(float64(kk)*s))) != math.Float64bits(v) {
			return i
		}
		k[i] = kk
	}
	return i
}

// decimalInts is scaledInts for a decimal mapping (p = 10^e): it stops at a
// value whose product is a tie or not below 2^45, or an exception.
func decimalInts[S, T float32 | float64](src []S, at, stride int, k []int64, i int, p float64) int {
	for j := at + i*stride; i < len(k); i, j = i+1, j+stride {
		v := float64(src[j])
		x := v * p
		r := (x + roundMagic) - roundMagic
		kk := int64(r)
		if d := x - r; !(d*d < 0.5*0.5 && uint64(kk+fastIntMax) < 2*fastIntMax) {
			return i
		}
		if math.Float64bits(float64(T(float64(kk)/p))) != math.Float64bits(v) {
			return i
		}
		k[i] = kk
	}
	return i
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

// mappingHint is what the encoder of one channel of a track remembers from
// frame to frame: the mapping the last frame used. A sensor's scale or
// decimal step does not change between frames, and finding it costs more than
// coding the frame, so a frame first tries the remembered mapping and
// searches again only when it leaves too many exceptions. A channel whose
// values fit no mapping (xor) searches again every xorRetry frames, in case
// the signal changed. The zero value remembers nothing.
type mappingHint struct {
	m     floatMapping // the last mapping found (not xor)
	valid bool         // m is set
	xor   bool         // the last search found no mapping: xor
	since int          // frames coded with xor since that search
}

const xorRetry = 16

// choose returns the mapping for f; h may be nil (no memory). A remembered
// mapping is tried even after frames that needed xor (a NaN gap, a burst of
// saturation), since it costs one pass to check.
func (h *mappingHint) choose(f []float64, f32 bool) floatMapping {
	if h == nil {
		return chooseFloatMapping(f, f32)
	}
	if h.valid {
		if h.m.mode == modeAffine {
			if _, corr := affineCost(f, h.m.scale, h.m.offset, f32); corr <= maxHintCorrectionBits*float64(len(f)) {
				return h.m
			}
		} else if exc, _ := h.m.cost(f, f32); exc <= len(f)/maxHintExceptionShare {
			return h.m
		}
	}
	return h.search(f, f32)
}

// chooseApplied is choose for channel c of s (float32 or float64)
// followed, for a scale or decimal mapping, by apply into sc.k and sc.exc;
// it reports whether they hold the mapped channel. A remembered scale or
// decimal mapping is checked by applying it to the samples in place, which
// tells its exceptions as cost does, so that a frame it fits (nearly every
// frame of a track) is mapped in one pass, without the widened copy in sc.f
// that choosing needs; whenever it returns false, sc.f holds that copy. h
// may be nil.
func (h *mappingHint) chooseApplied(s *signals.Samples, c int, sc *numericScratch) (floatMapping, bool) {
	n := s.N
	sc.k = resizeSlice(sc.k, n)
	if h != nil && h.valid && h.m.mode != modeAffine {
		exc, ok := h.m.applySamples(s, c, sc.k, sc.exc[:0], n/maxHintExceptionShare)
		sc.exc = exc
		if ok {
			return h.m, true
		}
	}
	sc.f = resizeSlice(sc.f, n)
	if s.Type == signals.Float32 {
		for i := range n {
			sc.f[i] = float64(s.F32[i*s.Channels+c])
		}
	} else {
		for i := range n {
			sc.f[i] = s.F64[i*s.Channels+c]
		}
	}
	f32 := s.Type == signals.Float32
	if h != nil && h.valid && h.m.mode != modeAffine {
		return h.search(sc.f, f32), false
	}
	return h.choose(sc.f, f32), false
}

// search is choose once the remembered mapping (if any) has not fitted.
func (h *mappingHint) search(f []float64, f32 bool) floatMapping {
	if h.xor && h.since < xorRetry {
		h.since++
		return floatMapping{mode: modeXor}
	}
	m := chooseFloatMapping(f, f32)
	if m.mode == modeXor {
		h.xor, h.since = true, 0
	} else {
		h.m, h.valid, h.xor = m, true, false
	}
	return m
}

// maxHintExceptionShare: a remembered mapping is kept while it leaves at most
// 1/64 of a frame's values as exceptions (NaN gaps, saturation), well below
// the 1/8 at which a mapping is given up.
const maxHintExceptionShare = 64

// maxHintCorrectionBits: a remembered affine mapping is kept while its
// corrections average at most this many bits a value (a fitted channel's
// are mostly 0 and ±1).
const maxHintCorrectionBits = 3

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
	vals := distinctFinite(f, maxScaleProbe)
	unit, rel := unitFromGaps(vals, f32)
	if s, ok := exactScale(f, vals, unit, rel, f32); ok {
		cands = append(cands, floatMapping{mode: modeScale, scale: s})
	}
	// Score each by what it will cost: the bits of its integers' steps (a
	// decimal 10^-8 and a scale 2^-8 may both be exact, with very different
	// k) plus its exceptions, stored verbatim — against what xor costs. NaN
	// gaps and saturated runs make exceptions; they decide by their cost,
	// not by their number.
	size := 8.0
	if f32 {
		size = 4
	}
	best, bestCost := floatMapping{mode: modeXor}, xorCost(f, f32)
	exact := false // a mapping gives back nearly every value exactly
	for _, m := range cands {
		exc, bitsK := m.cost(f, f32)
		// On a tie the first mapping wins over a later one, any mapping over
		// xor (a constant costs 0 bits either way).
		if c := bitsK + float64(exc)*(size+1)*8; c < bestCost || (c == bestCost && best.mode == modeXor) {
			best, bestCost = m, c
			exact = exc <= len(f)/maxHintExceptionShare
		}
	}
	if exact {
		return best
	}
	if scale, offset, ok := fitAffine(vals, unit, rel); ok {
		cands := []floatMapping{{mode: modeAffine, scale: scale, offset: narrowOffset(vals, scale, offset, f32)}}
		if s, o, ok := extremeSlope(vals, scale, offset); ok {
			cands = append(cands, floatMapping{mode: modeAffine, scale: s, offset: narrowOffset(vals, s, o, f32)})
		}
		for _, m := range cands {
			if !m.validAffine() { // extremes of ±MaxFloat64 overflow the fit
				continue
			}
			steps, corr := affineCost(f, m.scale, m.offset, f32)
			// The affine mode pays 8 more bytes and a second stream; it must
			// beat the others by more than that.
			if c := steps + corr + 64; c < bestCost {
				best, bestCost = m, c
			}
		}
	}
	return best
}

// cost returns how many values of f m leaves as exceptions and the bit
// lengths of the steps between the integers it maps the others to, summed:
// about what the residuals of an order-1 prediction cost.
func (m floatMapping) cost(f []float64, f32 bool) (int, float64) {
	exc, total := 0, 0
	var prev int64
	for _, v := range f {
		k, ok := m.toInt(v, f32)
		if !ok {
			exc++
			continue
		}
		total += bitLen(zigzag(k - prev))
		prev = k
	}
	return exc, float64(total)
}

// xorCost is the bit lengths of the XORs of neighbouring values, summed:
// what the xor mode's residuals cost.
func xorCost(f []float64, f32 bool) float64 {
	total := 0
	var prev uint64
	for _, v := range f {
		b := math.Float64bits(v)
		if f32 {
			b = uint64(math.Float32bits(float32(v)))
		}
		total += bitLen(b ^ prev)
		prev = b
	}
	return float64(total)
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

// exactScale finds s such that the channel's values are integers times s,
// rounded to the sample type — the shape of every ADC's output, whatever the
// chain's sensitivity (9.80665/2²³ g per count as readily as 2⁻¹⁰). It starts
// from the unit of the gaps between neighbouring distinct values
// (unitFromGaps, known to the relative error rel) and narrows it to the
// interval every value allows: v was rounded from k·s, so s lies within half
// an ulp of v, divided by k.
func exactScale(f, vals []float64, s, rel float64, f32 bool) (float64, bool) {
	if !(s > 0) || math.IsInf(s, 0) {
		return 0, false
	}
	// The gaps fix s to a few parts in 10^7: enough to know k for values of
	// up to some 10^5 counts. Those narrow s to the interval they allow,
	// which tells k for larger values, which narrow it further, until every
	// value of the channel has had its say and few are left as exceptions.
	for range 8 {
		next, nextRel, ok := narrowScale(f, s, rel, f32)
		if !ok {
			break
		}
		done := nextRel >= rel
		s, rel = next, nextRel
		if done {
			break
		}
	}
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

// maxScaleProbe bounds the values chooseFloatMapping sorts: enough that a frame of
// a high-amplitude signal still shows gaps of a few counts, few enough that
// sorting them costs less than coding the frame.
const maxScaleProbe = 1024

// A gap is the distance between two neighbouring distinct values, and err
// how far off it may be: both values were rounded to the sample type, by up
// to half an ulp each. Gaps near zero are exact to a tiny fraction of a count
// while gaps between large values may be off by a whole count (a float32
// holding 2²³ counts has no bits left), so the unit is found from the precise
// gaps and checked only against gaps precise enough to tell.
type gap struct{ g, err float64 }

// unitFromGaps returns the largest s of which (nearly) every precise gap is a
// whole multiple, or 0 when the values are not on a grid. The smallest
// precise gap is a few counts: d counts for the smallest d (1 to
// maxUnitDivisor) that makes the others whole multiples too, so gaps of 3 and
// 5 counts give 1 count even when no two values are 1 count apart.
func unitFromGaps(vals []float64, f32 bool) (s, rel float64) {
	if len(vals) < 2 {
		return 0, 0
	}
	gaps := make([]gap, 0, len(vals)-1)
	for i := 1; i < len(vals); i++ {
		g := vals[i] - vals[i-1]
		err := halfULP(vals[i], f32) + halfULP(vals[i-1], f32)
		if !f32 {
			err += halfULP(g, false) // the subtraction rounds too
		}
		if g > 0 && err < g*maxGapError {
			gaps = append(gaps, gap{g, err})
		}
	}
	if len(gaps) == 0 {
		return 0, 0
	}
	// The reference gap: among the smallest (from the 1st percentile up, so
	// that a stray subnormal next to 0 or another outlier does not decide the
	// unit), the one known to the smallest fraction of a count — between
	// values near zero, whose rounding is tiny.
	sizes := make([]float64, len(gaps))
	for i, g := range gaps {
		sizes[i] = g.g
	}
	slices.Sort(sizes)
	at := len(sizes) / 100
	small := sizes[min(len(sizes)-1, at+maxGapChecks/2)]
	q0, refMax := gap{err: math.Inf(1)}, sizes[min(len(sizes)-1, at+refCandidates)]
	for _, g := range gaps {
		if g.g >= sizes[at] && g.g <= refMax && (g.err < q0.err || (g.err == q0.err && g.g < q0.g)) {
			q0 = g
		}
	}
	rel = q0.err / q0.g
	// The checks: the small gaps (the few counts apart that pin the unit)
	// and a spread of the rest (a unit of 3 counts fits all the small ones of
	// a signal that moves in steps of 3).
	checks := make([]gap, 0, maxGapChecks+1)
	step := max(1, len(gaps)/(maxGapChecks/2))
	for i, g := range gaps {
		if (g.g <= small && len(checks) < maxGapChecks/2) || i%step == 0 {
			checks = append(checks, g)
		}
	}
	for d := 1; d <= maxUnitDivisor; d++ {
		s := q0.g / float64(d)
		if fitsUnit(checks, s, rel) {
			return refineUnit(gaps, s, rel)
		}
	}
	return 0, 0
}

// refineUnit improves s, known to a relative error rel, by least squares
// over the gaps whose multiple of s is certain at that precision, widening to
// larger gaps as the estimate sharpens: a unit from one gap of a few counts is
// good to 10⁻⁴, hundreds of gaps make it good to 10⁻⁹, which is what values
// of millions of counts need.
func refineUnit(gaps []gap, s, rel float64) (float64, float64) {
	for range 8 {
		var num, den, errSum float64
		left := 0
		for _, g := range gaps {
			x := g.g / s
			if x*rel+g.err/s > 0.05 {
				left++
				continue
			}
			m := math.Round(x)
			num += g.g * m
			den += m * m
			errSum += g.err * m
		}
		if den == 0 {
			return s, rel
		}
		s = num / den
		rel = max(errSum/den/s, 1e-15)
		if left == 0 {
			break
		}
	}
	return s, rel
}

// fitsUnit reports whether at least 90 % of the gaps that can tell (whose
// multiple of s is known to better than ±0.1) are whole multiples of s,
// within what their rounding allows, and enough of them can tell. rel is the
// relative error of s itself. It gives up early on a clear no: most trial
// units fail on the first few gaps.
func fitsUnit(gaps []gap, s, rel float64) bool {
	told, bad := 0, 0
	for _, g := range gaps {
		x := g.g / s
		u := x*rel + g.err/s // how far off x may be
		if u > 0.1 {
			continue
		}
		told++
		if math.Abs(x-math.Round(x)) > max(2*u, 1e-9) {
			bad++
			if bad >= 3 && bad*4 > told {
				return false
			}
		}
	}
	// A channel of a few levels has only a few gaps; what the mapping costs
	// decides then, after it is checked value by value.
	return told >= min(minGapEvidence, len(gaps)) && bad*10 <= told
}

const (
	maxGapError    = 1e-3 // a gap off by more than this share of itself is no evidence
	minGapEvidence = 8    // precise gaps needed to trust a unit
	maxGapChecks   = 128  // gaps checked against each trial unit
	maxUnitDivisor = 1024 // the smallest precise gap may be up to this many counts
	refCandidates  = 8    // the reference gap is one of the smallest few
)

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

// narrowScale intersects, over the values whose k is certain at s's relative
// error rel, the interval of scales that round k·s to exactly that value, and
// returns its middle and its half-width relative to it; ok is false if the
// values disagree (some are not multiples).
func narrowScale(vals []float64, s, rel float64, f32 bool) (float64, float64, bool) {
	lo, hi := 0.0, math.Inf(1)
	limit := 0.05 / rel // the largest |k| whose rounding s cannot get wrong
	for _, v := range vals {
		k, ok := onScale(v, s) // false for NaN and ±Inf too
		if !ok || math.Abs(k) > limit {
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
		return s, rel, false
	}
	mid := lo + (hi-lo)/2
	return mid, max((hi-lo)/2/mid, 1e-17), true
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
