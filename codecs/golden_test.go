package codecs

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const goldenStart = 1_700_000_000_123_456_789

// goldenFrames are small plain frames, one per sample type plus an empty one,
// built from the values most likely to be mangled. A change of the wire format
// fails here; run with -update only for a deliberate, versioned change.
func goldenFrames() []struct {
	file string
	desc *signals.Scalar
	s    *signals.Samples
} {
	f32 := func(bits ...uint32) []float32 {
		out := make([]float32, len(bits))
		for i, b := range bits {
			out[i] = math.Float32frombits(b)
		}
		return out
	}
	f64 := func(bits ...uint64) []float64 {
		out := make([]float64, len(bits))
		for i, b := range bits {
			out[i] = math.Float64frombits(b)
		}
		return out
	}
	block := func(t signals.SampleType, n int) *signals.Samples {
		return &signals.Samples{Start: goldenStart, N: n, Channels: 2, Type: t}
	}
	i16, i32, fl32, fl64, empty := block(signals.Int16, 3), block(signals.Int32, 3), block(signals.Float32, 3), block(signals.Float64, 3), block(signals.Float32, 0)
	i16.I16 = []int16{math.MinInt16, math.MaxInt16, 0, -1, 1, 12345}
	i32.I32 = []int32{math.MinInt32, math.MaxInt32, 0, -1, 1, 123456789}
	// (NaN with payload 1, -0), (+Inf, -Inf), (smallest subnormal, max float32)
	fl32.F32 = f32(0x7fc00001, 0x80000000, 0x7f800000, 0xff800000, 0x00000001, 0x7f7fffff)
	fl64.F64 = f64(0x7ff8000000000001, 0x8000000000000000, 0x7ff0000000000000, 0xfff0000000000000, 1, 0x7fefffffffffffff)
	empty.F32 = []float32{}
	return []struct {
		file string
		desc *signals.Scalar
		s    *signals.Samples
	}{
		{"plain_int16.hex", testDesc(signals.Int16, 2), i16},
		{"plain_int32.hex", testDesc(signals.Int32, 2), i32},
		{"plain_float32.hex", testDesc(signals.Float32, 2), fl32},
		{"plain_float64.hex", testDesc(signals.Float64, 2), fl64},
		{"plain_float32_empty.hex", testDesc(signals.Float32, 2), empty},
	}
}

func TestGoldenFrames(t *testing.T) {
	for _, g := range goldenFrames() {
		t.Run(g.file, func(t *testing.T) {
			path := filepath.Join("testdata", "golden", g.file)
			got, err := AppendScalarFrame(nil, g.desc, g.s, Plain)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				comment := fmt.Sprintf("plain scalar frame: %s, %d channels, %d samples, start %d", g.s.Type, g.s.Channels, g.s.N, g.s.Start)
				if err := writeFrameHex(path, comment, got, g.s.Channels*g.s.Type.Size()); err != nil {
					t.Fatal(err)
				}
			}
			want, err := readHex(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("AppendScalarFrame no longer writes the golden bytes:\n got %x\nwant %x", got, want)
			}
			out := &signals.Samples{}
			if err := DecodeScalarFrame(want, g.desc, out); err != nil {
				t.Fatal(err)
			}
			sameSamples(t, out, g.s)
		})
	}
}

// readHex reads a golden file: hex digits, whitespace ignored, '#' starts a
// comment that runs to the end of the line.
func readHex(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var digits strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	return hex.DecodeString(digits.String())
}

// writeFrameHex writes the header on one line and then one line per sample.
func writeFrameHex(path, comment string, frame []byte, sampleBytes int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n# regenerate with: go test ./codecs -run Golden -update\n", comment)
	h := frame[:ScalarHeaderSize]
	fmt.Fprintf(&b, "%x %x %x %x %x  # codec, version, flags, n, start\n",
		h[offCodec:offVersion], h[offVersion:offFlags], h[offFlags:offN], h[offN:offStart], h[offStart:])
	for i, body := 0, frame[ScalarHeaderSize:]; len(body) > 0; i++ {
		fmt.Fprintf(&b, "%x  # sample %d\n", body[:sampleBytes], i)
		body = body[sampleBytes:]
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
