package codecs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"

	"github.com/klauspost/compress/huff0"
)

// Residual coding: how the numeric codec stores a channel's prediction
// residuals (FORMAT.md, "Residual stream").
//
// Each residual is an unsigned integer (zig-zag for signed residuals, the XOR
// of float bits for the xor mode). Its token is its bit length (0 for 0, 1 for
// 1, 64 at most); the tokens are entropy coded with huff0 — zstd's Huffman
// coder, whose bytes RFC 8878 specifies — and the bits below each value's
// leading 1 follow as a packed bit stream. A Gaussian residual of standard
// deviation σ costs about log2(σ) + 2 bits this way, within a few tenths of a
// bit of its entropy, and one outlier costs only its own bits (a byte-plane
// layout would make every value pay for the widest one).
//
// Decoding is two tight loops: huff0's assembly decoder fills the tokens, then
// a branch-light bit reader rebuilds the values.

const (
	residualBlock = 1 << 14 // tokens per entropy-coded block: bounds a body's expansion (see minResidualBytes)

	tokRaw    = 0 // the block's tokens as bytes
	tokRLE    = 1 // one token repeated over the block
	tokHuff1  = 2 // huff0 single stream
	tokHuff4  = 3 // huff0 four streams (blocks of 1 KiB tokens or more)
	tokPacked = 4 // tokens minus the block's smallest, in a fixed number of bits

	// huffGain: Huffman must save this share over fixed-width packing to be
	// used, because reading its table costs decode time on every block; on
	// short blocks (an IMU's 100-sample frames) packing is about as small and
	// several times faster.
	huffGain = 0.9

	huff4Min = 1024 // below this the 4-stream jump table costs more than it saves
)

// The two layouts of a residual stream, its first byte.
const (
	residualsTokens = 0 // bit-length tokens, then the bits below each leading 1
	residualsFixed  = 1 // every value in the same width (1 to 64 bits)
)

// minResidualBytes is the fewest bytes a stream of n residuals can take: the
// layout byte, then either an RLE block header per token block plus the
// empty bit stream's length, or a width and n bits. A decoder checks it
// before allocating n values.
func minResidualBytes(n int) int {
	return 1 + min(2*((n+residualBlock-1)/residualBlock)+1, 1+(n+7)/8)
}

// residualScratch holds the buffers of one encode or decode; pooled so that a
// steady stream of frames does not allocate.
type residualScratch struct {
	huff   huff0.Scratch
	tok    []byte
	bits   []byte
	ranges []blockRange // encode: each token block's
}

var residualPool = sync.Pool{New: func() any { return new(residualScratch) }}

// appendResiduals appends the residual stream of r to dst: tokens, or the
// values in one fixed width when that is smaller — short streams (a RADAR
// scan's thirty detections) and flat distributions, where a token per value
// and a table cost more than they save.
func appendResiduals(dst []byte, r []uint64) []byte {
	sc := residualPool.Get().(*residualScratch)
	defer residualPool.Put(sc)
	tok := grow(sc.tok, len(r))
	sc.tok = tok
	sc.bits = grow(sc.bits, 7*len(r)+8)
	var packed []byte
	packed, sc.ranges = packResidualBits(sc.bits, tok, r, sc.ranges[:0])
	var or uint64
	for _, b := range sc.ranges {
		or |= b.or
	}
	width := bits.Len64(or) // the widest value's
	if width > 57 {         // rare (xor residuals of float64): packResidualBits takes up to 56 bits a value
		var w bitWriter
		w.buf = sc.bits[:0]
		for _, v := range r {
			if n := bits.Len64(v); n > 1 {
				w.write(v, uint(n-1)) // the leading 1 is implied by the token
			}
		}
		packed = w.flush()
		sc.bits = packed[:0]
	}
	start := len(dst)
	dst = append(dst, residualsTokens)
	for i, b := range sc.ranges {
		at := i * residualBlock
		dst = appendTokenBlock(dst, tok[at:min(at+residualBlock, len(tok))], byte(bits.Len64(b.least)), byte(bits.Len64(b.or)), &sc.huff)
	}
	dst = binary.AppendUvarint(dst, uint64(len(packed)))
	dst = append(dst, packed...)
	if fixed := 2 + (len(r)*width+7)/8; width > 0 && fixed < len(dst)-start {
		dst = append(dst[:start], residualsFixed, byte(width))
		if width <= 56 {
			return appendFixed(dst, r, uint(width))
		}
		var fw bitWriter
		fw.buf = dst
		for _, v := range r {
			fw.writeWide(v, uint(width))
		}
		dst = fw.flush()
	}
	return dst
}

// blockRange is what packResidualBits tells of a token block's values:
// the bit lengths of the smallest and of the OR are the smallest and the
// largest token (a loop over the tokens' bytes took several cycles a byte).
type blockRange struct{ least, or uint64 }

// packResidualBits sets each value's token (its bit length) in tok and
// packs the bits below its leading 1 into buf, LSB first, as bitWriter
// would; it returns the packed bytes and, appended to ranges, each token
// block's blockRange. buf must hold 7×len(r)+8 bytes. The packed bits are
// right only when no value has more than 57 bits (the ORs tell): a token's
// bits are found from the decoder's tables (tokenLead, tokenSkip), which
// stop there, so that no value waits for a branch on its width.
//
// The accumulator holds fewer than 8 bits between values, so that one of up
// to 56 bits fits beside them: after each value its 8 bytes are stored
// whole and the position moves on by the full bytes among them — a store
// and a shift instead of bitWriter's branch on a full word, which the
// residuals' varying widths made mispredict.
func packResidualBits(buf, tok []byte, r []uint64, ranges []blockRange) ([]byte, []blockRange) {
	var acc uint64
	var nacc uint
	pos := 0
	for at := 0; at < len(r); at += residualBlock {
		end := min(at+residualBlock, len(r))
		var b blockRange
		pos, acc, nacc, b = packBlock(buf, pos, acc, nacc, tok[at:end], r[at:end])
		ranges = append(ranges, b)
	}
	return buf[:pos+int(nacc+7)>>3], ranges
}

// packBlock is packResidualBits for one token block, from the bit
// position, accumulator and count the previous one left.
func packBlock(buf []byte, pos int, acc uint64, nacc uint, tok []byte, r []uint64) (int, uint64, uint, blockRange) {
	tok = tok[:len(r)]
	least := ^uint64(0)
	var or uint64
	i := 0
	// Four values a round are joined into one word when their bits fit in
	// 56 (residuals of up to 15 bits each, and most of wider ones), which
	// takes one shift into the accumulator and one store for the four.
	for i+4 <= len(r) {
		v := r[i : i+4 : i+4]
		v0, v1, v2, v3 := v[0], v[1], v[2], v[3]
		t0, t1, t2, t3 := bits.Len64(v0), bits.Len64(v1), bits.Len64(v2), bits.Len64(v3)
		t := tok[i : i+4 : i+4]
		t[0], t[1], t[2], t[3] = byte(t0), byte(t1), byte(t2), byte(t3)
		or |= v0 | v1 | v2 | v3
		least = min(least, v0, v1, v2, v3)
		s0, s1, s2, s3 := tokenSkip[t0], tokenSkip[t1], tokenSkip[t2], tokenSkip[t3]
		s01 := s0 + s1
		s012 := s01 + s2
		if n := s012 + s3; n <= 56 {
			x := v0 ^ tokenLead[t0] | (v1^tokenLead[t1])<<(s0&63) | (v2^tokenLead[t2])<<(s01&63) | (v3^tokenLead[t3])<<(s012&63)
			pos, acc, nacc = putBits(buf, pos, acc, nacc, x, n)
			i += 4
			continue
		}
		// Wider: one at a time.
		pos, acc, nacc = putBits(buf, pos, acc, nacc, v0^tokenLead[t0], s0)
		pos, acc, nacc = putBits(buf, pos, acc, nacc, v1^tokenLead[t1], s1)
		pos, acc, nacc = putBits(buf, pos, acc, nacc, v2^tokenLead[t2], s2)
		pos, acc, nacc = putBits(buf, pos, acc, nacc, v3^tokenLead[t3], s3)
		i += 4
	}
	for ; i < len(r); i++ {
		v := r[i]
		t := bits.Len64(v)
		tok[i] = byte(t)
		or |= v
		least = min(least, v)
		pos, acc, nacc = putBits(buf, pos, acc, nacc, v^tokenLead[t], tokenSkip[t]) // v^tokenLead[t]: v without its leading 1
	}
	return pos, acc, nacc, blockRange{least, or}
}

// putBits adds the n ≤ 56 bits of x (none above them) to the nacc < 8 bits
// of acc, stores the 8 bytes at buf[pos] and returns the position, bits and
// count after the full bytes among them. The shifts are masked to 63, which
// they never exceed, so that the compiler leaves out Go's zeroing of shifts
// by 64 or more.
func putBits(buf []byte, pos int, acc uint64, nacc uint, x uint64, n uint) (int, uint64, uint) {
	acc |= x << (nacc & 63)
	nacc += n
	binary.LittleEndian.PutUint64(buf[pos:], acc)
	full := nacc >> 3
	return pos + int(full), acc >> ((full << 3) & 63), nacc & 7
}

// appendFixed appends r in the fixed layout's bit stream, w ≤ 56 bits a
// value (none wider), as bitWriter would, by packResidualBits' method.
func appendFixed(dst []byte, r []uint64, w uint) []byte {
	start := len(dst)
	dst = slices.Grow(dst, (len(r)*int(w)+7)/8+8)
	buf := dst[start : start+(len(r)*int(w)+7)/8+8]
	var acc uint64
	var nacc uint
	pos := 0
	for _, v := range r {
		acc |= v << (nacc & 63)
		nacc += w
		binary.LittleEndian.PutUint64(buf[pos:], acc)
		full := nacc >> 3
		pos += int(full)
		acc >>= (full << 3) & 63
		nacc &= 7
	}
	return dst[:start+pos+int(nacc+7)>>3]
}

// appendTokenBlock appends one block of tokens (not empty), lo and hi being
// the smallest and the largest of them.
func appendTokenBlock(dst, tok []byte, lo, hi byte, h *huff0.Scratch) []byte {
	width := uint(bits.Len8(hi - lo))
	packed := 2 + (len(tok)*int(width)+7)/8
	h.Reuse = huff0.ReusePolicyNone
	var out []byte
	var err error
	enc := byte(tokHuff1)
	if len(tok) >= huff4Min {
		enc = tokHuff4
		out, _, err = huff0.Compress4X(tok, h)
	} else {
		out, _, err = huff0.Compress1X(tok, h)
	}
	switch {
	case width == 0 || errors.Is(err, huff0.ErrUseRLE):
		return append(dst, tokRLE, tok[0])
	case err == nil && float64(len(out)+2) < huffGain*float64(min(packed, len(tok))):
		dst = append(dst, enc)
		dst = binary.AppendUvarint(dst, uint64(len(out)))
		return append(dst, out...)
	case packed < len(tok):
		dst = append(dst, tokPacked, lo, byte(width))
		var w bitWriter
		w.buf = dst
		for _, t := range tok {
			w.write(uint64(t-lo), width)
		}
		return w.flush()
	}
	dst = append(dst, tokRaw)
	return append(dst, tok...)
}

// decodeResiduals reads a residual stream of exactly len(r) values from src
// and returns what follows it.
func decodeResiduals(src []byte, r []uint64) ([]byte, error) {
	var rr residualReader
	defer rr.release()
	rest, err := rr.init(src, len(r))
	if err != nil {
		return nil, err
	}
	for done := 0; done < len(r); {
		n, err := rr.next(r[done:min(done+residualBlock, len(r))])
		if err != nil {
			return nil, err
		}
		done += n
	}
	return rest, nil
}

// residualReader yields the values of a residual stream one token block at a
// time, so that a decoder's working memory is one block (residualBlock
// values) whatever a frame claims to hold: a forged length costs the output
// it names, never eight bytes of scratch per value on top.
type residualReader struct {
	m, done int // values in the stream, values yielded

	fixed bool
	width uint
	rd    bitReader // fixed: the values; tokens: the bit stream

	blocks   []byte // tokens: the token blocks not yet read
	bitsSize uint64 // tokens: bytes of the bit stream
	need     uint64 // tokens: bits the tokens read so far use
	sc       *residualScratch
}

// init reads the stream's layout and finds its parts; it returns what follows
// the stream. The token blocks are walked, not decoded, to find where the bit
// stream starts.
func (rr *residualReader) init(src []byte, m int) ([]byte, error) {
	*rr = residualReader{m: m}
	if len(src) < 1 {
		return nil, fmt.Errorf("%w: residual stream truncated", ErrCorrupt)
	}
	layout, src := src[0], src[1:]
	switch layout {
	case residualsFixed:
		if len(src) < 1 || src[0] < 1 || src[0] > 64 {
			return nil, fmt.Errorf("%w: residual width", ErrCorrupt)
		}
		rr.fixed, rr.width = true, uint(src[0])
		n := (uint64(m)*uint64(rr.width) + 7) / 8
		if n > uint64(len(src)-1) {
			return nil, fmt.Errorf("%w: %d residuals of %d bits need %d bytes, %d left", ErrCorrupt, m, rr.width, n, len(src)-1)
		}
		rr.rd = bitReader{src: src[1 : 1+n]}
		return src[1+n:], nil
	case residualsTokens:
	default:
		return nil, fmt.Errorf("%w: residual layout %d", ErrCorrupt, layout)
	}
	start := src
	for left := m; left > 0; left -= residualBlock {
		size, err := tokenBlockSize(src, min(left, residualBlock))
		if err != nil {
			return nil, err
		}
		src = src[size:]
	}
	rr.blocks = start[:len(start)-len(src)]
	size, k := binary.Uvarint(src)
	if k <= 0 || size > uint64(len(src)-k) {
		return nil, fmt.Errorf("%w: residual bit stream length", ErrCorrupt)
	}
	rr.bitsSize = size
	if m == 0 && size != 0 { // no token asks for a bit: next never runs to check it
		return nil, fmt.Errorf("%w: a bit stream of %d bytes for no values", ErrCorrupt, size)
	}
	rr.rd = bitReader{src: src[k : k+int(size)]}
	rr.sc = residualPool.Get().(*residualScratch)
	return src[k+int(size):], nil
}

// release returns the reader's scratch to its pool.
func (rr *residualReader) release() {
	if rr.sc != nil {
		residualPool.Put(rr.sc)
		rr.sc = nil
	}
}

// tokenBlockSize is the size of the token block of n tokens at the start of
// src, from its header alone.
func tokenBlockSize(src []byte, n int) (int, error) {
	if len(src) < 1 {
		return 0, fmt.Errorf("%w: residual block truncated", ErrCorrupt)
	}
	var size int
	switch src[0] {
	case tokRaw:
		size = 1 + n
	case tokRLE:
		size = 2
	case tokPacked:
		if len(src) < 3 || src[2] < 1 || src[2] > 7 {
			return 0, fmt.Errorf("%w: packed residual block header", ErrCorrupt)
		}
		size = 3 + (n*int(src[2])+7)/8
	case tokHuff1, tokHuff4:
		hs, k := binary.Uvarint(src[1:])
		if k <= 0 || hs > uint64(len(src)-1-k) {
			return 0, fmt.Errorf("%w: huffman block length", ErrCorrupt)
		}
		size = 1 + k + int(hs)
	default:
		return 0, fmt.Errorf("%w: residual block encoding %d", ErrCorrupt, src[0])
	}
	if size > len(src) {
		return 0, fmt.Errorf("%w: residual block truncated", ErrCorrupt)
	}
	return size, nil
}

// next fills r with the next block of values (residualBlock of them, fewer
// at the end of the stream) and returns how many; r must have room for them.
// After the stream's last value it checks that the bit stream held exactly
// the bits the tokens use.
func (rr *residualReader) next(r []uint64) (int, error) {
	n := min(residualBlock, rr.m-rr.done)
	if len(r) < n {
		return 0, fmt.Errorf("codecs: residual reader: %d values asked for, the block holds %d", len(r), n)
	}
	if rr.fixed {
		rd, w := &rr.rd, rr.width
		if w <= 56 {
			readFixed(rd, w, r[:n])
		} else {
			for i := range n {
				lo := rd.read56(32)
				r[i] = rd.read56(w-32)<<32 | lo
			}
		}
		rr.done += n
		return n, nil
	}
	tok, narrow, err := rr.tokens(n)
	if err != nil {
		return 0, err
	}
	// The bits the tokens use are counted as they are read and checked
	// after: a bit stream shorter than they say reads as zeros, never out of
	// its bounds.
	rr.need += readResidualBits(&rr.rd, tok, r[:n], narrow)
	return n, rr.blockRead(n)
}

// tokens decodes the next block's n tokens. narrow says that none exceeds
// 57, for readResidualBitsAt; a wider token is checked here.
func (rr *residualReader) tokens(n int) ([]byte, bool, error) {
	tok := grow(rr.sc.tok, n)
	rr.sc.tok = tok
	var err error
	if rr.blocks, err = decodeTokenBlock(rr.blocks, tok, &rr.sc.huff); err != nil {
		return nil, false, err
	}
	narrow := tokensBelow58(tok)
	if !narrow { // rare (xor residuals of float64): each token is checked
		for _, t := range tok {
			if t > 64 {
				return nil, false, fmt.Errorf("%w: residual token %d", ErrCorrupt, t)
			}
		}
	}
	return tok, narrow, nil
}

// blockRead ends a block of n values whose bits rr.need counts: it checks
// that the bit stream held them, and after the stream's last value that it
// held no more.
func (rr *residualReader) blockRead(n int) error {
	if rr.need > rr.bitsSize*8 {
		return fmt.Errorf("%w: residual bit stream of %d bytes, the tokens need more", ErrCorrupt, rr.bitsSize)
	}
	rr.done += n
	if rr.done == rr.m && (rr.need+7)/8 != rr.bitsSize {
		return fmt.Errorf("%w: residual bit stream of %d bytes, the tokens need %d bits", ErrCorrupt, rr.bitsSize, rr.need)
	}
	return nil
}

// nextScaled is next for a column of scaled values of order 1 (the pump's,
// an ADC's counts): it stores T(k × mul) in out, k integrated from b, and
// returns the block's length and its last k; r is its scratch. The token
// layout's fast loop rebuilds, integrates and scales each value in one pass
// (scaledBitsAt) rather than storing the residuals for scaleRun to load
// again; the values that loop leaves go the usual way. On an error, out may
// hold values of the bad block.
func nextScaled[T float32 | float64](rr *residualReader, out []T, r []uint64, b int64, mul float64) (int, int64, error) {
	if rr.fixed {
		n, err := rr.next(r)
		if err != nil {
			return 0, b, err
		}
		_, b = scaleRun(out, 1, r[:n], 1, 0, b, mul)
		return n, b, nil
	}
	n := min(residualBlock, rr.m-rr.done)
	if len(r) < n || len(out) < n {
		return 0, b, fmt.Errorf("codecs: residual reader: %d values asked for, the block holds %d", min(len(r), len(out)), n)
	}
	tok, narrow, err := rr.tokens(n)
	if err != nil {
		return 0, b, err
	}
	start := 0
	if from := rr.rd.bitPos(); narrow && from <= uint(len(rr.rd.src))*8 {
		var bit uint
		start, bit, b = scaledBitsAt(rr.rd.src, from, tok, out[:n], b, mul)
		rr.need += uint64(bit - from)
		rr.rd.seek(bit)
	}
	rr.need += readResidualBits(&rr.rd, tok[start:], r[start:n], narrow)
	_, b = scaleRun(out[start:n], 1, r[start:n], 1, 0, b, mul)
	return n, b, rr.blockRead(n)
}

func decodeTokenBlock(src, tok []byte, h *huff0.Scratch) ([]byte, error) {
	if len(src) < 1 {
		return nil, fmt.Errorf("%w: residual block truncated", ErrCorrupt)
	}
	enc, src := src[0], src[1:]
	switch enc {
	case tokRaw:
		if len(src) < len(tok) {
			return nil, fmt.Errorf("%w: raw residual block truncated", ErrCorrupt)
		}
		copy(tok, src)
		return src[len(tok):], nil
	case tokRLE:
		if len(src) < 1 {
			return nil, fmt.Errorf("%w: rle residual block truncated", ErrCorrupt)
		}
		for i := range tok {
			tok[i] = src[0]
		}
		return src[1:], nil
	case tokPacked:
		if len(src) < 2 || src[1] < 1 || src[1] > 7 {
			return nil, fmt.Errorf("%w: packed residual block header", ErrCorrupt)
		}
		lo, width := src[0], uint(src[1])
		src = src[2:]
		n := (len(tok)*int(width) + 7) / 8
		if len(src) < n {
			return nil, fmt.Errorf("%w: packed residual block truncated", ErrCorrupt)
		}
		if unpackTokens(src[:n], width, lo, tok) > 64 {
			for _, t := range tok { // the first bad one, for the message
				if t > 64 || t < lo {
					return nil, fmt.Errorf("%w: residual token %d", ErrCorrupt, t)
				}
			}
		}
		return src[n:], nil
	case tokHuff1, tokHuff4:
		size, k := binary.Uvarint(src)
		if k <= 0 || size > uint64(len(src)-k) {
			return nil, fmt.Errorf("%w: huffman block length", ErrCorrupt)
		}
		if err := huffDecode(src[k:k+int(size)], tok, enc == tokHuff4, h); err != nil {
			return nil, err
		}
		return src[k+int(size):], nil
	}
	return nil, fmt.Errorf("%w: residual block encoding %d", ErrCorrupt, enc)
}

// unpackTokens fills tok with lo plus a value of width ≤ 7 bits each from
// packed, which holds them all (a packed token block), and returns the
// largest sum, unwrapped: more than 64 when a token is bad. Each value is
// read at its own bit position, as readFixed reads them, the last ones from
// a copy of the last bytes padded with zeros.
func unpackTokens(packed []byte, width uint, lo byte, tok []byte) uint {
	mask := uint64(1)<<width - 1
	most, bit, i := uint(0), uint(0), 0
	if len(packed) >= 8 {
		last := uint(len(packed) - 8)
		for ; i < len(tok) && bit>>3 <= last; i++ {
			p := bit >> 3
			t := uint(lo) + uint(binary.LittleEndian.Uint64(packed[p:p+8])>>(bit&7)&mask)
			most = max(most, t)
			tok[i] = byte(t)
			bit += width
		}
	}
	var pad [16]byte
	base := min(bit>>3, uint(len(packed)))
	copy(pad[:8], packed[base:])
	for ; i < len(tok); i++ {
		p := (bit - base*8) >> 3 & 7
		t := uint(lo) + uint(binary.LittleEndian.Uint64(pad[p:p+8])>>(bit&7)&mask)
		most = max(most, t)
		tok[i] = byte(t)
		bit += width
	}
	return most
}

// huffDecode fills tok exactly from one huff0 block.
func huffDecode(src, tok []byte, four bool, h *huff0.Scratch) error {
	h.MaxDecodedSize = len(tok)
	s, rest, err := huff0.ReadTable(src, h)
	if err != nil {
		return fmt.Errorf("%w: huffman table: %v", ErrCorrupt, err)
	}
	var out []byte
	if four {
		out, err = s.Decoder().Decompress4X(tok[:0:len(tok)], rest)
	} else {
		out, err = s.Decoder().Decompress1X(tok[:0:len(tok)], rest)
	}
	if err != nil {
		return fmt.Errorf("%w: huffman block: %v", ErrCorrupt, err)
	}
	if len(out) != len(tok) {
		return fmt.Errorf("%w: huffman block holds %d tokens, want %d", ErrCorrupt, len(out), len(tok))
	}
	if &out[0] != &tok[0] { // the decoder wrote elsewhere; never seen, but cheap to honour
		copy(tok, out)
	}
	return nil
}

// readResidualBits rebuilds r from the tokens and the packed bits that rd
// reads from, continuing where the previous block stopped, and returns the
// bits the tokens use; the caller checks that the bit stream held them (bits
// past its end read as zeros). The reader's
// state lives in locals so that the loop keeps it in registers: this loop and
// huff0's are most of a decoder's time. narrow says that no token exceeds 57
// (no value has more than 56 bits below its leading 1).
func readResidualBits(rd *bitReader, tok []byte, r []uint64, narrow bool) (need uint64) {
	r = r[:len(tok)]
	packed := rd.src
	acc, nacc, pos := rd.acc, rd.nacc, rd.pos // bits not yet used (LSB first), how many, next byte to load
	start := 0
	// The accumulator's bits end at byte pos: the fast loop goes on from
	// their first (unless an earlier block ran past the end, which the caller
	// reports).
	if from := rd.bitPos(); narrow && from <= uint(len(packed))*8 {
		var bit uint
		start, bit = readResidualBitsAt(packed, from, tok, r)
		need = uint64(bit - from)
		rd.seek(bit)
		acc, nacc, pos = rd.acc, rd.nacc, rd.pos
	}
	for i := start; i < len(tok); i++ {
		t := tok[i]
		if t <= 1 {
			r[i] = uint64(t)
			continue
		}
		n := uint(t - 1)
		need += uint64(n)
		if n > 56 { // rare: only xor residuals of float64 get here
			wide := bitReader{src: packed, pos: pos, acc: acc, nacc: nacc}
			lo := wide.read56(32)
			r[i] = 1<<n | wide.read56(n-32)<<32 | lo
			pos, acc, nacc = wide.pos, wide.acc, wide.nacc
			continue
		}
		if nacc < n {
			if pos+8 <= len(packed) {
				acc |= binary.LittleEndian.Uint64(packed[pos:]) << nacc
				step := (63 - nacc) >> 3
				pos += int(step)
				nacc += step << 3
			} else {
				for nacc <= 56 && pos < len(packed) {
					acc |= uint64(packed[pos]) << nacc
					pos++
					nacc += 8
				}
			}
		}
		r[i] = 1<<n | acc&(1<<n-1)
		acc >>= n
		nacc -= n // wraps when the bits ran out: then need exceeds them, which the caller checks
	}
	rd.acc, rd.nacc, rd.pos = acc, nacc, pos
	return need
}

// readFixed fills r with values of w ≤ 56 bits each from rd: the fixed
// layout's loop. As in readResidualBitsAt, each value is read at its own bit
// position (i·w bits on), with one load, shift and mask and no branch, while
// 8 bytes are left from its first byte; the values in the last bytes are read
// the same way from a copy of them padded with zeros.
func readFixed(rd *bitReader, w uint, r []uint64) {
	packed := rd.src
	i := 0
	if bit := rd.bitPos(); bit <= uint(len(packed))*8 {
		mask := uint64(1)<<w - 1
		if len(packed) >= 8 {
			last := uint(len(packed) - 8)
			for ; i < len(r) && bit>>3 <= last; i++ {
				p := bit >> 3
				r[i] = binary.LittleEndian.Uint64(packed[p:p+8]) >> (bit & 7) & mask
				bit += w
			}
		}
		// Fewer than 8 bytes are left: the values that end in them.
		var pad [16]byte
		base, end := bit>>3, uint(len(packed))*8
		copy(pad[:8], packed[base:])
		for ; i < len(r) && bit+w <= end; i++ {
			p := (bit - base*8) >> 3 & 7
			r[i] = binary.LittleEndian.Uint64(pad[p:p+8]) >> (bit & 7) & mask
			bit += w
		}
		rd.seek(bit)
	}
	for ; i < len(r); i++ { // past the end: a stream that the caller found too short
		r[i] = rd.read56(w)
	}
}

// tokensBelow58 says whether every token is 57 or less (a value of 56 bits
// below its leading 1 or fewer), from the OR of all of them, 8 at a time:
// when that OR is 57 or less, so is each. A block of wider tokens (or of
// tokens that only OR to more) takes the checked path.
func tokensBelow58(tok []byte) bool {
	var or, or1 uint64 // two chains of ORs, 32 tokens a round
	for ; len(tok) >= 32; tok = tok[32:] {
		or |= binary.LittleEndian.Uint64(tok[0:8]) | binary.LittleEndian.Uint64(tok[8:16])
		or1 |= binary.LittleEndian.Uint64(tok[16:24]) | binary.LittleEndian.Uint64(tok[24:32])
	}
	for ; len(tok) >= 8; tok = tok[8:] {
		or |= binary.LittleEndian.Uint64(tok[0:8])
	}
	for _, t := range tok {
		or |= uint64(t)
	}
	or |= or1
	or |= or >> 32
	or |= or >> 16
	or |= or >> 8
	return byte(or) <= 57
}

// readResidualBitsAt is readResidualBits' fast loop, for tokens of 57 or
// less: it reads values from bit position bit of packed while 8 bytes are left
// from a value's first byte, and returns how many it read and the bit after
// them. Each value is read at its bit position, which only the previous
// tokens decide: no value waits for the one before it (an accumulator that is
// refilled would make each wait for the last one's shift and load), and no
// branch depends on the data — the checked loop mispredicts on about every
// other refill.
//
// What a token means comes from three tables (tokenLead, tokenMask,
// tokenSkip) instead of shifts by the token: on amd64 before BMI2 every
// variable shift needs the one CL register, and the two that building
// 1<<n − 1 took made the loop spill. Four values go per round, under one
// check that the fourth value's 8 bytes are in packed (a value moves the
// position by 56 bits, 7 bytes, at most).
func readResidualBitsAt(packed []byte, bit uint, tok []byte, r []uint64) (int, uint) {
	if len(packed) < 8 {
		return 0, bit
	}
	last := uint(len(packed) - 8)
	r = r[:len(tok)]
	i := 0
	for ; i+4 <= len(tok) && bit>>3+3*7 <= last; i += 4 {
		// The tokens are loaded first: read after a store to out, each
		// would be loaded again (out might alias tok, as far as the
		// compiler knows).
		t := tok[i : i+4 : i+4]
		t0, t1, t2, t3 := t[0], t[1], t[2], t[3]
		out := r[i : i+4 : i+4]
		p := bit >> 3
		w := binary.LittleEndian.Uint64(packed[p:p+8]) >> (bit & 7)
		out[0] = (w | tokenLead[t0]) & tokenMask[t0]
		bit += tokenSkip[t0]
		p = bit >> 3
		w = binary.LittleEndian.Uint64(packed[p:p+8]) >> (bit & 7)
		out[1] = (w | tokenLead[t1]) & tokenMask[t1]
		bit += tokenSkip[t1]
		p = bit >> 3
		w = binary.LittleEndian.Uint64(packed[p:p+8]) >> (bit & 7)
		out[2] = (w | tokenLead[t2]) & tokenMask[t2]
		bit += tokenSkip[t2]
		p = bit >> 3
		w = binary.LittleEndian.Uint64(packed[p:p+8]) >> (bit & 7)
		out[3] = (w | tokenLead[t3]) & tokenMask[t3]
		bit += tokenSkip[t3]
	}
	for ; i < len(tok) && bit>>3 <= last; i++ {
		t, p := tok[i], bit>>3
		w := binary.LittleEndian.Uint64(packed[p:p+8]) >> (bit & 7)
		r[i] = (w | tokenLead[t]) & tokenMask[t]
		bit += tokenSkip[t]
	}
	return i, bit
}

// scaledBitsAt is readResidualBitsAt fused with scaleRun's order-1 loop:
// each value, once rebuilt, is unzigzagged, added to k (from b) and stored
// as T(k × mul). It returns how many it read, the bit after them and the
// last k.
func scaledBitsAt[T float32 | float64](packed []byte, bit uint, tok []byte, out []T, b int64, mul float64) (int, uint, int64) {
	if len(packed) < 8 {
		return 0, bit, b
	}
	last := uint(len(packed) - 8)
	out = out[:len(tok)]
	i := 0
	for ; i+4 <= len(tok) && bit>>3+3*7 <= last; i += 4 {
		t := tok[i : i+4 : i+4]
		t0, t1, t2, t3 := t[0], t[1], t[2], t[3]
		o := out[i : i+4 : i+4]
		p := bit >> 3
		w := binary.LittleEndian.Uint64(packed[p:p+8]) >> (bit & 7)
		b += unzigzag((w | tokenLead[t0]) & tokenMask[t0])
		bit += tokenSkip[t0]
		o[0] = T(float64(b) * mul)
		p = bit >> 3
		w = binary.LittleEndian.Uint64(packed[p:p+8]) >> (bit & 7)
		b += unzigzag((w | tokenLead[t1]) & tokenMask[t1])
		bit += tokenSkip[t1]
		o[1] = T(float64(b) * mul)
		p = bit >> 3
		w = binary.LittleEndian.Uint64(packed[p:p+8]) >> (bit & 7)
		b += unzigzag((w | tokenLead[t2]) & tokenMask[t2])
		bit += tokenSkip[t2]
		o[2] = T(float64(b) * mul)
		p = bit >> 3
		w = binary.LittleEndian.Uint64(packed[p:p+8]) >> (bit & 7)
		b += unzigzag((w | tokenLead[t3]) & tokenMask[t3])
		bit += tokenSkip[t3]
		o[3] = T(float64(b) * mul)
	}
	for ; i < len(tok) && bit>>3 <= last; i++ {
		t, p := tok[i], bit>>3
		w := binary.LittleEndian.Uint64(packed[p:p+8]) >> (bit & 7)
		b += unzigzag((w | tokenLead[t]) & tokenMask[t])
		bit += tokenSkip[t]
		out[i] = T(float64(b) * mul)
	}
	return i, bit, b
}

// A token t ≥ 1 stands for the value 1<<(t−1) plus the t−1 bits that follow
// in the bit stream; the token 0 for 0 and no bits. Read w from the value's
// first bit: the value is (w | tokenLead[t]) & tokenMask[t], and the next
// value starts tokenSkip[t] bits further. Only tokens up to 57 are read this
// way; the tables cover every byte so that a token indexes them unchecked.
var tokenLead, tokenMask, tokenSkip = tokenTables()

func tokenTables() (lead, mask [256]uint64, skip [256]uint) {
	for t := 1; t <= 57; t++ {
		lead[t] = 1 << (t - 1)
		mask[t] = 1<<t - 1
		skip[t] = uint(t - 1)
	}
	return lead, mask, skip
}

// bitWriter packs values LSB first.
type bitWriter struct {
	buf   []byte
	acc   uint64
	nbits uint
}

// write appends the low n bits of v (n ≤ 63; v has no bits above n).
func (w *bitWriter) write(v uint64, n uint) {
	v &= 1<<n - 1
	w.acc |= v << w.nbits
	if w.nbits+n >= 64 {
		w.buf = binary.LittleEndian.AppendUint64(w.buf, w.acc)
		w.acc = v >> (64 - w.nbits) // Go defines a shift by 64 as 0
		w.nbits = w.nbits + n - 64
		return
	}
	w.nbits += n
}

// writeWide appends the low n bits of v, n up to 64.
func (w *bitWriter) writeWide(v uint64, n uint) {
	if n <= 63 {
		w.write(v&(1<<n-1), n)
		return
	}
	w.write(v&(1<<32-1), 32)
	w.write(v>>32, 32)
}

func (w *bitWriter) flush() []byte {
	for w.nbits > 0 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc >>= 8
		w.nbits -= min(w.nbits, 8)
	}
	return w.buf
}

// bitReader reads LSB-first bits. Reads past the end return zero bits (the
// caller has checked the length, so that only happens in the last refill).
type bitReader struct {
	src  []byte
	pos  int // next byte to load
	acc  uint64
	nacc uint
}

// bitPos is the position of the next bit to read: the accumulator's bits
// end at byte pos. Past the end of src (after reads of zeros) it exceeds
// len(src)×8.
func (r *bitReader) bitPos() uint { return uint(r.pos)*8 - r.nacc }

// seek moves the reader to bit, at most len(src)×8.
func (r *bitReader) seek(bit uint) {
	r.pos, r.acc, r.nacc = int(bit>>3), 0, 0
	if s := bit & 7; s != 0 { // the next bit is inside this byte
		r.acc, r.nacc = uint64(r.src[r.pos])>>s, 8-s
		r.pos++
	}
}

// read56 returns the next n ≤ 56 bits.
func (r *bitReader) read56(n uint) uint64 {
	if r.nacc < n {
		r.refill()
	}
	v := r.acc & (1<<n - 1)
	r.acc >>= n
	r.nacc -= n
	return v
}

// refill tops the accumulator up to at least 56 bits (fewer at the end).
func (r *bitReader) refill() {
	if r.pos+8 <= len(r.src) {
		r.acc |= binary.LittleEndian.Uint64(r.src[r.pos:]) << r.nacc
		step := (63 - r.nacc) >> 3
		r.pos += int(step)
		r.nacc += step << 3
		return
	}
	for r.nacc <= 56 && r.pos < len(r.src) {
		r.acc |= uint64(r.src[r.pos]) << r.nacc
		r.pos++
		r.nacc += 8
	}
}

// grow returns b resized to n, reusing its capacity.
func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	return make([]byte, n)
}
