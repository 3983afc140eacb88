package sampletable

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sensorium-io/sensorium/signals"
)

// Options say how to read a table. The zero value reads every numeric
// column but the time column, which is found by its name or type.
type Options struct {
	// TimeColumn names the time column; "" finds it (a column of Arrow
	// timestamp type, or named time, timestamp, datetime, t or ts), "none"
	// says there is none even if one of those names is present.
	TimeColumn string
	// TimeUnit is the unit of a numeric time column: "s", "ms", "us" or
	// "ns"; "" tells it from the column's name ("time [ms]", "time_us") or
	// else from its first value's magnitude (epoch seconds are below 10¹¹,
	// milliseconds below 10¹⁴, microseconds below 10¹⁷).
	TimeUnit string
	// Start (ns since the Unix epoch) anchors a file without a time column,
	// or a time column of offsets from the start (its values before 1973).
	Start    int64
	HasStart bool
	// Channels picks the columns to read, in that order; empty: every
	// column but the time column, all of which must then be numeric.
	Channels []string
	// Units gives channels their units, over what the header or the file's
	// metadata says; the key "" gives every channel without one its unit.
	Units map[string]string
	// Type is the sample type of the track; 0 chooses it from the columns'
	// types (CSV: float64).
	Type signals.SampleType
	// BatchRows is the number of rows read at a time; default 65,536.
	BatchRows int
}

// DefaultBatchRows is how many rows a batch holds unless told.
const DefaultBatchRows = 1 << 16

// Formats of table files, by extension.
const (
	FormatCSV         = "csv"
	FormatParquet     = "parquet"
	FormatArrowFile   = "arrow file"
	FormatArrowStream = "arrow stream"
)

// Extensions lists the file extensions Open reads, lower case with the dot.
// .gz and .zst are CSV compressed (data.csv.gz, data.tsv.zst): loggers
// rotate their CSV files into them; Parquet and Arrow compress inside.
var Extensions = []string{".csv", ".tsv", ".parquet", ".pq", ".arrow", ".feather", ".ipc", ".arrows", ".gz", ".zst"}

// compression is the compression of a CSV file by its last extension: ".gz",
// ".zst" or "".
func compression(path string) string {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".gz", ".zst":
		return ext
	}
	return ""
}

// FormatOf returns the format of path by its extension, or "".
func FormatOf(path string) string {
	if c := compression(path); c != "" {
		if FormatOf(strings.TrimSuffix(path, path[len(path)-len(c):])) == FormatCSV {
			return FormatCSV
		}
		return ""
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv", ".tsv":
		return FormatCSV
	case ".parquet", ".pq":
		return FormatParquet
	case ".arrow", ".feather", ".ipc":
		return FormatArrowFile // Open falls back to the stream format
	case ".arrows":
		return FormatArrowStream
	}
	return ""
}

// Table is an open table file. Its header is known once Open returns; its
// rows come through Next.
type Table struct {
	Path     string
	Format   string
	TimeName string            // the time column; "" when the table has none
	Channels []signals.Channel // the channel columns, in order, with units
	Type     signals.SampleType
	// Rate is the sample rate the file's metadata states (Sensorium's
	// query writes sensorium.sample_rate), or 0.
	Rate float64

	src source
}

// A Batch holds rows of a table, column by column.
type Batch struct {
	N int
	// Time holds each row's time in ns since the Unix epoch; nil when the
	// table has no time column.
	Time []int64
	// Values holds a column per channel; an empty cell or a null is NaN.
	Values [][]float64
	first  int64   // number (from 1) of row 0 among the file's rows
	lines  []int64 // CSV: the line each row starts on
	path   string
}

// Where names row i of the batch for an error message: "data.csv:17" or
// "data.parquet row 17".
func (b *Batch) Where(i int) string {
	if b.lines != nil {
		return fmt.Sprintf("%s:%d", b.path, b.lines[i])
	}
	return fmt.Sprintf("%s row %d", b.path, b.first+int64(i))
}

// Row is the number (from 1) of row i among the file's data rows.
func (b *Batch) Row(i int) int64 { return b.first + int64(i) }

// source is one format's reader.
type source interface {
	// next fills b with the next rows; io.EOF when there are none.
	next(b *Batch) error
	// progress is how much of the file has been read and its total, in
	// the same unit (bytes or rows); total is 0 when unknown.
	progress() (done, total int64)
	close() error
}

// Open opens a table file and reads its header.
func Open(path string, o Options) (*Table, error) {
	if o.BatchRows <= 0 {
		o.BatchRows = DefaultBatchRows
	}
	switch o.TimeUnit {
	case "", "s", "ms", "us", "ns":
	default:
		return nil, fmt.Errorf("%s: time unit %q: want s, ms, us or ns", path, o.TimeUnit)
	}
	t := &Table{Path: path, Format: FormatOf(path)}
	var err error
	switch t.Format {
	case FormatCSV:
		err = openCSV(t, o)
	case FormatParquet:
		err = openParquet(t, o)
	case FormatArrowFile, FormatArrowStream:
		err = openArrow(t, o)
	default:
		return nil, fmt.Errorf("%s: not a table file: the extension must be one of %s (.gz and .zst after .csv or .tsv)", path, strings.Join(Extensions, ", "))
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Next reads the next rows into b (reusing its slices, or replacing them
// with others: what b held before is not to be used after); io.EOF at the
// end.
func (t *Table) Next(b *Batch) error {
	b.path = t.Path
	return t.src.next(b)
}

// Progress is how much of the file has been read, and of what total (0 when
// unknown), in bytes for CSV and rows for the others.
func (t *Table) Progress() (done, total int64) { return t.src.progress() }

// ProgressUnit is the unit of Progress: "bytes" or "rows".
func (t *Table) ProgressUnit() string {
	if t.Format == FormatCSV {
		return "bytes"
	}
	return "rows"
}

// Close closes the file.
func (t *Table) Close() error { return t.src.close() }

// timeNames are the names (lower case, unit stripped) that make a column the
// time column when none is named.
var timeNames = map[string]bool{"time": true, "timestamp": true, "datetime": true, "date_time": true, "t": true, "ts": true, "time_s": true, "time_ms": true, "time_us": true, "time_ns": true, "timestamp_s": true, "timestamp_ms": true, "timestamp_us": true, "timestamp_ns": true}

// splitUnit splits a header cell "x [m/s^2]" or "x (m/s^2)" into its name
// and unit.
func splitUnit(h string) (name, unit string) {
	h = strings.TrimSpace(h)
	for _, p := range [][2]string{{"[", "]"}, {"(", ")"}} {
		if strings.HasSuffix(h, p[1]) {
			if i := strings.LastIndex(h, p[0]); i > 0 {
				return strings.TrimSpace(h[:i]), strings.TrimSpace(h[i+1 : len(h)-1])
			}
		}
	}
	return h, ""
}

// unitFromName is the time unit a time column's name states: "time [ms]",
// "time_ms", "timestamp (us)"; "" if none.
func unitFromName(name, unit string) string {
	switch strings.ToLower(unit) {
	case "s", "sec", "seconds":
		return "s"
	case "ms", "milliseconds":
		return "ms"
	case "us", "µs", "microseconds":
		return "us"
	case "ns", "nanoseconds":
		return "ns"
	}
	n := strings.ToLower(name)
	for _, u := range []string{"ms", "us", "ns", "s"} {
		if strings.HasSuffix(n, "_"+u) {
			return u
		}
	}
	return ""
}

// isTimeName says whether a column of this name is a time column.
func isTimeName(name string) bool { return timeNames[strings.ToLower(name)] }

// pickColumns applies Options.TimeColumn and Options.Channels to a header
// of names: it returns the index of the time column (-1 for none) and the
// indexes of the channels. isTime says whether column i is time by its type
// (an Arrow timestamp).
func pickColumns(path string, names []string, isTime func(i int) bool, o Options) (int, []int, error) {
	timeCol := -1
	switch o.TimeColumn {
	case "none":
	case "":
		for i := range names {
			if isTime(i) {
				timeCol = i
				break
			}
		}
		if timeCol < 0 {
			for i, n := range names {
				if isTimeName(n) {
					timeCol = i
					break
				}
			}
		}
	default:
		for i, n := range names {
			if n == o.TimeColumn {
				timeCol = i
			}
		}
		if timeCol < 0 {
			return 0, nil, fmt.Errorf("%s: no time column %q; the columns are %s", path, o.TimeColumn, quoteList(names))
		}
	}
	var chans []int
	if len(o.Channels) == 0 {
		for i := range names {
			if i != timeCol {
				chans = append(chans, i)
			}
		}
	} else {
		for _, want := range o.Channels {
			found := -1
			for i, n := range names {
				if n == want {
					found = i
				}
			}
			switch {
			case found < 0:
				return 0, nil, fmt.Errorf("%s: no column %q; the columns are %s", path, want, quoteList(names))
			case found == timeCol:
				return 0, nil, fmt.Errorf("%s: column %q is the time column; it cannot also be a channel", path, want)
			}
			chans = append(chans, found)
		}
	}
	if len(chans) == 0 {
		return 0, nil, fmt.Errorf("%s: no channel columns besides the time column %q", path, names[max(timeCol, 0)])
	}
	if len(chans) > signals.MaxChannels {
		return 0, nil, fmt.Errorf("%s: %d channel columns; a signal has at most %d (pick some with --channels)", path, len(chans), signals.MaxChannels)
	}
	return timeCol, chans, nil
}

// applyUnits sets the channels' units from o.Units.
func applyUnits(path string, chans []signals.Channel, units map[string]string) error {
	var unknown []string
	for name := range units {
		if name == "" {
			continue
		}
		found := false
		for i := range chans {
			if chans[i].Name == name {
				found = true
			}
		}
		if !found {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		names := make([]string, len(chans))
		for i, c := range chans {
			names[i] = c.Name
		}
		return fmt.Errorf("%s: units for %s, which are not channels; the channels are %s", path, quoteList(unknown), quoteList(names))
	}
	for i := range chans {
		if u, ok := units[chans[i].Name]; ok {
			chans[i].Unit = u
		} else if u, ok := units[""]; ok && chans[i].Unit == "" {
			chans[i].Unit = u
		}
	}
	return nil
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// widen returns the sample type that holds values of both a and b exactly
// (0 is "none yet").
func widen(a, b signals.SampleType) signals.SampleType {
	switch {
	case a == 0:
		return b
	case b == 0 || a == b:
		return a
	}
	lo, hi := min(a, b), max(a, b)
	switch {
	case hi == signals.Int32: // int16 + int32
		return signals.Int32
	case lo == signals.Int16 && hi == signals.Float32:
		return signals.Float32
	}
	return signals.Float64
}

// ensure resizes b's slices for n rows of ch channels.
func (b *Batch) ensure(n, ch int, withTime bool) {
	b.N = n
	if withTime {
		if cap(b.Time) < n {
			b.Time = make([]int64, n)
		}
		b.Time = b.Time[:n]
	} else {
		b.Time = nil
	}
	if len(b.Values) != ch {
		b.Values = make([][]float64, ch)
	}
	for i := range b.Values {
		if cap(b.Values[i]) < n {
			b.Values[i] = make([]float64, n)
		}
		b.Values[i] = b.Values[i][:n]
	}
}
