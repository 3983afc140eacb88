package signals

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// Golden descriptions: a change of the wire format fails here before it reaches
// a stored track. Run with -update only for a deliberate, versioned change.
var goldenScalars = []struct {
	file string
	d    *Scalar
}{
	{"scalar_v1_int16.hex", &Scalar{SampleRate: 10000, SampleType: Int16, Channels: []Channel{{"current", "A"}}}},
	{"scalar_v1_int32.hex", &Scalar{SampleRate: 1000, SampleType: Int32, Channels: []Channel{{"pressure_in", "Pa"}, {"pressure_out", "Pa"}}}},
	{"scalar_v1_float32.hex", formatExample()},
	{"scalar_v1_float64.hex", &Scalar{SampleRate: 0.1, SampleType: Float64, Channels: []Channel{{"温度", "°C"}, {"🛠", ""}}}},
}

func TestGoldenScalars(t *testing.T) {
	for _, g := range goldenScalars {
		t.Run(g.file, func(t *testing.T) {
			path := filepath.Join("testdata", "golden", g.file)
			got, err := g.d.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				comment := fmt.Sprintf("Scalar description v1: %s at %v Hz, channels %q", g.d.SampleType, g.d.SampleRate, g.d.Channels)
				if err := writeHex(path, comment, got); err != nil {
					t.Fatal(err)
				}
			}
			want, err := readHex(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("MarshalBinary no longer writes the golden bytes:\n got %x\nwant %x", got, want)
			}
			back, err := ParseScalar(want)
			if err != nil || !back.Equal(g.d) {
				t.Errorf("ParseScalar(golden) = %+v, %v", back, err)
			}
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

func writeHex(path, comment string, data []byte) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n# %d bytes; regenerate with: go test ./signals -run Golden -update\n", comment, len(data))
	for i := 0; i < len(data); i += 16 {
		b.WriteString(hex.EncodeToString(data[i:min(i+16, len(data))]))
		b.WriteByte('\n')
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
