package sampletable

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
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

// BenchmarkReadParquet measures reading a Parquet file (time and three
// float32 channels, row groups of 1 Mi rows, zstd) through the chunker.
func BenchmarkReadParquet(b *testing.B) {
	const rows = 2_000_000
	schema := arrow.NewSchema([]arrow.Field{{Name: "time", Type: arrow.FixedWidthTypes.Timestamp_ns},
		{Name: "x", Type: arrow.PrimitiveTypes.Float32}, {Name: "y", Type: arrow.PrimitiveTypes.Float32}, {Name: "z", Type: arrow.PrimitiveTypes.Float32}}, nil)
	path := filepath.Join(b.TempDir(), "f.parquet")
	f, _ := os.Create(path)
	w, err := pqarrow.NewFileWriter(schema, f, parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(1<<20), parquet.WithCompression(compress.Codecs.Zstd)), pqarrow.DefaultWriterProps())
	if err != nil {
		b.Fatal(err)
	}
	bl := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	for k := 0; k < rows; k++ {
		bl.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(1_700_000_000_000_000_000 + int64(k)*39062))
		for c := 1; c <= 3; c++ {
			bl.Field(c).(*array.Float32Builder).Append(float32(math.Sin(float64(k*c) / 100)))
		}
		if (k+1)%100_000 == 0 {
			rec := bl.NewRecordBatch()
			if err := w.WriteBuffered(rec); err != nil {
				b.Fatal(err)
			}
			rec.Release()
		}
	}
	bl.Release()
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n, err := readAll(path, Options{}, 25600)
		if err != nil || n != rows {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(rows*3*b.N)/b.Elapsed().Seconds()/1e6, "Msamples/s")
}
