package query

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/internal/wire"
	"github.com/sensorium-io/sensorium/signals"
)

// Window asks for the windows shape: fixed-length windows of a scalar
// signal's samples, one every Hop samples, each a row whose channels are
// FixedSizeList tensors — what a model's input layer takes.
type Window struct {
	Length int // samples per window
	Hop    int // samples from one window's start to the next; = Length: back to back
}

// MaxWindowLength bounds Length × channels, so one row stays a sane tensor.
const MaxWindowLength = 1 << 22

// Result fields of the windows shape, besides one tensor per channel.
const (
	WindowStartField     = "start"     // time of the window's first sample
	WindowFragmentsField = "fragments" // the fragment numbers its samples came from
)

// windowDecoder cuts the continuous run of samples — across frames and
// fragments — into windows. A window starts at sample k × Hop of the range;
// a gap in the samples (a jump of more than 1.5 sample periods) is never
// filled: the window it falls in is dropped and windowing restarts after it.
type windowDecoder struct {
	desc   *signals.Scalar
	w      Window
	chans  []int
	schema *arrow.Schema

	cols    []codecs.Column
	scratch signals.Samples
	times   []int64

	// the samples of the window being filled
	buf     []codecs.Column // per selected channel
	bufFrag []uint64        // the fragment of each buffered sample
	bufTime []int64         // and its time
	bufN    int
	frags   []uint64 // scratch: the distinct fragments of a window
	skip    int      // samples still to skip before the next window starts (Hop > Length)
	last    int64    // time of the last sample seen; 0: none yet
	maxStep int64    // a step longer than this is a gap
}

func newWindowDecoder(d signals.Description, fields []string, w Window) (*windowDecoder, error) {
	desc, ok := d.(*signals.Scalar)
	if !ok {
		return nil, wire.Errorf(wire.InvalidArgument, "the windows shape reads scalar signals; this track holds %s", d.Kind())
	}
	if w.Length < 1 || w.Hop < 1 || w.Length*len(desc.Channels) > MaxWindowLength {
		return nil, wire.Errorf(wire.InvalidArgument, "window length and hop must be ≥ 1, and length × channels at most %d", MaxWindowLength)
	}
	base, chans, err := desc.ArrowSchema(fields)
	if err != nil {
		return nil, wire.Errorf(wire.InvalidArgument, "%v", err)
	}
	fs := []arrow.Field{
		{Name: WindowStartField, Type: signals.TimeType()},
		{Name: WindowFragmentsField, Type: arrow.ListOf(arrow.PrimitiveTypes.Uint64)},
	}
	for _, f := range base.Fields()[1:] {
		f.Type = arrow.FixedSizeListOf(int32(w.Length), f.Type)
		fs = append(fs, f)
	}
	md := base.Metadata()
	md = arrow.NewMetadata(append(md.Keys(), "sensorium.window_length", "sensorium.window_hop"),
		append(md.Values(), fmt.Sprint(w.Length), fmt.Sprint(w.Hop)))
	wd := &windowDecoder{desc: desc, w: w, chans: chans, schema: arrow.NewSchema(fs, &md),
		buf: make([]codecs.Column, len(chans)), bufFrag: make([]uint64, w.Length), bufTime: make([]int64, w.Length), maxStep: int64(1.5e9 / desc.SampleRate)}
	for i := range wd.buf {
		wd.buf[i].Reset(desc.SampleType, w.Length)
	}
	return wd, nil
}

func (d *windowDecoder) Schema() *arrow.Schema { return d.schema }

func (d *windowDecoder) Append(b *array.RecordBuilder, f codecs.Frame, r codecs.TimeRange) (int, error) {
	h, cols, err := codecs.DecodeScalarColumns(f.Data, d.desc, d.cols, &d.scratch)
	d.cols = cols
	if err != nil {
		return 0, err
	}
	d.times = d.desc.SampleTimes(d.times[:0], h.Start, h.N)
	var frag uint64
	if f.Fragment != nil {
		frag = f.Fragment.Number
	}
	rows := 0
	for i, t := range d.times {
		if !r.Contains(t) {
			continue
		}
		if d.last != 0 && t-d.last > d.maxStep {
			d.bufN, d.skip = 0, 0 // a gap: drop the partial window
		}
		d.last = t
		if d.skip > 0 {
			d.skip--
			continue
		}
		d.bufFrag[d.bufN], d.bufTime[d.bufN] = frag, t
		for k, c := range d.chans {
			d.buf[k].CopyValue(d.bufN, &d.cols[c], i)
		}
		d.bufN++
		if d.bufN == d.w.Length {
			d.emit(b)
			rows++
			d.advance()
		}
	}
	return rows, nil
}

// emit appends the full window as one row.
func (d *windowDecoder) emit(b *array.RecordBuilder) {
	b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(d.bufTime[0]))
	d.frags = d.frags[:0]
	for _, f := range d.bufFrag {
		if n := len(d.frags); n == 0 || d.frags[n-1] != f {
			d.frags = append(d.frags, f)
		}
	}
	lb := b.Field(1).(*array.ListBuilder)
	lb.Append(true)
	lb.ValueBuilder().(*array.Uint64Builder).AppendValues(d.frags, nil)
	for k := range d.chans {
		fl := b.Field(k + 2).(*array.FixedSizeListBuilder)
		fl.Append(true)
		c := &d.buf[k]
		switch c.Type {
		case signals.Float32:
			fl.ValueBuilder().(*array.Float32Builder).AppendValues(c.F32, nil)
		case signals.Float64:
			fl.ValueBuilder().(*array.Float64Builder).AppendValues(c.F64, nil)
		case signals.Int16:
			fl.ValueBuilder().(*array.Int16Builder).AppendValues(c.I16, nil)
		case signals.Int32:
			fl.ValueBuilder().(*array.Int32Builder).AppendValues(c.I32, nil)
		}
	}
}

// advance moves to the next window: keep the overlap (Hop < Length) or skip
// the samples between windows (Hop > Length).
func (d *windowDecoder) advance() {
	if d.w.Hop >= d.w.Length {
		d.bufN, d.skip = 0, d.w.Hop-d.w.Length
		return
	}
	keep := d.w.Length - d.w.Hop
	for k := range d.buf {
		shiftColumn(&d.buf[k], d.w.Hop, keep)
	}
	copy(d.bufFrag, d.bufFrag[d.w.Hop:])
	copy(d.bufTime, d.bufTime[d.w.Hop:])
	d.bufN = keep
}

// shiftColumn moves the last keep values from position from to the front.
func shiftColumn(c *codecs.Column, from, keep int) {
	switch c.Type {
	case signals.Float32:
		copy(c.F32, c.F32[from:from+keep])
	case signals.Float64:
		copy(c.F64, c.F64[from:from+keep])
	case signals.Int16:
		copy(c.I16, c.I16[from:from+keep])
	case signals.Int32:
		copy(c.I32, c.I32[from:from+keep])
	}
}
