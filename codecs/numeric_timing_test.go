package codecs

import (
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
