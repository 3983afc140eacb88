package main

import (
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

// Output formats of `sensorium query`, by file extension. The two Arrow IPC
// formats carry the names Arrow gives them: the file format (.arrow; the
// footer indexes the batches, so pyarrow's ipc.open_file, pandas.read_feather
// and polars.read_ipc open it) and the stream format (.arrows; no
// footer, read front to back with ipc.open_stream — what stdout and a live
// query write, since a footer can only be written at the end).
const (
	formatArrowFile   = "arrow"
	formatArrowStream = "arrows"
	formatParquet     = "parquet"
	formatCSV         = "csv"
)

// Parquet row groups are cut at whichever comes first: readers split work
// and read statistics per row group, so a group should be large (DuckDB,
// Spark and pyarrow default to about a million rows), but a writer holds a
// whole group in memory before it goes to disk.
const (
	parquetRowGroupRows  = 1 << 20
	parquetRowGroupBytes = 128 << 20 // encoded and compressed
)

// convertTable reads an Arrow IPC stream and writes it as format: an Arrow
// IPC file or stream, Parquet (see parquetProperties; the Arrow schema kept
// so that readers get the same types and metadata back) or CSV (a header
// line; timestamps in RFC 3339). It returns the rows written. A result of no
// rows is still a valid file of its format: the schema (Arrow, Parquet) or
// the header line (CSV). When the stream fails part way, what was written is
// still finished (the Parquet footer, the IPC end-of-stream marker or file
// footer): a live query stopped by the user keeps its rows; the caller
// removes the file of one that failed.
func convertTable(format string, in io.Reader, out io.Writer) (int64, error) {
	r, err := ipc.NewReader(in)
	if err != nil {
		return 0, fmt.Errorf("reading the Arrow stream: %w", err)
	}
	defer r.Release()
	schema := r.Schema()
	var write func(arrow.RecordBatch) error
	var finish func() error
	switch format {
	case formatArrowStream:
		w := ipc.NewWriter(out, ipc.WithSchema(schema))
		write, finish = w.Write, w.Close
	case formatArrowFile:
		w, err := ipc.NewFileWriter(out, ipc.WithSchema(schema))
		if err != nil {
			return 0, fmt.Errorf("arrow file: %w", err)
		}
		write, finish = w.Write, w.Close
	case formatParquet:
		props, err := parquetProperties(schema)
		if err != nil {
			return 0, fmt.Errorf("parquet: %w", err)
		}
		// The writer would close a sink that is an io.Closer; the caller owns it.
		w, err := pqarrow.NewFileWriter(schema, struct{ io.Writer }{out}, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
		if err != nil {
			return 0, fmt.Errorf("parquet: %w", err)
		}
		// Buffered, so that the server's batches (a few thousand rows) fill
		// row groups of parquetRowGroupRows rather than one group each.
		write = func(rec arrow.RecordBatch) error {
			if err := w.WriteBuffered(rec); err != nil {
				return err
			}
			if w.RowGroupTotalBytesWritten() >= parquetRowGroupBytes {
				return w.NewBufferedRowGroupChecked()
			}
			return nil
		}
		finish = w.Close
	case formatCSV:
		for _, f := range schema.Fields() {
			if _, nested := f.Type.(arrow.NestedType); nested {
				return 0, fmt.Errorf("csv cannot hold the list column %q: query with --layout rows and the samples shape, or write .parquet or .arrow", f.Name)
			}
		}
		w := csv.NewWriter(out, schema, csv.WithHeader(true))
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
	if rows == 0 && format == formatCSV {
		// The CSV writer writes its header with the first batch.
		if err := writeEmpty(schema, write); err != nil {
			return 0, err
		}
	}
	ferr := finish()
	if err := r.Err(); err != nil {
		return rows, err
	}
	return rows, ferr
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

// parquetProperties chooses the encoding of each column of schema by its
// physical type, so that the file stays close to the size the store keeps
// for the same samples (the store's codecs delta-encode time and pack
// samples): integers and timestamps — the time column above all, a
// near-constant step — DELTA_BINARY_PACKED; floats BYTE_STREAM_SPLIT, which
// puts the bytes of equal weight together for zstd to find; strings a
// dictionary. Every page and column chunk carries min/max statistics, so that
// readers skip row groups outside a filter.
func parquetProperties(schema *arrow.Schema) (*parquet.WriterProperties, error) {
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithDictionaryDefault(false),
		parquet.WithStats(true),
		parquet.WithMaxRowGroupLength(parquetRowGroupRows),
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
