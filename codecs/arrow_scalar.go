package codecs

import (
	"fmt"
	"sort"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sensorium-io/sensorium/signals"
)

func init() {
	RegisterArrowDecoder(signals.KindScalar, newScalarArrowDecoder)
}

// scalarArrow decodes scalar frames into a time column and one column per
// selected channel: one row per sample (the only layout a scalar signal has).
type scalarArrow struct {
	desc   *signals.Scalar
	schema *arrow.Schema
	chans  []int
	// scales, when set, holds per column the physical value of one count
	// (IMU sensors sending raw counts): such a column is float64 count × scale.
	// 0 leaves a column as the samples are.
	scales []float64
	s      signals.Samples // scratch for codecs that decode interleaved
	cols   []Column        // the current frame, one slice per channel
	times  []int64

	// The batch path (BatchDecoder): the batch being built, which column
	// each channel goes to (-1: not returned), and scratch for the channels
	// that are decoded but not stored as they are.
	batch   directBatch
	pool    *bufferPool // the batch's buffers
	colOf   []int
	scratch []Column
}

func newScalarArrowDecoder(d signals.Description, opts ArrowOptions) (ArrowDecoder, error) {
	desc, ok := d.(*signals.Scalar)
	if !ok {
		return nil, fmt.Errorf("codecs: scalar decoder for a %T", d)
	}
	if opts.Layout != LayoutRows {
		return nil, fmt.Errorf("codecs: %w: scalar signals have one row per sample; there is no frames layout", ErrBadOptions)
	}
	schema, chans, err := desc.ArrowSchema(opts.Fields)
	if err != nil {
		return nil, fmt.Errorf("codecs: %w: %v", ErrBadOptions, err)
	}
	return &scalarArrow{desc: desc, schema: schema, chans: chans}, nil
}

func (a *scalarArrow) Schema() *arrow.Schema { return a.schema }

func (a *scalarArrow) Append(b *array.RecordBuilder, f Frame, r TimeRange) (int, error) {
	h, cols, err := DecodeScalarColumnsAt(f.Data, f.Time, a.desc, a.cols, &a.s)
	a.cols = cols
	if err != nil {
		return 0, err
	}
	return a.appendRange(b, h.Start, h.N, r)
}

// appendRange appends the decoded columns' samples whose times, from start at
// the signal's rate, are in r.
func (a *scalarArrow) appendRange(b *array.RecordBuilder, start int64, n int, r TimeRange) (int, error) {
	a.times = a.desc.SampleTimes(a.times[:0], start, n)
	lo, hi := 0, n
	if !r.All {
		// Sample times increase within a frame: cut at the range edges.
		lo = sort.Search(n, func(i int) bool { return a.times[i] >= r.Start })
		hi = sort.Search(n, func(i int) bool { return a.times[i] >= r.End })
	}
	if lo >= hi {
		return 0, nil
	}
	// Whole slices go in with AppendValues — a copy and a bulk validity
	// bitmap — which is several times faster than a call per value.
	b.Field(0).(*array.TimestampBuilder).AppendValues(timestamps(a.times[lo:hi]), nil)
	for col, c := range a.chans {
		fb, vals := b.Field(col+1), &a.cols[c]
		if a.scales != nil && a.scales[col] != 0 {
			appendScaled(fb.(*array.Float64Builder), vals, lo, hi, a.scales[col])
			continue
		}
		switch vals.Type {
		case signals.Float32:
			fb.(*array.Float32Builder).AppendValues(vals.F32[lo:hi], nil)
		case signals.Float64:
			fb.(*array.Float64Builder).AppendValues(vals.F64[lo:hi], nil)
		case signals.Int16:
			fb.(*array.Int16Builder).AppendValues(vals.I16[lo:hi], nil)
		case signals.Int32:
			fb.(*array.Int32Builder).AppendValues(vals.I32[lo:hi], nil)
		default:
			return 0, fmt.Errorf("codecs: sample type %v has no Arrow column", vals.Type)
		}
	}
	return hi - lo, nil
}

type unsafeAppender[T any] interface {
	Reserve(int)
	UnsafeAppend(T)
}

// timestamps views ns times as Arrow timestamps (the same int64s).
func timestamps(t []int64) []arrow.Timestamp {
	if len(t) == 0 {
		return nil
	}
	return unsafe.Slice((*arrow.Timestamp)(unsafe.Pointer(&t[0])), len(t))
}

// appendScaled appends values lo..hi of a column as count × scale.
func appendScaled(b *array.Float64Builder, c *Column, lo, hi int, scale float64) {
	b.Reserve(hi - lo)
	for i := lo; i < hi; i++ {
		var v float64
		switch c.Type {
		case signals.Int16:
			v = float64(c.I16[i])
		case signals.Int32:
			v = float64(c.I32[i])
		case signals.Float32:
			v = float64(c.F32[i])
		case signals.Float64:
			v = c.F64[i]
		}
		b.UnsafeAppend(v * scale)
	}
}
