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
