package query

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

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

// Request is an Arrow range query over one stream's scalar track.
type Request struct {
	Stream     string
	Start, End int64 // ns; start inclusive, end exclusive
	Basis      store.TimeBasis
	Channels   []string // empty: all, in description order
	Track      uint64   // 0: the first track that carries scalar samples
	BatchRows  int      // rows per record batch; default 65536
	Allocator  memory.Allocator
}

// Prepared is a validated query: its schema is known before any row is read,
// so that errors are clean responses rather than broken streams.
type Prepared struct {
	req     Request
	desc    *signals.Scalar
	descRaw []byte
	track   uint64
	schema  *arrow.Schema
	chans   []int
}

// Schema is the result's schema: time, then one column per channel.
func (p *Prepared) Schema() *arrow.Schema { return p.schema }

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
	t, err := pickTrack(tracks, req.Track)
	if err != nil {
		return nil, err
	}
	desc, err := signals.ParseScalar(t.CodecPrivate)
	if err != nil {
		return nil, fmt.Errorf("query: track %d of fragment %d: %w", t.Number, f.Number, err)
	}
	schema, chans, err := desc.ArrowSchema(req.Channels)
	if err != nil {
		return nil, wire.Errorf(wire.InvalidArgument, "%v", err)
	}
	return &Prepared{req: req, desc: desc, descRaw: append([]byte(nil), t.CodecPrivate...), track: t.Number, schema: schema, chans: chans}, nil
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

func pickTrack(tracks []mkv.TrackEntry, want uint64) (*mkv.TrackEntry, error) {
	for i := range tracks {
		t := &tracks[i]
		if want == 0 && t.CodecID == signals.CodecIDScalar || want != 0 && t.Number == want {
			if t.CodecID != signals.CodecIDScalar {
				return nil, wire.Errorf(wire.InvalidArgument, "track %d carries %s, not scalar samples", t.Number, t.CodecID)
			}
			return t, nil
		}
	}
	if want != 0 {
		return nil, wire.Errorf(wire.InvalidArgument, "the stream has no track %d", want)
	}
	return nil, wire.Errorf(wire.InvalidArgument, "the stream has no track of scalar samples (%s)", signals.CodecIDScalar)
}

// Query writes the result as an Arrow IPC stream, one record batch at a time:
// memory stays bounded by one fragment and one batch whatever the range. It
// stops when ctx is done (the client went away).
func (s *Service) Query(ctx context.Context, p *Prepared, w io.Writer) error {
	iw := ipc.NewWriter(w, ipc.WithSchema(p.schema), ipc.WithAllocator(p.req.Allocator))
	rb := array.NewRecordBuilder(p.req.Allocator, p.schema)
	defer rb.Release()
	q := &rangeReader{s: s, p: p, rb: rb, iw: iw}
	err := q.run(ctx)
	if err == nil {
		err = q.flush()
	}
	if cerr := iw.Close(); err == nil {
		err = cerr
	}
	return err
}

// rangeReader decodes the fragments of a range into record batches.
type rangeReader struct {
	s      *Service
	p      *Prepared
	rb     *array.RecordBuilder
	iw     *ipc.Writer
	rows   int
	times  []int64
	sample signals.Samples
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
			return nil
		}
		for _, info := range infos {
			if err := ctx.Err(); err != nil {
				return err
			}
			f, err := r.Read(info)
			if err != nil {
				return fmt.Errorf("query: read fragment %d: %w", info.Number, err)
			}
			if err := q.fragment(f); err != nil {
				return fmt.Errorf("query: fragment %d: %w", info.Number, err)
			}
			from = info.Number + 1
		}
	}
}

// fragment decodes the query's track of one fragment.
func (q *rangeReader) fragment(f store.StoredFragment) error {
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
			t, err := pickTrack(it.Tracks, q.p.track)
			if err != nil {
				return err
			}
			if !bytes.Equal(t.CodecPrivate, q.p.descRaw) {
				return wire.Errorf(wire.InvalidArgument, "the signal description of track %d changed at fragment %d; query the ranges before and after it separately", t.Number, f.Number)
			}
		case mkv.ItemBlock:
			if it.Block.Track != q.p.track {
				continue
			}
			if err := codecs.DecodeScalarFrame(it.Block.Data, q.p.desc, &q.sample); err != nil {
				return err
			}
			if err := q.frame(); err != nil {
				return err
			}
		}
	}
}

// frame appends the decoded frame's samples that fall in range.
func (q *rangeReader) frame() error {
	s := &q.sample
	q.times = q.p.desc.SampleTimes(q.times[:0], s.Start, s.N)
	lo, hi := 0, s.N
	if q.p.req.Basis == store.ProducerTime {
		// Sample times increase within a frame: cut at the range edges.
		lo = sort.Search(s.N, func(i int) bool { return q.times[i] >= q.p.req.Start })
		hi = sort.Search(s.N, func(i int) bool { return q.times[i] >= q.p.req.End })
	}
	if lo >= hi {
		return nil
	}
	tb := q.rb.Field(0).(*array.TimestampBuilder)
	tb.Reserve(hi - lo)
	for _, t := range q.times[lo:hi] {
		tb.UnsafeAppend(arrow.Timestamp(t))
	}
	for col, c := range q.p.chans {
		b := q.rb.Field(col + 1)
		switch s.Type {
		case signals.Float32:
			appendChannel(b.(*array.Float32Builder), s.F32, s.Channels, c, lo, hi)
		case signals.Float64:
			appendChannel(b.(*array.Float64Builder), s.F64, s.Channels, c, lo, hi)
		case signals.Int16:
			appendChannel(b.(*array.Int16Builder), s.I16, s.Channels, c, lo, hi)
		case signals.Int32:
			appendChannel(b.(*array.Int32Builder), s.I32, s.Channels, c, lo, hi)
		default:
			return fmt.Errorf("sample type %v has no Arrow column", s.Type)
		}
	}
	q.rows += hi - lo
	if q.rows >= q.p.req.BatchRows {
		return q.flush()
	}
	return nil
}

type unsafeAppender[T any] interface {
	Reserve(int)
	UnsafeAppend(T)
}

// appendChannel appends channel c of interleaved samples lo..hi to b.
func appendChannel[T any, B unsafeAppender[T]](b B, vals []T, channels, c, lo, hi int) {
	b.Reserve(hi - lo)
	for i := lo; i < hi; i++ {
		b.UnsafeAppend(vals[i*channels+c])
	}
}

func (q *rangeReader) flush() error {
	if q.rows == 0 {
		return nil
	}
	rec := q.rb.NewRecordBatch()
	defer rec.Release()
	q.rows = 0
	return q.iw.Write(rec)
}
