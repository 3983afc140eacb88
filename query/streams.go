package query

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// A samples or windows query of several streams (Request.Streams) — the
// vibration of pumps 1 to 50 — returns each stream's rows under one schema,
// with a first column naming the stream: StreamField, dictionary-encoded
// (int32 indices into the stream names, which an Arrow reader receives once;
// pandas makes it a categorical). The streams' tracks must have the same
// fields and types. A bounded query returns the streams one after the other,
// in the order asked; a live one follows them all at once, each stream's
// batches in order and the streams' interleaved as they come. Arrow Flight
// partitions such a query by stream, then by time.

// StreamField is the first column of a query of several streams.
const StreamField = "stream"

// MaxStreams bounds the streams of one query.
const MaxStreams = 1024

// multiPlan is a prepared query of several streams.
type multiPlan struct {
	parts []*Prepared // one per stream, in order
	dict  arrow.Array // the stream names: the stream column's dictionary
	typ   *arrow.DictionaryType
}

func (s *Service) prepareStreams(req Request) (*Prepared, error) {
	if len(req.Streams) > MaxStreams {
		return nil, invalid("a query reads at most %d streams, not %d", MaxStreams, len(req.Streams))
	}
	plan := &multiPlan{typ: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}}
	var schema *arrow.Schema
	for i, name := range req.Streams {
		if slices.Contains(req.Streams[:i], name) {
			return nil, invalid("streams names %s twice", truncate(name, 256))
		}
		one := req
		one.Stream, one.Streams = name, nil
		p, err := s.PrepareQuery(one)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		if schema == nil {
			schema = p.Schema()
		} else if !sameColumns(schema, p.Schema()) {
			return nil, invalid("streams %s and %s have different columns (%s; %s): query them separately, or name the fields they share",
				req.Streams[0], name, columns(schema), columns(p.Schema()))
		}
		plan.parts = append(plan.parts, p)
	}
	b := array.NewStringBuilder(memory.DefaultAllocator)
	b.AppendValues(req.Streams, nil)
	plan.dict = b.NewArray()
	b.Release()
	fields := append([]arrow.Field{{Name: StreamField, Type: plan.typ}}, schema.Fields()...)
	md := schema.Metadata()
	first := plan.parts[0]
	req.BatchRows = first.req.BatchRows
	return &Prepared{req: req, schema: arrow.NewSchema(fields, &md), multi: plan, rate: first.rate}, nil
}

// sameColumns reports whether two schemas have the same fields and types.
func sameColumns(a, b *arrow.Schema) bool {
	if a.NumFields() != b.NumFields() {
		return false
	}
	for i := range a.NumFields() {
		fa, fb := a.Field(i), b.Field(i)
		if fa.Name != fb.Name || !arrow.TypeEqual(fa.Type, fb.Type) {
			return false
		}
	}
	return true
}

func columns(s *arrow.Schema) string {
	var out []string
	for _, f := range s.Fields() {
		out = append(out, f.Name+" "+f.Type.String())
	}
	return fmt.Sprint(out)
}

// runStreams runs each stream's query and hands on its batches with the
// stream column in front.
func (s *Service) runStreams(ctx context.Context, p *Prepared, emit func(arrow.RecordBatch) error) error {
	plan := p.multi
	tag := func(i int, rec arrow.RecordBatch) error {
		out := plan.withStream(p, i, rec)
		defer out.Release()
		return emit(out)
	}
	if !p.req.Follow {
		for i, part := range plan.parts {
			if err := s.QueryBatches(ctx, part, func(rec arrow.RecordBatch) error { return tag(i, rec) }); err != nil {
				return err
			}
		}
		return nil
	}
	// Live: every stream at once; each goroutine hands its batches over, and
	// the first error (or the reader going away) ends them all.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type tagged struct {
		i   int
		rec arrow.RecordBatch
	}
	ch := make(chan tagged, len(plan.parts))
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for i, part := range plan.parts {
		wg.Go(func() {
			err := s.QueryBatches(ctx, part, func(rec arrow.RecordBatch) error {
				rec.Retain()
				select {
				case ch <- tagged{i, rec}:
					return nil
				case <-ctx.Done():
					rec.Release()
					return ctx.Err()
				}
			})
			if err != nil {
				once.Do(func() { firstErr = err; cancel() })
			}
		})
	}
	go func() { wg.Wait(); close(ch) }()
	defer func() {
		cancel()
		for t := range ch {
			t.rec.Release()
		}
	}()
	for t := range ch {
		err := tag(t.i, t.rec)
		t.rec.Release()
		if err != nil {
			return err
		}
	}
	return firstErr // every stream reached its end, or one failed
}

// withStream returns rec with the stream column of stream i in front.
func (m *multiPlan) withStream(p *Prepared, i int, rec arrow.RecordBatch) arrow.RecordBatch {
	n := int(rec.NumRows())
	ib := array.NewInt32Builder(p.req.Allocator)
	ib.Reserve(n)
	for range n {
		ib.UnsafeAppend(int32(i))
	}
	idx := ib.NewArray()
	ib.Release()
	col := array.NewDictionaryArray(m.typ, idx, m.dict)
	idx.Release()
	cols := append([]arrow.Array{col}, rec.Columns()...)
	out := array.NewRecordBatch(p.schema, cols, int64(n))
	col.Release()
	return out
}
