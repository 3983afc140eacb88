package main

import (
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/csv"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Output formats of `sensorium query`, by file extension.
const (
	formatArrow   = "arrow"
	formatParquet = "parquet"
	formatCSV     = "csv"
)

// convertTable reads an Arrow IPC stream and writes it as Parquet (zstd,
// one row group per batch, the Arrow schema kept so that readers get the
// same types and metadata back), CSV (a header line; timestamps in RFC
// 3339) or Arrow IPC again (batch by batch). It returns the rows written.
// When the stream fails part way, what was written is still finished (the
// Parquet footer, the IPC end-of-stream marker): a live query stopped by
// the user keeps its rows; the caller removes the file of one that failed.
func convertTable(format string, in io.Reader, out io.Writer) (int64, error) {
	r, err := ipc.NewReader(in)
	if err != nil {
		return 0, fmt.Errorf("reading the Arrow stream: %w", err)
	}
	defer r.Release()
	var write func(arrow.RecordBatch) error
	var finish func() error
	switch format {
	case formatArrow:
		w := ipc.NewWriter(out, ipc.WithSchema(r.Schema()))
		write, finish = w.Write, w.Close
	case formatParquet:
		props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithDictionaryDefault(false))
		// The writer would close a sink that is an io.Closer; the caller owns it.
		w, err := pqarrow.NewFileWriter(r.Schema(), struct{ io.Writer }{out}, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
		if err != nil {
			return 0, fmt.Errorf("parquet: %w", err)
		}
		write, finish = w.Write, w.Close
	case formatCSV:
		for _, f := range r.Schema().Fields() {
			if _, nested := f.Type.(arrow.NestedType); nested {
				return 0, fmt.Errorf("csv cannot hold the list column %q: query with --layout rows and the samples shape, or write .parquet or .arrow", f.Name)
			}
		}
		w := csv.NewWriter(out, r.Schema(), csv.WithHeader(true))
		write, finish = w.Write, func() error { w.Flush(); return w.Error() }
	default:
		return 0, fmt.Errorf("unknown output format %q", format)
	}
	var rows int64
	for r.Next() {
		rec := r.RecordBatch()
		if err := write(rec); err != nil {
			return rows, err
		}
		rows += rec.NumRows()
	}
	ferr := finish()
	if err := r.Err(); err != nil {
		return rows, err
	}
	return rows, ferr
}
