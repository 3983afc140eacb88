package codecs

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/sensorium-io/sensorium/signals"
)

func (numeric) Decode(src []byte, desc *signals.Scalar, n int, s *signals.Samples) error {
	t, channels, err := bodyShape(desc, n)
	if err != nil {
		return fmt.Errorf("codecs: numeric: decode: %w", err)
	}
	// Checked before Reset allocates: every channel takes at least a mode, an
	// order and its residual stream's minimum (FORMAT.md, "Numeric body").
	if min := channels * (1 + minResidualBytes(n)); len(src) < min {
		return fmt.Errorf("codecs: numeric: decode: %w: body of %d bytes cannot hold %d samples × %d channels (at least %d bytes)",
			ErrCorrupt, len(src), n, channels, min)
	}
	s.Reset(t, channels, n)
	sc := numericPool.Get().(*numericScratch)
	defer numericPool.Put(sc)
	for c := range channels {
		if src, err = decodeNumericChannel(src, s, c, sc); err != nil {
			return fmt.Errorf("codecs: numeric: decode channel %d: %w", c, err)
		}
	}
	if len(src) != 0 {
		return fmt.Errorf("codecs: numeric: decode: %w: %d bytes after the last channel", ErrCorrupt, len(src))
	}
	return nil
}

func decodeNumericChannel(src []byte, s *signals.Samples, c int, sc *numericScratch) ([]byte, error) {
	if len(src) < 1 {
		return nil, fmt.Errorf("%w: truncated", ErrCorrupt)
	}
	mode, src := src[0], src[1:]
	isFloat := s.Type == signals.Float32 || s.Type == signals.Float64
	switch {
	case mode == modeInt && !isFloat:
		return decodeIntChannel(src, s, c, sc)
	case mode == modeXor && isFloat:
		return decodeXorChannel(src, s, c, sc)
	case (mode == modeScale || mode == modeDecimal) && isFloat:
		return decodeMappedChannel(src, mode, s, c, sc)
	case mode == modeAffine && isFloat:
		return decodeAffineChannel(src, s, c, sc)
	}
	return nil, fmt.Errorf("%w: mode %d for %s samples", ErrCorrupt, mode, s.Type)
}

func decodeIntChannel(src []byte, s *signals.Samples, c int, sc *numericScratch) ([]byte, error) {
	src, order, err := decodePredicted(src, s.N, sc)
	if err != nil {
		return nil, err
	}
	defer sc.rr.release()
	if s.Type == signals.Int16 {
		return src, integrateInto(s.I16, c, s.Channels, order, sc, math.MinInt16, math.MaxInt16)
	}
	return src, integrateInto(s.I32, c, s.Channels, order, sc, math.MinInt32, math.MaxInt32)
}

// integrateInto writes channel c of dst from the warm-up values and the
// residuals, block by block: integrate, range-check and narrow in one pass.
func integrateInto[T int16 | int32](dst []T, c, ch, order int, sc *numericScratch, lo, hi int64) error {
	warm := sc.k[:min(order, len(dst)/max(ch, 1))]
	for i, k := range warm {
		if k < lo || k > hi {
			return fmt.Errorf("%w: value %d at sample %d is out of range", ErrCorrupt, k, i)
		}
		dst[i*ch+c] = T(k)
	}
	var a, b int64 // k[i-2], k[i-1]
	if len(warm) > 0 {
		b = warm[len(warm)-1]
	}
	if len(warm) > 1 {
		a = warm[0]
	}
	for i := len(warm); i < len(dst)/max(ch, 1); {
		n, err := sc.rr.next(sc.r)
		if err != nil {
			return err
		}
		var bad bool
		a, b, bad = integrateRun(dst[i*ch+c:], ch, sc.r[:n], order, a, b, lo, hi)
		if bad {
			return fmt.Errorf("%w: a value of samples %d to %d is out of range", ErrCorrupt, i, i+n-1)
		}
		i += n
	}
	return nil
}

// integrateRun stores k for a block of residuals r in out[j×ch], k
// integrated order times from k[i−2], k[i−1] = a, b; it returns the last two
// k and whether any k is outside lo..hi. One loop per order, with the range
// check folded into the block's smallest and largest k (conditional moves),
// keeps the loop free of branches the predictor could miss; out of
// integrateInto, each loop keeps its state in registers.
func integrateRun[T int16 | int32](out []T, ch int, r []uint64, order int, a, b, lo, hi int64) (int64, int64, bool) {
	least, most := lo, hi
	switch order {
	case 0:
		for j, u := range r {
			b = unzigzag(u)
			least, most = min(least, b), max(most, b)
			out[j*ch] = T(b)
		}
	case 1:
		for j, u := range r {
			b += unzigzag(u)
			least, most = min(least, b), max(most, b)
			out[j*ch] = T(b)
		}
	default:
		for j, u := range r {
			a, b = b, 2*b-a+unzigzag(u)
			least, most = min(least, b), max(most, b)
			out[j*ch] = T(b)
		}
	}
	return a, b, least < lo || most > hi
}

func decodeMappedChannel(src []byte, mode byte, s *signals.Samples, c int, sc *numericScratch) ([]byte, error) {
	m := floatMapping{mode: mode}
	if mode == modeScale {
		if len(src) < 8 {
			return nil, fmt.Errorf("%w: truncated scale", ErrCorrupt)
		}
		m.scale = math.Float64frombits(binary.LittleEndian.Uint64(src))
		src = src[8:]
		if !(m.scale > 0) || math.IsInf(m.scale, 0) {
			return nil, fmt.Errorf("%w: scale %v", ErrCorrupt, m.scale)
		}
	} else {
		if len(src) < 1 || int(src[0]) >= len(pow10) {
			return nil, fmt.Errorf("%w: decimal exponent", ErrCorrupt)
		}
		m.exp, src = src[0], src[1:]
	}
	src, err := readExceptions(src, s, sc)
	if err != nil {
		return nil, err
	}
	src, order, err := decodePredicted(src, s.N, sc)
	if err != nil {
		return nil, err
	}
	defer sc.rr.release()
	warm := sc.k[:min(order, s.N)]
	ch := s.Channels
	if s.Type == signals.Float32 {
		if err := storeMapped(s.F32, c, ch, warm, sc, order, m); err != nil {
			return nil, err
		}
		for j, i := range sc.exc {
			s.F32[i*ch+c] = math.Float32frombits(uint32(sc.excBits[j]))
		}
		return src, nil
	}
	if err := storeMapped(s.F64, c, ch, warm, sc, order, m); err != nil {
		return nil, err
	}
	for j, i := range sc.exc {
		s.F64[i*ch+c] = math.Float64frombits(sc.excBits[j])
	}
	return src, nil
}

// storeMapped writes channel c of dst from the warm-up values and the
// residuals, block by block: it integrates, unzigzags, maps and stores in one
// pass. This is the decoder's hot path, so each order and mapping has its own
// call-free loop (scaleRun, decimalRun), and a scaled order-1 column its own
// reader that rebuilds the residuals in the same loop (nextScaled).
func storeMapped[T float32 | float64](dst []T, c, ch int, warm []int64, sc *numericScratch, order int, m floatMapping) error {
	f32 := isFloat32[T]()
	for i, k := range warm {
		dst[i*ch+c] = T(m.value(k, f32))
	}
	var a, b int64 // k[i-2], k[i-1]
	if len(warm) > 0 {
		b = warm[len(warm)-1]
	}
	if len(warm) > 1 {
		a = warm[0]
	}
	n := len(dst) / max(ch, 1)
	if ch == 1 && m.mode == modeScale && order == 1 {
		// A channel decoded into its own column (the query's batches) with
		// the commonest mapping, an ADC's counts changing by small steps:
		// the residuals are read, integrated and scaled in one pass.
		for i := len(warm); i < n; {
			cnt, k, err := nextScaled(&sc.rr, dst[i:], sc.r, b, m.scale)
			if err != nil {
				return err
			}
			b = k
			i += cnt
		}
		return nil
	}
	for i := len(warm); i < n; {
		cnt, err := sc.rr.next(sc.r)
		if err != nil {
			return err
		}
		out, r := dst[i*ch+c:], sc.r[:cnt]
		if m.mode == modeScale {
			a, b = scaleRun(out, ch, r, order, a, b, m.scale)
		} else {
			a, b = decimalRun(out, ch, r, order, a, b, pow10[m.exp])
		}
		i += cnt
	}
	return nil
}

// scaleRun stores k × mul for a block of residuals r in out[j×ch], k
// integrated order times from k[i−2], k[i−1] = a, b, and returns the last two
// k. Each order has its own loop, and these loops their own function, out of
// storeMapped's: there its many live values made the loops spill. A channel
// decoded into its own column (the query's batches) has stride 1, and out
// cut to r's length leaves the loop without a bounds check.
func scaleRun[T float32 | float64](out []T, ch int, r []uint64, order int, a, b int64, mul float64) (int64, int64) {
	if ch == 1 {
		out = out[:len(r)]
		switch order {
		case 0:
			for j, u := range r {
				out[j] = T(float64(unzigzag(u)) * mul)
			}
		case 1:
			// The commonest mapping, an ADC's counts changing by small
			// steps: four values a round halve the loop's own work.
			j := 0
			for ; j+4 <= len(r); j += 4 {
				u, o := r[j:j+4:j+4], out[j:j+4:j+4]
				k0 := b + unzigzag(u[0])
				k1 := k0 + unzigzag(u[1])
				k2 := k1 + unzigzag(u[2])
				b = k2 + unzigzag(u[3])
				o[0], o[1], o[2], o[3] = T(float64(k0)*mul), T(float64(k1)*mul), T(float64(k2)*mul), T(float64(b)*mul)
			}
			for ; j < len(r); j++ {
				b += unzigzag(r[j])
				out[j] = T(float64(b) * mul)
			}
		default:
			for j, u := range r {
				a, b = b, 2*b-a+unzigzag(u)
				out[j] = T(float64(b) * mul)
			}
		}
		return a, b
	}
	switch order {
	case 0:
		for j, u := range r {
			out[j*ch] = T(float64(unzigzag(u)) * mul)
		}
	case 1:
		for j, u := range r {
			b += unzigzag(u)
			out[j*ch] = T(float64(b) * mul)
		}
	default:
		for j, u := range r {
			a, b = b, 2*b-a+unzigzag(u)
			out[j*ch] = T(float64(b) * mul)
		}
	}
	return a, b
}

// decimalRun is scaleRun for the decimal mapping: k / div.
func decimalRun[T float32 | float64](out []T, ch int, r []uint64, order int, a, b int64, div float64) (int64, int64) {
	if ch == 1 {
		out = out[:len(r)]
		switch order {
		case 0:
			for j, u := range r {
				out[j] = T(float64(unzigzag(u)) / div)
			}
		case 1:
			for j, u := range r {
				b += unzigzag(u)
				out[j] = T(float64(b) / div)
			}
		default:
			for j, u := range r {
				a, b = b, 2*b-a+unzigzag(u)
				out[j] = T(float64(b) / div)
			}
		}
		return a, b
	}
	switch order {
	case 0:
		for j, u := range r {
			out[j*ch] = T(float64(unzigzag(u)) / div)
		}
	case 1:
		for j, u := range r {
			b += unzigzag(u)
			out[j*ch] = T(float64(b) / div)
		}
	default:
		for j, u := range r {
			a, b = b, 2*b-a+unzigzag(u)
			out[j*ch] = T(float64(b) / div)
		}
	}
	return a, b
}

func isFloat32[T float32 | float64]() bool {
	var x T
	_, ok := any(x).(float32)
	return ok
}

// readExceptions reads the exception list into sc.exc and sc.excBits.
func readExceptions(src []byte, s *signals.Samples, sc *numericScratch) ([]byte, error) {
	count, k := binary.Uvarint(src)
	if k <= 0 || count > uint64(s.N) {
		return nil, fmt.Errorf("%w: exception count", ErrCorrupt)
	}
	src = src[k:]
	size := s.Type.Size()
	if count > uint64(len(src)/(size+1)) { // each takes at least a gap byte and the value
		return nil, fmt.Errorf("%w: %d exceptions in %d bytes", ErrCorrupt, count, len(src))
	}
	sc.exc, sc.excBits = sc.exc[:0], sc.excBits[:0]
	next := uint64(0) // the smallest index the next exception may have
	for range count {
		gap, k := binary.Uvarint(src)
		if k <= 0 || gap >= uint64(s.N)-next || len(src)-k < size {
			return nil, fmt.Errorf("%w: exception list", ErrCorrupt)
		}
		i := next + gap
		src = src[k:]
		var b uint64
		if size == 4 {
			b = uint64(binary.LittleEndian.Uint32(src))
		} else {
			b = binary.LittleEndian.Uint64(src)
		}
		src = src[size:]
		sc.exc, sc.excBits = append(sc.exc, int(i)), append(sc.excBits, b)
		next = i + 1
	}
	return src, nil
}

// decodePredicted reads an order and the warm-up values (into sc.k), and
// opens the residual stream of the other n − warm values in sc.rr (a block of
// sc.r at a time); the caller integrates and releases sc.rr. It returns what
// follows the channel.
func decodePredicted(src []byte, n int, sc *numericScratch) ([]byte, int, error) {
	if len(src) < 1 || src[0] > 2 {
		return nil, 0, fmt.Errorf("%w: prediction order", ErrCorrupt)
	}
	order := int(src[0])
	src = src[1:]
	warm := min(order, n)
	sc.k = resizeSlice(sc.k, warm)
	for i := range warm {
		u, k := binary.Uvarint(src)
		if k <= 0 {
			return nil, 0, fmt.Errorf("%w: warm-up value", ErrCorrupt)
		}
		sc.k[i] = unzigzag(u)
		src = src[k:]
	}
	sc.r = resizeSlice(sc.r, residualBlock)
	src, err := sc.rr.init(src, n-warm)
	if err != nil {
		return nil, 0, err
	}
	return src, order, nil
}

func decodeXorChannel(src []byte, s *signals.Samples, c int, sc *numericScratch) ([]byte, error) {
	sc.r = resizeSlice(sc.r, residualBlock)
	src, err := sc.rr.init(src, s.N)
	if err != nil {
		return nil, err
	}
	defer sc.rr.release()
	ch := s.Channels
	var prev uint64
	for i := 0; i < s.N; {
		n, err := sc.rr.next(sc.r)
		if err != nil {
			return nil, err
		}
		if s.Type == signals.Float32 {
			out := s.F32[i*ch:]
			for j, u := range sc.r[:n] {
				prev ^= u
				if prev > math.MaxUint32 {
					return nil, fmt.Errorf("%w: float32 bits %#x at sample %d", ErrCorrupt, prev, i+j)
				}
				out[j*ch+c] = math.Float32frombits(uint32(prev))
			}
		} else {
			out := s.F64[i*ch:]
			for j, u := range sc.r[:n] {
				prev ^= u
				out[j*ch+c] = math.Float64frombits(prev)
			}
		}
		i += n
	}
	return src, nil
}
