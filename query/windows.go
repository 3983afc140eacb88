package query

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sensorium-io/sensorium/signals"
)

// Window asks for the windows shape: fixed-length windows of a sampled
// signal (scalar, IMU, audio), one every Hop samples on a grid of times,
// each a row whose channels are FixedSizeList tensors — what a model's
// input layer takes.
//
// The grid is what puts windows of different streams on one clock: window k
// belongs at
//
//	g(k) = SampleTime(Anchor, k × Hop)    (signals.SampleTime, at the signal's rate)
//
// and holds the Length samples from the first sample at or after g(k)
// (less 2 ns, the rounding of sample times), provided that sample comes
// before g(k) plus one sample period and the Length samples follow one
// another without a gap — no step longer than 1.5 sample periods, none
// backwards. A window that a gap would cut is not in the result: gaps are
// never filled, and the windows after a gap stay on the grid. A query returns
// the windows with Start ≤ g(k) < StartsBefore whose samples are all in
// [Start, End), in order.
//
// Anchor and StartsBefore default to Start and End. A job that resumes a
// windows query later passes its first Anchor to stay on the same grid; Arrow
// Flight partitions pass both, so that N partitions return exactly the
// windows of one query.
type Window struct {
	Length int // samples per window
	Hop    int // samples from one window's start to the next; 0 or Length: back to back
	// Anchor is the time of window 0 on the grid (ns); 0: Start.
	Anchor int64
	// StartsBefore ends the windows returned: only those whose grid time is
	// before it (ns); 0: End.
	StartsBefore int64
}

// MaxWindowLength bounds Length × channels, so one row stays a sane tensor.
const MaxWindowLength = 1 << 22

// maxWindowBatchValues bounds the samples of one windows batch.
const maxWindowBatchValues = 1 << 24

// windowSlack is how far before its grid time a window's first sample may
// be: sample times are rounded to the ns, twice (signals.SampleTime).
const windowSlack = 2

// Result fields of the windows shape, besides one tensor per channel.
const (
	WindowStartField     = "start"     // time of the window's first sample
	WindowFragmentsField = "fragments" // the fragment numbers its samples came from, ascending
)

// windowPlan is a prepared windows query.
type windowPlan struct {
	length, hop    int
	anchor, before int64
	clock          *signals.Scalar // the signal's rate, for the grid's times
	period         float64         // ns
	maxStep        int64           // ns: a longer step between samples is a gap
	slack          int64
	cols           []arrow.DataType // of the samples' value columns
	schema         *arrow.Schema
}

func newWindowPlan(p *Prepared) (*windowPlan, error) {
	plan, err := newGrid(p)
	if err != nil {
		return nil, err
	}
	w := p.req.Window
	fields := p.samples.Fields()[1:]
	if w.Length*len(fields) > MaxWindowLength {
		return nil, invalid("window length × channels must be at most %d", MaxWindowLength)
	}
	fs := []arrow.Field{
		{Name: WindowStartField, Type: signals.TimeType()},
		{Name: WindowFragmentsField, Type: arrow.ListOf(arrow.PrimitiveTypes.Uint64)},
	}
	for _, f := range fields {
		switch f.Type.ID() {
		case arrow.FLOAT32, arrow.FLOAT64, arrow.INT16, arrow.INT32:
		default:
			return nil, invalid("the windows shape cannot make tensors of %s column %q", f.Type, f.Name)
		}
		plan.cols = append(plan.cols, f.Type)
		f.Type = arrow.FixedSizeListOf(int32(w.Length), f.Type)
		f.Nullable = false
		fs = append(fs, f)
	}
	md := p.samples.Metadata()
	md = arrow.NewMetadata(append(md.Keys(), "sensorium.window_length", "sensorium.window_hop", "sensorium.window_anchor"),
		append(md.Values(), strconv.Itoa(w.Length), strconv.Itoa(w.Hop), strconv.FormatInt(plan.anchor, 10)))
	plan.schema = arrow.NewSchema(fs, &md)
	return plan, nil
}

// newGrid is the grid of windows that the windows and aggregate shapes
// share: the request's Window at the signal's rate.
func newGrid(p *Prepared) (*windowPlan, error) {
	if p.req.Window.Hop == 0 {
		p.req.Window.Hop = p.req.Window.Length // back to back
	}
	w, rate := p.req.Window, p.rate
	if rate <= 0 {
		return nil, invalid("the %s shape reads sampled signals (scalar, IMU, audio); this track holds %s", p.req.Shape, p.desc.Kind())
	}
	if w.Length < 1 || w.Hop < 1 {
		return nil, invalid("window length and hop must be ≥ 1")
	}
	plan := &windowPlan{length: w.Length, hop: w.Hop, anchor: w.Anchor, before: w.StartsBefore,
		clock: &signals.Scalar{SampleRate: rate}, period: 1e9 / rate, maxStep: int64(1.5e9 / rate)}
	if plan.anchor == 0 {
		plan.anchor = p.req.Start
	}
	if plan.before == 0 {
		plan.before = p.req.End
	}
	plan.slack = min(windowSlack, int64(plan.period/4))
	return plan, nil
}

// grid is the time of window k.
func (w *windowPlan) grid(k int64) int64 { return w.clock.SampleTime(w.anchor, int(k)*w.hop) }

// firstAtOrAfter is the first window whose grid time minus the slack plus
// one period is past t: the first that may still start at t or later.
func (w *windowPlan) firstAtOrAfter(t int64) int64 {
	missed := func(k int64) bool { return float64(t-(w.grid(k)-w.slack)) >= w.period }
	k := int64(math.Floor(float64(t-w.anchor) / (w.period * float64(w.hop))))
	for missed(k) {
		k++
	}
	for !missed(k - 1) {
		k--
	}
	return k
}

// runWindows cuts the track's samples, decoded by the pipeline in batches
// that never span fragments, into windows.
func (s *Service) runWindows(ctx context.Context, p *Prepared, emit func(arrow.RecordBatch) error) error {
	w := newWindower(p)
	defer w.release()
	err := s.decode(ctx, p, true, func(pc piece) error {
		if pc.rec == nil { // a live query caught up: hand on the windows so far
			return w.flush(emit)
		}
		return w.add(pc.rec, pc.frag, emit)
	})
	if err == nil {
		err = w.flush(emit)
	}
	return err
}

// windower holds the samples of the windows being filled: the contiguous
// run of samples since the first pending window's start.
type windower struct {
	plan *windowPlan
	rows int // windows per batch
	b    *array.RecordBuilder
	n    int // windows in b

	k       int64 // the next window on the grid not yet started or passed
	g       int64 // its grid time
	pending []int // buffer positions of the windows started and not complete
	last    int64 // time of the last sample seen
	hasLast bool

	times []int64
	frags []uint64 // the fragment of each buffered sample
	cols  []winColumn
	seen  []uint64 // scratch: a window's distinct fragments
}

func newWindower(p *Prepared) *windower {
	plan := p.win
	w := &windower{plan: plan, b: array.NewRecordBuilder(p.req.Allocator, plan.schema),
		rows: min(p.req.BatchRows, max(1, maxWindowBatchValues/(plan.length*len(plan.cols))))}
	for _, t := range plan.cols {
		w.cols = append(w.cols, newWinColumn(t))
	}
	w.reserve()
	w.k = w.plan.firstAtOrAfter(p.req.Start - 1)
	for w.grid(); w.g < p.req.Start; w.grid() { // the first window at or after Start
		w.k++
	}
	return w
}

// reserve sizes the batch's builders for a whole batch, tensors included,
// so that they are not grown (and copied) by doubling.
func (w *windower) reserve() {
	w.b.Reserve(w.rows)
	w.b.Field(1).(*array.ListBuilder).ValueBuilder().Reserve(w.rows)
	for c := range w.cols {
		w.b.Field(c + 2).(*array.FixedSizeListBuilder).ValueBuilder().Reserve(w.rows * w.plan.length)
	}
}

// grid sets g to window k's time.
func (w *windower) grid() { w.g = w.plan.grid(w.k) }

func (w *windower) release() { w.b.Release() }

// add takes the samples of one batch (all from fragment frag).
func (w *windower) add(rec arrow.RecordBatch, frag uint64, emit func(arrow.RecordBatch) error) error {
	plan := w.plan
	times := rec.Column(0).(*array.Timestamp).TimestampValues()
	// Rows [span, i) of rec are to join the buffer; span < 0: none are (no
	// window is pending, so no sample is kept).
	span := -1
	if len(w.pending) > 0 {
		span = 0
	}
	take := func(i int) {
		if span >= 0 && i > span {
			for c := range w.cols {
				w.cols[c].appendRows(rec.Column(c+1), span, i)
			}
			for r := span; r < i; r++ {
				w.times = append(w.times, int64(times[r]))
				w.frags = append(w.frags, frag)
			}
		}
		span = i
	}
	for i, ts := range times {
		t := int64(ts)
		if w.hasLast && (t <= w.last || t-w.last > plan.maxStep) {
			w.drop() // a gap: the windows it cuts are not returned
			span = -1
		}
		w.last, w.hasLast = t, true
		if float64(t-(w.g-plan.slack)) >= plan.period {
			w.k = plan.firstAtOrAfter(t) // the windows whose first sample is missing
			w.grid()
		}
		if t >= w.g-plan.slack && w.g < plan.before {
			if span < 0 {
				span = i
			}
			w.pending = append(w.pending, len(w.times)+i-span)
			w.k++
			w.grid()
		}
		if len(w.pending) > 0 && w.pending[0]+plan.length == len(w.times)+i+1-span {
			take(i + 1)
			if err := w.complete(emit); err != nil {
				return err
			}
			if len(w.pending) == 0 {
				span = -1
			}
		}
	}
	take(len(times))
	return nil
}

// complete adds the first pending window, now full, as a row, and drops the
// samples no pending window needs.
func (w *windower) complete(emit func(arrow.RecordBatch) error) error {
	at, n := w.pending[0], w.plan.length
	w.b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(w.times[at]))
	w.seen = w.seen[:0]
	for _, f := range w.frags[at : at+n] {
		if k := len(w.seen); k == 0 || w.seen[k-1] != f {
			w.seen = append(w.seen, f)
		}
	}
	lb := w.b.Field(1).(*array.ListBuilder)
	lb.Append(true)
	lb.ValueBuilder().(*array.Uint64Builder).AppendValues(w.seen, nil)
	for c := range w.cols {
		fl := w.b.Field(c + 2).(*array.FixedSizeListBuilder)
		fl.Append(true)
		w.cols[c].appendWindow(fl.ValueBuilder(), at, at+n)
	}
	w.pending = w.pending[1:]
	keep := len(w.times)
	if len(w.pending) > 0 {
		keep = w.pending[0]
	}
	w.shift(keep)
	if w.n++; w.n >= w.rows {
		return w.flush(emit)
	}
	return nil
}

// shift drops the first n buffered samples.
func (w *windower) shift(n int) {
	if n == 0 {
		return
	}
	w.times = w.times[:copy(w.times, w.times[n:])]
	w.frags = w.frags[:copy(w.frags, w.frags[n:])]
	for c := range w.cols {
		w.cols[c].shift(n)
	}
	for i := range w.pending {
		w.pending[i] -= n
	}
}

// drop forgets the pending windows and their samples.
func (w *windower) drop() {
	w.pending = w.pending[:0]
	w.shift(len(w.times))
}

// flush hands on the windows made so far.
func (w *windower) flush(emit func(arrow.RecordBatch) error) error {
	if w.n == 0 {
		return nil
	}
	rec := w.b.NewRecordBatch()
	defer rec.Release()
	w.n = 0
	w.reserve()
	return emit(rec)
}

// winColumn is the buffered samples of one channel.
type winColumn interface {
	appendRows(a arrow.Array, i, j int)
	appendWindow(b array.Builder, i, j int)
	shift(n int)
}

func newWinColumn(t arrow.DataType) winColumn {
	switch t.ID() {
	case arrow.FLOAT32:
		return &typedColumn[float32]{values: func(a arrow.Array) []float32 { return a.(*array.Float32).Float32Values() }}
	case arrow.FLOAT64:
		return &typedColumn[float64]{values: func(a arrow.Array) []float64 { return a.(*array.Float64).Float64Values() }}
	case arrow.INT16:
		return &typedColumn[int16]{values: func(a arrow.Array) []int16 { return a.(*array.Int16).Int16Values() }}
	case arrow.INT32:
		return &typedColumn[int32]{values: func(a arrow.Array) []int32 { return a.(*array.Int32).Int32Values() }}
	}
	panic(fmt.Sprintf("query: no window column for %s", t)) // newWindowPlan refuses other types
}

type typedColumn[T float32 | float64 | int16 | int32] struct {
	v      []T
	values func(arrow.Array) []T
}

func (c *typedColumn[T]) appendRows(a arrow.Array, i, j int) { c.v = append(c.v, c.values(a)[i:j]...) }

func (c *typedColumn[T]) appendWindow(b array.Builder, i, j int) {
	b.(interface{ AppendValues([]T, []bool) }).AppendValues(c.v[i:j], nil)
}

func (c *typedColumn[T]) shift(n int) { c.v = c.v[:copy(c.v, c.v[n:])] }
