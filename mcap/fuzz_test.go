package mcap

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReader reads arbitrary bytes as an MCAP file, streaming and by its
// summary: errors are fine, panics and unbounded allocations are not.
// Seeds: the files in testdata/ (written by our writer in each compression
// and by Foxglove's @mcap/core) and the test's own.
func FuzzReader(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.mcap"))
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, comp := range []string{"none", "zstd", "lz4"} {
		f.Add(writeFile(f, comp, 100, 10))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b), Options{MaxRecordSize: 1 << 20})
		if err == nil {
			for i := 0; i < 1<<16; i++ {
				if _, err := r.Next(); err != nil {
					break
				}
			}
		}
		ReadSummary(bytes.NewReader(b), int64(len(b)))
	})
}
