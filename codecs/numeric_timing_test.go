package codecs

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/simulate/pump"
)

// TestResidualBitsFastPath checks that the branch-free loop (narrow) reads
// the same values and counts the same bits as the checked loop, for tokens
// of every width it takes, across blocks that start mid-byte and bit streams
// too short for the tokens (which read zeros past the end, never out of
// bounds).
func TestResidualBitsFastPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		widest := 1 + trial%57
		tok := make([]byte, 1+rng.IntN(3000))
		for i := range tok {
			tok[i] = byte(rng.IntN(widest + 1))
		}
		packed := make([]byte, rng.IntN(len(tok)*widest/8+16))
		for i := range packed {
			packed[i] = byte(rng.Uint32())
		}
		split := rng.IntN(len(tok) + 1) // two blocks: the second starts where the first stopped
		var slow, fast bitReader
		slow.src, fast.src = packed, packed
		rs, rf := make([]uint64, len(tok)), make([]uint64, len(tok))
		ns := readResidualBits(&slow, tok[:split], rs[:split], false) + readResidualBits(&slow, tok[split:], rs[split:], false)
		nf := readResidualBits(&fast, tok[:split], rf[:split], true) + readResidualBits(&fast, tok[split:], rf[split:], true)
		if ns != nf {
			t.Fatalf("trial %d: %d bits counted, the checked loop counts %d", trial, nf, ns)
		}
		if ns > uint64(len(packed))*8 {
			continue // the values past the end differ, and the caller reports the stream corrupt
		}
		if !slices.Equal(rs, rf) {
			t.Fatalf("trial %d (widest token %d, split at %d): the fast loop reads other values", trial, widest, split)
		}
	}
}

// TestResidualBitsEveryWidth checks the fast loop against the checked one
// bit for bit for every token it takes (0 to 57), all of one width and that
// width among others, at odd lengths (the four-value rounds leave 1 to 3
// values to the single-value loop) and from every bit offset of a byte.
func TestResidualBitsEveryWidth(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for width := 0; width <= 57; width++ {
		for _, n := range []int{1, 2, 3, 4, 5, 7, 9, 31, 33, 255, 1001} {
			for _, mixed := range []bool{false, true} {
				tok := make([]byte, n)
				for i := range tok {
					tok[i] = byte(width)
					if mixed && rng.IntN(2) == 0 {
						tok[i] = byte(rng.IntN(58))
					}
				}
				from := uint(rng.IntN(8))
				var need uint
				for _, t := range tok {
					need += uint(max(t, 1) - 1)
				}
				packed := make([]byte, int(from+need+7)/8+rng.IntN(9))
				for i := range packed {
					packed[i] = byte(rng.Uint32())
				}
				var slow, fast bitReader
				slow.src, fast.src = packed, packed
				if from > 0 { // start mid-byte, as a block after one that ended there
					slow.read56(from)
					fast.read56(from)
				}
				rs, rf := make([]uint64, n), make([]uint64, n)
				ns := readResidualBits(&slow, tok, rs, false)
				nf := readResidualBits(&fast, tok, rf, true)
				if ns != nf || ns != uint64(need) {
					t.Fatalf("width %d, %d values: %d bits counted, the checked loop counts %d, want %d", width, n, nf, ns, need)
				}
				for i := range rs {
					if rs[i] != rf[i] {
						t.Fatalf("width %d, %d values (mixed %v, from bit %d): value %d is %#x, the checked loop reads %#x", width, n, mixed, from, i, rf[i], rs[i])
					}
				}
			}
		}
	}
}

// TestReadFixedEveryWidth checks the fixed layout's branch-free loop against
// the bit reader's, bit for bit, for every width it takes (1 to 56), at odd
// lengths, from every bit offset of a byte, and with bit streams exactly as
// long as the values and longer.
func TestReadFixedEveryWidth(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for w := uint(1); w <= 56; w++ {
		for _, n := range []int{1, 2, 3, 5, 7, 8, 9, 63, 100, 1001} {
			for from := uint(0); from < 8; from++ {
				packed := make([]byte, int(from+uint(n)*w+7)/8+rng.IntN(3)*rng.IntN(9))
				for i := range packed {
					packed[i] = byte(rng.Uint32())
				}
				var slow, fast bitReader
				slow.src, fast.src = packed, packed
				if from > 0 {
					slow.read56(from)
					fast.read56(from)
				}
				half := n / 2 // two calls: the second starts where the first stopped
				want, got := make([]uint64, n), make([]uint64, n)
				for i := range want {
					want[i] = slow.read56(w)
				}
				readFixed(&fast, w, got[:half])
				readFixed(&fast, w, got[half:])
				if !slices.Equal(want, got) {
					t.Fatalf("width %d, %d values from bit %d: the fast loop reads other values", w, n, from)
				}
				if fast.pos*8-int(fast.nacc) != slow.pos*8-int(slow.nacc) {
					t.Fatalf("width %d, %d values from bit %d: the fast loop stops at bit %d, the reader at %d", w, n, from, fast.pos*8-int(fast.nacc), slow.pos*8-int(slow.nacc))
				}
			}
		}
	}
}

// TestNextScaledMatchesNext checks the fused read of a scaled order-1
// column against the residual reader followed by scaleRun, bit for bit: for
// residuals of every width up to 64 bits (wide ones take the checked loop),
// lengths that are odd and that span several token blocks, both layouts
// (short uniform streams come out fixed), and both float types.
func TestNextScaledMatchesNext(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const mul = 1.0 / 3
	for trial := range 200 {
		n := []int{1, 3, 5, 31, 257, 2561, residualBlock + 3, 2*residualBlock + 1}[trial%8]
		widest := trial % 65
		r := make([]uint64, n)
		for i := range r {
			if w := rng.IntN(widest + 1); w > 0 {
				r[i] = rng.Uint64() >> (64 - w)
			}
		}
		enc := appendResiduals(nil, r)
		var want, got []float64
		var want32, got32 []float32
		for _, f32 := range []bool{false, true} {
			var slow, fast residualReader
			if _, err := slow.init(enc, n); err != nil {
				t.Fatal(err)
			}
			if _, err := fast.init(enc, n); err != nil {
				t.Fatal(err)
			}
			scratch := make([]uint64, residualBlock)
			want, got = make([]float64, n), make([]float64, n)
			want32, got32 = make([]float32, n), make([]float32, n)
			var bs, bf int64 = 7, 7
			for i := 0; i < n; {
				k, err := slow.next(scratch)
				if err != nil {
					t.Fatal(err)
				}
				if f32 {
					_, bs = scaleRun(want32[i:], 1, scratch[:k], 1, 0, bs, mul)
				} else {
					_, bs = scaleRun(want[i:], 1, scratch[:k], 1, 0, bs, mul)
				}
				var kf int
				if f32 {
					kf, bf, err = nextScaled(&fast, got32[i:], scratch, bf, mul)
				} else {
					kf, bf, err = nextScaled(&fast, got[i:], scratch, bf, mul)
				}
				if err != nil || kf != k || bf != bs {
					t.Fatalf("trial %d: %d values, k %d, %v; want %d values, k %d", trial, kf, bf, err, k, bs)
				}
				i += k
			}
			slow.release()
			fast.release()
			for i := range n {
				if math.Float64bits(want[i]) != math.Float64bits(got[i]) || math.Float32bits(want32[i]) != math.Float32bits(got32[i]) {
					t.Fatalf("trial %d (%d values, widest %d bits, float32 %v): value %d differs", trial, n, widest, f32, i)
				}
			}
		}
	}
}

// TestTokensBelow58 checks the word-wise OR against a token-by-token one at
// every length up to three rounds and a tail, with a wide token at every
// position.
func TestTokensBelow58(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for n := range 100 {
		for at := -1; at < n; at++ {
			tok := make([]byte, n)
			for i := range tok {
				tok[i] = byte(rng.IntN(17)) // ORs to 31 at most
			}
			if at >= 0 {
				tok[at] = byte(58 + rng.IntN(198))
			}
			var or byte
			for _, v := range tok {
				or |= v
			}
			if got := tokensBelow58(tok); got != (or <= 57) {
				t.Fatalf("%d tokens, wide one at %d: %v, want %v", n, at, got, or <= 57)
			}
		}
	}
}

// TestUnpackTokensEveryWidth checks the packed token block's loop against
// the bit reader, bit for bit, for every width (1 to 7), odd lengths and
// offsets lo that make some tokens bad (over 64, or past 255).
func TestUnpackTokensEveryWidth(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for w := uint(1); w <= 7; w++ {
		for _, n := range []int{1, 2, 3, 7, 8, 9, 15, 17, 100, 1023} {
			for _, lo := range []byte{0, 1, 30, 60, 200} {
				packed := make([]byte, (n*int(w)+7)/8)
				for i := range packed {
					packed[i] = byte(rng.Uint32())
				}
				rd := bitReader{src: packed}
				want, got := make([]byte, n), make([]byte, n)
				bad := false
				for i := range want {
					want[i] = lo + byte(rd.read56(w))
					bad = bad || want[i] > 64 || want[i] < lo
				}
				most := unpackTokens(packed, w, lo, got)
				if !slices.Equal(want, got) || (most > 64) != bad {
					t.Fatalf("width %d, %d tokens from %d: largest %d, bad %v; tokens equal %v", w, n, lo, most, bad, slices.Equal(want, got))
				}
			}
		}
	}
}

// BenchmarkNumericDecodePump decodes frames of the demo pump (3-axis float32
// at 25.6 kHz, 100 ms frames as the SDK cuts them) into one column per
// channel, as a query's batches take them: the read path's decoder.
func BenchmarkNumericDecodePump(b *testing.B) {
	desc := testDesc(signals.Float32, 3)
	enc, err := NewScalarEncoder(desc, Auto)
	if err != nil {
		b.Fatal(err)
	}
	sim := pump.New(25600, 1<<40, 1)
	var s signals.Samples
	var frame []byte
	for range 5 { // past the encoder's first frames, which learn the mapping
		s.Reset(signals.Float32, 3, 2560)
		sim.Fill(s.F32)
		if frame, err = enc.AppendFrame(nil, &s); err != nil {
			b.Fatal(err)
		}
	}
	h, err := ParseScalarHeaderAt(frame, 0)
	if err != nil {
		b.Fatal(err)
	}
	body := frame[h.Size:]
	cols := make([]Column, 3)
	for c := range cols {
		cols[c].Reset(signals.Float32, h.N)
	}
	b.SetBytes(int64(s.Len() * 4))
	b.ReportAllocs()
	for b.Loop() {
		if err := decodeNumericColumns(body, signals.Float32, 3, h.N, func(c int) *Column { return &cols[c] }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(s.Len()), "ns/sample")
}

// BenchmarkResidualBits times the bit reader alone on a block of residuals
// like the pump's (about 12 bits each): bytes are those of the values it
// rebuilds (8 a value).
func BenchmarkResidualBits(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	r := make([]uint64, residualBlock)
	for i := range r {
		r[i] = zigzag(int64(rng.NormFloat64() * 1000))
	}
	enc := appendResiduals(nil, r)
	b.SetBytes(int64(len(r) * 8))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeResiduals(enc, r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(r)), "ns/value")
}

// BenchmarkResidualFixed times the fixed layout's reader alone, on 12-bit
// values: bytes are those of the values it rebuilds (8 a value).
func BenchmarkResidualFixed(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 10))
	r := make([]uint64, 4096)
	for i := range r {
		r[i] = uint64(rng.IntN(1 << 12))
	}
	var w bitWriter
	for _, v := range r {
		w.write(v, 12)
	}
	enc := append([]byte{residualsFixed, 12}, w.flush()...)
	b.SetBytes(int64(len(r) * 8))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeResiduals(enc, r); err != nil {
			b.Fatal(err)
		}
	}
}
