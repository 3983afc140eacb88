package sampletable

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkReadCSV measures reading a CSV table (ISO times, three float
// channels, as `sensorium query` writes it) through the chunker, without
// sending: the file's share of an import's cost.
func BenchmarkReadCSV(b *testing.B) {
	for _, shape := range []string{"iso", "epoch"} {
		b.Run(shape, func(b *testing.B) {
			const rows = 200_000
			var sb strings.Builder
			sb.WriteString("time,x,y,z\n")
			t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
			for k := 0; k < rows; k++ {
				t := t0.Add(time.Duration(k) * 39062 * time.Nanosecond)
				if shape == "iso" {
					sb.WriteString(t.Format(time.RFC3339Nano))
				} else {
					fmt.Fprintf(&sb, "%d.%09d", t.Unix(), t.Nanosecond())
				}
				fmt.Fprintf(&sb, ",%g,%g,%g\n", float32(math.Sin(float64(k)/10)), float32(math.Cos(float64(k)/7)), float32(k%100)/8)
			}
			path := filepath.Join(b.TempDir(), "f.csv")
			if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(sb.Len()))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				n, err := readAll(path, Options{}, 25600)
				if err != nil || n != rows {
					b.Fatal(n, err)
				}
			}
			b.ReportMetric(float64(rows*3*b.N)/b.Elapsed().Seconds()/1e6, "Msamples/s")
		})
	}
}
