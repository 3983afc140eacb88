package api

import (
	"fmt"
	"io"
	"net/http"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/csv"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/service/usage"
	"github.com/sensorium-io/sensorium/query"
)

// POST /v1/export?format=parquet|csv takes the body of POST /v1/query and
// answers its rows as a Parquet file or CSV, streamed batch by batch as the
// query runs: what the console's Download saves, in the formats `sensorium
// query -o x.parquet` and `-o x.csv` write (zstd; the time column and
// integers DELTA_BINARY_PACKED, floats BYTE_STREAM_SPLIT, text dictionary
// encoded; statistics; the Arrow schema kept — CSV: a header line, times in
// RFC 3339). The key needs Query on the streams. A query that fails after
// the first bytes went out ends the body early and names the error in the
// Sensorium-Error trailer, as POST /v1/query does.

func init() {
	mount(func(a *api, mux *http.ServeMux) {
		mux.HandleFunc("POST /v1/export", a.authorized(awsauth.ActionQuery, queryStreams, a.routed(streamsOfQuery, a.export)))
	})
}

// exportRowGroupBytes bounds a Parquet row group, which the writer holds in
// memory until it is full: a server answers many exports at once.
const (
	exportRowGroupRows  = 1 << 20
	exportRowGroupBytes = 32 << 20
)

func (a *api) export(w http.ResponseWriter, r *http.Request) {
	format := r.URL.Query().Get("format")
	var contentType string
	switch format {
	case "parquet":
		contentType = "application/vnd.apache.parquet"
	case "csv":
		contentType = "text/csv; charset=utf-8"
	default:
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "format=%q: export writes parquet or csv (POST /v1/query answers Arrow)", truncateParam(format)))
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	req, err := query.ParseRequest(body)
	if err != nil {
		writeError(w, err)
		return
	}
	if req.Follow {
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "an export is of a range: leave follow out"))
		return
	}
	p, err := a.q.PrepareQuery(req)
	if err != nil {
		writeError(w, err)
		return
	}
	schema := p.Schema()
	if format == "csv" {
		for _, f := range schema.Fields() {
			if _, nested := f.Type.(arrow.NestedType); nested {
				writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "CSV cannot hold the list column %q: export rows (layout rows, the samples shape) or Parquet", f.Name))
				return
			}
		}
	}
	// An export is a query written in another format: metered as one, to
	// the first stream it names, as POST /v1/query is.
	if names := req.StreamNames(); len(names) > 0 {
		a.meterAs(r, names[0], usage.Query)
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Trailer", "Sensorium-Error")
	out := &exportWriter{w: w}
	var write func(arrow.RecordBatch) error
	var finish func() error
	switch format {
	case "parquet":
		props, err := exportParquetProperties(schema)
		if err != nil {
			writeError(w, err)
			return
		}
		pw, err := pqarrow.NewFileWriter(schema, out, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
		if err != nil {
			writeError(w, fmt.Errorf("export: parquet: %w", err))
			return
		}
		write = func(rec arrow.RecordBatch) error {
			if err := pw.WriteBuffered(rec); err != nil {
				return err
			}
			if pw.RowGroupTotalBytesWritten() >= exportRowGroupBytes {
				return pw.NewBufferedRowGroupChecked()
			}
			return nil
		}
		finish = pw.Close
	case "csv":
		cw := csv.NewWriter(out, schema, csv.WithHeader(true))
		write, finish = cw.Write, func() error { cw.Flush(); return cw.Error() }
	}
	rows := int64(0)
	qerr := a.q.QueryBatches(r.Context(), p, func(rec arrow.RecordBatch) error {
		rows += rec.NumRows()
		return write(rec)
	})
	if qerr == nil && rows == 0 && format == "csv" {
		qerr = writeNoRows(schema, write) // the CSV writer writes its header with a batch
	}
	if qerr != nil {
		a.log.Warn("api: export ended with an error", "format", format, "err", qerr)
		if !out.wrote {
			writeError(w, qerr)
			return
		}
		w.Header().Set("Sensorium-Error", ErrorOf(qerr).Name+": "+ErrorOf(qerr).Message)
		return // the body ends without the Parquet footer: a reader sees it is cut
	}
	if err := finish(); err != nil {
		w.Header().Set("Sensorium-Error", ErrorOf(err).Name+": "+ErrorOf(err).Message)
	}
}

// exportWriter notes whether the body has begun; it is not an io.Closer, so
// that the Parquet writer's Close does not close the response.
type exportWriter struct {
	w     io.Writer
	wrote bool
}

func (e *exportWriter) Write(p []byte) (int, error) {
	e.wrote = e.wrote || len(p) > 0
	return e.w.Write(p)
}

func writeNoRows(schema *arrow.Schema, write func(arrow.RecordBatch) error) error {
	cols := make([]arrow.Array, len(schema.Fields()))
	for i, f := range schema.Fields() {
		cols[i] = array.MakeArrayOfNull(memory.DefaultAllocator, f.Type, 0)
		defer cols[i].Release()
	}
	rec := array.NewRecordBatch(schema, cols, 0)
	defer rec.Release()
	return write(rec)
}

// exportParquetProperties chooses each column's encoding by its physical
// type as `sensorium query -o x.parquet` does (cmd/sensorium/tableout.go),
// so that a file saved from the console is the file the CLI writes.
func exportParquetProperties(schema *arrow.Schema) (*parquet.WriterProperties, error) {
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithDictionaryDefault(false),
		parquet.WithStats(true),
		parquet.WithMaxRowGroupLength(exportRowGroupRows),
	}
	base := parquet.NewWriterProperties(opts...)
	ps, err := pqarrow.ToParquet(schema, base, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return nil, fmt.Errorf("export: parquet schema: %w", err)
	}
	for _, c := range ps.Columns() {
		path := c.Path()
		switch c.PhysicalType() {
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
