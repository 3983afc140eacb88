package query

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sensorium-io/sensorium/internal/wire"
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
	// "previous" (the last sample at or before it) or "linear" (between
	// the samples around it).
	Interpolation string
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
		return nil, wire.Errorf(wire.InvalidArgument, `the aligned shape needs "inputs": [{"stream": …, "fields": […]}, …]`)
	}
	a := req.Align
	switch a.Interpolation {
	case "none", "previous", "linear":
	default:
		return nil, wire.Errorf(wire.InvalidArgument, "interpolation must be none, previous or linear, not %q", truncate(a.Interpolation, 32))
	}
	if a.Rate < 0 || a.Rate > signals.MaxSampleRate || (a.Rate == 0 && (a.Reference < 0 || a.Reference >= len(req.Inputs))) {
		return nil, wire.Errorf(wire.InvalidArgument, "align needs a rate (Hz) or the index of a reference input")
	}
	plan := &alignedPlan{align: a}
	fields := []arrow.Field{{Name: signals.TimeField, Type: signals.TimeType()}}
	for i, in := range req.Inputs {
		sub := Request{Stream: in.Stream, Fields: in.Fields, Track: in.Track, Basis: req.Basis, BatchRows: req.BatchRows, Allocator: req.Allocator,
			Start: req.Start, End: req.End}
		probe, err := s.PrepareQuery(sub)
		if err != nil {
			return nil, fmt.Errorf("input %d (%s): %w", i, in.Stream, err)
		}
		desc, ok := probe.desc.(*signals.Scalar)
		if !ok {
			return nil, wire.Errorf(wire.InvalidArgument, "input %d (%s) is a %s track; the aligned shape reads scalar signals", i, in.Stream, probe.desc.Kind())
		}
		gap := int64(1.5e9 / desc.SampleRate)
		// Read a little around the range so that the first and last grid
		// times have their neighbours.
		sub.Start, sub.End = req.Start-gap, req.End+gap
		p, err := s.PrepareQuery(sub)
		if err != nil {
			return nil, err
		}
		plan.inputs, plan.gaps, plan.period = append(plan.inputs, p), append(plan.gaps, gap), append(plan.period, 1e9/desc.SampleRate)
		var names []string
		for _, f := range p.Schema().Fields()[1:] {
			name := in.Stream + "." + f.Name
			names = append(names, name)
			fields = append(fields, arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Float64, Nullable: true, Metadata: f.Metadata})
		}
		plan.names = append(plan.names, names)
	}
	first := plan.inputs[0]
	return &Prepared{req: req, dec: first.dec, aligned: plan, schema: arrow.NewSchema(fields, nil)}, nil
}

// cursor walks one input's samples in time order.
type cursor struct {
	batches <-chan arrow.RecordBatch
	rec     arrow.RecordBatch
	row     int
	done    bool
	// prev is the last sample at or before the grid time, next the first
	// after it; valid when their flags are set.
	prevT, nextT     int64
	prevV, nextV     []float64
	hasPrev, hasNext bool
}

// at moves the cursor to grid time t: prev is then the last sample ≤ t.
func (c *cursor) at(t int64) {
	for {
		if !c.hasNext && !c.fill() {
			return
		}
		if c.nextT > t {
			return
		}
		c.prevT, c.hasPrev = c.nextT, true
		c.prevV, c.nextV = c.nextV, c.prevV
		c.hasNext = false
	}
}

// fill loads the next sample into next; false at the end.
func (c *cursor) fill() bool {
	for c.rec == nil || c.row >= int(c.rec.NumRows()) {
		if c.rec != nil {
			c.rec.Release()
			c.rec = nil
		}
		if c.done {
			return false
		}
		rec, ok := <-c.batches
		if !ok {
			c.done = true
			return false
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
	return true
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
func (s *Service) runAligned(ctx context.Context, p *Prepared, emit func(arrow.RecordBatch) error) error {
	plan := p.aligned
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(plan.inputs))
	cursors := make([]*cursor, len(plan.inputs))
	for i, in := range plan.inputs {
		ch := make(chan arrow.RecordBatch, 2)
		cursors[i] = &cursor{batches: ch}
		go func() {
			defer close(ch)
			errc <- s.QueryBatches(ctx, in, func(rec arrow.RecordBatch) error {
				rec.Retain()
				select {
				case ch <- rec:
					return nil
				case <-ctx.Done():
					rec.Release()
					return ctx.Err()
				}
			})
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
	next := gridFrom(plan, cursors, req.Start)
	for {
		t, ok := next()
		if !ok || t >= req.End {
			break
		}
		rb.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(t))
		col := 1
		for i, c := range cursors {
			c.at(t)
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
			if err := emitBatch(rb, emit); err != nil {
				return err
			}
			rows = 0
		}
	}
	if rows > 0 {
		if err := emitBatch(rb, emit); err != nil {
			return err
		}
	}
	cancel()
	for range plan.inputs {
		if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return nil
}

func emitBatch(rb *array.RecordBuilder, emit func(arrow.RecordBatch) error) error {
	rec := rb.NewRecordBatch()
	defer rec.Release()
	return emit(rec)
}

// gridFrom returns the grid's times from start: at the rate, or the
// reference input's sample times (read through its own cursor's lookahead).
func gridFrom(plan *alignedPlan, cursors []*cursor, start int64) func() (int64, bool) {
	if plan.align.Rate > 0 {
		k := 0
		return func() (int64, bool) {
			t := start + int64(float64(k)*1e9/plan.align.Rate+0.5)
			k++
			return t, true
		}
	}
	ref := cursors[plan.align.Reference]
	return func() (int64, bool) {
		for {
			if !ref.hasNext && !ref.fill() {
				return 0, false
			}
			if ref.nextT >= start {
				return ref.nextT, true
			}
			ref.at(ref.nextT)
		}
	}
}
