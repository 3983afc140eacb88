package codecs

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

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

// Decode-only goldens: frames whose bytes were written once and are kept as
// they are, because a reader must go on accepting what an older writer made.
// The byte codecs' output may change with the compressor's version, and the
// numeric encoder may choose differently over time, so these are never
// re-encoded and compared; they must decode, bit for bit, to samples the
// test can rebuild. Their files say how they were made.

// splitmix is a 64-bit generator in integer arithmetic only, so the samples
// a golden decodes to cannot change with the Go version or the platform.
type splitmix uint64

func (s *splitmix) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// goldenWave returns n samples of channels channels of an integer type: per
// channel a triangle wave of the given amplitude and a period of 500 + 97c
// samples, plus noise, the sum of four uniform values in [-noise, noise)
// (none when noise is 0).
func goldenWave(t signals.SampleType, channels, n int, amplitude, noise int64, seed uint64) *signals.Samples {
	s := &signals.Samples{Start: goldenStart}
	s.Reset(t, channels, n)
	rng := splitmix(seed)
	for i := range n {
		for c := range channels {
			period := int64(500 + 97*c)
			p := (int64(i) + 31*int64(c)) % period
			v := amplitude*abs64(2*p-period)/period*2 - amplitude
			for j := 0; noise > 0 && j < 4; j++ {
				v += int64(rng.next()%uint64(2*noise)) - noise
			}
			switch t {
			case signals.Int16:
				s.I16[i*channels+c] = int16(v)
			case signals.Int32:
				s.I32[i*channels+c] = int32(v)
			default:
				panic("goldenWave makes integer samples")
			}
		}
	}
	return s
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// decodeOnlyGoldens lists the decode-only golden frames and the samples each
// must decode to.
func decodeOnlyGoldens() []struct {
	file string
	desc *signals.Scalar
	s    *signals.Samples
} {
	type golden = struct {
		file string
		desc *signals.Scalar
		s    *signals.Samples
	}
	var out []golden
	plainFrames := goldenFrames()
	for _, codec := range []string{"zstd", "s2", "shuffle_zstd"} {
		for _, g := range plainFrames {
			if g.s.N == 0 {
				continue
			}
			out = append(out, golden{"decode_" + codec + "_" + g.s.Type.String() + ".hex", g.desc, g.s})
		}
		// A wave without noise, so that the compressors find matches: one
		// channel, except for shuffle-zstd, whose byte planes need several.
		channels := 1
		if codec == "shuffle_zstd" {
			channels = 3
		}
		out = append(out, golden{"decode_" + codec + "_int16_wave.hex", testDesc(signals.Int16, channels), goldenWave(signals.Int16, channels, 4096, 3000, 0, 1)})
	}
	// One channel of 20000 samples, two token blocks of 16384 and 3616,
	// each coded with huff0's four streams.
	out = append(out, golden{"decode_numeric_int32_wave.hex", testDesc(signals.Int32, 1), goldenWave(signals.Int32, 1, 20000, 100000, 16, 2)})
	return out
}

func TestDecodeOnlyGoldens(t *testing.T) {
	for _, g := range decodeOnlyGoldens() {
		t.Run(g.file, func(t *testing.T) {
			frame, err := readHex(filepath.Join("testdata", "golden", g.file))
			if err != nil {
				t.Fatal(err)
			}
			out := &signals.Samples{}
			if err := DecodeScalarFrame(frame, g.desc, out); err != nil {
				t.Fatal(err)
			}
			sameSamples(t, out, g.s)
		})
	}
}

// The decode-only goldens hold what they are kept for: the byte codecs'
// wave frames are compressed (not stored), and the numeric one has two token
// blocks in huff0's four-stream layout.
func TestDecodeOnlyGoldensCover(t *testing.T) {
	read := func(file string) []byte {
		t.Helper()
		frame, err := readHex(filepath.Join("testdata", "golden", file))
		if err != nil {
			t.Fatal(err)
		}
		return frame
	}
	for _, file := range []string{"decode_zstd_int16_wave.hex", "decode_shuffle_zstd_int16_wave.hex"} {
		var h zstd.Header
		if err := h.Decode(read(file)[ScalarHeaderSize:]); err != nil || !h.FirstBlock.Compressed {
			t.Errorf("%s: the first block is not a compressed block: %+v, %v", file, h.FirstBlock, err)
		}
	}
	if frame := read("decode_s2_int16_wave.hex"); len(frame)-ScalarHeaderSize > 4096*2/2 {
		t.Errorf("decode_s2_int16_wave.hex: a body of %d bytes does not exercise s2's copies", len(frame)-ScalarHeaderSize)
	}
	frame := read("decode_numeric_int32_wave.hex")
	encs, err := numericTokenBlocks(frame[ScalarHeaderSize:], 20000)
	if err != nil {
		t.Fatal(err)
	}
	if len(encs) != 2 || encs[0] != tokHuff4 || encs[1] != tokHuff4 {
		t.Errorf("decode_numeric_int32_wave.hex: token blocks coded %v, want two of %d (huff0, four streams)", encs, tokHuff4)
	}
}

// numericTokenBlocks walks one integer channel of a numeric body of n
// samples (FORMAT.md, "Numeric body") and returns the encoding byte of each
// of its token blocks.
func numericTokenBlocks(body []byte, n int) ([]byte, error) {
	uvarint := func() (uint64, error) {
		v, k := binary.Uvarint(body)
		if k <= 0 {
			return 0, fmt.Errorf("bad uvarint")
		}
		body = body[k:]
		return v, nil
	}
	if len(body) < 2 || body[0] != 0 {
		return nil, fmt.Errorf("not an int channel")
	}
	order := int(body[1])
	body = body[2:]
	for range min(order, n) {
		if _, err := uvarint(); err != nil {
			return nil, err
		}
	}
	m := n - min(order, n)
	if len(body) < 1 || body[0] != residualsTokens {
		return nil, fmt.Errorf("residuals not in the token layout")
	}
	body = body[1:]
	var encs []byte
	for at := 0; at < m; at += residualBlock {
		count := min(residualBlock, m-at)
		if len(body) < 1 {
			return nil, fmt.Errorf("token block %d truncated", len(encs))
		}
		enc := body[0]
		body = body[1:]
		encs = append(encs, enc)
		var skip int
		switch enc {
		case tokRaw:
			skip = count
		case tokRLE:
			skip = 1
		case tokPacked:
			if len(body) < 2 {
				return nil, fmt.Errorf("packed block truncated")
			}
			skip = 2 + (count*int(body[1])+7)/8
		case tokHuff1, tokHuff4:
			size, err := uvarint()
			if err != nil {
				return nil, err
			}
			skip = int(size)
		default:
			return nil, fmt.Errorf("token block encoding %d", enc)
		}
		if skip > len(body) {
			return nil, fmt.Errorf("token block %d truncated", len(encs)-1)
		}
		body = body[skip:]
	}
	size, err := uvarint()
	if err != nil || uint64(len(body)) != size {
		return nil, fmt.Errorf("bit stream of %d bytes, %d left: %v", size, len(body), err)
	}
	return encs, nil
}
