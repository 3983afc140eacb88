package codecs

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"

	"github.com/sensorium-io/sensorium/signals"
)

// Compact is the scalar codec for short frames (FORMAT.md, "Compact frame"):
// a slow sensor sends ten values a frame (one a second), and the 16-byte
// header and the numeric codec's per-channel fields (a mode byte, an 8-byte
// scale, counts, a residual layout byte and width) cost more than the values.
// A compact frame has a header of three or four bytes — the codec, the count,
// and the start as its distance from the frame's block time (0 when the start
// is on a millisecond, as a slow signal's is) — and one bit stream for every
// channel: the mapping in a few bits, the first value in its own width and
// the rest Rice-coded. Nothing refers to another frame: a frame decodes
// alone given its block time, which every container of a frame carries (the
// MKV block, the live message's timestamp header).
const Compact ID = 7

type compact struct{}

func init() {
	if err := Register(compact{}); err != nil {
		panic(err)
	}
}

func (compact) ID() ID       { return Compact }
func (compact) Name() string { return "compact" }

// Kinds of compact channel, 2 bits.
const (
	compactInt     = 0 // int16, int32: k is the sample
	compactDecimal = 1 // float: k / 10^e
	compactScale   = 2 // float: k × scale
	compactXor     = 3 // float: bits XOR the previous value's bits
)

// How a scaled channel writes its scale: 2 bits in version 1, 3 bits in
// version 2, which adds the last two.
const (
	scaleF32     = 0 // 32 bits: an f32
	scaleF64     = 1 // 64 bits: an f64
	scaleDecimal = 2 // gamma m, 4 bits e: m / 10^e
	scaleSame    = 3 // the scale of the previous scaled channel of the frame
	scaleDegrees = 4 // gamma m, 4 bits e: m / 10^e degrees, in radians
	scaleBinary  = 5 // gamma m, 6 bits e: m / 2^e
)

// decimalScale finds a small m and e with m / 10^e within a part in 10^9 of
// s: the resolution a driver was written with (0.05, 0.25).
func decimalScale(s float64) (uint64, uint8, bool) {
	for e := 0; e <= 9; e++ {
		m := math.Round(s * pow10[e])
		if m >= 1 && m < 1<<20 && math.Abs(m/pow10[e]-s) <= 1e-9*s {
			return uint64(m), uint8(e), true
		}
	}
	return 0, 0, false
}

// Rice escape: a quotient of compactEscape or more is written as that many
// ones and the value in a width of its own, so that an outlier costs its own
// bits and a reader's unary run is bounded.
const compactEscape = 16

func (compact) AppendEncoded(dst []byte, s *signals.Samples) ([]byte, error) {
	if err := s.CheckLengths(); err != nil {
		return dst, fmt.Errorf("codecs: compact: encode: %w", err)
	}
	return appendCompact(dst, s, nil, false), nil
}

// appendCompact appends the compact body of s, in the coding of version 2
// when v2 is set (codec Compact2); hints as for the numeric codec (one per
// channel, or nil).
func appendCompact(dst []byte, s *signals.Samples, hints []mappingHint, v2 bool) []byte {
	sc := numericPool.Get().(*numericScratch)
	defer numericPool.Put(sc)
	var w bitWriter
	w.buf = dst
	sc.compactScale = 0
	for c := 0; c < s.Channels; c++ {
		var h *mappingHint
		if c < len(hints) {
			h = &hints[c]
		}
		writeCompactChannel(&w, s, c, sc, h, v2)
	}
	return w.flush()
}

// writeCompactChannel writes channel c of s, in whichever of its codings is
// smallest, to w; v2 selects the coding of version 2 (compact2.go).
func writeCompactChannel(w *bitWriter, s *signals.Samples, c int, sc *numericScratch, h *mappingHint, v2 bool) {
	cv := newCompactCoding(v2, s.Type, false)
	var best, try bitWriter
	n := s.N
	{
		sc.k = resizeSlice(sc.k, n)
		sc.r = resizeSlice(sc.r, n)
		best.buf, best.acc, best.nbits = best.buf[:0], 0, 0
		bestBits := -1
		consider := func(enc func(bw *bitWriter)) {
			try.buf, try.acc, try.nbits = try.buf[:0], 0, 0
			enc(&try)
			if b := len(try.buf)*8 + int(try.nbits); bestBits < 0 || b < bestBits {
				bestBits = b
				best, try = try, best
			}
		}
		switch s.Type {
		case signals.Int16, signals.Int32:
			for i := range n {
				if s.Type == signals.Int16 {
					sc.k[i] = int64(s.I16[i*s.Channels+c])
				} else {
					sc.k[i] = int64(s.I32[i*s.Channels+c])
				}
			}
			for order := range 3 {
				consider(func(bw *bitWriter) {
					if !v2 { // version 2 knows an integer channel's kind from its type
						bw.write(compactInt, 2)
					}
					writeCompactInts(bw, sc.k, order, sc.r, cv)
				})
			}
		default:
			sc.f = resizeSlice(sc.f, n)
			f32 := s.Type == signals.Float32
			for i := range n {
				if f32 {
					sc.f[i] = float64(s.F32[i*s.Channels+c])
				} else {
					sc.f[i] = s.F64[i*s.Channels+c]
				}
			}
			m := h.choose(sc.f, f32)
			// The scale written as cheaply as it allows: a small decimal
			// m / 10^e (0.05 m, 0.25 dB), a float32, or the scale of the
			// frame's previous scaled channel (azimuth and elevation share
			// theirs) — each tried for what it leaves as exceptions.
			type scaled struct {
				m   floatMapping
				sel int // scaleF32 … scaleBinary
				dm  uint64
				de  uint8
			}
			var maps []scaled
			switch m.mode {
			case modeDecimal:
				maps = append(maps, scaled{m: m})
			case modeScale:
				maps = append(maps, scaled{m: m, sel: scaleF64})
				if s32 := float64(float32(m.scale)); s32 > 0 && !math.IsInf(s32, 0) {
					maps = append(maps, scaled{m: floatMapping{mode: modeScale, scale: s32}, sel: scaleF32})
				}
				if dm, de, ok := decimalScale(m.scale); ok {
					maps = append(maps, scaled{m: floatMapping{mode: modeScale, scale: float64(dm) / pow10[de]}, sel: scaleDecimal, dm: dm, de: de})
				}
				if v2 {
					if dm, de, ok := degreeScale(m.scale); ok {
						maps = append(maps, scaled{m: floatMapping{mode: modeScale, scale: degreeScaleValue(dm, de)}, sel: scaleDegrees, dm: dm, de: de})
					}
					if bm, be, ok := binaryScale(m.scale); ok {
						maps = append(maps, scaled{m: floatMapping{mode: modeScale, scale: math.Ldexp(float64(bm), -int(be))}, sel: scaleBinary, dm: bm, de: be})
					}
				}
			}
			if sc.compactScale > 0 {
				maps = append(maps, scaled{m: floatMapping{mode: modeScale, scale: sc.compactScale}, sel: scaleSame})
			}
			chosenScale := 0.0
			bestBitsBefore := -1
			for _, ms := range maps {
				m := ms.m
				sc.exc = m.apply(sc.f, sc.k, sc.exc[:0], f32)
				for order := range 3 {
					consider(func(bw *bitWriter) {
						if m.mode == modeDecimal {
							bw.write(compactDecimal, 2)
							bw.write(uint64(m.exp), 5)
						} else {
							bw.write(compactScale, 2)
							if v2 {
								bw.write(uint64(ms.sel), 3)
							} else {
								bw.write(uint64(ms.sel), 2)
							}
							switch ms.sel {
							case scaleF32:
								bw.write(uint64(math.Float32bits(float32(m.scale))), 32)
							case scaleF64:
								bw.writeWide(math.Float64bits(m.scale), 64)
							case scaleDecimal, scaleDegrees:
								writeGamma(bw, ms.dm)
								bw.write(uint64(ms.de), 4)
							case scaleBinary:
								writeGamma(bw, ms.dm)
								bw.write(uint64(ms.de), 6)
							}
						}
						writeGamma(bw, uint64(len(sc.exc))+1)
						prev := -1
						for _, i := range sc.exc {
							writeGamma(bw, uint64(i-prev))
							prev = i
							if f32 {
								bw.write(uint64(math.Float32bits(s.F32[i*s.Channels+c])), 32)
							} else {
								bw.writeWide(math.Float64bits(s.F64[i*s.Channels+c]), 64)
							}
						}
						writeCompactInts(bw, sc.k, order, sc.r, cv)
					})
				}
				if bestBits != bestBitsBefore {
					bestBitsBefore, chosenScale = bestBits, 0
					if m.mode == modeScale {
						chosenScale = m.scale
					}
				}
			}
			consider(func(bw *bitWriter) {
				bw.write(compactXor, 2)
				var prev uint64
				for i := range n {
					var b uint64
					if f32 {
						b = uint64(math.Float32bits(s.F32[i*s.Channels+c]))
					} else {
						b = math.Float64bits(s.F64[i*s.Channels+c])
					}
					sc.r[i] = b ^ prev
					prev = b
				}
				writeCompactResiduals(bw, sc.r, newCompactCoding(v2, s.Type, true))
			})
			if bestBits == bestBitsBefore && chosenScale > 0 {
				sc.compactScale = chosenScale // a scaled coding won: later channels may name it
			}
		}
		// Append the best coding's bits to the stream.
		bb := best.flushCopy()
		for j, nb := 0, bestBits; nb > 0; j++ {
			k := min(nb, 8)
			w.write(uint64(bb[j]), uint(k))
			nb -= k
		}
	}
}

// flushCopy returns the writer's bits as bytes without disturbing it.
func (w *bitWriter) flushCopy() []byte {
	c := *w
	c.buf = append([]byte(nil), w.buf...)
	return c.flush()
}

// writeCompactInts writes the order, then the residuals of k under it: the
// first `order` values by the lower orders (k[0] itself, then k[1] − k[0]).
func writeCompactInts(bw *bitWriter, k []int64, order int, r []uint64, cv compactCoding) {
	bw.write(uint64(order), 2)
	for i := range k {
		var p int64
		switch {
		case i == 0:
		case i == 1 || order == 1:
			if order >= 1 {
				p = k[i-1]
			}
		case order == 2:
			p = 2*k[i-1] - k[i-2]
		}
		r[i] = zigzag(k[i] - p)
	}
	writeCompactResiduals(bw, r, cv)
}

// writeCompactResiduals writes the first value in a width of its own (7
// bits, then the bits), the rest Rice-coded with the parameter (6 bits) that
// makes them smallest.
func writeCompactResiduals(bw *bitWriter, r []uint64, cv compactCoding) {
	if len(r) == 0 {
		return
	}
	if cv.v2 {
		writeCompactResiduals2(bw, r, cv)
		return
	}
	w0 := uint(bits.Len64(r[0]))
	bw.write(uint64(w0), 7)
	bw.writeWide(r[0], w0)
	rest := r[1:]
	if len(rest) == 0 {
		return
	}
	// The best parameter lies near the bit length of the mean residual.
	var sum uint64
	for _, u := range rest {
		sum += min(u, 1<<56)
	}
	mid := bits.Len64(sum / uint64(len(rest)))
	bestK, bestCost := 0, -1
	for k := max(mid-3, 0); k <= min(mid+2, 63); k++ {
		cost := 0
		for _, u := range rest {
			cost += riceCost(u, uint(k))
		}
		if bestCost < 0 || cost < bestCost {
			bestK, bestCost = k, cost
		}
	}
	bw.write(uint64(bestK), 6)
	for _, u := range rest {
		writeRice(bw, u, uint(bestK))
	}
}

func riceCost(u uint64, k uint) int {
	if q := u >> k; q < compactEscape {
		return int(q) + 1 + int(k)
	}
	return compactEscape + 7 + bits.Len64(u)
}

func writeRice(bw *bitWriter, u uint64, k uint) {
	q := u >> k
	if q >= compactEscape {
		bw.write(1<<compactEscape-1, compactEscape)
		w := uint(bits.Len64(u))
		bw.write(uint64(w), 7)
		bw.writeWide(u, w)
		return
	}
	bw.write(1<<q-1, uint(q)+1) // q ones, then a zero
	if k > 0 {
		bw.writeWide(u&(1<<k-1), k)
	}
}

// writeGamma writes v ≥ 1 as Elias gamma: bitlen(v) − 1 zeros, then v from
// its top bit down, here as its width in unary and its bits below the top.
func writeGamma(bw *bitWriter, v uint64) {
	w := uint(bits.Len64(v))
	bw.write(1<<(w-1)-1, w) // w−1 ones, then a zero
	if w > 1 {
		bw.writeWide(v&(1<<(w-1)-1), w-1)
	}
}

// compactReader reads a compact body's bits and counts them.
type compactReader struct {
	bitReader
	used uint64 // bits read
	size uint64 // bits in the body
}

func (r *compactReader) read(n uint) uint64 {
	r.used += uint64(n)
	if n <= 56 {
		return r.read56(n)
	}
	lo := r.read56(32)
	return r.read56(n-32)<<32 | lo
}

// unary reads ones up to a zero, at most limit of them; it returns the count
// and whether a zero ended it. It counts a run of ones in the accumulator at
// once; past the end of the body it reads zeros, as read does.
func (r *compactReader) unary(limit int) (int, bool) {
	q := 0
	for q < limit {
		if r.nacc < 57 {
			r.refill()
		}
		if r.nacc == 0 { // past the end: a zero
			r.used++
			return q, true
		}
		avail := min(uint(limit-q), r.nacc)
		ones := min(uint(bits.TrailingZeros64(^r.acc)), avail)
		if ones < avail { // a zero follows the ones
			r.acc >>= ones + 1
			r.nacc -= ones + 1
			r.used += uint64(ones) + 1
			return q + int(ones), true
		}
		r.acc >>= ones
		r.nacc -= ones
		r.used += uint64(ones)
		q += int(ones)
	}
	return limit, false
}

func (r *compactReader) gamma() (uint64, bool) {
	w, ok := r.unary(64)
	if !ok {
		return 0, false
	}
	return 1<<w | r.read(uint(w)), true
}

func (r *compactReader) width() (uint, bool) {
	w := uint(r.read(7))
	return w, w <= 64
}

func (r *compactReader) residuals(out []uint64, cv compactCoding) error {
	if len(out) == 0 {
		return nil
	}
	if cv.v2 {
		return r.residuals2(out, cv)
	}
	w0, ok := r.width()
	if !ok {
		return fmt.Errorf("%w: compact value width", ErrCorrupt)
	}
	out[0] = r.read(w0)
	if len(out) == 1 {
		return nil
	}
	k := uint(r.read(6))
	for i := 1; i < len(out); i++ {
		q, ended := r.unary(compactEscape)
		if !ended {
			if q < compactEscape {
				return fmt.Errorf("%w: compact stream truncated", ErrCorrupt)
			}
			w, ok := r.width()
			if !ok {
				return fmt.Errorf("%w: compact value width", ErrCorrupt)
			}
			out[i] = r.read(w)
			continue
		}
		out[i] = uint64(q)<<k | r.read(k)
	}
	if r.used > r.size {
		return fmt.Errorf("%w: compact stream truncated", ErrCorrupt)
	}
	return nil
}

func (compact) Decode(src []byte, desc *signals.Scalar, n int, s *signals.Samples) error {
	t, channels, err := bodyShape(desc, n)
	if err != nil {
		return fmt.Errorf("codecs: compact: decode: %w", err)
	}
	// Checked before Reset allocates: every value but a channel's first
	// takes at least one bit, the first at least seven.
	if uint64(n)*uint64(channels) > uint64(len(src))*8+uint64(channels) {
		return fmt.Errorf("codecs: compact: decode: %w: %d bytes cannot hold %d samples × %d channels", ErrCorrupt, len(src), n, channels)
	}
	s.Reset(t, channels, n)
	sc := numericPool.Get().(*numericScratch)
	defer numericPool.Put(sc)
	sc.compactScale = 0
	return decodeCompactBody(src, s, sc, false)
}

// decodeCompactBody decodes a compact body (of version 2's coding when v2 is
// set) into s (reset to its shape); sc.compactScale carries the previous
// scale from channel to channel (and, in a compact columnar frame, column to
// column).
func decodeCompactBody(src []byte, s *signals.Samples, sc *numericScratch, v2 bool) error {
	channels := s.Channels
	rd := compactReader{bitReader: bitReader{src: src}, size: uint64(len(src)) * 8}
	for c := range channels {
		if err := decodeCompactChannel(&rd, s, c, sc, v2); err != nil {
			return fmt.Errorf("codecs: compact: decode channel %d: %w", c, err)
		}
	}
	if rd.used > rd.size || (rd.used+7)/8 != uint64(len(src)) {
		return fmt.Errorf("codecs: compact: decode: %w: %d bits used of a body of %d bytes", ErrCorrupt, rd.used, len(src))
	}
	if pad := (8 - rd.used%8) % 8; pad > 0 && rd.read(uint(pad)) != 0 { // the last byte's padding is zeros
		return fmt.Errorf("codecs: compact: decode: %w: padding bits set", ErrCorrupt)
	}
	return nil
}

func decodeCompactChannel(rd *compactReader, s *signals.Samples, c int, sc *numericScratch, v2 bool) error {
	n, ch := s.N, s.Channels
	isFloat := s.Type == signals.Float32 || s.Type == signals.Float64
	kind := uint64(compactInt) // version 2 writes no kind for an integer channel
	if isFloat || !v2 {
		kind = rd.read(2)
	}
	cv := newCompactCoding(v2, s.Type, kind == compactXor)
	f32 := s.Type == signals.Float32
	sc.r = resizeSlice(sc.r, n)
	sc.k = resizeSlice(sc.k, n)
	switch {
	case kind == compactInt && !isFloat:
		if err := readCompactInts(rd, sc, n, cv); err != nil {
			return err
		}
		lo, hi := int64(math.MinInt16), int64(math.MaxInt16)
		if s.Type == signals.Int32 {
			lo, hi = math.MinInt32, math.MaxInt32
		}
		for i, k := range sc.k {
			if k < lo || k > hi {
				return fmt.Errorf("%w: value %d at sample %d is out of range", ErrCorrupt, k, i)
			}
			if s.Type == signals.Int16 {
				s.I16[i*ch+c] = int16(k)
			} else {
				s.I32[i*ch+c] = int32(k)
			}
		}
		return nil
	case kind == compactXor && isFloat:
		if err := rd.residuals(sc.r, cv); err != nil {
			return err
		}
		var prev uint64
		for i, u := range sc.r {
			prev ^= u
			if f32 {
				if prev > math.MaxUint32 {
					return fmt.Errorf("%w: float32 bits %#x", ErrCorrupt, prev)
				}
				s.F32[i*ch+c] = math.Float32frombits(uint32(prev))
			} else {
				s.F64[i*ch+c] = math.Float64frombits(prev)
			}
		}
		return nil
	case (kind == compactDecimal || kind == compactScale) && isFloat:
	default:
		return fmt.Errorf("%w: compact channel kind %d for %s samples", ErrCorrupt, kind, s.Type)
	}
	m := floatMapping{mode: modeDecimal}
	if kind == compactDecimal {
		m.exp = byte(rd.read(5))
		if int(m.exp) >= len(pow10) {
			return fmt.Errorf("%w: decimal exponent %d", ErrCorrupt, m.exp)
		}
	} else {
		m.mode = modeScale
		sel := rd.read(2)
		if v2 {
			sel = sel | rd.read(1)<<2
		}
		switch sel {
		case scaleF32:
			m.scale = float64(math.Float32frombits(uint32(rd.read(32))))
		case scaleF64:
			m.scale = math.Float64frombits(rd.read(64))
		case scaleDecimal:
			dm, ok := rd.gamma()
			de := rd.read(4)
			if !ok || dm >= 1<<20 || de > 9 {
				return fmt.Errorf("%w: compact decimal scale", ErrCorrupt)
			}
			m.scale = float64(dm) / pow10[de]
		case scaleSame:
			m.scale = sc.compactScale
		case scaleDegrees:
			dm, ok := rd.gamma()
			de := rd.read(4)
			if !ok || dm >= 1<<20 || de > 9 {
				return fmt.Errorf("%w: compact degree scale", ErrCorrupt)
			}
			m.scale = degreeScaleValue(dm, uint8(de))
		case scaleBinary:
			bm, ok := rd.gamma()
			be := rd.read(6)
			if !ok || bm >= 1<<20 {
				return fmt.Errorf("%w: compact binary scale", ErrCorrupt)
			}
			m.scale = math.Ldexp(float64(bm), -int(be))
		default:
			return fmt.Errorf("%w: compact scale selector %d", ErrCorrupt, sel)
		}
		if !(m.scale > 0) || math.IsInf(m.scale, 0) {
			return fmt.Errorf("%w: scale %v", ErrCorrupt, m.scale)
		}
		sc.compactScale = m.scale
	}
	count, ok := rd.gamma()
	if !ok || count-1 > uint64(n) {
		return fmt.Errorf("%w: compact exception count", ErrCorrupt)
	}
	sc.exc, sc.excBits = sc.exc[:0], sc.excBits[:0]
	next := -1
	for range count - 1 {
		gap, ok := rd.gamma()
		if !ok || gap > uint64(n-1-next) {
			return fmt.Errorf("%w: compact exception index", ErrCorrupt)
		}
		next += int(gap)
		sc.exc = append(sc.exc, next)
		width := uint(64)
		if f32 {
			width = 32
		}
		sc.excBits = append(sc.excBits, rd.read(width))
		if rd.used > rd.size {
			return fmt.Errorf("%w: compact stream truncated", ErrCorrupt)
		}
	}
	if err := readCompactInts(rd, sc, n, cv); err != nil {
		return err
	}
	for i, k := range sc.k {
		v := m.value(k, f32)
		if f32 {
			s.F32[i*ch+c] = float32(v)
		} else {
			s.F64[i*ch+c] = v
		}
	}
	for j, i := range sc.exc {
		if f32 {
			s.F32[i*ch+c] = math.Float32frombits(uint32(sc.excBits[j]))
		} else {
			s.F64[i*ch+c] = math.Float64frombits(sc.excBits[j])
		}
	}
	return nil
}

// readCompactInts reads an order and the residuals into sc.k.
func readCompactInts(rd *compactReader, sc *numericScratch, n int, cv compactCoding) error {
	order := int(rd.read(2))
	if order > 2 {
		return fmt.Errorf("%w: compact order %d", ErrCorrupt, order)
	}
	if err := rd.residuals(sc.r[:n], cv); err != nil {
		return err
	}
	for i, u := range sc.r[:n] {
		var p int64
		switch {
		case i == 0:
		case i == 1 || order == 1:
			if order >= 1 {
				p = sc.k[i-1]
			}
		case order == 2:
			p = 2*sc.k[i-1] - sc.k[i-2]
		}
		sc.k[i] = p + unzigzag(u)
	}
	return nil
}

// The compact frame's header: the codec byte, n (uvarint), and the start's
// distance from the block time in ns (zig-zag varint).

// appendCompactFrame appends the compact frame of s.
func appendCompactFrame(dst []byte, s *signals.Samples, hints []mappingHint) []byte {
	dst = append(dst, byte(Compact))
	dst = binary.AppendUvarint(dst, uint64(s.N))
	dst = binary.AppendVarint(dst, s.Start-floorMillisecond(s.Start))
	return appendCompact(dst, s, hints, false)
}

// floorMillisecond is t cut down to a whole millisecond: the block time of a
// frame that starts at t (as the SDK writes it).
func floorMillisecond(t int64) int64 {
	ms := t / 1e6
	if t < 0 && t%1e6 != 0 {
		ms--
	}
	return ms * 1e6
}

// parseCompactHeader reads a compact frame's header; Start is the distance
// from the block time.
func parseCompactHeader(src []byte) (ScalarHeader, error) {
	n, k := binary.Uvarint(src[1:])
	if k <= 0 || n > MaxScalarFrameSamples {
		return ScalarHeader{}, fmt.Errorf("%w: compact frame sample count", ErrCorrupt)
	}
	d, k2 := binary.Varint(src[1+k:])
	if k2 <= 0 {
		return ScalarHeader{}, fmt.Errorf("%w: compact frame start", ErrCorrupt)
	}
	if n > math.MaxInt {
		return ScalarHeader{}, fmt.Errorf("%w: %d samples do not fit an int here", ErrCorrupt, n)
	}
	return ScalarHeader{Codec: Compact, N: int(n), Start: d, Size: 1 + k + k2, FromBlock: true}, nil
}

// decodeCompactColumn decodes one column of a compact columnar frame: a
// compact body (version 2's coding when v2 is set) of one channel of n
// values of type t.
func decodeCompactColumn(src []byte, t signals.SampleType, n int, s *signals.Samples, sc *numericScratch, v2 bool) error {
	if uint64(n) > uint64(len(src))*8+1 {
		return fmt.Errorf("codecs: compact: decode: %w: %d bytes cannot hold %d values", ErrCorrupt, len(src), n)
	}
	s.Reset(t, 1, n)
	return decodeCompactBody(src, s, sc, v2)
}
