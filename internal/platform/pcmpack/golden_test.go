package pcmpack

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the packed fragments in testdata/golden")

// TestGoldenPacked pins the stored form (FORMAT.md): fragments packed by an
// earlier build are kept in testdata/golden, and each must still unpack to
// the very bytes that were put — stored data outlives the code that wrote
// it — and packing the same fragment must still give those bytes, so that
// a change of the packed form (or of the audio coder inside it) is a
// decision, made with -update and a new format version, not an accident.
func TestGoldenPacked(t *testing.T) {
	for _, g := range []struct {
		file           string
		bits, channels int
	}{
		{"s16_stereo.packed", 16, 2},
		{"s24_mono.packed", 24, 1},
		{"s32_mono.packed", 32, 1},
		{"f32_stereo.packed", -32, 2},
		{"f64_mono.packed", -64, 1},
		{"s16_six.packed", 16, 6},
	} {
		t.Run(g.file, func(t *testing.T) {
			orig, co := fragment(g.bits, g.channels, [][]byte{tone(480, g.channels, g.bits, 7), tone(480, g.channels, g.bits, 8), tone(333, g.channels, g.bits, 9)})
			packed, pco, ok, err := Pack(orig, co)
			if err != nil || !ok {
				t.Fatalf("Pack: ok %v, %v", ok, err)
			}
			path := filepath.Join("testdata", "golden", g.file)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, packed, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			// The Cluster starts where it started in the fragment put: the
			// bytes before it are not packed.
			got, gco, err := Unpack(nil, golden, pco)
			if err != nil {
				t.Fatalf("unpack the golden fragment: %v", err)
			}
			if gco != co || !bytes.Equal(got, orig) {
				t.Fatalf("the golden fragment unpacks to %d bytes (Cluster at %d), not the %d put (at %d)", len(got), gco, len(orig), co)
			}
			if !bytes.Equal(packed, golden) {
				t.Fatalf("packing gives %d bytes that differ from the golden %d: the stored form changed (FORMAT.md); if on purpose, version it and run -update", len(packed), len(golden))
			}
		})
	}
}
