package codecs

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/sensorium-io/sensorium/signals"
)

// The affine mode (FORMAT.md, "Numeric body", mode 4): v = k × scale +
// offset, computed in float64 and rounded to the sample type, then moved by a
// small number of representable steps (ulps). It is what the scale mode
// cannot be for real acquisition chains:
//
//   - a calibration offset (v = counts × sensitivity + zero), which no scale
//     without one fits;
//   - float64 values computed in more than one step (counts × gain ×
//     sensitivity), which round differently from k × s for some values, so
//     that no scale reproduces all of them exactly;
//   - a scale known only approximately.
//
// Each value's correction — its distance in ulps from what k gives — is coded
// as a second residual stream; for a well-fitted channel it is mostly 0 and
// costs a fraction of a bit. Specials (NaN, ±Inf, -0, subnormals) are
// corrections too, so the mode has no exceptions.

// ordered32 and ordered64 map float bits to integers in the order of the
// floats (-0 just below +0), so that the distance between two floats in
// representable steps is a subtraction. Each is its own inverse on the bits.
func ordered32(b uint32) int64 {
	x := int32(b)
	return int64(x ^ (x>>31)&math.MaxInt32)
}

func ordered64(b uint64) int64 {
	x := int64(b)
	return x ^ (x>>63)&math.MaxInt64
}

func unordered32(o int64) uint32 {
	x := int32(o)
	return uint32(x ^ (x>>31)&math.MaxInt32)
}

func unordered64(o int64) uint64 { return uint64(o ^ (o>>63)&math.MaxInt64) }

// affineOrdered is what k gives before its correction, as the ordered integer
// of the sample type.
func affineOrdered(k int64, scale, offset float64, f32 bool) int64 {
	// The conversion rounds the product before the add: without it the
	// compiler may fuse the two into one FMA (arm64 and amd64 v3 do), which
	// rounds once, and a frame written on one machine would read back a ulp
	// off on another. FORMAT.md specifies two roundings.
	return orderedValue(float64(float64(k)*scale)+offset, f32)
}

// orderedValue is the ordered integer of v rounded to the sample type.
func orderedValue(v float64, f32 bool) int64 {
	if f32 {
		return ordered32(math.Float32bits(float32(v)))
	}
	return ordered64(math.Float64bits(v))
}

// affineK is the integer of v under the mapping; a value with none (NaN, ±Inf,
// too far out) keeps the previous k and its correction carries it.
func affineK(v, scale, offset float64, prev int64) int64 {
	x := math.Round((v - offset) / scale)
	if !(math.Abs(x) < maxMappedInt) {
		return prev
	}
	return int64(x)
}

// applyAffine maps channel c of s (its values widened in f) to k and the
// corrections (zig-zagged into corr). The corrections are taken from the
// samples' own bits: widening a float32 to float64 and back quiets a
// signalling NaN.
func applyAffine(s *signals.Samples, c int, f []float64, k []int64, corr []uint64, scale, offset float64) {
	f32 := s.Type == signals.Float32
	var prev int64
	for i, v := range f {
		prev = affineK(v, scale, offset, prev)
		k[i] = prev
		var o int64
		if f32 {
			o = ordered32(math.Float32bits(s.F32[i*s.Channels+c]))
		} else {
			o = ordered64(math.Float64bits(s.F64[i*s.Channels+c]))
		}
		corr[i] = zigzag(o - affineOrdered(prev, scale, offset, f32))
	}
}

// affineCost estimates the bits of an affine channel: its k's steps and, as
// corr, its corrections — their bits, and the entropy of which of them are
// not zero (a stream of zeros costs next to nothing; one of scattered ±1 costs
// about a bit each on top of their own).
func affineCost(f []float64, scale, offset float64, f32 bool) (steps, corr float64) {
	ks, cs, nonzero := 0, 0, 0
	var prev int64
	for _, v := range f {
		k := affineK(v, scale, offset, prev)
		ks += bitLen(zigzag(k - prev))
		prev = k
		d := bitLen(zigzag(orderedValue(v, f32) - affineOrdered(k, scale, offset, f32)))
		cs += d
		if d > 0 {
			nonzero++
		}
	}
	if len(f) == 0 {
		return 0, 0
	}
	p := float64(nonzero) / float64(len(f))
	var h float64
	if p > 0 && p < 1 {
		h = -p*math.Log2(p) - (1-p)*math.Log2(1-p)
	}
	return float64(ks), float64(cs) + h*float64(len(f))
}

// fitAffine fits v = k × s + offset to the channel's distinct values (sorted),
// given the unit s of its steps (from the gaps, known to the relative error rel). k is counted from
// the channel's median so that the fit can start where k is small whatever
// the offset, and widens as the estimate sharpens, as narrowScale does.
func fitAffine(vals []float64, s, rel float64) (scale, offset float64, ok bool) {
	if len(vals) < 2 || !(s > 0) || !(rel > 0) {
		return 0, 0, false
	}
	mid := vals[len(vals)/2]
	fitted := false
	for range 10 {
		limit := 0.05 / rel // |k| up to this is certain at s's precision
		var n, sk, sv, skk, skv, maxK float64
		left := 0
		for _, v := range vals {
			k := math.Round((v - mid) / s)
			if math.Abs(k) > limit {
				left++
				continue
			}
			n++
			sk += k
			sv += v - mid
			skk += k * k
			skv += k * (v - mid)
			maxK = max(maxK, math.Abs(k))
		}
		den := n*skk - sk*sk
		if n < 2 || den <= 0 {
			break
		}
		slope := (n*skv - sk*sv) / den
		icpt := (sv - slope*sk) / n
		// A wrong k (the estimate was not as good as rel said) puts its
		// value a whole step off the line, where rounding puts none: then
		// keep the last good fit. The largest miss bounds how wrong the slope
		// can be at the largest k used.
		var worst float64
		consistent := true
		for _, v := range vals {
			k := math.Round((v - mid) / s)
			if math.Abs(k) > limit {
				continue
			}
			miss := math.Abs(v - mid - (k*slope + icpt))
			worst = max(worst, miss)
			if miss > slope/4 {
				consistent = false
			}
		}
		if !consistent {
			break
		}
		s, mid, fitted = slope, mid+icpt, true
		next := max(4*worst/(maxK*s+s), 1e-17)
		if left == 0 || next >= rel { // every value was used, or no sharper
			break
		}
		rel = next
	}
	if !fitted || !(s > 0) || math.IsInf(s, 0) || math.IsNaN(mid) || math.IsInf(mid, 0) {
		return 0, 0, false
	}
	return s, mid, true
}

// extremeSlope refits a fitted affine mapping's slope to the channel's
// extremes, whose distance is known to an ulp of the largest value over the
// most steps: for a float64 channel the fit is good to some 10⁻¹³, hundreds
// of ulps at a million counts, the extremes to about one. ok is false when
// they disagree with the fit (an outlier at either end).
func extremeSlope(vals []float64, s, mid float64) (float64, float64, bool) {
	lo, hi := vals[0], vals[len(vals)-1]
	klo, khi := math.Round((lo-mid)/s), math.Round((hi-mid)/s)
	if !(khi > klo) {
		return 0, 0, false
	}
	ext := (hi - lo) / (khi - klo)
	if !(math.Abs(ext/s-1) < 1e-6) {
		return 0, 0, false
	}
	// the offset that puts the extremes' midpoint where it belongs
	return ext, (lo + hi - (klo+khi)*ext) / 2, true
}

// appendAffine writes an affine channel: scale, offset, the predicted k and
// the corrections.
func appendAffine(dst []byte, m floatMapping, s *signals.Samples, c int, sc *numericScratch) []byte {
	n := len(sc.f)
	sc.k = resizeSlice(sc.k, n)
	sc.corr = resizeSlice(sc.corr, n)
	applyAffine(s, c, sc.f, sc.k, sc.corr, m.scale, m.offset)
	dst = append(dst, modeAffine)
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(m.scale))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(m.offset))
	dst = appendPredicted(dst, sc)
	return appendResiduals(dst, sc.corr)
}

// decodeAffineChannel reads an affine channel into channel c of s.
func decodeAffineChannel(src []byte, s *signals.Samples, c int, sc *numericScratch) ([]byte, error) {
	if len(src) < 16 {
		return nil, fmt.Errorf("%w: truncated affine mapping", ErrCorrupt)
	}
	scale := math.Float64frombits(binary.LittleEndian.Uint64(src))
	offset := math.Float64frombits(binary.LittleEndian.Uint64(src[8:]))
	if !(floatMapping{scale: scale, offset: offset}).validAffine() {
		return nil, fmt.Errorf("%w: affine mapping %v, %v", ErrCorrupt, scale, offset)
	}
	src, order, err := decodePredicted(src[16:], s.N, sc)
	if err != nil {
		return nil, err
	}
	defer sc.rr.release()
	sc.corrR = resizeSlice(sc.corrR, residualBlock)
	src, err = sc.corrRR.init(src, s.N)
	if err != nil {
		return nil, err
	}
	defer sc.corrRR.release()
	if s.Type == signals.Float32 {
		return src, storeAffine(s.F32, c, s.Channels, order, sc, scale, offset)
	}
	return src, storeAffine(s.F64, c, s.Channels, order, sc, scale, offset)
}

// storeAffine writes channel c of dst, block by block: k from the warm-up
// values and the residuals, then each value from k and its correction.
func storeAffine[T float32 | float64](dst []T, c, ch, order int, sc *numericScratch, scale, offset float64) error {
	f32 := isFloat32[T]()
	n := len(dst) / max(ch, 1)
	warm := sc.k[:min(order, n)]
	var a, b int64 // k[i-2], k[i-1]
	if len(warm) > 0 {
		b = warm[len(warm)-1]
	}
	if len(warm) > 1 {
		a = warm[0]
	}
	// k comes in blocks after the warm-up values and the corrections in
	// blocks from sample 0, so ks holds k for the samples of the current
	// correction block.
	ks := sc.kBlock[:0]
	ks = append(ks, warm...)
	kr := 0 // k residuals consumed of sc.r[:kn]
	kn := 0
	for i := 0; i < n; {
		cn, err := sc.corrRR.next(sc.corrR)
		if err != nil {
			return err
		}
		for len(ks) < cn {
			if kr == kn {
				if kn, err = sc.rr.next(sc.r); err != nil {
					return err
				}
				kr = 0
			}
			take := min(cn-len(ks), kn-kr)
			for _, u := range sc.r[kr : kr+take] {
				switch order {
				case 0:
					b = unzigzag(u)
				case 1:
					b += unzigzag(u)
				default:
					a, b = b, 2*b-a+unzigzag(u)
				}
				ks = append(ks, b)
			}
			kr += take
		}
		out := dst[i*ch:]
		for j, u := range sc.corrR[:cn] {
			o := affineOrdered(ks[j], scale, offset, f32) + unzigzag(u)
			if f32 {
				if o < math.MinInt32 || o > math.MaxInt32 {
					return fmt.Errorf("%w: correction at sample %d leaves float32", ErrCorrupt, i+j)
				}
				out[j*ch+c] = T(math.Float32frombits(unordered32(o)))
			} else {
				out[j*ch+c] = T(math.Float64frombits(unordered64(o)))
			}
		}
		ks = append(ks[:0], ks[cn:]...)
		i += cn
	}
	sc.kBlock = ks[:0]
	return nil
}

// narrowOffset re-anchors a fitted affine mapping at the channel's value of
// smallest magnitude and narrows its offset to what the values allow. A float
// is most precise near zero (a value of 0.001 has an ulp 3000 times finer
// than one of 3), and a least-squares offset is only as good as the average
// value: off by more than the small values' ulps, it would cost them
// corrections of several steps. Walking outward from zero, each value bounds
// the offset to within half its ulp of v − k·s; the walk stops at the first
// value that disagrees (an outlier, or the slope's own error showing).
func narrowOffset(vals []float64, s, o float64, f32 bool) float64 {
	// vals is sorted: start at the value nearest zero and walk outward.
	right, _ := slices.BinarySearch(vals, 0)
	left := right - 1
	k0 := math.NaN()
	lo, hi := math.Inf(-1), math.Inf(1)
	for left >= 0 || right < len(vals) {
		var v float64
		if right >= len(vals) || (left >= 0 && -vals[left] < vals[right]) {
			v, left = vals[left], left-1
		} else {
			v, right = vals[right], right+1
		}
		k := math.Round((v - o) / s)
		if math.IsNaN(k0) {
			k0 = k // the anchor: k counts from here
		}
		h := halfULP(v, f32)
		a, b := v-h-(k-k0)*s, v+h-(k-k0)*s
		if a > hi || b < lo {
			break
		}
		lo, hi = max(lo, a), min(hi, b)
	}
	if math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return o
	}
	return lo + (hi-lo)/2
}

// validAffine reports whether m is an affine mapping a decoder accepts.
func (m floatMapping) validAffine() bool {
	return m.scale > 0 && !math.IsInf(m.scale, 0) && !math.IsNaN(m.offset) && !math.IsInf(m.offset, 0)
}
