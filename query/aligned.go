package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sensorium-io/sensorium/signals"
)

// The aligned shape puts several scalar streams on one clock: a grid of
// times — a rate, or the sample times of a reference input — and, per input
// field, its value at each grid time under a stated interpolation policy.
// Gaps are never filled silently: "previous" takes a sample only for the
// sample period it stands for (a missing sample makes its period null), and
// "linear" interpolates only between neighbouring samples.

// Input is one stream of an aligned query.
type Input struct {
	Stream string
	Fields []string
	Track  uint64
}

// Align says how to align the inputs.
type Align struct {
	Rate      float64 // Hz of the grid; 0: the reference input's sample times
	Reference int     // the input whose sample times are the grid, when Rate is 0
	// Interpolation is "none" (only a sample exactly at the grid time),
	// "previous" (the last sample at or before it, for one sample period)
	// or "linear" (between the samples around it, when they are neighbours).
	Interpolation string
	// Anchor is the time of grid point 0 of a rate grid (ns); 0: Start. The
	// grid's times are SampleTime(Anchor, k) at Rate (signals.SampleTime),
	// those in [Start, End). A job that resumes a query, and each Arrow
	// Flight partition, passes the first query's start to stay on its grid.
	Anchor int64
}

// alignedPlan is a prepared aligned query.
type alignedPlan struct {
	inputs []*Prepared
	names  [][]string // output column name per input field
	gaps   []int64    // ns: per input, the longest step between neighbouring samples (1.5 periods)
	period []float64  // ns: per input, the sample period
	align  Align
}

func (s *Service) prepareAligned(req Request) (*Prepared, error) {
	if len(req.Inputs) == 0 {
		return nil, invalid(`the aligned shape needs "inputs": [{"stream": …, "fields": […]}, …]`)
	}
	a := req.Align
	switch a.Interpolation {
	case "none", "previous", "linear":
	default:
		return nil, invalid("interpolation must be none, previous or linear, not %q", truncate(a.Interpolation, 32))
	}
	if a.Rate < 0 || a.Rate > signals.MaxSampleRate || (a.Rate == 0 && (a.Reference < 0 || a.Reference >= len(req.Inputs))) {
		return nil, invalid("align needs a rate (Hz) or the index of a reference input")
	}
	if a.Anchor == 0 {
		a.Anchor = req.Start
	}
	req.Align = a
	plan := &alignedPlan{align: a}
	fields := []arrow.Field{{Name: signals.TimeField, Type: signals.TimeType()}}
	named := map[string]int{}
	for i, in := range req.Inputs {
		sub := Request{Stream: in.Stream, Fields: in.Fields, Track: in.Track, Basis: req.Basis, Allocator: req.Allocator,
			Start: req.Start, End: req.End, Follow: req.Follow}
		probe, err := s.PrepareQuery(sub)
		if err != nil {
			return nil, fmt.Errorf("input %d (%s): %w", i, in.Stream, err)
		}
		if probe.rate <= 0 {
			return nil, invalid("input %d (%s) is a %s track; the aligned shape reads sampled signals (scalar, IMU, audio)", i, in.Stream, probe.desc.Kind())
		}
		gap := int64(1.5e9 / probe.rate)
		// Read a little around the range so that the first and last grid
		// times have their neighbours.
		sub.Start, sub.End = satAdd(req.Start, -gap), satAdd(req.End, gap)
		p, err := s.PrepareQuery(sub)
		if err != nil {
			return nil, err
		}
		plan.inputs, plan.gaps, plan.period = append(plan.inputs, p), append(plan.gaps, gap), append(plan.period, 1e9/probe.rate)
		var names []string
		for _, f := range p.Schema().Fields()[1:] {
			switch f.Type.ID() {
			case arrow.FLOAT32, arrow.FLOAT64, arrow.INT16, arrow.INT32:
			default:
				return nil, invalid("input %d (%s): the aligned shape cannot resample the %s column %q", i, in.Stream, f.Type, f.Name)
			}
			name := in.Stream + "." + f.Name
			if j, dup := named[name]; dup {
				return nil, invalid("inputs %d and %d both give the column %q: name different fields", j, i, name)
			}
			named[name] = i
			names = append(names, name)
			fields = append(fields, arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Float64, Nullable: true, Metadata: f.Metadata})
		}
		plan.names = append(plan.names, names)
	}
	md := arrow.NewMetadata([]string{"sensorium.align_interpolation", "sensorium.align_rate", "sensorium.align_anchor"},
		[]string{a.Interpolation, strconv.FormatFloat(a.Rate, 'g', -1, 64), strconv.FormatInt(a.Anchor, 10)})
	return &Prepared{req: req, aligned: plan, schema: arrow.NewSchema(fields, &md)}, nil
}

// satAdd is a + d, held inside the int64 range (a live query's end is
// math.MaxInt64).
func satAdd(a, d int64) int64 {
	switch {
	case d > 0 && a > math.MaxInt64-d:
		return math.MaxInt64
	case d < 0 && a < math.MinInt64-d:
		return math.MinInt64
	}
	return a + d
}

// cursor walks one input's samples in time order.
type cursor struct {
	batches <-chan arrow.RecordBatch
	err     error // why the input's query ended; read once batches is closed
	// wait, when set, is called before the cursor blocks for a batch (a
	// live query hands on the rows so far).
	wait func() error
	rec  arrow.RecordBatch
	row  int
	done bool
	// prev is the last sample at or before the grid time, next the first
	// after it; valid when their flags are set.
	prevT, nextT     int64
	prevV, nextV     []float64
	hasPrev, hasNext bool
}

// at moves the cursor to grid time t: prev is then the last sample ≤ t.
func (c *cursor) at(t int64) error {
	for {
		if !c.hasNext {
			ok, err := c.fill()
			if err != nil || !ok {
				return err
			}
		}
		if c.nextT > t {
			return nil
		}
		c.prevT, c.hasPrev = c.nextT, true
		c.prevV, c.nextV = c.nextV, c.prevV
		c.hasNext = false
	}
}

// fill loads the next sample into next; false at the end of the input.
func (c *cursor) fill() (bool, error) {
	for c.rec == nil || c.row >= int(c.rec.NumRows()) {
		if c.rec != nil {
			c.rec.Release()
			c.rec = nil
		}
		if c.done {
			return false, nil
		}
		rec, ok, err := c.receive()
		if err != nil {
			return false, err
		}
		if !ok {
			// The input's query ended: at the end of its range, or with an
			// error (context.Canceled only when the reader went away: the
			// grid cancels its inputs once it is done with them).
			c.done = true
			return false, c.err
		}
		c.rec, c.row = rec, 0
	}
	c.nextT = int64(c.rec.Column(0).(*array.Timestamp).Value(c.row))
	c.nextV = c.nextV[:0]
	for col := 1; col < int(c.rec.NumCols()); col++ {
		c.nextV = append(c.nextV, valueAt(c.rec.Column(col), c.row))
	}
	c.row++
	c.hasNext = true
	return true, nil
}

// receive takes the input's next batch, calling wait first if it must block.
func (c *cursor) receive() (arrow.RecordBatch, bool, error) {
	if c.wait != nil {
		select {
		case rec, ok := <-c.batches:
			return rec, ok, nil
		default:
			if err := c.wait(); err != nil {
				return nil, false, err
			}
		}
	}
	rec, ok := <-c.batches
	return rec, ok, nil
}

func valueAt(a arrow.Array, i int) float64 {
	switch a := a.(type) {
	case *array.Float32:
		return float64(a.Value(i))
	case *array.Float64:
		return a.Value(i)
	case *array.Int16:
		return float64(a.Value(i))
	case *array.Int32:
		return float64(a.Value(i))
	}
	return 0
}

// value is input field f's value at t under the policy, or false (null).
func (c *cursor) value(t int64, f int, policy string, gap int64, period float64) (float64, bool) {
	switch {
	case c.hasPrev && c.prevT == t:
		return c.prevV[f], true
	case policy == "previous" && c.hasPrev && float64(t-c.prevT) < period:
		return c.prevV[f], true
	case policy == "linear" && c.hasPrev && c.hasNext && c.nextT-c.prevT <= gap:
		w := float64(t-c.prevT) / float64(c.nextT-c.prevT)
		return c.prevV[f] + w*(c.nextV[f]-c.prevV[f]), true
	}
	return 0, false
}

// runAligned reads every input concurrently and emits the grid in batches.
func (s *Service) runAligned(parent context.Context, p *Prepared, emit func(arrow.RecordBatch) error) error {
	plan := p.aligned
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	cursors := make([]*cursor, len(plan.inputs))
	for i, in := range plan.inputs {
		ch := make(chan arrow.RecordBatch, 2)
		c := &cursor{batches: ch}
		cursors[i] = c
		go func() {
			c.err = s.QueryBatches(ctx, in, func(rec arrow.RecordBatch) error {
				rec.Retain()
				select {
				case ch <- rec:
					return nil
				case <-ctx.Done():
					rec.Release()
					return ctx.Err()
				}
			})
			close(ch) // after c.err: a receive that sees the close sees the error
		}()
	}
	defer func() {
		cancel()
		for _, c := range cursors {
			for rec := range c.batches {
				rec.Release()
			}
			if c.rec != nil {
				c.rec.Release()
			}
		}
	}()
	rb := array.NewRecordBuilder(p.req.Allocator, p.schema)
	defer rb.Release()
	req := p.req
	rows := 0
	flush := func() error {
		if err := parent.Err(); err != nil { // the reader went away
			return err
		}
		if rows == 0 {
			return nil
		}
		rows = 0
		return emitBatch(rb, emit)
	}
	if req.Follow { // hand on the rows so far whenever an input has to wait
		for _, c := range cursors {
			c.wait = flush
		}
	}
	next := gridFrom(plan, cursors, req.Start)
	for {
		t, ok, err := next()
		if err != nil {
			return err
		}
		if !ok || t >= req.End {
			break
		}
		// Every cursor moves first: one that waits for data (a live query)
		// may hand on the rows so far, and this row is not begun.
		for _, c := range cursors {
			if err := c.at(t); err != nil {
				return err
			}
		}
		rb.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(t))
		col := 1
		for i, c := range cursors {
			for f := range plan.names[i] {
				fb := rb.Field(col).(*array.Float64Builder)
				if v, ok := c.value(t, f, plan.align.Interpolation, plan.gaps[i], plan.period[i]); ok {
					fb.Append(v)
				} else {
					fb.AppendNull()
				}
				col++
			}
		}
		if rows++; rows >= req.BatchRows {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	// The grid is done; an input that failed says so even if the grid did not
	// need the rest of it.
	cancel()
	if err := parent.Err(); err != nil {
		return err
	}
	for _, c := range cursors {
		for rec := range c.batches {
			rec.Release()
		}
		if c.err != nil && !errors.Is(c.err, context.Canceled) {
			return c.err
		}
	}
	return nil
}

func emitBatch(rb *array.RecordBuilder, emit func(arrow.RecordBatch) error) error {
	rec := rb.NewRecordBatch()
	defer rec.Release()
	return emit(rec)
}

// gridFrom returns the grid's times from start: at the rate from the
// anchor, or the reference input's sample times (read through its own
// cursor's lookahead).
func gridFrom(plan *alignedPlan, cursors []*cursor, start int64) func() (int64, bool, error) {
	if rate := plan.align.Rate; rate > 0 {
		clock := &signals.Scalar{SampleRate: rate}
		anchor := plan.align.Anchor
		// The first grid point at or after start.
		k := int(math.Floor(float64(start-anchor) * rate / 1e9))
		for clock.SampleTime(anchor, k) >= start {
			k--
		}
		for clock.SampleTime(anchor, k) < start {
			k++
		}
		return func() (int64, bool, error) {
			t := clock.SampleTime(anchor, k)
			k++
			return t, true, nil
		}
	}
	ref := cursors[plan.align.Reference]
	return func() (int64, bool, error) {
		for {
			if !ref.hasNext {
				ok, err := ref.fill()
				if err != nil || !ok {
					return 0, false, err
				}
			}
			if ref.nextT >= start {
				return ref.nextT, true, nil
			}
			if err := ref.at(ref.nextT); err != nil {
				return 0, false, err
			}
		}
	}
}
