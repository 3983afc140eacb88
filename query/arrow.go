package query

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/store"
)

// ArrowContentType is the media type of an Arrow IPC stream.
const ArrowContentType = "application/vnd.apache.arrow.stream"

// Request is an Arrow range query over one track of a stream.
type Request struct {
	Stream string
	// Streams, instead of Stream, reads several streams' tracks of one
	// schema under a first column naming the stream (streams.go).
	Streams    []string
	Start, End int64 // ns; start inclusive, end exclusive
	Basis      store.TimeBasis
	Fields     []string      // the kind's fields (channels, point fields …); empty: all
	Layout     codecs.Layout // rows per element, or rows per frame with list columns
	Track      uint64        // 0: the first track of a kind this server knows
	// BatchRows is about how many rows a record batch holds; default 65536
	// (for windows: as many windows as hold about 2²⁰ values).
	BatchRows int
	// Shape is "samples" (default: a row per sample, point …),
	// "windows" (a row per Window of a sampled signal), "aggregate" (a row
	// of statistics per Window) or "aligned".
	Shape  string
	Window Window
	// Aggregates are the statistics of the "aggregate" shape (a row per
	// Window with its statistics: AggregateStats; empty: all of them).
	Aggregates []string
	// NoSummaries makes the aggregate shape decode every fragment rather
	// than read the summaries of those it may (SUMMARIES.md): the answer is
	// the same (sums may differ in their last bits: they are added in
	// another order); tests and benchmarks compare the two.
	NoSummaries bool
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
	req    Request
	schema *arrow.Schema // the result's
	// newDecoder makes a decoder of the track's samples (its rows layout
	// for windows), one per decode worker; samples is their schema.
	newDecoder func() (codecs.ArrowDecoder, error)
	samples    *arrow.Schema
	// decodeRows is about how many rows the decode pipeline's batches hold:
	// the result's batch rows for the samples shape, 65536 samples when the
	// windows shape cuts them into windows (its batch rows count windows).
	decodeRows int
	descRaw    []byte
	descTrack  trackIdentity // what else describes the track (Matroska-described audio has no CodecPrivate)
	track      uint64
	desc       signals.Description
	rate       float64 // samples per second, for the kinds that have one; else 0
	win        *windowPlan
	agg        *aggPlan
	// reduce, when set, turns each batch of samples a decode worker makes
	// into what the worker hands on instead (the aggregate shape's partial
	// statistics), so that the work is done in parallel.
	reduce  func(arrow.RecordBatch) (arrow.RecordBatch, error)
	aligned *alignedPlan
	multi   *multiPlan
	// sums, when set, gives the aggregate shape the summaries of fragments
	// it need not decode (summary_use.go).
	sums *summaryUse
}

// Schema is the result's schema.
func (p *Prepared) Schema() *arrow.Schema { return p.schema }

// PrepareQuery validates a query and finds the signal description of the
// track it reads (from the first fragment in range, or the newest one).
func (s *Service) PrepareQuery(req Request) (*Prepared, error) {
	if req.End <= req.Start {
		return nil, invalid("end must be after start (the range is start inclusive, end exclusive)")
	}
	if req.Basis == 0 {
		req.Basis = store.ProducerTime
	}
	if req.Allocator == nil {
		req.Allocator = memory.DefaultAllocator
	}
	switch req.Shape {
	case "", "samples", "windows", "aggregate", "aligned":
	default:
		return nil, invalid("shape must be samples, windows, aggregate or aligned, not %q", truncate(req.Shape, 64))
	}
	if req.Shape != "" && req.Shape != "samples" && req.Basis == store.ServerTime {
		return nil, invalid("the %s shape cuts by the samples' own time: leave basis out (server time selects whole fragments, for the samples shape)", req.Shape)
	}
	if req.Shape == "aligned" {
		if len(req.Streams) > 0 {
			return nil, invalid(`the aligned shape names its streams in "inputs", not "streams"`)
		}
		if req.BatchRows <= 0 {
			req.BatchRows = 1 << 16
		}
		return s.prepareAligned(req)
	}
	if len(req.Streams) > 0 {
		if req.Stream != "" {
			return nil, invalid(`give "stream" or "streams", not both`)
		}
		return s.prepareStreams(req)
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
			return nil, notFound("stream %s holds no fragments, so its signals are not known yet", info.Name)
		}
		probe = []store.FragmentInfo{last}
	}
	tracks, err := s.tracksOf(info, probe[0])
	if err != nil {
		return nil, err
	}
	t, desc, err := pickTrack(tracks, req.Track)
	if err != nil {
		return nil, err
	}
	opts := codecs.ArrowOptions{Fields: req.Fields, Layout: req.Layout}
	if (req.Shape == "windows" || req.Shape == "aggregate") && req.Layout != codecs.LayoutRows {
		return nil, invalid("the %s shape has one row per window; leave layout out", req.Shape)
	}
	dec, err := codecs.NewArrowDecoder(desc, opts)
	if err != nil {
		return nil, invalid("%v", err)
	}
	p := &Prepared{req: req, schema: dec.Schema(), samples: dec.Schema(), descRaw: append([]byte(nil), t.CodecPrivate...), descTrack: identityOf(t), track: t.Number, desc: desc,
		newDecoder: func() (codecs.ArrowDecoder, error) { return codecs.NewArrowDecoder(desc, opts) }}
	p.rate, _ = sampleRate(desc)
	if req.Shape == "windows" {
		if p.win, err = newWindowPlan(p); err != nil {
			return nil, err
		}
		p.schema = p.win.schema
	}
	if req.Shape == "aggregate" {
		if p.agg, err = newAggPlan(p); err != nil {
			return nil, err
		}
		p.schema = p.agg.schema
		agg, mem := p.agg, p.req.Allocator
		p.reduce = func(rec arrow.RecordBatch) (arrow.RecordBatch, error) { return agg.reduce(mem, rec) }
		if !req.NoSummaries && !s.noSums {
			p.sums = s.summariesFor(p)
		}
	}
	p.decodeRows = p.req.BatchRows
	if p.req.BatchRows <= 0 {
		p.req.BatchRows, p.decodeRows = 1<<16, 1<<16
		if p.win != nil {
			p.req.BatchRows = max(1, (1<<20)/(p.win.length*len(p.win.cols)))
		}
	}
	if p.win != nil || p.agg != nil {
		p.decodeRows = 1 << 16
	}
	return p, nil
}

// sampleRate is the sample rate of the kinds that are sampled at one: the
// rows of their samples shape are a time column and one column per channel.
func sampleRate(d signals.Description) (float64, bool) {
	switch d := d.(type) {
	case *signals.Scalar:
		return d.SampleRate, true
	case *signals.IMU:
		return d.SampleRate, true
	case *signals.Audio:
		return d.Scalar().SampleRate, true
	case *signals.MatroskaAudio:
		return d.SampleRate, true
	}
	return 0, false
}

// tracksOf reads the tracks of a fragment, or remembers them: a fragment
// never changes, and reading one (a whole record, decrypted) is most of what
// preparing a query costs — Arrow Flight prepares each query once per
// GetFlightInfo and once per DoGet.
func (s *Service) tracksOf(info store.StreamInfo, f store.FragmentInfo) ([]mkv.TrackEntry, error) {
	// The stream's creation time is in the key: a stream deleted and made
	// again under its name numbers its fragments anew.
	key := trackKey{stream: info.Name, created: info.CreationTime.UnixNano(), number: f.Number}
	s.tracksMu.Lock()
	tracks, ok := s.tracks[key]
	s.tracksMu.Unlock()
	if ok {
		return tracks, nil
	}
	r, err := s.st.NewReader(info.Name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	sf, err := r.Read(f)
	if err != nil {
		return nil, fmt.Errorf("query: read fragment %d: %w", f.Number, err)
	}
	if tracks, err = readTracks(sf.Payload); err != nil {
		return nil, fmt.Errorf("query: fragment %d: %w", f.Number, err)
	}
	s.tracksMu.Lock()
	if len(s.tracks) >= maxCachedTracks {
		clear(s.tracks)
	}
	s.tracks[key] = tracks
	s.tracksMu.Unlock()
	return tracks, nil
}

// maxCachedTracks bounds the fragments whose tracks a Service remembers.
const maxCachedTracks = 4096

type trackKey struct {
	stream  string
	created int64
	number  uint64
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
	if want == 0 {
		// The first track the producer described for Sensorium wins over
		// audio that Matroska alone describes, as before such audio was
		// readable.
		for i := range tracks {
			if desc, err := signals.ParseDescription(tracks[i].CodecID, tracks[i].CodecPrivate); err == nil {
				return &tracks[i], desc, nil
			}
		}
	}
	for i := range tracks {
		t := &tracks[i]
		if want != 0 && t.Number != want {
			continue
		}
		desc, err := describeTrack(t)
		switch {
		case err == nil:
			return t, desc, nil
		case want != 0:
			return nil, nil, invalid("track %d cannot be read as Arrow: %v", t.Number, err)
		}
	}
	if want != 0 {
		return nil, nil, invalid("the stream has no track %d", want)
	}
	return nil, nil, invalid("the stream has no track of a kind this server can read as Arrow (%s)", strings.Join(readableCodecIDs(), ", "))
}

// describeTrack is a track's signal description: the one its producer wrote
// in CodecPrivate (the SDK's), or else, for an audio track, what Matroska
// says of it (ffmpeg's, GStreamer's, a camera's PCM or FLAC).
func describeTrack(t *mkv.TrackEntry) (signals.Description, error) {
	desc, err := signals.ParseDescription(t.CodecID, t.CodecPrivate)
	if err == nil || t.Type != mkv.TrackTypeAudio {
		return desc, err
	}
	var rate float64
	var channels, depth uint64
	if a := t.Audio; a != nil {
		rate, channels, depth = a.SamplingFrequency, a.Channels, a.BitDepth
	}
	if channels == 0 {
		channels = 1 // Matroska's default
	}
	switch t.CodecID {
	case signals.CodecIDPCMInt, signals.CodecIDPCMIntBig, signals.CodecIDPCMFloat, signals.CodecIDFLAC:
	default:
		return nil, err
	}
	if rate <= 0 && t.CodecID != signals.CodecIDFLAC {
		return nil, fmt.Errorf("%s track without a Sensorium description or a SamplingFrequency", t.CodecID)
	}
	d, merr := codecs.DescribeMatroskaAudio(t.CodecID, t.CodecPrivate, rate, channels, depth)
	if merr != nil {
		return nil, fmt.Errorf("%s track without a Sensorium description: %v", t.CodecID, merr)
	}
	return d, nil
}

// trackIdentity is what describes a track besides its CodecPrivate: a
// Matroska-described audio track (ffmpeg's PCM) has none, and a change of its
// rate, channels or depth mid-range must be seen as a change of description.
type trackIdentity struct {
	codecID string
	audio   mkv.Audio
}

func identityOf(t *mkv.TrackEntry) trackIdentity {
	id := trackIdentity{codecID: t.CodecID}
	if t.Audio != nil {
		id.audio = *t.Audio
	}
	return id
}

// readableCodecIDs are the CodecIDs a query reads: the kinds' own and the
// Matroska audio codecs it reads without a description.
func readableCodecIDs() []string {
	ids := append(signals.KnownCodecIDs(), signals.CodecIDFLAC, signals.CodecIDPCMIntBig)
	slices.Sort(ids)
	return slices.Compact(ids)
}

// Query writes the result as an Arrow IPC stream, one record batch at a time:
// memory stays bounded by a few fragments and batches whatever the range
// (fragments are decoded in parallel ahead of the writer; see pipeline.go).
// It stops when ctx is done (the client went away).
//
// Nothing is written before the first record batch, so a query that fails
// before it leaves w untouched and the HTTP layer can still answer with an
// error status. A query that fails later ends w without the IPC end-of-stream
// marker, so that a reader does not stop at a marker that says "complete" but
// reads on to the end of the body, where the transport says what went wrong
// (the Sensorium-Error trailer, which the SDK turns into an error).
func (s *Service) Query(ctx context.Context, p *Prepared, w io.Writer) error {
	cw := &cutWriter{w: w}
	iw := ipc.NewWriter(cw, ipc.WithSchema(p.Schema()), ipc.WithAllocator(p.req.Allocator))
	if err := s.QueryBatches(ctx, p, iw.Write); err != nil {
		// Close frees the writer's dictionaries, but would write the schema
		// (when no batch was) and the end-of-stream marker: cut w off first.
		cw.cut = true
		iw.Close()
		return err
	}
	return iw.Close()
}

// cutWriter passes writes on until cut, then drops them.
type cutWriter struct {
	w   io.Writer
	cut bool
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if c.cut {
		return len(p), nil
	}
	return c.w.Write(p)
}

// QueryBatches runs a prepared query and hands each record batch to emit as
// it is made (emit must not keep it past its return without retaining it);
// transports other than the IPC stream (Arrow Flight) use it.
func (s *Service) QueryBatches(ctx context.Context, p *Prepared, emit func(arrow.RecordBatch) error) error {
	switch {
	case p.multi != nil:
		return s.runStreams(ctx, p, emit)
	case p.aligned != nil:
		return s.runAligned(ctx, p, emit)
	case p.win != nil:
		return s.runWindows(ctx, p, emit)
	case p.agg != nil:
		return s.runAggregate(ctx, p, emit)
	}
	return s.decode(ctx, p, false, func(pc piece) error {
		if pc.rec == nil { // a live query caught up: nothing is held back
			return nil
		}
		return emit(pc.rec)
	})
}

// Request returns the prepared request.
func (p *Prepared) Request() Request { return p.req }

// decodeError names the fragment whose track did not decode. A request error
// found in the data (the signal description changed mid-range) stays one;
// anything else, a frame that does not decode, is a failure of the server
// whose message is the decoder's (it names bytes, not files).
func (p *Prepared) decodeError(number uint64, err error) error {
	msg, ok := told(err)
	if !ok {
		msg = fmt.Sprintf("stream %s fragment %d track %d does not decode: %v", p.req.Stream, number, p.track, err)
	}
	return &FragmentError{Stream: p.req.Stream, Number: number, Track: p.track, Message: msg, Err: err}
}

// readError names the fragment the store could not give back. Its text names
// files, so the client is told what happened and the log gets the rest.
func (p *Prepared) readError(number uint64, err error) error {
	what := "cannot be read from the store (the server log has the details)"
	switch {
	case errors.Is(err, store.ErrFragmentGone):
		what = "was removed (retention or deletion) while the query read it"
	case errors.As(err, new(*store.CorruptionError)):
		what = "is damaged on disk (the server log names the file)"
	}
	msg, ok := told(err) // the stream was deleted meanwhile
	if !ok {
		msg = fmt.Sprintf("stream %s fragment %d track %d %s", p.req.Stream, number, p.track, what)
	}
	return &FragmentError{Stream: p.req.Stream, Number: number, Track: p.track, Message: msg, Err: err}
}
