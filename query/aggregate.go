package query

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// The aggregate shape: statistics of each window of the windows shape's grid
// (Window: Length and Hop in samples, Anchor, StartsBefore), one row per
// window — what a dashboard of 1 s RMS or a plot of a day's min and max
// needs, in kilobytes instead of every sample.
//
// Window k belongs at the grid time g(k) = SampleTime(Anchor, k × Hop) and
// holds the samples whose grid positions are k × Hop to k × Hop + Length − 1:
// those with a time in [g(k), SampleTime(Anchor, k × Hop + Length)) (less the
// 2 ns of rounding the windows shape allows). Unlike the windows shape, a
// window is returned whatever part of it holds samples — a gap, or the end
// of the range, leaves it with fewer — and its count says how many; a
// window with none is not returned. Hop ≥ Length skips the samples between
// windows; Hop < Length (sliding windows) needs Length to be a multiple of
// Hop. The windows returned are those with Start ≤ g(k) < StartsBefore,
// from the samples in [Start, End).
//
// A row holds the window's grid time (start), its sample count (count),
// and for each channel and statistic asked for (Request.Aggregates; default
// all) a column named channel_statistic:
//
//   - min, max: in the channel's own type (the unit's metadata kept);
//   - mean: the arithmetic mean, float64;
//   - rms: the root mean square, float64.
//
// A NaN sample makes its channel's statistics in that window NaN.
//
// The samples are reduced where they are decoded, in the pipeline's workers
// (in parallel), into partial statistics per bucket of the grid; the
// collector only merges the buckets a batch boundary cut and those of
// sliding windows, so a query moves a few numbers per window between
// goroutines, never the samples.

// AggregateStats are the statistics the aggregate shape computes, in the
// order of its columns.
var AggregateStats = []string{"min", "max", "mean", "rms"}

// Result fields of the aggregate shape, besides the channels' statistics.
const (
	AggregateStartField = "start" // the window's grid time
	AggregateCountField = "count" // the samples in the window
)

// aggPlan is a prepared aggregate query.
type aggPlan struct {
	grid *windowPlan
	// A bucket is the part of the grid that the windows are made of: a
	// window when Hop ≥ Length (samples after its Length samples are in no
	// bucket), a Hop when the windows slide (span buckets make a window).
	bucketLen int // samples
	span      int64
	stats     [4]bool // of AggregateStats
	cols      []arrow.DataType
	names     []string
	partial   *arrow.Schema // what a worker hands on: bucket, count, and min, max, sum, sum of squares per channel
	schema    *arrow.Schema
}

func newAggPlan(p *Prepared) (*aggPlan, error) {
	grid, err := newGrid(p)
	if err != nil {
		return nil, err
	}
	a := &aggPlan{grid: grid, bucketLen: grid.length, span: 1}
	if grid.hop < grid.length {
		if grid.length%grid.hop != 0 {
			return nil, invalid("sliding aggregate windows need a length that is a multiple of the hop (length %d, hop %d)", grid.length, grid.hop)
		}
		a.bucketLen, a.span = grid.hop, int64(grid.length/grid.hop)
	}
	want := p.req.Aggregates
	if len(want) == 0 {
		want = AggregateStats
	}
	for _, s := range want {
		i := slices.Index(AggregateStats, s)
		if i < 0 {
			return nil, invalid("aggregates are %s, not %q", strings.Join(AggregateStats, ", "), truncate(s, 64))
		}
		if a.stats[i] {
			return nil, invalid("aggregates names %s twice", s)
		}
		a.stats[i] = true
	}
	partial := []arrow.Field{
		{Name: "bucket", Type: arrow.PrimitiveTypes.Int64},
		{Name: "count", Type: arrow.PrimitiveTypes.Int64},
	}
	out := []arrow.Field{
		{Name: AggregateStartField, Type: p.samples.Field(0).Type},
		{Name: AggregateCountField, Type: arrow.PrimitiveTypes.Int64},
	}
	for _, f := range p.samples.Fields()[1:] {
		switch f.Type.ID() {
		case arrow.FLOAT32, arrow.FLOAT64, arrow.INT16, arrow.INT32:
		default:
			return nil, invalid("the aggregate shape cannot compute statistics of %s column %q", f.Type, f.Name)
		}
		a.cols = append(a.cols, f.Type)
		a.names = append(a.names, f.Name)
		for _, acc := range []string{"min", "max", "sum", "sumsq"} {
			partial = append(partial, arrow.Field{Name: f.Name + "_" + acc, Type: arrow.PrimitiveTypes.Float64})
		}
		for i, s := range AggregateStats {
			if !a.stats[i] {
				continue
			}
			t := f.Type
			if s == "mean" || s == "rms" {
				t = arrow.PrimitiveTypes.Float64
			}
			out = append(out, arrow.Field{Name: f.Name + "_" + s, Type: t, Metadata: f.Metadata})
		}
	}
	md := p.samples.Metadata()
	var names []string
	for i, s := range AggregateStats {
		if a.stats[i] {
			names = append(names, s)
		}
	}
	md = arrow.NewMetadata(append(md.Keys(), "sensorium.window_length", "sensorium.window_hop", "sensorium.window_anchor", "sensorium.aggregates"),
		append(md.Values(), strconv.Itoa(grid.length), strconv.Itoa(grid.hop), strconv.FormatInt(grid.anchor, 10), strings.Join(names, ",")))
	a.partial = arrow.NewSchema(partial, nil)
	a.schema = arrow.NewSchema(out, &md)
	return a, nil
}

// bucketStart is the time from which samples belong to bucket b.
func (a *aggPlan) bucketStart(b int64) int64 {
	return a.grid.clock.SampleTime(a.grid.anchor, int(b)*a.grid.hop) - a.grid.slack
}

// bucketEnd is the time from which samples no longer belong to bucket b.
func (a *aggPlan) bucketEnd(b int64) int64 {
	return a.grid.clock.SampleTime(a.grid.anchor, int(b)*a.grid.hop+a.bucketLen) - a.grid.slack
}

// bucketOf is the last bucket that starts at or before t.
func (a *aggPlan) bucketOf(t int64) int64 {
	b := int64(math.Floor(float64(t-a.grid.anchor) / (a.grid.period * float64(a.grid.hop))))
	for a.bucketStart(b+1) <= t {
		b++
	}
	for a.bucketStart(b) > t {
		b--
	}
	return b
}

// span is a stretch of a batch's rows [i, j) in one bucket.
type span struct {
	bucket int64
	i, j   int
}

// runs cuts a batch's sample times into runs of one bucket, leaving out the
// samples that fall between windows (Hop > Length).
func (a *aggPlan) runs(times []arrow.Timestamp, dst []span) []span {
	var b, start, next, end int64
	enter := func(t int64) {
		b = a.bucketOf(t)
		start, next, end = a.bucketStart(b), a.bucketStart(b+1), a.bucketEnd(b)
	}
	open := -1 // the first row of the open run; -1: none
	for i, ts := range times {
		t := int64(ts)
		if i == 0 || t >= next || t < start { // another bucket (t < start: the producer's clock went back)
			if open >= 0 {
				dst = append(dst, span{b, open, i})
				open = -1
			}
			enter(t)
		}
		switch {
		case t < end:
			if open < 0 {
				open = i
			}
		case open >= 0: // past the window, before the next bucket
			dst = append(dst, span{b, open, i})
			open = -1
		}
	}
	if open >= 0 {
		dst = append(dst, span{b, open, len(times)})
	}
	return dst
}

// reduce turns a batch of samples into partial statistics per bucket: what
// a decode worker hands on instead of the samples (Prepared.reduce).
func (a *aggPlan) reduce(mem memory.Allocator, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	times := rec.Column(0).(*array.Timestamp).TimestampValues()
	runs := a.runs(times, nil)
	b := array.NewRecordBuilder(mem, a.partial)
	defer b.Release()
	b.Reserve(len(runs))
	buckets := b.Field(0).(*array.Int64Builder)
	counts := b.Field(1).(*array.Int64Builder)
	for _, r := range runs {
		buckets.UnsafeAppend(r.bucket)
		counts.UnsafeAppend(int64(r.j - r.i))
	}
	for c := range a.cols {
		col := rec.Column(c + 1)
		accs := [4]*array.Float64Builder{}
		for k := range accs {
			accs[k] = b.Field(2 + 4*c + k).(*array.Float64Builder)
		}
		for _, r := range runs {
			mn, mx, sum, sq, ok := summarizeColumn(col, r.i, r.j)
			if !ok {
				return nil, fmt.Errorf("query: aggregate of a %s column", col.DataType()) // newAggPlan refuses these
			}
			accs[0].UnsafeAppend(mn)
			accs[1].UnsafeAppend(mx)
			accs[2].UnsafeAppend(sum)
			accs[3].UnsafeAppend(sq)
		}
	}
	return b.NewRecordBatch(), nil
}

// summarizeColumn is summarize of rows [i, j) of a value column; not ok
// for a column type the aggregate shape does not read.
func summarizeColumn(col arrow.Array, i, j int) (mn, mx, sum, sq float64, ok bool) {
	switch v := col.(type) {
	case *array.Float32:
		mn, mx, sum, sq = summarize(v.Float32Values()[i:j])
	case *array.Float64:
		mn, mx, sum, sq = summarize(v.Float64Values()[i:j])
	case *array.Int16:
		mn, mx, sum, sq = summarize(v.Int16Values()[i:j])
	case *array.Int32:
		mn, mx, sum, sq = summarize(v.Int32Values()[i:j])
	default:
		return 0, 0, 0, 0, false
	}
	return mn, mx, sum, sq, true
}

// summarize is the minimum, maximum, sum and sum of squares of v; min and
// max are NaN if v holds a NaN.
func summarize[T float32 | float64 | int16 | int32](v []T) (mn, mx, sum, sq float64) {
	if len(v) == 0 {
		return math.Inf(1), math.Inf(-1), 0, 0
	}
	// Comparisons in the loop (NaN never wins one), and two of each
	// accumulator so that the chains of dependent operations are half as long.
	mn0, mx0 := v[0], v[0]
	mn1, mx1 := mn0, mx0
	var sum1, sq1 float64
	i := 0
	for ; i+1 < len(v); i += 2 {
		a, b := v[i], v[i+1]
		if a < mn0 {
			mn0 = a
		}
		if a > mx0 {
			mx0 = a
		}
		if b < mn1 {
			mn1 = b
		}
		if b > mx1 {
			mx1 = b
		}
		fa, fb := float64(a), float64(b)
		sum += fa
		sum1 += fb
		sq += fa * fa
		sq1 += fb * fb
	}
	if i < len(v) {
		a := v[i]
		mn0, mx0 = min(mn0, a), max(mx0, a)
		sum += float64(a)
		sq += float64(a) * float64(a)
	}
	mn, mx = float64(min(mn0, mn1)), float64(max(mx0, mx1))
	sum += sum1
	sq += sq1
	if sum != sum { // NaN: a NaN sample, or infinities of both signs
		for _, x := range v {
			if x != x {
				return math.NaN(), math.NaN(), sum, sq
			}
		}
	}
	return mn, mx, sum, sq
}

// bucketStats is the statistics of one bucket so far: per channel min, max,
// sum and sum of squares, one after the other.
type bucketStats struct {
	b     int64
	count int64
	acc   []float64
}

// aggregator merges the workers' partial statistics, in order, into
// windows: the collector's side of the aggregate shape.
type aggregator struct {
	plan  *aggPlan
	req   *Request
	out   *array.RecordBuilder
	rows  int // in out
	limit int // rows per batch

	cur    bucketStats   // the bucket being filled; count 0: none
	closed []bucketStats // finished buckets that windows not yet emitted need, ascending
	free   [][]float64
	nextK  int64 // the first window not yet emitted
	win    []float64
}

func newAggregator(p *Prepared) *aggregator {
	a := p.agg
	g := &aggregator{plan: a, req: &p.req, out: array.NewRecordBuilder(p.req.Allocator, a.schema), limit: p.req.BatchRows}
	g.nextK = g.firstWindow()
	g.win = make([]float64, 4*len(a.cols))
	return g
}

// firstWindow is the first window whose grid time is at or after Start.
func (g *aggregator) firstWindow() int64 {
	a := g.plan
	k := a.bucketOf(g.req.Start)
	for a.grid.grid(k) < g.req.Start {
		k++
	}
	return k
}

func (g *aggregator) release() { g.out.Release() }

func (g *aggregator) newAcc() []float64 {
	if n := len(g.free); n > 0 {
		acc := g.free[n-1]
		g.free = g.free[:n-1]
		return acc
	}
	return make([]float64, 4*len(g.plan.cols))
}

// add merges a worker's partial statistics.
func (g *aggregator) add(rec arrow.RecordBatch, emit func(arrow.RecordBatch) error) error {
	buckets := rec.Column(0).(*array.Int64).Int64Values()
	counts := rec.Column(1).(*array.Int64).Int64Values()
	nch := len(g.plan.cols)
	for r, b := range buckets {
		if g.cur.count > 0 && b != g.cur.b {
			if err := g.close(b, emit); err != nil {
				return err
			}
		}
		if g.cur.count == 0 {
			g.cur = bucketStats{b: b, acc: g.newAcc()}
			for c := range nch {
				g.cur.acc[4*c], g.cur.acc[4*c+1] = math.Inf(1), math.Inf(-1)
				g.cur.acc[4*c+2], g.cur.acc[4*c+3] = 0, 0
			}
		}
		g.cur.count += counts[r]
		for c := range nch {
			acc := g.cur.acc[4*c : 4*c+4]
			acc[0] = math.Min(acc[0], rec.Column(2+4*c).(*array.Float64).Value(r))
			acc[1] = math.Max(acc[1], rec.Column(3+4*c).(*array.Float64).Value(r))
			acc[2] += rec.Column(4 + 4*c).(*array.Float64).Value(r)
			acc[3] += rec.Column(5 + 4*c).(*array.Float64).Value(r)
		}
	}
	return nil
}

// close finishes the current bucket, now that a row of bucket next came,
// and emits the windows that no later bucket can add to.
func (g *aggregator) close(next int64, emit func(arrow.RecordBatch) error) error {
	cur := g.cur
	g.cur = bucketStats{}
	if next < cur.b {
		// The producer's clock went back: finish every window so far, and
		// start again from the earlier bucket (its windows come again).
		g.closed = append(g.closed, cur)
		if err := g.emitThrough(math.MaxInt64, emit); err != nil {
			return err
		}
		g.nextK = min(g.nextK, max(next-g.plan.span+1, g.firstWindow()))
		return nil
	}
	g.closed = append(g.closed, cur)
	// Windows k with k + span − 1 < next hold no bucket to come.
	return g.emitThrough(next-g.plan.span, emit)
}

// emitThrough emits the windows up to k = last that hold a finished bucket,
// and forgets the buckets no later window needs.
func (g *aggregator) emitThrough(last int64, emit func(arrow.RecordBatch) error) error {
	a := g.plan
	for len(g.closed) > 0 {
		k := max(g.nextK, g.closed[0].b-a.span+1)
		if k > last {
			break
		}
		g.nextK = k + 1
		if err := g.window(k, emit); err != nil {
			return err
		}
		for len(g.closed) > 0 && g.closed[0].b < g.nextK {
			g.free = append(g.free, g.closed[0].acc)
			g.closed = g.closed[1:]
		}
	}
	if len(g.closed) == 0 {
		g.closed = g.closed[:0:0]
	}
	return nil
}

// window emits window k from the finished buckets k … k + span − 1.
func (g *aggregator) window(k int64, emit func(arrow.RecordBatch) error) error {
	a := g.plan
	at := a.grid.grid(k)
	if at < g.req.Start || at >= a.grid.before {
		return nil
	}
	nch := len(a.cols)
	var count int64
	for c := range nch {
		g.win[4*c], g.win[4*c+1], g.win[4*c+2], g.win[4*c+3] = math.Inf(1), math.Inf(-1), 0, 0
	}
	for _, bs := range g.closed {
		if bs.b < k {
			continue
		}
		if bs.b >= k+a.span {
			break
		}
		count += bs.count
		for i := range nch {
			w, acc := g.win[4*i:4*i+4], bs.acc[4*i:4*i+4]
			w[0], w[1] = math.Min(w[0], acc[0]), math.Max(w[1], acc[1])
			w[2] += acc[2]
			w[3] += acc[3]
		}
	}
	if count == 0 {
		return nil
	}
	g.out.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(at))
	g.out.Field(1).(*array.Int64Builder).Append(count)
	f := 2
	n := float64(count)
	for c, t := range a.cols {
		w := g.win[4*c : 4*c+4]
		for i, s := range AggregateStats {
			if !a.stats[i] {
				continue
			}
			fb := g.out.Field(f)
			f++
			switch s {
			case "min", "max":
				v := w[0]
				if s == "max" {
					v = w[1]
				}
				appendIn(fb, t, v)
			case "mean":
				fb.(*array.Float64Builder).Append(w[2] / n)
			case "rms":
				fb.(*array.Float64Builder).Append(math.Sqrt(w[3] / n))
			}
		}
	}
	if g.rows++; g.rows >= g.limit {
		return g.flush(emit)
	}
	return nil
}

// appendIn appends v to a builder of the channel's type t.
func appendIn(b array.Builder, t arrow.DataType, v float64) {
	switch t.ID() {
	case arrow.FLOAT32:
		b.(*array.Float32Builder).Append(float32(v))
	case arrow.FLOAT64:
		b.(*array.Float64Builder).Append(v)
	case arrow.INT16:
		b.(*array.Int16Builder).Append(int16(v))
	case arrow.INT32:
		b.(*array.Int32Builder).Append(int32(v))
	}
}

// flush hands on the windows made so far.
func (g *aggregator) flush(emit func(arrow.RecordBatch) error) error {
	if g.rows == 0 {
		return nil
	}
	rec := g.out.NewRecordBatch()
	defer rec.Release()
	g.rows = 0
	return emit(rec)
}

// finish emits the windows left once every sample is in.
func (g *aggregator) finish(emit func(arrow.RecordBatch) error) error {
	if g.cur.count > 0 {
		g.closed = append(g.closed, g.cur)
		g.cur = bucketStats{}
	}
	if err := g.emitThrough(math.MaxInt64, emit); err != nil {
		return err
	}
	return g.flush(emit)
}

// runAggregate merges the partial statistics the decode workers make into
// windows. A live query that caught up hands on the windows complete so
// far; the window still filling waits for its samples.
func (s *Service) runAggregate(ctx context.Context, p *Prepared, emit func(arrow.RecordBatch) error) error {
	g := newAggregator(p)
	defer g.release()
	err := s.decode(ctx, p, false, func(pc piece) error {
		if pc.rec == nil {
			return g.flush(emit)
		}
		return g.add(pc.rec, emit)
	})
	if err == nil {
		err = g.finish(emit)
	}
	return err
}
