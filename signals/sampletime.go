package signals

import (
	"math"
	"math/bits"
)

// Sample times.
//
// SampleTime is THE definition of when a sample was taken; producers, the
// server and readers all call it, so they agree to the nanosecond:
//
//	SampleTime(start, i) = start + round(i × 10⁹ / r) ns
//
// where r is the exact value of the float64 SampleRate (25600, or
// 0.1000000000000000055511151231257827 for 0.1) and round takes halves away
// from zero. It is computed in 128-bit integer arithmetic, not in float64,
// because float64 holds i×10⁹/r only to within 64 ns once it passes 2⁵³ ns
// (104 days), and because an exact rule is one another language reproduces
// (Python: start + round_half_away(Fraction(i) * 10**9 / Fraction(rate))).
//
// Blocks and contiguity. A producer keeps a running sample index n from a stream
// origin t0 and stamps the block that begins at index n with
// Start = SampleTime(t0, n); it never derives one block's start from the
// previous block's start, which would add one rounding per block and drift
// (about 150 µs over 10⁹ samples of 44.1 kHz in 2560-sample blocks). A reader
// knows only a block's Start and computes SampleTime(Start, i), which differs
// from the producer's SampleTime(t0, n+i) by at most 1 ns (two roundings
// instead of one). For the same reason block k+1 is contiguous with block k
// exactly when its Start is within 1 ns of SampleTime(Start_k, N_k); see
// Contiguous.
//
// Results beyond the int64 range saturate at math.MinInt64 or math.MaxInt64
// rather than wrap. On a description whose rate is invalid (see Validate) the
// functions still return without panicking, from a float64 computation.

// SampleTime returns the time in ns of sample i of a block whose sample 0 is at
// start. i may be negative (a sample before start).
func (d *Scalar) SampleTime(start int64, i int) int64 {
	c, ok := newClock(d.SampleRate)
	if !ok {
		return floatSampleTime(d.SampleRate, start, i)
	}
	return c.time(start, i)
}

// SampleTimes appends SampleTime(start, i) for i in [0, n) to dst: the time
// column of a block, at a few ns per sample instead of one 128-bit division
// each.
func (d *Scalar) SampleTimes(dst []int64, start int64, n int) []int64 {
	if n <= 0 {
		return dst
	}
	base := len(dst)
	if cap(dst)-base < n {
		grown := make([]int64, base, base+n)
		copy(grown, dst)
		dst = grown
	}
	dst = dst[:base+n]
	out := dst[base:]
	c, ok := newClock(d.SampleRate)
	if !ok {
		for i := range out {
			out[i] = floatSampleTime(d.SampleRate, start, i)
		}
		return dst
	}
	// Times grow with i, so if the last one does not saturate none does and the
	// running sums below stay in range.
	if last, fits := c.offset(uint64(n - 1)); !fits || last > roomAbove(start) {
		for i := range out {
			out[i] = c.time(start, i)
		}
		return dst
	}
	// Step the exact offset i×q + i×r/den: whole is its integer part and acc the
	// numerator of its fraction, so no division happens in the loop.
	half := c.den - c.den/2 // acc ≥ half ⟺ fraction ≥ ½
	var whole, acc uint64
	for i := range out {
		off := whole
		if acc >= half {
			off++
		}
		out[i] = int64(uint64(start) + off)
		whole += c.q
		acc += c.r
		if acc >= c.den {
			acc -= c.den
			whole++
		}
	}
	return dst
}

// Contiguous reports whether a block starting at next directly follows a block
// of prevN samples starting at prev, that is whether next is within 1 ns of
// SampleTime(prev, prevN). The 1 ns is the rounding that stamping each block
// from a running index (see SampleTime) allows; anything more is a gap or an
// overlap.
func (d *Scalar) Contiguous(prev int64, prevN int, next int64) bool {
	want := d.SampleTime(prev, prevN)
	switch {
	case next == want:
		return true
	case next > want:
		return next-want == 1 // no overflow: both are int64 and next > want
	default:
		return want-next == 1
	}
}

// clock is a sample period as an exact rational number of ns: q + r/den, with
// r < den. For a rate mant×2^e (mant odd) the period is 10⁹×2^-e / mant when
// e < 0 and 10⁹ / (mant×2^e) otherwise.
type clock struct {
	q, r, den uint64
}

// newClock returns the clock of rate, or false when rate is outside
// [MinSampleRate, MaxSampleRate] (or NaN). Within those bounds every quantity
// below fits: den < 2⁵³, the shifted numerator < 2¹¹³, q ≤ 10¹⁸.
func newClock(rate float64) (clock, bool) {
	if !(rate >= MinSampleRate && rate <= MaxSampleRate) {
		return clock{}, false
	}
	b := math.Float64bits(rate)
	mant := b&(1<<52-1) | 1<<52 // rate is normal: MinSampleRate is far above the subnormals
	e := int(b>>52&0x7ff) - 1075
	tz := bits.TrailingZeros64(mant)
	mant >>= uint(tz)
	e += tz
	if e >= 0 {
		den := mant << uint(e) // == rate, an integer ≤ MaxSampleRate
		return clock{q: 1e9 / den, r: 1e9 % den, den: den}, true
	}
	const ns = uint64(1e9)
	s := uint(-e)
	var hi, lo uint64
	if s >= 64 {
		hi = ns << (s - 64)
	} else {
		hi, lo = ns>>(64-s), ns<<s
	}
	if hi >= mant { // the quotient would not fit; impossible within the bounds
		return clock{}, false
	}
	q, r := bits.Div64(hi, lo, mant)
	return clock{q: q, r: r, den: mant}, true
}

// offset returns round(u × period) for u ≥ 0, or false when it passes 2⁶⁴-1.
func (c clock) offset(u uint64) (uint64, bool) {
	hi, whole := bits.Mul64(u, c.q)
	if hi != 0 {
		return 0, false
	}
	// u×r/den < u because r < den, so the high word is below den and Div64
	// cannot overflow.
	fhi, flo := bits.Mul64(u, c.r)
	fq, frem := bits.Div64(fhi, flo, c.den)
	off, carry := bits.Add64(whole, fq, 0)
	if carry != 0 {
		return 0, false
	}
	if frem >= c.den-frem { // fraction ≥ ½: round away from zero
		if off == math.MaxUint64 {
			return 0, false
		}
		off++
	}
	return off, true
}

func (c clock) time(start int64, i int) int64 {
	if i >= 0 {
		off, ok := c.offset(uint64(i))
		return addSat(start, off, ok)
	}
	off, ok := c.offset(uint64(-(i + 1)) + 1) // |i| without overflowing at math.MinInt
	return subSat(start, off, ok)
}

// floatSampleTime serves descriptions with an invalid rate, so that SampleTime
// never panics; its results mean little.
func floatSampleTime(rate float64, start int64, i int) int64 {
	x := float64(i) * 1e9 / rate
	if math.IsNaN(x) {
		return start
	}
	a := math.Round(math.Abs(x))
	ok := a < (1 << 64)
	var off uint64
	if ok {
		off = uint64(a)
	}
	if x >= 0 {
		return addSat(start, off, ok)
	}
	return subSat(start, off, ok)
}

// roomAbove is math.MaxInt64 - start as a uint64; the modular subtraction is
// exact because the true difference is in [0, 2⁶⁴).
func roomAbove(start int64) uint64 { return uint64(math.MaxInt64) - uint64(start) }

func addSat(start int64, off uint64, ok bool) int64 {
	if !ok || off > roomAbove(start) {
		return math.MaxInt64
	}
	return int64(uint64(start) + off)
}

func subSat(start int64, off uint64, ok bool) int64 {
	// start - math.MinInt64, computed modulo 2⁶⁴ like roomAbove.
	if !ok || off > uint64(start)+1<<63 {
		return math.MinInt64
	}
	return int64(uint64(start) - off)
}
