package sampletable

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/sensorium-io/sensorium/signals"
)

// arrowSource reads record batches — of an Arrow IPC file or stream, or of
// Parquet through pqarrow — and converts their columns.
type arrowSource struct {
	path    string
	nextRec func() (arrow.RecordBatch, error) // io.EOF at the end
	closers []func() error
	timeCol int
	chans   []int
	tc      *timeConv
	tsUnit  int64 // ns per unit of an Arrow timestamp time column; 0 if not one
	rows    int64
	total   int64
	batch   int
	rec     arrow.RecordBatch // the batch being cut, when larger than BatchRows
	off     int64
}

func openArrow(t *Table, o Options) error {
	f, err := os.Open(t.Path)
	if err != nil {
		return err
	}
	s := &arrowSource{path: t.Path, batch: o.BatchRows, closers: []func() error{f.Close}}
	var schema *arrow.Schema
	// .arrow, .feather and .ipc are the file format by Arrow's convention,
	// but tools (and Sensorium before issue 14) have written the stream
	// format under them: the magic bytes decide.
	var magic [6]byte
	_, _ = f.ReadAt(magic[:], 0)
	if string(magic[:]) == "ARROW1" {
		fr, err := ipc.NewFileReader(f, ipc.WithAllocator(memory.DefaultAllocator))
		if err != nil {
			f.Close()
			return fmt.Errorf("%s: Arrow IPC file: %w", t.Path, err)
		}
		t.Format = FormatArrowFile
		schema = fr.Schema()
		s.closers = append([]func() error{fr.Close}, s.closers...)
		i := 0
		s.nextRec = func() (arrow.RecordBatch, error) {
			if i >= fr.NumRecords() {
				return nil, io.EOF
			}
			rec, err := fr.RecordBatch(i)
			i++
			if err != nil {
				return nil, err
			}
			rec.Retain()
			return rec, nil
		}
	} else {
		r, err := ipc.NewReader(f)
		if err != nil {
			f.Close()
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%s: the file is empty: not an Arrow IPC file or stream", t.Path)
			}
			return fmt.Errorf("%s: neither an Arrow IPC file nor stream: %w", t.Path, err)
		}
		t.Format = FormatArrowStream
		schema = r.Schema()
		s.closers = append([]func() error{func() error { r.Release(); return nil }}, s.closers...)
		s.nextRec = func() (arrow.RecordBatch, error) {
			if !r.Next() {
				if err := r.Err(); err != nil {
					return nil, err
				}
				return nil, io.EOF
			}
			rec := r.RecordBatch()
			rec.Retain()
			return rec, nil
		}
	}
	if err := s.header(t, schema, o); err != nil {
		s.close()
		return err
	}
	t.src = s
	return nil
}

func openParquet(t *Table, o Options) error {
	// Pages are read through a buffer rather than a column chunk at once:
	// a row group of 128 MiB would otherwise be read whole.
	props := parquet.NewReaderProperties(memory.DefaultAllocator)
	props.BufferedStreamEnabled = true
	props.BufferSize = 1 << 20
	pf, err := file.OpenParquetFile(t.Path, false, file.WithReadProps(props))
	if err != nil {
		return fmt.Errorf("%s: Parquet: %w", t.Path, err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: int64(o.BatchRows)}, memory.DefaultAllocator)
	if err != nil {
		pf.Close()
		return fmt.Errorf("%s: Parquet: %w", t.Path, err)
	}
	schema, err := fr.Schema()
	if err != nil {
		pf.Close()
		return fmt.Errorf("%s: Parquet schema: %w", t.Path, err)
	}
	s := &arrowSource{path: t.Path, batch: o.BatchRows, total: pf.NumRows(), closers: []func() error{pf.Close}}
	if err := s.header(t, schema, o); err != nil {
		s.close()
		return err
	}
	cols := append([]int(nil), s.chans...)
	if s.timeCol >= 0 {
		cols = append(cols, s.timeCol)
	}
	// Only the columns imported are decoded; the record reader's columns
	// come in schema order, so the indexes are remapped below.
	rr, err := fr.GetRecordReader(context.Background(), sortedCopy(cols), nil)
	if err != nil {
		s.close()
		return fmt.Errorf("%s: Parquet: %w", t.Path, err)
	}
	s.closers = append([]func() error{func() error { rr.Release(); return nil }}, s.closers...)
	pos := map[int]int{}
	for i, c := range sortedCopy(cols) {
		pos[c] = i
	}
	for i, c := range s.chans {
		s.chans[i] = pos[c]
	}
	if s.timeCol >= 0 {
		s.timeCol = pos[s.timeCol]
	}
	s.nextRec = func() (arrow.RecordBatch, error) {
		rec, err := rr.Read()
		if err != nil {
			return nil, err
		}
		rec.Retain()
		return rec, nil
	}
	t.src = s
	return nil
}

func sortedCopy(v []int) []int {
	out := append([]int(nil), v...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// header finds the time and channel columns of schema and their units, the
// sample type and the rate the metadata states.
func (s *arrowSource) header(t *Table, schema *arrow.Schema, o Options) error {
	fields := schema.Fields()
	// Columns are picked by their channel names: "x [m/s^2]" is x, as in CSV.
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
		if _, ok := f.Metadata.GetValue(signals.MetaUnit); !ok {
			names[i], _ = splitUnit(f.Name)
		}
	}
	timeCol, chans, err := pickColumns(t.Path, names, func(i int) bool { return fields[i].Type.ID() == arrow.TIMESTAMP }, o)
	if err != nil {
		return err
	}
	s.timeCol, s.chans = timeCol, chans
	if timeCol >= 0 {
		tf := fields[timeCol]
		name, unit := splitUnit(tf.Name)
		switch typ := tf.Type.(type) {
		case *arrow.TimestampType:
			s.tsUnit = int64(typ.Unit.Multiplier())
			if o.TimeUnit != "" {
				return fmt.Errorf("%s: the time column %q is an Arrow timestamp[%s]: its unit is its type's; --time-unit is for numeric columns", t.Path, tf.Name, typ.Unit)
			}
			if o.HasStart {
				return fmt.Errorf("%s: the time column %q holds absolute times (timestamp[%s]); --start is for a file without a time column or with offsets from the start", t.Path, tf.Name, typ.Unit)
			}
			s.tc = &timeConv{name: tf.Name, unit: typ.Unit.String(), decided: true}
		case *arrow.Int8Type, *arrow.Int16Type, *arrow.Int32Type, *arrow.Int64Type, *arrow.Uint8Type, *arrow.Uint16Type, *arrow.Uint32Type, *arrow.Uint64Type,
			*arrow.Float32Type, *arrow.Float64Type, *arrow.StringType, *arrow.LargeStringType:
			// Text is read as a CSV cell is: ISO 8601 or a number.
			s.tc = newTimeConv(tf.Name, unitFromName(name, unit), o)
		default:
			return fmt.Errorf("%s: the time column %q is of type %s; want a timestamp, a number or ISO 8601 text (pick another with --time-column, or --time-column none)", t.Path, tf.Name, tf.Type)
		}
		t.TimeName = tf.Name
	}
	t.Channels = make([]signals.Channel, len(chans))
	var bad []string
	for i, c := range chans {
		f := fields[c]
		name, unit := f.Name, ""
		if u, ok := f.Metadata.GetValue(signals.MetaUnit); ok {
			unit = u
		} else {
			name, unit = splitUnit(f.Name)
		}
		t.Channels[i] = signals.Channel{Name: name, Unit: unit}
		st := sampleTypeOf(f.Type)
		if st == 0 {
			bad = append(bad, fmt.Sprintf("%q (%s)", f.Name, f.Type))
			continue
		}
		t.Type = widen(t.Type, st)
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s: columns %s are not numeric; a sampled signal's channels are numbers (pick the channels with --channels)", t.Path, joinComma(bad))
	}
	if o.Type != 0 {
		t.Type = o.Type
	}
	if err := applyUnits(t.Path, t.Channels, o.Units); err != nil {
		return err
	}
	if md := schema.Metadata(); md.Len() > 0 {
		if v, ok := md.GetValue(signals.MetaSampleRate); ok {
			if r, err := strconv.ParseFloat(v, 64); err == nil && r > 0 {
				t.Rate = r
			}
		}
	}
	return nil
}

func joinComma(v []string) string {
	out := ""
	for i, s := range v {
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out
}

// sampleTypeOf is the sample type that holds every value of an Arrow
// numeric type exactly (float64 for 64-bit integers, which it holds to
// 2⁵³), or 0 for a type that is not a number.
func sampleTypeOf(dt arrow.DataType) signals.SampleType {
	switch dt.ID() {
	case arrow.INT8, arrow.UINT8, arrow.INT16:
		return signals.Int16
	case arrow.UINT16, arrow.INT32:
		return signals.Int32
	case arrow.FLOAT16, arrow.FLOAT32:
		return signals.Float32
	case arrow.UINT32, arrow.INT64, arrow.UINT64, arrow.FLOAT64:
		return signals.Float64
	}
	return 0
}

func (s *arrowSource) next(b *Batch) error {
	for s.rec == nil || s.off >= s.rec.NumRows() {
		if s.rec != nil {
			s.rec.Release()
			s.rec = nil
		}
		rec, err := s.nextRec()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.EOF
			}
			return fmt.Errorf("%s: after row %d: %w", s.path, s.rows, err)
		}
		s.rec, s.off = rec, 0
	}
	n := min(s.rec.NumRows()-s.off, int64(s.batch))
	lo, hi := int(s.off), int(s.off+n)
	b.ensure(int(n), len(s.chans), s.timeCol >= 0)
	b.lines = nil
	b.first = s.rows + 1
	if s.timeCol >= 0 {
		if err := s.times(b, s.rec.Column(s.timeCol), lo, hi); err != nil {
			return err
		}
	}
	for i, c := range s.chans {
		copyValues(b.Values[i], s.rec.Column(c), lo, hi)
	}
	s.off += n
	s.rows += n
	return nil
}

// times converts rows [lo, hi) of the time column into b.Time.
func (s *arrowSource) times(b *Batch, col arrow.Array, lo, hi int) error {
	out := b.Time
	for i := lo; i < hi; i++ {
		if col.IsNull(i) {
			return fmt.Errorf("%s: the time column %q is null", b.Where(i-lo), s.tc.name)
		}
	}
	var err error
	switch a := col.(type) {
	case *array.Timestamp:
		v := a.TimestampValues()[lo:hi]
		for i, x := range v {
			ns := int64(x) * s.tsUnit
			if s.tsUnit != 0 && ns/s.tsUnit != int64(x) {
				return fmt.Errorf("%s: time %d is out of range", b.Where(i), x)
			}
			out[i] = ns
		}
		return nil
	case *array.Int64:
		for i, x := range a.Int64Values()[lo:hi] {
			if out[i], err = s.tc.fromInt(x, at{b, i}); err != nil {
				return err
			}
		}
		return nil
	case *array.Float64:
		for i, x := range a.Float64Values()[lo:hi] {
			if out[i], err = s.tc.fromFloat(x, at{b, i}); err != nil {
				return err
			}
		}
		return nil
	case *array.String:
		for i := lo; i < hi; i++ {
			if out[i-lo], err = s.tc.fromText(a.Value(i), at{b, i - lo}); err != nil {
				return err
			}
		}
		return nil
	case *array.LargeString:
		for i := lo; i < hi; i++ {
			if out[i-lo], err = s.tc.fromText(a.Value(i), at{b, i - lo}); err != nil {
				return err
			}
		}
		return nil
	}
	// Narrower types: through float64, which holds them exactly.
	tmp := make([]float64, hi-lo)
	copyValues(tmp, col, lo, hi)
	for i, x := range tmp {
		if out[i], err = s.tc.fromFloat(x, at{b, i}); err != nil {
			return err
		}
	}
	return nil
}

// copyValues converts rows [lo, hi) of a numeric column to float64; nulls
// become NaN.
func copyValues(dst []float64, col arrow.Array, lo, hi int) {
	switch a := col.(type) {
	case *array.Float32:
		for i, x := range a.Float32Values()[lo:hi] {
			dst[i] = float64(x)
		}
	case *array.Float64:
		copy(dst, a.Float64Values()[lo:hi])
	case *array.Int8:
		for i, x := range a.Int8Values()[lo:hi] {
			dst[i] = float64(x)
		}
	case *array.Int16:
		for i, x := range a.Int16Values()[lo:hi] {
			dst[i] = float64(x)
		}
	case *array.Int32:
		for i, x := range a.Int32Values()[lo:hi] {
			dst[i] = float64(x)
		}
	case *array.Int64:
		for i, x := range a.Int64Values()[lo:hi] {
			dst[i] = float64(x)
		}
	case *array.Uint8:
		for i, x := range a.Uint8Values()[lo:hi] {
			dst[i] = float64(x)
		}
	case *array.Uint16:
		for i, x := range a.Uint16Values()[lo:hi] {
			dst[i] = float64(x)
		}
	case *array.Uint32:
		for i, x := range a.Uint32Values()[lo:hi] {
			dst[i] = float64(x)
		}
	case *array.Uint64:
		for i, x := range a.Uint64Values()[lo:hi] {
			dst[i] = float64(x)
		}
	case *array.Float16:
		for i, x := range a.Values()[lo:hi] {
			dst[i] = float64(x.Float32())
		}
	}
	if col.NullN() > 0 {
		for i := lo; i < hi; i++ {
			if col.IsNull(i) {
				dst[i-lo] = math.NaN()
			}
		}
	}
}

func (s *arrowSource) progress() (int64, int64) { return s.rows, s.total }

func (s *arrowSource) close() error {
	if s.rec != nil {
		s.rec.Release()
		s.rec = nil
	}
	var first error
	for _, c := range s.closers {
		if err := c(); err != nil && first == nil {
			first = err
		}
	}
	s.closers = nil
	return first
}
