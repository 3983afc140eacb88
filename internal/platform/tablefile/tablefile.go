// Package tablefile writes Arrow record batches as the files Sensorium hands
// out — by `sensorium query -o` and the console's downloads alike, so that
// both give the same file for the same range: the Arrow IPC file and stream
// formats, Parquet laid out for readers, and CSV.
package tablefile

import (
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/csv"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Format is a kind of file. The two Arrow IPC formats carry the names Arrow
// gives them: the file format (.arrow; the footer indexes the batches, so
// pyarrow's ipc.open_file, pandas.read_feather and polars.read_ipc open it)
// and the stream format (.arrows; no footer, read front to back with
// ipc.open_stream — what a live query writes, since a footer can only be
// written at the end).
type Format string

// The formats.
const (
	ArrowFile   Format = "arrow"
	ArrowStream Format = "arrows"
	Parquet     Format = "parquet"
	CSV         Format = "csv"
)

// ParquetRowGroupRows bounds a Parquet row group: readers split work and
// read statistics per row group, so a group should be large (DuckDB, Spark
// and pyarrow default to about a million rows).
const ParquetRowGroupRows = 1 << 20

// ListColumnError is CSV refusing a list column (a windows tensor, a frame
// of points): a CSV cell holds one value.
type ListColumnError struct{ Column string }

func (e *ListColumnError) Error() string {
	return fmt.Sprintf("csv cannot hold the list column %q", e.Column)
}

// Writer writes record batches of one schema as a file of its format.
type Writer struct {
	format Format
	schema *arrow.Schema
	write  func(arrow.RecordBatch) error
	finish func() error
	rows   int64
}

// New starts a file of format on out, for batches of schema. Parquet: zstd,
// each column encoded by its physical type (ParquetProperties), row groups
// of ParquetRowGroupRows rows or rowGroupBytes encoded bytes, whichever
// comes first (a writer holds a whole group in memory), and the Arrow schema
// kept so that readers get the same types and metadata back. CSV: a header
// line, timestamps in RFC 3339; a schema with a list column is a
// *ListColumnError. out is not closed, even if it is an io.Closer.
func New(format Format, schema *arrow.Schema, out io.Writer, rowGroupBytes int64) (*Writer, error) {
	w := &Writer{format: format, schema: schema}
	switch format {
	case ArrowStream:
		iw := ipc.NewWriter(out, ipc.WithSchema(schema))
		w.write, w.finish = iw.Write, iw.Close
	case ArrowFile:
		fw, err := ipc.NewFileWriter(out, ipc.WithSchema(schema))
		if err != nil {
			return nil, fmt.Errorf("arrow file: %w", err)
		}
		w.write, w.finish = fw.Write, fw.Close
	case Parquet:
		props, err := ParquetProperties(schema)
		if err != nil {
			return nil, fmt.Errorf("parquet: %w", err)
		}
		pw, err := pqarrow.NewFileWriter(schema, struct{ io.Writer }{out}, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
		if err != nil {
			return nil, fmt.Errorf("parquet: %w", err)
		}
		// Buffered, so that a server's batches (a few thousand rows) fill
		// row groups rather than make one group each.
		w.write = func(rec arrow.RecordBatch) error {
			if err := pw.WriteBuffered(rec); err != nil {
				return err
			}
			if pw.RowGroupTotalBytesWritten() >= rowGroupBytes {
				return pw.NewBufferedRowGroupChecked()
			}
			return nil
		}
		w.finish = pw.Close
	case CSV:
		for _, f := range schema.Fields() {
			if _, nested := f.Type.(arrow.NestedType); nested {
				return nil, &ListColumnError{Column: f.Name}
			}
		}
		cw := csv.NewWriter(out, schema, csv.WithHeader(true))
		w.write, w.finish = cw.Write, func() error { cw.Flush(); return cw.Error() }
	default:
		return nil, fmt.Errorf("tablefile: unknown format %q", format)
	}
	return w, nil
}

// Write adds a batch.
func (w *Writer) Write(rec arrow.RecordBatch) error {
	w.rows += rec.NumRows()
	return w.write(rec)
}

// Rows is the rows written so far.
func (w *Writer) Rows() int64 { return w.rows }

// Close ends the file (the Parquet footer, the IPC end-of-stream marker or
// file footer). A file of no rows is still a valid file of its format: the
// schema (Arrow, Parquet) or the header line (CSV).
func (w *Writer) Close() error {
	var err error
	if w.rows == 0 && w.format == CSV {
		err = writeEmpty(w.schema, w.write) // the CSV writer writes its header with a batch
	}
	return errors.Join(err, w.finish())
}

// writeEmpty writes a batch of no rows.
func writeEmpty(schema *arrow.Schema, write func(arrow.RecordBatch) error) error {
	cols := make([]arrow.Array, len(schema.Fields()))
	for i, f := range schema.Fields() {
		cols[i] = array.MakeArrayOfNull(memory.DefaultAllocator, f.Type, 0)
		defer cols[i].Release()
	}
	rec := array.NewRecordBatch(schema, cols, 0)
	defer rec.Release()
	return write(rec)
}

// ParquetProperties chooses the encoding of each column of schema by its
// physical type, so that the file stays close to the size the store keeps
// for the same samples (the store's codecs delta-encode time and pack
// samples): integers and timestamps — the time column above all, a
// near-constant step — DELTA_BINARY_PACKED; floats BYTE_STREAM_SPLIT, which
// puts the bytes of equal weight together for zstd to find; strings a
// dictionary. Every page and column chunk carries min/max statistics, so
// that readers skip row groups outside a filter.
func ParquetProperties(schema *arrow.Schema) (*parquet.WriterProperties, error) {
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithDictionaryDefault(false),
		parquet.WithStats(true),
		parquet.WithMaxRowGroupLength(ParquetRowGroupRows),
	}
	base := parquet.NewWriterProperties(opts...)
	ps, err := pqarrow.ToParquet(schema, base, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return nil, err
	}
	for _, col := range ps.Columns() {
		path := col.Path()
		switch col.PhysicalType() {
		case parquet.Types.Int32, parquet.Types.Int64:
			opts = append(opts, parquet.WithEncodingFor(path, parquet.Encodings.DeltaBinaryPacked))
		case parquet.Types.Float, parquet.Types.Double:
			opts = append(opts, parquet.WithEncodingFor(path, parquet.Encodings.ByteStreamSplit))
		case parquet.Types.ByteArray:
			opts = append(opts, parquet.WithDictionaryFor(path, true))
		}
	}
	return parquet.NewWriterProperties(opts...), nil
}
