package codecs

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sensorium-io/sensorium/signals"
)

// Query-result field names of the multi-element kinds, besides their own
// fields.
const (
	FrameTimeField = "frame_time" // the scan's or sweep's time, in the rows layout
	IndexField     = "index"      // the element's position in its frame
	CountField     = "count"      // elements in the frame, in the frames layout
)

// columnarKind is what the columnar Arrow decoder needs of a kind.
type columnarKind struct {
	format ID
	fields []signals.Field      // as returned: names, output types, units
	stored []signals.SampleType // as stored in the frame, per field
	// scale, per field, when not 0: the stored integer times scale is the
	// returned float32 (a LIDAR's quantised coordinates).
	scale []float64
	// timeField, when ≥ 0, is the int32 field of each element's time offset
	// in ns from the frame's time (a LIDAR point's firing time).
	timeField int
	// perm: the frame's first column, before the fields, is the producer's
	// index of each stored element (a LIDAR sweep is stored ring by ring);
	// results come in the producer's order.
	perm bool
}

// columnarArrow decodes columnar frames: one row per element (with its time,
// its frame's time and its index), or one row per frame with list columns.
type columnarArrow struct {
	k      columnarKind
	layout Layout
	sel    []int  // selected fields, in schema order
	want   []bool // per stored column: decode it
	schema *arrow.Schema
	cols   []Column // the fields' columns of the current frame
	raw    []Column // as decoded: the permutation first when the kind has one
	rows   []int32  // stored positions of the elements in range, in the producer's order
	idx    []int32  // and their producer indexes
	inv    []int32
	stored []signals.SampleType
	wantS  []bool
}

func newColumnarArrow(k columnarKind, opts ArrowOptions) (*columnarArrow, error) {
	a := &columnarArrow{k: k, layout: opts.Layout, want: make([]bool, len(k.fields))}
	if len(opts.Fields) == 0 {
		for i := range k.fields {
			a.sel = append(a.sel, i)
		}
	}
	for _, name := range opts.Fields {
		i := signals.FieldIndex(k.fields, name)
		if i < 0 {
			return nil, fmt.Errorf("codecs: %w: unknown field %q (the fields are %s)", ErrBadOptions, name, fieldNames(k.fields))
		}
		if a.want[i] {
			return nil, fmt.Errorf("codecs: %w: field %q selected twice", ErrBadOptions, name)
		}
		a.sel = append(a.sel, i)
		a.want[i] = true
	}
	for _, i := range a.sel {
		a.want[i] = true
	}
	if k.timeField >= 0 && opts.Layout == LayoutRows {
		a.want[k.timeField] = true // element times come from it
	}
	ts := arrow.FixedWidthTypes.Timestamp_ns
	var fs []arrow.Field
	switch opts.Layout {
	case LayoutRows:
		fs = []arrow.Field{{Name: signals.TimeField, Type: ts}, {Name: FrameTimeField, Type: ts}, {Name: IndexField, Type: arrow.PrimitiveTypes.Uint32}}
		for _, i := range a.sel {
			fs = append(fs, k.fields[i].ArrowField())
		}
	case LayoutFrames:
		fs = []arrow.Field{{Name: signals.TimeField, Type: ts}, {Name: CountField, Type: arrow.PrimitiveTypes.Uint32}}
		for _, i := range a.sel {
			f := k.fields[i].ArrowField()
			f.Type = arrow.ListOf(f.Type)
			fs = append(fs, f)
		}
	default:
		return nil, fmt.Errorf("codecs: %w: layout %d", ErrBadOptions, opts.Layout)
	}
	a.schema = arrow.NewSchema(fs, nil)
	a.stored, a.wantS = k.stored, a.want
	if k.perm {
		a.stored = append([]signals.SampleType{signals.Int32}, k.stored...)
		a.wantS = append([]bool{true}, a.want...)
	}
	return a, nil
}

func fieldNames(fs []signals.Field) string {
	s := ""
	for i, f := range fs {
		if i > 0 {
			s += ", "
		}
		s += f.Name
	}
	return s
}

func (a *columnarArrow) Schema() *arrow.Schema { return a.schema }

func (a *columnarArrow) Append(b *array.RecordBuilder, f Frame, r TimeRange) (int, error) {
	h, raw, err := DecodeColumnarFrame(f.Data, a.k.format, a.stored, a.wantS, a.raw)
	a.raw = raw
	if err != nil {
		return 0, err
	}
	a.cols = raw
	if a.k.perm {
		a.cols = raw[1:]
		if a.inv, err = inversePermutation(raw[0].I32, a.inv); err != nil {
			return 0, err
		}
	}
	if a.layout == LayoutFrames && !r.Contains(h.Time) {
		return 0, nil
	}
	a.rows, a.idx = a.rows[:0], a.idx[:0]
	for e := 0; e < h.Count; e++ {
		j := int32(e)
		if a.k.perm {
			j = a.inv[e]
		}
		if a.layout == LayoutFrames || r.Contains(a.elemTime(h, int(j))) {
			a.rows, a.idx = append(a.rows, j), append(a.idx, int32(e))
		}
	}
	if a.layout == LayoutFrames {
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(h.Time))
		b.Field(1).(*array.Uint32Builder).Append(uint32(h.Count))
		for col, i := range a.sel {
			lb := b.Field(col + 2).(*array.ListBuilder)
			lb.Append(true)
			a.appendValues(lb.ValueBuilder(), i, a.rows)
		}
		return 1, nil
	}
	if len(a.rows) == 0 {
		return 0, nil
	}
	tb, fb, ib := b.Field(0).(*array.TimestampBuilder), b.Field(1).(*array.TimestampBuilder), b.Field(2).(*array.Uint32Builder)
	tb.Reserve(len(a.rows))
	fb.Reserve(len(a.rows))
	ib.Reserve(len(a.rows))
	for k, j := range a.rows {
		tb.UnsafeAppend(arrow.Timestamp(a.elemTime(h, int(j))))
		fb.UnsafeAppend(arrow.Timestamp(h.Time))
		ib.UnsafeAppend(uint32(a.idx[k]))
	}
	for col, i := range a.sel {
		a.appendValues(b.Field(col+3), i, a.rows)
	}
	return len(a.rows), nil
}

func (a *columnarArrow) elemTime(h ColumnarHeader, e int) int64 {
	if a.k.timeField < 0 {
		return h.Time
	}
	return h.Time + int64(a.cols[a.k.timeField].I32[e])
}

// appendValues appends field i's values of the elements rows (all when nil).
func (a *columnarArrow) appendValues(vb array.Builder, i int, rows []int32) {
	c := &a.cols[i]
	if a.k.scale != nil && a.k.scale[i] != 0 {
		appendScaledI32(vb.(*array.Float32Builder), c.I32, rows, a.k.scale[i])
		return
	}
	switch c.Type {
	case signals.Int16:
		gather(vb.(*array.Int16Builder), c.I16, rows)
	case signals.Int32:
		gather(vb.(*array.Int32Builder), c.I32, rows)
	case signals.Float32:
		gather(vb.(*array.Float32Builder), c.F32, rows)
	case signals.Float64:
		gather(vb.(*array.Float64Builder), c.F64, rows)
	}
}

func gather[T any, B unsafeAppender[T]](b B, vals []T, rows []int32) {
	if rows == nil {
		b.Reserve(len(vals))
		for _, v := range vals {
			b.UnsafeAppend(v)
		}
		return
	}
	b.Reserve(len(rows))
	for _, e := range rows {
		b.UnsafeAppend(vals[e])
	}
}

func appendScaledI32(b *array.Float32Builder, vals []int32, rows []int32, scale float64) {
	if rows == nil {
		b.Reserve(len(vals))
		for _, v := range vals {
			b.UnsafeAppend(float32(float64(v) * scale))
		}
		return
	}
	b.Reserve(len(rows))
	for _, e := range rows {
		b.UnsafeAppend(float32(float64(vals[e]) * scale))
	}
}
