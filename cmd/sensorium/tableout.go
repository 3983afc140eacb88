package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/sensorium-io/sensorium/internal/platform/tablefile"
)

// Output formats of `sensorium query`, by file extension (tablefile has
// what each is).
const (
	formatArrowFile   = string(tablefile.ArrowFile)
	formatArrowStream = string(tablefile.ArrowStream)
	formatParquet     = string(tablefile.Parquet)
	formatCSV         = string(tablefile.CSV)
)

// parquetRowGroupBytes bounds a Parquet row group (encoded and compressed)
// besides its rows: the CLI holds one in memory before it goes to disk.
const parquetRowGroupBytes = 128 << 20

// convertTable reads an Arrow IPC stream and writes it as format (package
// tablefile). It returns the rows written. A result of no rows is still a
// valid file of its format. When the stream fails part way, what was
// written is still finished (the Parquet footer, the IPC end-of-stream
// marker or file footer): a live query stopped by the user keeps its rows;
// the caller removes the file of one that failed.
func convertTable(format string, in io.Reader, out io.Writer) (int64, error) {
	r, err := ipc.NewReader(in)
	if err != nil {
		return 0, fmt.Errorf("reading the Arrow stream: %w", err)
	}
	defer r.Release()
	w, err := tablefile.New(tablefile.Format(format), r.Schema(), out, parquetRowGroupBytes)
	var le *tablefile.ListColumnError
	if errors.As(err, &le) {
		return 0, fmt.Errorf("%v: query with --layout rows and the samples shape, or write .parquet or .arrow", err)
	}
	if err != nil {
		return 0, err
	}
	for r.Next() {
		if err := w.Write(r.RecordBatch()); err != nil {
			return w.Rows(), err
		}
	}
	ferr := w.Close()
	if err := r.Err(); err != nil {
		return w.Rows(), err
	}
	return w.Rows(), ferr
}
