package codecs

import (
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sensorium-io/sensorium/signals"
)

// Detection is one RADAR return, in the units of signals.DetectionFields.
type Detection struct {
	Range, Azimuth, Elevation, RadialVelocity, RCS, SNR float32
}

// AppendDetectionsFrame appends the frame of one scan at time t (ns): its
// detections and, per extra field of d, a column of len(dets) values.
func AppendDetectionsFrame(dst []byte, d *signals.Detections, t int64, dets []Detection, extra []Column) ([]byte, error) {
	if len(extra) != len(d.Extra) {
		return dst, fmt.Errorf("codecs: detections frame: %d extra columns, the description has %d", len(extra), len(d.Extra))
	}
	cols := make([]Column, 6, 6+len(extra))
	for i := range cols {
		cols[i].Reset(signals.Float32, len(dets))
	}
	for i, x := range dets {
		cols[0].F32[i], cols[1].F32[i], cols[2].F32[i] = x.Range, x.Azimuth, x.Elevation
		cols[3].F32[i], cols[4].F32[i], cols[5].F32[i] = x.RadialVelocity, x.RCS, x.SNR
	}
	for i, c := range extra {
		if c.Type != d.Extra[i].Type {
			return dst, fmt.Errorf("codecs: detections frame: extra field %q holds %s, the description says %s", d.Extra[i].Name, c.Type, d.Extra[i].Type)
		}
		cols = append(cols, c)
	}
	// A scan's few dozen detections: the compact columns, whose per-column
	// fields cost a few bytes instead of some sixteen, in the compact
	// coding's version 2 (columnar version 4).
	return appendCompactColumnarFrame(dst, FormatDetections, t, len(dets), cols, true)
}

// DecodeDetectionsFrame decodes a scan: its time, detections (appended to
// dets[:0]) and extra columns.
func DecodeDetectionsFrame(src []byte, d *signals.Detections, dets []Detection) (int64, []Detection, []Column, error) {
	fs := d.Fields()
	types := make([]signals.SampleType, len(fs))
	for i, f := range fs {
		types[i] = f.Type
	}
	h, cols, err := DecodeColumnarFrame(src, FormatDetections, types, nil, nil)
	if err != nil {
		return 0, dets, nil, err
	}
	dets = dets[:0]
	for i := 0; i < h.Count; i++ {
		dets = append(dets, Detection{cols[0].F32[i], cols[1].F32[i], cols[2].F32[i], cols[3].F32[i], cols[4].F32[i], cols[5].F32[i]})
	}
	return h.Time, dets, cols[6:], nil
}

// AppendArrayFrame appends the frame of one array at time t: values holds
// Rows × Cols values of the element type, row-major.
func AppendArrayFrame(dst []byte, d *signals.Array, t int64, values Column) ([]byte, error) {
	n := int(d.Rows) * int(d.Cols)
	if values.Type != d.ElemType || values.Len() != n {
		return dst, fmt.Errorf("codecs: array frame: %d %s values, want %d × %d %s", values.Len(), values.Type, d.Rows, d.Cols, d.ElemType)
	}
	return AppendColumnarFrame(dst, FormatArray, t, n, []Column{values})
}

// DecodeArrayFrame decodes an array frame into values (reused).
func DecodeArrayFrame(src []byte, d *signals.Array, values Column) (int64, Column, error) {
	h, cols, err := DecodeColumnarFrame(src, FormatArray, []signals.SampleType{d.ElemType}, nil, []Column{values})
	if err != nil {
		return 0, values, err
	}
	if h.Count != int(d.Rows)*int(d.Cols) {
		return 0, values, fmt.Errorf("codecs: array frame: %w: %d values, the array has %d × %d", ErrCorrupt, h.Count, d.Rows, d.Cols)
	}
	return h.Time, cols[0], nil
}

func init() {
	RegisterArrowDecoder(signals.KindDetections, func(desc signals.Description, opts ArrowOptions) (ArrowDecoder, error) {
		d, ok := desc.(*signals.Detections)
		if !ok {
			return nil, fmt.Errorf("codecs: detections decoder for a %T", desc)
		}
		fs := d.Fields()
		k := columnarKind{format: FormatDetections, fields: fs, stored: make([]signals.SampleType, len(fs)), timeField: -1}
		for i, f := range fs {
			k.stored[i] = f.Type
		}
		return newColumnarArrow(k, opts)
	})
	RegisterArrowDecoder(signals.KindArray, newArrayArrow)
}

// arrayArrow returns one row per frame, in either layout (an array is one
// element): its time and the values as a FixedSizeList of Rows × Cols, with
// the shape and axes in the field's metadata.
type arrayArrow struct {
	d      *signals.Array
	schema *arrow.Schema
	values Column
}

// Metadata keys of an array's data field.
const (
	MetaShape   = "sensorium.shape"    // "rows,cols", row-major
	MetaRowAxis = "sensorium.row_axis" // "name,unit,start,step"
	MetaColAxis = "sensorium.col_axis"
)

func newArrayArrow(desc signals.Description, opts ArrowOptions) (ArrowDecoder, error) {
	d, ok := desc.(*signals.Array)
	if !ok {
		return nil, fmt.Errorf("codecs: array decoder for a %T", desc)
	}
	for _, f := range opts.Fields {
		if f != "data" {
			return nil, fmt.Errorf("codecs: %w: unknown field %q (an array has one field, data)", ErrBadOptions, f)
		}
	}
	axis := func(a signals.Axis) string {
		return a.Name + "," + a.Unit + "," + strconv.FormatFloat(a.Start, 'g', -1, 64) + "," + strconv.FormatFloat(a.Step, 'g', -1, 64)
	}
	md := arrow.NewMetadata(
		[]string{MetaShape, MetaRowAxis, MetaColAxis, signals.MetaUnit},
		[]string{strconv.Itoa(int(d.Rows)) + "," + strconv.Itoa(int(d.Cols)), axis(d.RowAxis), axis(d.ColAxis), d.Unit})
	schema := arrow.NewSchema([]arrow.Field{
		{Name: signals.TimeField, Type: arrow.FixedWidthTypes.Timestamp_ns},
		{Name: "data", Type: arrow.FixedSizeListOf(int32(d.Rows*d.Cols), d.ElemType.ArrowType()), Metadata: md},
	}, nil)
	return &arrayArrow{d: d, schema: schema}, nil
}

func (a *arrayArrow) Schema() *arrow.Schema { return a.schema }

func (a *arrayArrow) Append(b *array.RecordBuilder, f Frame, r TimeRange) (int, error) {
	t, values, err := DecodeArrayFrame(f.Data, a.d, a.values)
	a.values = values
	if err != nil || !r.Contains(t) {
		return 0, err
	}
	b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(t))
	lb := b.Field(1).(*array.FixedSizeListBuilder)
	lb.Append(true)
	switch values.Type {
	case signals.Int16:
		lb.ValueBuilder().(*array.Int16Builder).AppendValues(values.I16, nil)
	case signals.Int32:
		lb.ValueBuilder().(*array.Int32Builder).AppendValues(values.I32, nil)
	case signals.Float32:
		lb.ValueBuilder().(*array.Float32Builder).AppendValues(values.F32, nil)
	case signals.Float64:
		lb.ValueBuilder().(*array.Float64Builder).AppendValues(values.F64, nil)
	}
	return 1, nil
}
