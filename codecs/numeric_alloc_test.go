package codecs

import (
	"errors"
	"runtime"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
)

// forgedConstantFrame is a numeric int16 frame of n samples, all zero, in
// the fewest bytes the format allows: RLE token blocks of token 0. When
// truncate is set its last block is cut, so the frame is corrupt only at
// its very end.
func forgedConstantFrame(n int, truncate bool) []byte {
	body := []byte{modeInt, 0, residualsTokens}
	blocks := (n + residualBlock - 1) / residualBlock
	for range blocks {
		body = append(body, tokRLE, 0)
	}
	body = append(body, 0) // an empty bit stream
	if truncate {
		body = body[:len(body)-2]
	}
	s := &signals.Samples{}
	s.Reset(signals.Int16, 1, 0)
	frame, _ := AppendScalarFrame(nil, testDesc(signals.Int16, 1), s, Plain)
	frame[offCodec] = byte(Numeric)
	frame[4], frame[5], frame[6], frame[7] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	return append(frame[:ScalarHeaderSize], body...)
}

// A 2 KB frame may decode to the largest frame there is (32 MiB of int16
// zeros): that output is what it holds. The decoder's own working memory
// stays at one token block however many samples a frame claims, and a frame
// found corrupt at its end costs no more.
func TestNumericDecodeMemoryIsTheOutput(t *testing.T) {
	n := MaxScalarFrameBytes / 2
	desc := testDesc(signals.Int16, 1)
	for _, truncate := range []bool{false, true} {
		frame := forgedConstantFrame(n, truncate)
		var out signals.Samples
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := DecodeScalarFrame(frame, desc, &out)
		runtime.ReadMemStats(&after)
		if truncate != (err != nil) || (err != nil && !errors.Is(err, ErrCorrupt)) {
			t.Fatalf("truncated %v: %v", truncate, err)
		}
		if !truncate && (out.N != n || out.I16[n-1] != 0) {
			t.Fatalf("decoded %d samples", out.N)
		}
		output := uint64(n * 2)
		if got := after.TotalAlloc - before.TotalAlloc; got > output+2<<20 {
			t.Errorf("truncated %v: a %d-byte frame of %d samples allocated %d bytes; its samples are %d", truncate, len(frame), n, got, output)
		}
	}
}

// A residual stream of no values (a channel of one sample with an order-1
// prediction) has no token that asks for a bit; bytes in its bit stream are
// junk, and the frame is corrupt.
func TestNumericEmptyResidualStreamHasNoBits(t *testing.T) {
	desc := testDesc(signals.Int16, 1)
	for _, tt := range []struct {
		name string
		body []byte
		ok   bool
	}{
		{"empty bit stream", []byte{modeInt, 1, 14, residualsTokens, 0}, true},
		{"three junk bytes", []byte{modeInt, 1, 14, residualsTokens, 3, 0xde, 0xad, 0xbe}, false},
	} {
		var out signals.Samples
		err := (numeric{}).Decode(tt.body, desc, 1, &out)
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrCorrupt)) {
			t.Errorf("%s: %v", tt.name, err)
		}
		if tt.ok && out.I16[0] != 7 {
			t.Errorf("%s: sample %d, want 7", tt.name, out.I16[0])
		}
	}
}
