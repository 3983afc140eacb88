package codecs

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"sync"

	"github.com/sensorium-io/sensorium/signals"
)

// Numeric is the codec for numbers as sensors make them (FORMAT.md, "Numeric
// body"). Each channel is coded on its own, because channels of one block are
// different signals and mixing them hides each one's regularity:
//
//  1. Map the values to integers k. Integer samples are their own k. Floats
//     are tried as decimals (v = k / 10^e, a logger that prints 0.01 °C), as
//     multiples of a scale (v = k × s, ADC counts times the chain's
//     sensitivity, found from the data), and as an affine map with per-value
//     corrections in ulps (v = k × s + offset, for calibration offsets and
//     float64 chains rounded in several steps). In the first two, values the
//     mapping does not give back exactly — NaN, ±Inf, -0, a stray subnormal
//     — are stored verbatim as exceptions; in the affine mode they are
//     corrections. Whichever of these, or the xor mode (each float's bits
//     XOR the previous float's, the Gorilla / Chimp family), is estimated to
//     cost the fewest bits codes the channel.
//  2. Predict each k from the previous ones (order 0, 1 or 2, whichever leaves
//     the smallest residuals for this block) and code the residuals
//     (residuals.go).
//
// Every value survives bit for bit: the encoder checks that each value a
// scale or decimal mapping gives back is exactly the original, else it is an
// exception, and the affine mode's correction is the exact distance to it.
const Numeric ID = 5

type numeric struct{}

func init() {
	if err := Register(numeric{}); err != nil {
		panic(err)
	}
}

func (numeric) ID() ID       { return Numeric }
func (numeric) Name() string { return "numeric" }

// Channel modes (FORMAT.md, "Numeric body").
const (
	modeInt     = 0 // int16, int32: k is the sample
	modeScale   = 1 // float: v = float(k × scale)
	modeDecimal = 2 // float: v = float(k / 10^e)
	modeXor     = 3 // float: residual = bits XOR previous bits
	modeAffine  = 4 // float: v = float(k × scale + offset), moved by a correction in ulps
)

// numericScratch is one encode's or decode's working memory, pooled.
type numericScratch struct {
	k       []int64  // the channel's integers
	r       []uint64 // residuals
	r2      []uint64 // encode: order-2 residuals, while the order is chosen
	corr    []uint64 // affine corrections (encode)
	corrR   []uint64 // a block of them (decode)
	kBlock  []int64  // decode: k for the current block of corrections
	f       []float64
	exc     []int          // exception indexes
	excBits []uint64       // their values' bits (decode)
	rr      residualReader // decode: the channel's residual stream
	corrRR  residualReader // decode: an affine channel's corrections

	compactScale float64 // compact codec: the scale of the frame's last scaled channel (0: none yet)
}

var numericPool = sync.Pool{New: func() any { return new(numericScratch) }}

func (numeric) AppendEncoded(dst []byte, s *signals.Samples) ([]byte, error) {
	return appendNumeric(dst, s, nil)
}

// appendNumeric encodes s; hints, when not nil, holds one mappingHint per
// channel, read and updated (see ScalarEncoder).
func appendNumeric(dst []byte, s *signals.Samples, hints []mappingHint) ([]byte, error) {
	if err := s.CheckLengths(); err != nil {
		return dst, fmt.Errorf("codecs: numeric: encode: %w", err)
	}
	hint := func(c int) *mappingHint {
		if c < len(hints) {
			return &hints[c]
		}
		return nil
	}
	sc := numericPool.Get().(*numericScratch)
	defer numericPool.Put(sc)
	if s.Channels > 1 && s.N >= parallelMinSamples && runtime.GOMAXPROCS(0) > 1 {
		return appendNumericParallel(dst, s, sc, hint), nil
	}
	for c := 0; c < s.Channels; c++ {
		dst = appendNumericChannel(dst, s, c, sc, hint(c))
	}
	return dst, nil
}

// parallelMinSamples is the samples per channel from which a frame's
// channels are encoded side by side. Each channel is coded on its own (its
// mapping, its residuals), so the frame is the same bytes either way; a
// second of 25.6 kHz vibration takes ~0.8 ms per channel on one core, which
// made one producer's PutSamples the bottleneck of dense ingest, while
// below a few thousand samples a goroutine costs more than it saves.
const parallelMinSamples = 8192

// channelBufs holds the encoded channels of parallel encodes until they
// are copied into the frame.
var channelBufs = sync.Pool{New: func() any { return new([]byte) }}

// appendNumericParallel encodes channel 0 into dst on the caller's
// goroutine and the others each on its own, then appends them in order.
func appendNumericParallel(dst []byte, s *signals.Samples, sc *numericScratch, hint func(int) *mappingHint) []byte {
	bufs := make([]*[]byte, s.Channels)
	var wg sync.WaitGroup
	for c := 1; c < s.Channels; c++ {
		bufs[c] = channelBufs.Get().(*[]byte)
		wg.Add(1)
		go func() {
			defer wg.Done()
			csc := numericPool.Get().(*numericScratch)
			*bufs[c] = appendNumericChannel((*bufs[c])[:0], s, c, csc, hint(c))
			numericPool.Put(csc)
		}()
	}
	dst = appendNumericChannel(dst, s, 0, sc, hint(0))
	wg.Wait()
	for c := 1; c < s.Channels; c++ {
		dst = append(dst, *bufs[c]...)
		channelBufs.Put(bufs[c])
	}
	return dst
}

func appendNumericChannel(dst []byte, s *signals.Samples, c int, sc *numericScratch, hint *mappingHint) []byte {
	n := s.N
	sc.k = resizeSlice(sc.k, n)
	switch s.Type {
	case signals.Int16:
		for i := range n {
			sc.k[i] = int64(s.I16[i*s.Channels+c])
		}
		return appendPredicted(append(dst, modeInt), sc)
	case signals.Int32:
		for i := range n {
			sc.k[i] = int64(s.I32[i*s.Channels+c])
		}
		return appendPredicted(append(dst, modeInt), sc)
	}
	m, applied := hint.chooseApplied(s, c, sc)
	switch m.mode {
	case modeXor:
		return appendXor(dst, s, c, sc)
	case modeAffine:
		return appendAffine(dst, m, s, c, sc)
	}
	if !applied {
		sc.exc = m.apply(sc.f, sc.k, sc.exc[:0], s.Type == signals.Float32)
	}
	dst = append(dst, m.mode)
	if m.mode == modeScale {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(m.scale))
	} else {
		dst = append(dst, m.exp)
	}
	dst = appendExceptions(dst, s, c, sc.exc)
	return appendPredicted(dst, sc)
}

// appendExceptions writes the count, then each index as the gap from the
// previous one and the value's bits verbatim.
func appendExceptions(dst []byte, s *signals.Samples, c int, exc []int) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(exc)))
	prev := -1
	for _, i := range exc {
		dst = binary.AppendUvarint(dst, uint64(i-prev-1))
		prev = i
		if s.Type == signals.Float32 {
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(s.F32[i*s.Channels+c]))
		} else {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.F64[i*s.Channels+c]))
		}
	}
	return dst
}

// appendPredicted picks the prediction order, writes it, the warm-up values
// and the residual stream.
func appendPredicted(dst []byte, sc *numericScratch) []byte {
	k := sc.k
	sc.r = resizeSlice(sc.r, len(k))
	sc.r2 = resizeSlice(sc.r2, len(k))
	order := chooseOrder(k, sc.r, sc.r2)
	dst = append(dst, byte(order))
	warm := min(order, len(k))
	for i := range warm {
		dst = binary.AppendUvarint(dst, zigzag(k[i]))
	}
	var r []uint64
	switch order {
	case 0:
		r = sc.r[:len(k)]
		residuals(k, 0, r)
	case 1:
		r = sc.r[:len(k)-1]
	case 2:
		r = sc.r2[:len(k)-2]
	}
	return appendResiduals(dst, r)
}

// chooseOrder returns the prediction order whose residuals take the fewest
// bits, estimated by their bit lengths (what the residual coder pays), and
// leaves the residuals of orders 1 and 2 in r1 and r2 (as residuals writes
// them), which need room for len(k) values: computed here anyway, they are
// stored rather than computed again. The first two values, which have fewer
// than two before them, are counted before the loop, so that it runs
// without branches; the sums are kept in registers, where an array of them
// was stored back on every value. The order-2 residual k[i] − (2k[i−1] −
// k[i−2]) is the difference of neighbouring order-1 residuals, in the same
// wrapping arithmetic.
func chooseOrder(k []int64, r1, r2 []uint64) int {
	var c0, c1, c2 int
	if len(k) > 0 {
		b := bitLen(zigzag(k[0])) // every order predicts 0 for the first
		c0, c1, c2 = b, b, b
	}
	if len(k) > 1 {
		z := zigzag(k[1] - k[0]) // order 2 predicts k[0] for the second
		r1[0] = z
		c0 += bitLen(zigzag(k[1]))
		c1 += bitLen(z)
		c2 += bitLen(z)
	}
	if len(k) > 2 {
		prev := k[1] - k[0]
		r1, r2 = r1[1:len(k)-1], r2[:len(k)-2]
		for i := 2; i < len(k); i++ {
			d := k[i] - k[i-1]
			z1, z2 := zigzag(d), zigzag(d-prev)
			r1[i-2], r2[i-2] = z1, z2
			c0 += bitLen(zigzag(k[i]))
			c1 += bitLen(z1)
			c2 += bitLen(z2)
			prev = d
		}
	}
	best, cost := 0, c0
	if c1 < cost {
		best, cost = 1, c1
	}
	if c2 < cost {
		best = 2
	}
	return best
}

// residuals writes the order-o prediction residuals of k[o:] to r, zig-zagged.
// Arithmetic wraps, so decoding inverts it exactly whatever the values.
func residuals(k []int64, order int, r []uint64) {
	switch order {
	case 0:
		for i, v := range k {
			r[i] = zigzag(v)
		}
	case 1:
		for i := 1; i < len(k); i++ {
			r[i-1] = zigzag(k[i] - k[i-1])
		}
	case 2:
		for i := 2; i < len(k); i++ {
			r[i-2] = zigzag(k[i] - 2*k[i-1] + k[i-2])
		}
	}
}

// appendXor codes a float channel as the XOR of each value's bits with the
// previous value's.
func appendXor(dst []byte, s *signals.Samples, c int, sc *numericScratch) []byte {
	dst = append(dst, modeXor)
	sc.r = resizeSlice(sc.r, s.N)
	var prev uint64
	for i := range s.N {
		var b uint64
		if s.Type == signals.Float32 {
			b = uint64(math.Float32bits(s.F32[i*s.Channels+c]))
		} else {
			b = math.Float64bits(s.F64[i*s.Channels+c])
		}
		sc.r[i] = b ^ prev
		prev = b
	}
	return appendResiduals(dst, sc.r)
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

func bitLen(u uint64) int { return bits.Len64(u) }

func resizeSlice[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}
