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
	s      signals.Samples
	times  []int64
	// per-type scratch columns for appendChannel
	f32 []float32
	f64 []float64
	i16 []int16
	i32 []int32
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
	if err := DecodeScalarFrame(f.Data, a.desc, &a.s); err != nil {
		return 0, err
	}
	s := &a.s
	a.times = a.desc.SampleTimes(a.times[:0], s.Start, s.N)
	lo, hi := 0, s.N
	if !r.All {
		// Sample times increase within a frame: cut at the range edges.
		lo = sort.Search(s.N, func(i int) bool { return a.times[i] >= r.Start })
		hi = sort.Search(s.N, func(i int) bool { return a.times[i] >= r.End })
	}
	return a.appendRows(b, lo, hi)
}

// appendRows appends samples lo..hi of the decoded block a.s, whose times are
// in a.times.
func (a *scalarArrow) appendRows(b *array.RecordBuilder, lo, hi int) (int, error) {
	s := &a.s
	if lo >= hi {
		return 0, nil
	}
	// Whole slices go in with AppendValues — a copy and a bulk validity
	// bitmap — which is several times faster than a call per value.
	b.Field(0).(*array.TimestampBuilder).AppendValues(timestamps(a.times[lo:hi]), nil)
	for col, c := range a.chans {
		fb := b.Field(col + 1)
		if a.scales != nil && a.scales[col] != 0 {
			appendScaled(fb.(*array.Float64Builder), s, c, lo, hi, a.scales[col])
			continue
		}
		switch s.Type {
		case signals.Float32:
			a.f32 = appendChannel(fb.(*array.Float32Builder), a.f32, s.F32, s.Channels, c, lo, hi)
		case signals.Float64:
			a.f64 = appendChannel(fb.(*array.Float64Builder), a.f64, s.F64, s.Channels, c, lo, hi)
		case signals.Int16:
			a.i16 = appendChannel(fb.(*array.Int16Builder), a.i16, s.I16, s.Channels, c, lo, hi)
		case signals.Int32:
			a.i32 = appendChannel(fb.(*array.Int32Builder), a.i32, s.I32, s.Channels, c, lo, hi)
		default:
			return 0, fmt.Errorf("codecs: sample type %v has no Arrow column", s.Type)
		}
	}
	return hi - lo, nil
}

type unsafeAppender[T any] interface {
	Reserve(int)
	UnsafeAppend(T)
}

type valuesAppender[T any] interface {
	AppendValues([]T, []bool)
}

// appendChannel appends channel c of interleaved samples lo..hi to b, through
// col, a reused scratch column (returned, grown): one strided gather, then
// one bulk append.
func appendChannel[T any, B valuesAppender[T]](b B, col, vals []T, channels, c, lo, hi int) []T {
	col = resizeSlice(col, hi-lo)
	if channels == 1 {
		copy(col, vals[lo:hi])
	} else {
		for i := range col {
			col[i] = vals[(lo+i)*channels+c]
		}
	}
	b.AppendValues(col, nil)
	return col
}

// timestamps views ns times as Arrow timestamps (the same int64s).
func timestamps(t []int64) []arrow.Timestamp {
	if len(t) == 0 {
		return nil
	}
	return unsafe.Slice((*arrow.Timestamp)(unsafe.Pointer(&t[0])), len(t))
}

// appendScaled appends channel c of samples lo..hi, as count × scale.
func appendScaled(b *array.Float64Builder, s *signals.Samples, c, lo, hi int, scale float64) {
	b.Reserve(hi - lo)
	for i := lo; i < hi; i++ {
		j := i*s.Channels + c
		var v float64
		switch s.Type {
		case signals.Int16:
			v = float64(s.I16[j])
		case signals.Int32:
			v = float64(s.I32[j])
		case signals.Float32:
			v = float64(s.F32[j])
		case signals.Float64:
			v = s.F64[j]
		}
		b.UnsafeAppend(v * scale)
	}
}
