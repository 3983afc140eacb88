package codecs

import (
	"math"
	"math/bits"
)

// The entropy coder of the lossless audio codec (FORMAT.md, "Audio body"): a
// binary range coder in the style of LZMA's — 32-bit range, 12-bit
// probabilities, carries propagated through a cached byte — driving adaptive
// models of each residual's bit length and of the top bits below its leading
// one. Rice codes (FLAC) give each partition one parameter and pay for a
// two-sided Laplacian with a one-sided code; an adaptive model follows the
// signal's level sample by sample and codes each decision at its measured
// probability, which is where most of the codec's margin over FLAC comes
// from at the same prediction.
//
// Every frame starts its models afresh (frames are self-contained), so a model
// adapts fast while it has seen little (adaptShift) and settles at 1/32 per
// decision after that.

const (
	rcProbBits = 12
	rcProbOne  = 1 << rcProbBits
	rcTop      = 1 << 24
)

// rcProb is one adaptive binary model: the probability of a 0 in 12 bits and
// how many decisions it has seen (its adaptation speeds up early on).
type rcProb struct {
	p uint16
	n uint16
}

func newProb() rcProb { return rcProb{p: rcProbOne / 2} }

// adaptShift is the adaptation rate by the number of decisions seen: fast at
// first, like a count-based estimate, then an exponential window of 32.
var adaptShift = [...]uint8{1, 2, 2, 3, 3, 3, 4, 4, 4, 4, 4, 4, 5}

func (m *rcProb) update(bit uint32) {
	sh := uint(adaptShift[len(adaptShift)-1])
	if int(m.n) < len(adaptShift)-1 {
		sh = uint(adaptShift[m.n])
		m.n++
	}
	// Without a branch on the bit, which the decoder cannot predict: a 0
	// moves p up by (one − p) >> sh, a 1 down by p >> sh (both floored).
	p := int32(m.p)
	neg := -int32(bit)                      // 0 or −1
	v := p ^ ((p ^ (rcProbOne - p)) & ^neg) // bit 0: one − p; bit 1: p
	d := v >> sh
	p += (d ^ neg) - neg
	// Keep both outcomes codable: a probability of 0 or 1 would give a
	// decision a zero range.
	m.p = uint16(min(max(p, 31), rcProbOne-31))
}

// rangeEncoder writes the coded bytes to buf.
type rangeEncoder struct {
	buf       []byte
	low       uint64
	rng       uint32
	cache     byte
	cacheSize int
	start     int // where this stream's bytes begin in buf
	first     bool
}

func (e *rangeEncoder) init(dst []byte) {
	*e = rangeEncoder{buf: dst, rng: 0xFFFFFFFF, cacheSize: 1, start: len(dst), first: true}
}

func (e *rangeEncoder) shiftLow() {
	if uint32(e.low) < 0xFF000000 || e.low>>32 != 0 {
		carry := byte(e.low >> 32)
		temp := e.cache
		for {
			if e.first { // the first byte is always 0: it is not written
				e.first = false
			} else {
				e.buf = append(e.buf, temp+carry)
			}
			temp = 0xFF
			e.cacheSize--
			if e.cacheSize == 0 {
				break
			}
		}
		e.cache = byte(uint32(e.low) >> 24)
	}
	e.cacheSize++
	e.low = uint64(uint32(e.low) << 8)
}

func (e *rangeEncoder) encodeBit(m *rcProb, bit uint32) {
	bound := (e.rng >> rcProbBits) * uint32(m.p)
	if bit == 0 {
		e.rng = bound
	} else {
		e.low += uint64(bound)
		e.rng -= bound
	}
	m.update(bit)
	for e.rng < rcTop {
		e.rng <<= 8
		e.shiftLow()
	}
}

// encodeDirect writes the low n bits of v (n ≤ 16) at probability 1/2 each.
func (e *rangeEncoder) encodeDirect(v uint32, n uint) {
	for n > 0 {
		k := min(n, 8)
		n -= k
		e.rng >>= k
		e.low += uint64(e.rng) * uint64((v>>n)&(1<<k-1))
		for e.rng < rcTop {
			e.rng <<= 8
			e.shiftLow()
		}
	}
}

// finish ends the stream: it writes out low, so that a decoder that has
// read every byte ends with code 0 (as xz's LZMA decoder checks).
func (e *rangeEncoder) finish() []byte {
	for range 5 {
		e.shiftLow()
	}
	return e.buf
}

// rangeDecoder reads what rangeEncoder wrote. Past the end of src it reads
// zeros, so that a truncated stream decodes to the end without a check per
// byte; finished tells whether the stream ended where it should.
type rangeDecoder struct {
	src  []byte
	pos  int
	code uint32
	rng  uint32
}

func (d *rangeDecoder) init(src []byte) {
	*d = rangeDecoder{src: src, rng: 0xFFFFFFFF}
	for range 4 {
		d.code = d.code<<8 | uint32(d.next())
	}
}

func (d *rangeDecoder) next() byte {
	var b byte
	if d.pos < len(d.src) {
		b = d.src[d.pos]
	}
	d.pos++
	return b
}

// finished reports whether the decoder has read exactly the encoder's bytes
// and ended on the encoder's final value — false for a truncated stream,
// and for most corrupt ones. Zero bytes may follow the stream when they pad
// the input to exactly minLen bytes.
func (d *rangeDecoder) finished(minLen int) bool {
	if d.code != 0 || d.pos > len(d.src) {
		return false
	}
	for _, b := range d.src[d.pos:] {
		if b != 0 {
			return false
		}
	}
	return d.pos == len(d.src) || len(d.src) == minLen
}

func (d *rangeDecoder) decodeBit(m *rcProb) uint32 {
	bound := (d.rng >> rcProbBits) * uint32(m.p)
	// bit is 1 when code ≥ bound, computed without a branch.
	bit := uint32((uint64(d.code)-uint64(bound))>>63) ^ 1
	mask := -bit
	d.code -= bound & mask
	d.rng = bound + (d.rng-2*bound)&mask // bound, or rng − bound
	m.update(bit)
	// One byte is always enough: the range was at least 2^24 and a
	// decision keeps at least 31/4096 of it.
	if d.rng < rcTop {
		d.rng <<= 8
		d.code = d.code<<8 | uint32(d.next())
	}
	return bit
}

func (d *rangeDecoder) decodeDirect(n uint) uint32 {
	var v uint32
	for n > 0 {
		k := min(n, 8)
		n -= k
		d.rng >>= k
		q := d.code / d.rng
		if q > 1<<k-1 { // only a corrupt stream: keep the state consistent
			q = 1<<k - 1
		}
		d.code -= q * d.rng
		v = v<<k | q
		for d.rng < rcTop {
			d.rng <<= 8
			d.code = d.code<<8 | uint32(d.next())
		}
	}
	return v
}

// residualModel codes one channel's residuals (zig-zagged) as their bit
// length L — by a 6-level binary tree of models chosen by the context, the
// running level of recent residuals — then, for L ≥ 2, the bit below the
// leading one (modelled by L), the next one (modelled by L and the first)
// and the rest at probability 1/2.
type residualModel struct {
	level uint64 // 8 × the running mean of recent residuals (a window of 8)
	tree  [rcContexts][64]rcProb
	top   [maxResidualBits + 1][3]rcProb
}

const (
	rcContexts      = 24
	maxResidualBits = 40 // the longest residual a frame may hold (an int32 side channel's, with room)
)

// reset prepares the model for a channel whose first residuals are about
// 2^k0.
func (m *residualModel) reset(k0 uint8) {
	m.level = 8 << min(k0, 40) >> 1
	m.tree = treePriors
	for l := range m.top {
		for i := range m.top[l] {
			m.top[l][i] = newProb()
		}
	}
	for l := range m.top {
		for i := range m.top[l] {
			m.top[l][i] = newProb()
		}
	}
}

// treePriors is where each frame's bit-length models start: the
// probabilities a geometric distribution of mean 0.75 × 2^c gives each
// decision of context c's tree, as if each model had already seen
// priorWeight decisions. A frame of 20 ms has too few samples to learn
// several dozen models from even odds; starting from the shape residuals
// have saves most of that lesson. Computed with multiplications, divisions
// and subtractions only, each rounded on its own, so that every machine
// computes the same table (FORMAT.md, "Residual model").
var treePriors = func() (t [rcContexts][64]rcProb) {
	for c := range t {
		mu := 0.75 * float64(uint64(1)<<c)
		if c == 0 {
			mu = 0.5
		}
		q := mu / (1 + mu) // P(u ≥ m) = q^m
		// tail[l] = P(u ≥ 2^(l−1)) = P(L ≥ l), tail[0] = 1.
		var tail [65]float64
		tail[0] = 1
		pw := q // q^(2^(l−1))
		for l := 1; l < len(tail); l++ {
			tail[l] = pw
			pw = float64(pw * pw)
		}
		// A node of depth d and value v (its path so far) covers the bit
		// lengths v·2^(6−d) … (v+1)·2^(6−d) − 1; its 0 branch the lower half.
		mass := func(lo, hi int) float64 { // P(lo ≤ L < hi)
			return tail[min(lo, 64)] - tail[min(hi, 64)]
		}
		for node := 1; node < 64; node++ {
			d := bits.Len(uint(node)) - 1
			span := 64 >> d
			lo := (node - 1<<d) * span
			total, zero := mass(lo, lo+span), mass(lo, lo+span/2)
			p := 0.5
			if total > 0 {
				p = zero / total
			}
			q12 := int(float64(p*rcProbOne) + 0.5)
			t[c][node] = rcProb{p: uint16(min(max(q12, 31), rcProbOne-31)), n: priorWeight}
		}
	}
	return t
}()

// priorWeight is how many decisions a prior counts for: it sets where in
// adaptShift a model with a prior starts.
const priorWeight = 6

func (m *residualModel) context() int {
	return min(bits.Len64(m.level>>3), rcContexts-1)
}

func (m *residualModel) adapt(u uint64) {
	m.level += min(u, 1<<44) - m.level>>3
}

func (m *residualModel) encode(e *rangeEncoder, u uint64) {
	l := uint32(bits.Len64(u))
	tree := &m.tree[m.context()]
	node := uint32(1)
	for i := 5; i >= 0; i-- {
		b := (l >> uint(i)) & 1
		e.encodeBit(&tree[node], b)
		node = node<<1 | b
	}
	if l >= 2 {
		top := &m.top[l]
		n := uint(l - 1) // bits below the leading one
		b1 := uint32(u>>(n-1)) & 1
		e.encodeBit(&top[0], b1)
		n--
		if n > 0 {
			b2 := uint32(u>>(n-1)) & 1
			e.encodeBit(&top[1+b1], b2)
			n--
			for n > 16 {
				n -= 16
				e.encodeDirect(uint32(u>>n)&0xFFFF, 16)
			}
			e.encodeDirect(uint32(u)&(1<<n-1), n)
		}
	}
	m.adapt(u)
}

// decode returns the next residual, or false if the stream names a bit length
// beyond maxResidualBits (a corrupt frame).
func (m *residualModel) decode(d *rangeDecoder) (uint64, bool) {
	tree := &m.tree[m.context()]
	node := uint32(1)
	for range 6 {
		node = node<<1 | d.decodeBit(&tree[node])
	}
	l := node - 64
	var u uint64
	switch {
	case l <= 1:
		u = uint64(l)
	case l > maxResidualBits:
		return 0, false
	default:
		top := &m.top[l]
		n := uint(l - 1)
		b1 := d.decodeBit(&top[0])
		u = 2 | uint64(b1)
		n--
		if n > 0 {
			u = u<<1 | uint64(d.decodeBit(&top[1+b1]))
			n--
			for n > 16 {
				n -= 16
				u = u<<16 | uint64(d.decodeDirect(16))
			}
			u = u<<n | uint64(d.decodeDirect(n))
		}
	}
	m.adapt(u)
	return u, true
}

// costUnit is the fraction of a bit in which modelled costs are counted.
const costUnit = 256

// bitCost[p] is what coding a decision of probability p/4096 costs, in
// 1/costUnit bits: −log2(p/4096).
var bitCost = func() (t [rcProbOne]uint32) {
	for p := 1; p < rcProbOne; p++ {
		t[p] = uint32(-math.Log2(float64(p)/rcProbOne)*costUnit + 0.5)
	}
	t[0] = t[1]
	return t
}()

func (m *rcProb) cost(bit uint32) uint32 {
	p := uint32(m.p)
	if bit != 0 {
		p = rcProbOne - p
	}
	c := bitCost[p]
	m.update(bit)
	return c
}

// cost is what encode would spend on u, in 1/costUnit bits, moving the
// model as encode would: the encoder ranks its choices by it.
func (m *residualModel) cost(u uint64) uint32 {
	l := uint32(bits.Len64(u))
	tree := &m.tree[m.context()]
	node := uint32(1)
	var c uint32
	for i := 5; i >= 0; i-- {
		b := (l >> uint(i)) & 1
		c += tree[node].cost(b)
		node = node<<1 | b
	}
	if l >= 2 {
		top := &m.top[l]
		n := l - 1
		b1 := uint32(u>>(n-1)) & 1
		c += top[0].cost(b1)
		n--
		if n > 0 {
			c += top[1+b1].cost(uint32(u>>(n-1)) & 1)
			c += (n - 1) * costUnit
		}
	}
	m.adapt(u)
	return c
}
