package codecs

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"

	"github.com/sensorium-io/sensorium/signals"
)

// Version 2 of the compact coding (FORMAT.md, "Compact frame, version 2"):
// the bit coding of codec 8 (Compact2) and of the columns of a compact
// columnar frame of version 4. Version 1 (codec 7, columnar version 2) is
// still read. What changed, each for bits the first version spent on every
// frame:
//
//   - a value's width field is as wide as the channel's type needs (5 bits
//     for int16, 6 for int32 and mapped floats, 7 for xor) instead of 7;
//   - an integer channel writes no kind;
//   - a scale may be a decimal number of degrees in radians (a sensor's
//     0.1° resolution, which version 1 could only write as a 32-bit float)
//     or m / 2^e (the 0.25 dB of a Q2 fixed-point field);
//   - residuals after the first are Rice codes or Exp-Golomb codes, as the
//     writer finds smaller (one bit says which), and the parameter is an
//     Elias gamma code instead of six bits. Exp-Golomb suits what a
//     detection list is made of: small steps within a target, and jumps
//     between targets that a Rice code would escape at a cost of 23 bits and
//     more.

// Compact2 is codec 8: a compact frame whose body is in the coding of
// version 2, and whose header folds "the start is on a millisecond" into the
// sample count's varint.
const Compact2 ID = 8

// ColumnarCompact2Version is the version byte of a compact columnar frame
// whose columns are in version 2 of the compact coding.
const ColumnarCompact2Version = 4

type compact2 struct{}

func init() {
	if err := Register(compact2{}); err != nil {
		panic(err)
	}
}

func (compact2) ID() ID       { return Compact2 }
func (compact2) Name() string { return "compact2" }

func (compact2) AppendEncoded(dst []byte, s *signals.Samples) ([]byte, error) {
	if err := s.CheckLengths(); err != nil {
		return dst, fmt.Errorf("codecs: compact2: encode: %w", err)
	}
	return appendCompact(dst, s, nil, true), nil
}

func (compact2) Decode(src []byte, desc *signals.Scalar, n int, s *signals.Samples) error {
	t, channels, err := bodyShape(desc, n)
	if err != nil {
		return fmt.Errorf("codecs: compact2: decode: %w", err)
	}
	// Checked before Reset allocates: every value takes at least one bit.
	if uint64(n)*uint64(channels) > uint64(len(src))*8 {
		return fmt.Errorf("codecs: compact2: decode: %w: %d bytes cannot hold %d samples × %d channels", ErrCorrupt, len(src), n, channels)
	}
	s.Reset(t, channels, n)
	sc := numericPool.Get().(*numericScratch)
	defer numericPool.Put(sc)
	sc.compactScale = 0
	return decodeCompactBody(src, s, sc, true)
}

// appendCompact2Frame appends the Compact2 frame of s: the codec byte, a
// uvarint n × 2 + (1 if the start is off the block time), then the start's
// distance from the block time (zig-zag varint) only if it is not 0.
func appendCompact2Frame(dst []byte, s *signals.Samples, hints []mappingHint) []byte {
	d := s.Start - floorMillisecond(s.Start)
	dst = append(dst, byte(Compact2))
	if d == 0 {
		dst = binary.AppendUvarint(dst, uint64(s.N)<<1)
	} else {
		dst = binary.AppendUvarint(dst, uint64(s.N)<<1|1)
		dst = binary.AppendVarint(dst, d)
	}
	return appendCompact(dst, s, hints, true)
}

// parseCompact2Header reads a Compact2 frame's header; Start is the
// distance from the block time.
func parseCompact2Header(src []byte) (ScalarHeader, error) {
	v, k := binary.Uvarint(src[1:])
	if k <= 0 || v>>1 > MaxScalarFrameSamples || v>>1 > math.MaxInt {
		return ScalarHeader{}, fmt.Errorf("%w: compact2 frame sample count", ErrCorrupt)
	}
	h := ScalarHeader{Codec: Compact2, N: int(v >> 1), Size: 1 + k, FromBlock: true}
	if v&1 == 1 {
		d, k2 := binary.Varint(src[h.Size:])
		if k2 <= 0 || d == 0 { // a start on the block time is said by the count's bit
			return ScalarHeader{}, fmt.Errorf("%w: compact2 frame start", ErrCorrupt)
		}
		h.Start, h.Size = d, h.Size+k2
	}
	return h, nil
}

// compactCoding is how a compact channel's values are written: the coding's
// version, and in version 2 the size of a value's width field.
type compactCoding struct {
	v2    bool
	width uint // bits of a width field
}

// newCompactCoding returns the coding of a channel of type t (xor: its IEEE
// bits XOR the previous value's).
func newCompactCoding(v2 bool, t signals.SampleType, xor bool) compactCoding {
	switch {
	case !v2 || xor:
		return compactCoding{v2: v2, width: 7} // up to 64 bits
	case t == signals.Int16:
		return compactCoding{v2: true, width: 5} // an order-2 residual of int16 takes ≤ 19 bits
	default:
		return compactCoding{v2: true, width: 6} // int32 ≤ 35 bits, a float's k ≤ 57 bits
	}
}

// Exp-Golomb escape: a value whose prefix would be egEscape ones or more is
// written as that many ones and the value in a width of its own.
const egEscape = 24

// Residual coders of version 2, 1 bit.
const (
	coderRice = 0
	coderEG   = 1
)

// writeCompactResiduals2 writes r in version 2: the first value in a width
// of its own, then (if more follow) the coder bit, gamma(parameter + 1) and
// each value under the coder and parameter that make them smallest.
func writeCompactResiduals2(bw *bitWriter, r []uint64, cv compactCoding) {
	w0 := uint(bits.Len64(r[0]))
	bw.write(uint64(w0), cv.width)
	bw.writeWide(r[0], w0)
	rest := r[1:]
	if len(rest) == 0 {
		return
	}
	var sum uint64
	for _, u := range rest {
		sum += min(u, 1<<56)
	}
	mid := bits.Len64(sum / uint64(len(rest)))
	bestCoder, bestK, bestCost := coderRice, 0, -1
	try := func(coder, k int) {
		cost := gammaLen(uint64(k) + 1)
		for _, u := range rest {
			if coder == coderRice {
				cost += riceCost2(u, uint(k), cv)
			} else {
				cost += egCost(u, uint(k), cv)
			}
		}
		if bestCost < 0 || cost < bestCost {
			bestCoder, bestK, bestCost = coder, k, cost
		}
	}
	for k := max(mid-3, 0); k <= min(mid+2, 63); k++ {
		try(coderRice, k)
	}
	for k := max(mid-6, 0); k <= min(mid+1, 63); k++ {
		try(coderEG, k)
	}
	bw.write(uint64(bestCoder), 1)
	writeGamma(bw, uint64(bestK)+1)
	for _, u := range rest {
		if bestCoder == coderRice {
			writeRice2(bw, u, uint(bestK), cv)
		} else {
			writeEG(bw, u, uint(bestK), cv)
		}
	}
}

// gammaLen is the length of v's Elias gamma code.
func gammaLen(v uint64) int { return 2*bits.Len64(v) - 1 }

func riceCost2(u uint64, k uint, cv compactCoding) int {
	if q := u >> k; q < compactEscape {
		return int(q) + 1 + int(k)
	}
	return compactEscape + int(cv.width) + bits.Len64(u)
}

func writeRice2(bw *bitWriter, u uint64, k uint, cv compactCoding) {
	if u>>k >= compactEscape {
		bw.write(1<<compactEscape-1, compactEscape)
		w := uint(bits.Len64(u))
		bw.write(uint64(w), cv.width)
		bw.writeWide(u, w)
		return
	}
	writeRice(bw, u, k)
}

// egPrefix returns the Exp-Golomb prefix length q of u under parameter k —
// v = (u >> k) + 1 takes q + 1 bits — and false when u must be escaped.
func egPrefix(u uint64, k uint) (uint, bool) {
	v := u>>k + 1
	if v == 0 { // u>>k was 2^64 − 1
		return 0, false
	}
	q := uint(bits.Len64(v)) - 1
	return q, q < egEscape
}

func egCost(u uint64, k uint, cv compactCoding) int {
	if q, ok := egPrefix(u, k); ok {
		return int(2*q+1) + int(k)
	}
	return egEscape + int(cv.width) + bits.Len64(u)
}

// writeEG writes u as q ones and a zero, the q bits of v = (u >> k) + 1
// below its top bit, and the low k bits of u.
func writeEG(bw *bitWriter, u uint64, k uint, cv compactCoding) {
	q, ok := egPrefix(u, k)
	if !ok {
		bw.write(1<<egEscape-1, egEscape)
		w := uint(bits.Len64(u))
		bw.write(uint64(w), cv.width)
		bw.writeWide(u, w)
		return
	}
	v := u>>k + 1
	bw.write(1<<q-1, q+1)
	if q > 0 {
		bw.writeWide(v&(1<<q-1), q)
	}
	if k > 0 {
		bw.writeWide(u&(1<<k-1), k)
	}
}

// residuals2 reads what writeCompactResiduals2 wrote.
func (r *compactReader) residuals2(out []uint64, cv compactCoding) error {
	escaped := func() (uint64, error) {
		w := uint(r.read(cv.width))
		if w > 64 {
			return 0, fmt.Errorf("%w: compact value width %d", ErrCorrupt, w)
		}
		return r.read(w), nil
	}
	w0 := uint(r.read(cv.width))
	if w0 > 64 {
		return fmt.Errorf("%w: compact value width %d", ErrCorrupt, w0)
	}
	out[0] = r.read(w0)
	if len(out) == 1 {
		return nil
	}
	coder := r.read(1)
	kk, ok := r.gamma()
	if !ok || kk-1 > 63 {
		return fmt.Errorf("%w: compact coder parameter", ErrCorrupt)
	}
	k := uint(kk - 1)
	limit := compactEscape
	if coder == coderEG {
		limit = egEscape
	}
	for i := 1; i < len(out); i++ {
		q, ended := r.unary(limit)
		if !ended {
			if r.used > r.size {
				return fmt.Errorf("%w: compact stream truncated", ErrCorrupt)
			}
			u, err := escaped()
			if err != nil {
				return err
			}
			out[i] = u
			continue
		}
		if coder == coderRice {
			out[i] = uint64(q)<<k | r.read(k)
			continue
		}
		if uint(q)+k > 64 { // (v − 1) << k would not fit 64 bits
			return fmt.Errorf("%w: compact Exp-Golomb code of %d + %d bits", ErrCorrupt, q, k)
		}
		v := uint64(1)<<q | r.read(uint(q))
		out[i] = (v-1)<<k | r.read(k)
	}
	if r.used > r.size {
		return fmt.Errorf("%w: compact stream truncated", ErrCorrupt)
	}
	return nil
}

// degreeRadians is π/180 rounded to float64 (bits 0x3f91df46a2529d39): a
// degree in radians, as drivers that report angles in radians convert them.
const degreeRadians = math.Pi / 180

// degreeScaleValue is the scale m / 10^e degrees in radians, each operation
// rounded to float64.
func degreeScaleValue(m uint64, e uint8) float64 {
	return float64(m) / pow10[e] * degreeRadians
}

// degreeScale finds a small m and e with m / 10^e degrees within a part in
// 10^9 of s radians: a sensor's angular resolution (0.1°, 0.01°).
func degreeScale(s float64) (uint64, uint8, bool) {
	m, e, ok := decimalScale(s / degreeRadians)
	if !ok || math.Abs(degreeScaleValue(m, e)-s) > 1e-9*s {
		return 0, 0, false
	}
	return m, e, true
}

// binaryScale finds m < 2^20 and e ≤ 63 with m / 2^e equal to s: a
// fixed-point field's resolution (0.25, 1/256).
func binaryScale(s float64) (uint64, uint8, bool) {
	for e := 0; e <= 63; e++ {
		m := math.Ldexp(s, e)
		if m >= 1<<20 {
			return 0, 0, false
		}
		if m >= 1 && m == math.Trunc(m) {
			return uint64(m), uint8(e), true
		}
	}
	return 0, 0, false
}
