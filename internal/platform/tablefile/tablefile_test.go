package tablefile

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

var schema = arrow.NewSchema([]arrow.Field{
	{Name: "time", Type: &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}},
	{Name: "x", Type: arrow.PrimitiveTypes.Float32},
}, nil)

func batch(n int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := range n {
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(1_700_000_000_000_000_000 + int64(i)*1000))
		b.Field(1).(*array.Float32Builder).Append(float32(i) / 4)
	}
	return b.NewRecordBatch()
}

// readRows opens a file of each format with arrow-go's own readers and
// counts its rows.
func readRows(t *testing.T, format Format, b []byte) int64 {
	t.Helper()
	switch format {
	case ArrowStream:
		r, err := ipc.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		var n int64
		for r.Next() {
			n += r.RecordBatch().NumRows()
		}
		return n
	case ArrowFile:
		r, err := ipc.NewFileReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var n int64
		for i := range r.NumRecords() {
			rec, err := r.RecordBatch(i)
			if err != nil {
				t.Fatal(err)
			}
			n += rec.NumRows()
		}
		return n
	case Parquet:
		f, err := file.NewParquetReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		fr, err := pqarrow.NewFileReader(f, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := fr.ReadTable(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer tbl.Release()
		if !arrow.TypeEqual(tbl.Schema().Field(0).Type, schema.Field(0).Type) {
			t.Errorf("parquet gives back %v, not the Arrow schema's time column", tbl.Schema().Field(0))
		}
		return tbl.NumRows()
	case CSV:
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if lines[0] != "time,x" {
			t.Errorf("csv header %q", lines[0])
		}
		return int64(len(lines) - 1)
	}
	t.Fatalf("format %q", format)
	return 0
}

// Every format gives a file its readers open, with every row, and a valid
// file for no rows (the CSV with its header).
func TestFormats(t *testing.T) {
	for _, format := range []Format{ArrowFile, ArrowStream, Parquet, CSV} {
		for _, rows := range []int{0, 1, 3000} {
			var out bytes.Buffer
			w, err := New(format, schema, &out, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if rows > 0 {
				rec := batch(rows)
				if err := w.Write(rec); err != nil {
					t.Fatal(err)
				}
				rec.Release()
			}
			if err := w.Close(); err != nil {
				t.Fatalf("%s, %d rows: close: %v", format, rows, err)
			}
			if got := readRows(t, format, out.Bytes()); got != int64(rows) || w.Rows() != int64(rows) {
				t.Errorf("%s: wrote %d rows (counted %d), read back %d", format, rows, w.Rows(), got)
			}
		}
	}
}

// CSV refuses a list column by name; an unknown format is an error.
func TestRefusals(t *testing.T) {
	lists := arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.FixedSizeListOf(4, arrow.PrimitiveTypes.Float32)}}, nil)
	var le *ListColumnError
	if _, err := New(CSV, lists, &bytes.Buffer{}, 1<<20); !errors.As(err, &le) || le.Column != "v" {
		t.Errorf("a list column to CSV: %v", err)
	}
	if _, err := New(Format("xlsx"), schema, &bytes.Buffer{}, 1<<20); err == nil {
		t.Error("an unknown format was taken")
	}
}
