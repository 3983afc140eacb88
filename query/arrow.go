package query

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/internal/wire"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/store"
)

// ArrowContentType is the media type of an Arrow IPC stream.
const ArrowContentType = "application/vnd.apache.arrow.stream"

// Request is an Arrow range query over one track of a stream.
type Request struct {
	Stream     string
	Start, End int64 // ns; start inclusive, end exclusive
	Basis      store.TimeBasis
	Fields     []string      // the kind's fields (channels, point fields …); empty: all
	Layout     codecs.Layout // rows per element, or rows per frame with list columns
	Track      uint64        // 0: the first track of a kind this server knows
	BatchRows  int           // rows per record batch; default 65536
	// Shape is "samples" (default: a row per sample, point …) or
	// "windows" (a row per Window of a scalar signal).
	Shape  string
	Window Window
	// Follow keeps the query open at the end of the stored data: new
	// fragments in range are read as they become durable, until End (which
	// may be math.MaxInt64) or until the context ends.
	Follow    bool
	Allocator memory.Allocator
	// Inputs and Align make the "aligned" shape: several streams on one
	// clock (Stream is then unused).
	Inputs []Input
	Align  Align
}

// Prepared is a validated query: its schema is known before any row is read,
// so that errors are clean responses rather than broken streams.
type Prepared struct {
	req     Request
	dec     codecs.ArrowDecoder
	descRaw []byte
	track   uint64
	desc    signals.Description
	aligned *alignedPlan  // the aligned shape
	schema  *arrow.Schema // when not the decoder's (aligned)
}

// Schema is the result's schema.
func (p *Prepared) Schema() *arrow.Schema {
	if p.schema != nil {
		return p.schema
	}
	return p.dec.Schema()
}

// PrepareQuery validates a query and finds the signal description of the
// track it reads (from the first fragment in range, or the newest one).
func (s *Service) PrepareQuery(req Request) (*Prepared, error) {
	if req.End <= req.Start {
		return nil, wire.Errorf(wire.InvalidArgument, "end must be after start (the range is start inclusive, end exclusive)")
	}
	if req.Basis == 0 {
		req.Basis = store.ProducerTime
	}
	if req.BatchRows <= 0 {
		req.BatchRows = 1 << 16
	}
	if req.Allocator == nil {
		req.Allocator = memory.DefaultAllocator
	}
	if req.Shape == "aligned" {
		return s.prepareAligned(req)
	}
	info, err := s.st.DescribeStream(store.StreamRef{Name: req.Stream})
	if err != nil {
		return nil, err
	}
	probe, err := s.st.Range(info.Name, req.Basis, req.Start, req.End, 0, 1)
	if err != nil {
		return nil, err
	}
	if len(probe) == 0 {
		last, ok, err := s.st.Durable(info.Name)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, wire.Errorf(wire.ResourceNotFound, "stream %s holds no fragments, so its signals are not known yet", info.Name)
		}
		probe = []store.FragmentInfo{last}
	}
	r, err := s.st.NewReader(info.Name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.Read(probe[0])
	if err != nil {
		return nil, fmt.Errorf("query: read fragment %d: %w", probe[0].Number, err)
	}
	tracks, err := readTracks(f.Payload)
	if err != nil {
		return nil, fmt.Errorf("query: fragment %d: %w", f.Number, err)
	}
	t, desc, err := pickTrack(tracks, req.Track)
	if err != nil {
		return nil, err
	}
	var dec codecs.ArrowDecoder
	switch req.Shape {
	case "", "samples":
		if dec, err = codecs.NewArrowDecoder(desc, codecs.ArrowOptions{Fields: req.Fields, Layout: req.Layout}); err != nil {
			return nil, wire.Errorf(wire.InvalidArgument, "%v", err)
		}
	case "windows":
		if req.Layout != codecs.LayoutRows {
			return nil, wire.Errorf(wire.InvalidArgument, "the windows shape has one row per window; leave layout out")
		}
		if dec, err = newWindowDecoder(desc, req.Fields, req.Window); err != nil {
			return nil, err
		}
	default:
		return nil, wire.Errorf(wire.InvalidArgument, "shape must be samples or windows, not %q", truncate(req.Shape, 64))
	}
	return &Prepared{req: req, dec: dec, descRaw: append([]byte(nil), t.CodecPrivate...), track: t.Number, desc: desc}, nil
}

func readTracks(payload []byte) ([]mkv.TrackEntry, error) {
	r := mkv.NewReader(bytes.NewReader(payload))
	for {
		it, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("no Tracks element: %w", err)
		}
		if it.Kind == mkv.ItemTracks {
			return it.Tracks, nil
		}
	}
}

// pickTrack finds the track a query reads: the one asked for, or the first
// whose kind this server knows.
func pickTrack(tracks []mkv.TrackEntry, want uint64) (*mkv.TrackEntry, signals.Description, error) {
	for i := range tracks {
		t := &tracks[i]
		if want != 0 && t.Number != want {
			continue
		}
		desc, err := signals.ParseDescription(t.CodecID, t.CodecPrivate)
		switch {
		case err == nil:
			return t, desc, nil
		case want != 0:
			return nil, nil, wire.Errorf(wire.InvalidArgument, "track %d cannot be read as Arrow: %v", t.Number, err)
		}
	}
	if want != 0 {
		return nil, nil, wire.Errorf(wire.InvalidArgument, "the stream has no track %d", want)
	}
	return nil, nil, wire.Errorf(wire.InvalidArgument, "the stream has no track of a kind this server can read as Arrow (%s)", strings.Join(signals.KnownCodecIDs(), ", "))
}

// Query writes the result as an Arrow IPC stream, one record batch at a time:
// memory stays bounded by one fragment and one batch whatever the range. It
// stops when ctx is done (the client went away).
//
// Nothing is written before the first record batch, so a query that fails
// before it leaves w untouched and the HTTP layer can still answer with an
// error status. A query that fails later ends w without the IPC end-of-stream
// marker, so that a reader does not stop at a marker that says "complete" but
// reads on to the end of the body, where the transport says what went wrong
// (the Sensorium-Error trailer, which the SDK turns into an error).
func (s *Service) Query(ctx context.Context, p *Prepared, w io.Writer) error {
	iw := ipc.NewWriter(w, ipc.WithSchema(p.Schema()), ipc.WithAllocator(p.req.Allocator))
	if err := s.QueryBatches(ctx, p, iw.Write); err != nil {
		// Not iw.Close: it would write the schema (when no batch was) and the
		// end-of-stream marker. The writer holds no allocations between batches
		// (our schemas have no dictionaries), so dropping it leaks nothing.
		return err
	}
	return iw.Close()
}

// QueryBatches runs a prepared query and hands each record batch to emit as
// it is made (emit must not keep it past its return); transports other than
// the IPC stream (Arrow Flight) use it.
func (s *Service) QueryBatches(ctx context.Context, p *Prepared, emit func(arrow.RecordBatch) error) error {
	if p.aligned != nil {
		return s.runAligned(ctx, p, emit)
	}
	q := &rangeReader{s: s, p: p, emit: emit}
	if bd, ok := p.dec.(codecs.BatchDecoder); ok {
		// The decoder builds the batches itself, decoding straight into
		// their arrays' buffers.
		bd.StartBatches(p.req.Allocator, p.req.BatchRows)
		defer bd.Release()
		q.bd = bd
	} else {
		q.rb = array.NewRecordBuilder(p.req.Allocator, p.Schema())
		defer q.rb.Release()
		// Each batch's buffers are sized once, not grown (and copied) by doubling.
		q.rb.Reserve(p.req.BatchRows)
	}
	err := q.run(ctx)
	if err == nil {
		err = q.flush()
	}
	return err
}

// Request returns the prepared request.
func (p *Prepared) Request() Request { return p.req }

// rangeReader decodes the fragments of a range into record batches.
type rangeReader struct {
	s    *Service
	p    *Prepared
	rb   *array.RecordBuilder // the batch, unless bd builds it
	bd   codecs.BatchDecoder
	emit func(arrow.RecordBatch) error
	rows int
}

func (q *rangeReader) run(ctx context.Context) error {
	req := q.p.req
	r, err := q.s.st.NewReader(req.Stream)
	if err != nil {
		return err
	}
	defer r.Close()
	var from uint64
	for {
		infos, err := q.s.st.Range(req.Stream, req.Basis, req.Start, req.End, from, 64)
		if err != nil {
			return err
		}
		if len(infos) == 0 {
			if !req.Follow {
				return nil
			}
			if from, err = q.waitForMore(ctx, from); err != nil {
				return err
			}
			continue
		}
		for _, info := range infos {
			if err := ctx.Err(); err != nil {
				return err
			}
			f, err := r.Read(info)
			if err != nil {
				return q.readError(info.Number, err)
			}
			if err := q.fragment(f); err != nil {
				return q.decodeError(info.Number, err)
			}
			from = info.Number + 1
		}
	}
}

// fragmentError is a query that failed at one fragment. Its API error (which
// the HTTP and Flight layers send) names the stream, the fragment number and
// the track, and says what went wrong as far as a client may be told; the
// cause stays in the chain for errors.Is and in Error for the server log.
type fragmentError struct {
	API    *wire.APIError
	Stream string
	Number uint64
	Track  uint64
	Err    error // the cause
}

func (e *fragmentError) Error() string {
	if strings.Contains(e.API.Message, e.Err.Error()) {
		return "query: " + e.API.Error()
	}
	return "query: " + e.API.Error() + " (" + e.Err.Error() + ")"
}

// Unwrap gives the API error (wire.AsAPIError finds it) and the cause.
func (e *fragmentError) Unwrap() []error { return []error{e.API, e.Err} }

// decodeError names the fragment whose track did not decode. A request error
// found in the data (the signal description changed mid-range) keeps its
// name; anything else, a frame that does not decode, is an InternalFailure
// whose message is the decoder's (it names bytes, not files).
func (q *rangeReader) decodeError(number uint64, err error) error {
	api, ok := errors.AsType[*wire.APIError](err)
	if !ok {
		api = &wire.APIError{Name: wire.InternalFailure, Message: fmt.Sprintf("stream %s fragment %d track %d does not decode: %v", q.p.req.Stream, number, q.p.track, err)}
	}
	return &fragmentError{API: api, Stream: q.p.req.Stream, Number: number, Track: q.p.track, Err: err}
}

// readError names the fragment the store could not give back. Its text names
// files, so the client is told what happened and the log gets the rest.
func (q *rangeReader) readError(number uint64, err error) error {
	what := "cannot be read from the store (the server log has the details)"
	switch {
	case errors.Is(err, store.ErrFragmentGone):
		what = "was removed (retention or deletion) while the query read it"
	case errors.As(err, new(*store.CorruptionError)):
		what = "is damaged on disk (the server log names the file)"
	}
	if api, ok := errors.AsType[*wire.APIError](err); ok { // the stream was deleted meanwhile
		return &fragmentError{API: api, Stream: q.p.req.Stream, Number: number, Track: q.p.track, Err: err}
	}
	return &fragmentError{
		API:    &wire.APIError{Name: wire.InternalFailure, Message: fmt.Sprintf("stream %s fragment %d track %d %s", q.p.req.Stream, number, q.p.track, what)},
		Stream: q.p.req.Stream, Number: number, Track: q.p.track, Err: err,
	}
}

// fragment decodes the query's track of one fragment.
func (q *rangeReader) fragment(f store.StoredFragment) error {
	req := q.p.req
	rng := codecs.TimeRange{Start: req.Start, End: req.End, All: req.Basis == store.ServerTime}
	fc := &codecs.FragmentContext{Number: f.Number, Tags: map[string]string{}}
	mr := mkv.NewReader(bytes.NewReader(f.Payload))
	for {
		it, err := mr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch it.Kind {
		case mkv.ItemTracks:
			for _, t := range it.Tracks {
				if t.Number == q.p.track && !bytes.Equal(t.CodecPrivate, q.p.descRaw) {
					return wire.Errorf(wire.InvalidArgument, "the signal description of track %d changed at fragment %d; query the ranges before and after it separately", t.Number, f.Number)
				}
			}
		case mkv.ItemTags:
			for _, t := range it.Tags {
				fc.Tags[t.Name] = t.Value
			}
		case mkv.ItemBlock:
			if it.Block.Track != q.p.track {
				continue
			}
			frame := codecs.Frame{Data: it.Block.Data, Time: it.Time, Key: it.Block.Keyframe, Fragment: fc}
			var n int
			if q.bd != nil {
				n, err = q.bd.AppendToBatch(frame, rng)
			} else {
				n, err = q.p.dec.Append(q.rb, frame, rng)
			}
			if err != nil {
				return err
			}
			q.rows += n
			if q.rows >= req.BatchRows {
				if err := q.flush(); err != nil {
					return err
				}
			}
		}
	}
}

func (q *rangeReader) flush() error {
	if q.rows == 0 {
		return nil
	}
	var rec arrow.RecordBatch
	if q.bd != nil {
		rec = q.bd.NewRecordBatch()
	} else {
		rec = q.rb.NewRecordBatch()
		q.rb.Reserve(q.p.req.BatchRows)
	}
	defer rec.Release()
	q.rows = 0
	return q.emit(rec)
}

// waitForMore, in a live query, hands over the rows so far and waits until a
// fragment newer than any seen is durable; it returns the fragment number to
// read from. Fragments outside the range are passed over, not waited on.
func (q *rangeReader) waitForMore(ctx context.Context, from uint64) (uint64, error) {
	if err := q.flush(); err != nil {
		return from, err
	}
	if last, ok, err := q.s.st.Durable(q.p.req.Stream); err != nil {
		return from, err
	} else if ok && last.Number+1 > from {
		from = last.Number + 1
	}
	return from, q.s.st.Wait(ctx, q.p.req.Stream, from)
}
