package api

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/service/usage"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/store"
)

// GET /v1/live?stream=S pushes a stream's frames to a browser as they are
// made, as Server-Sent Events (text/event-stream), from the live subject
// sensorium.live.<stream> on the server's NATS connection. EventSource
// cannot set headers, so the console presigns the URL (X-Amz-* in the query
// string); the key needs GetMedia on the stream. docs/CONSOLE.md has the
// events.
//
// One subscription per stream serves every browser that follows it (a
// feed): each frame is decoded and written as an event once, and the same
// bytes go to each follower's queue. A queue holds liveQueue events; a
// browser that falls behind loses the frames that do not fit, and the next
// event it gets says how many it lost — memory stays bounded whatever the
// browser does.

func init() {
	mount(func(a *api, mux *http.ServeMux) {
		if a.opts.NATS == nil {
			return
		}
		h := &liveHub{a: a, feeds: map[string]*liveFeed{}}
		mux.HandleFunc("GET /v1/live", a.authorized(awsauth.ActionGetMedia, queryParamStream, a.routedByParam(h.serve)))
	})
}

const (
	// liveQueue is the events a follower may have waiting.
	liveQueue = 64
	// livePoints bounds the values per channel of a sampled frame's event:
	// past it the frame goes as min/max pairs of livePoints buckets, which
	// draws the same on a screen and costs the same whatever the rate.
	livePoints = 512
	// liveElements bounds the points or detections per event (every k-th
	// is sent past it); liveArrayValues the values of an array frame (max
	// pooled past it).
	liveElements    = 4096
	liveArrayValues = 16384
	// liveHeadBytes of a byte frame (opaque, video) are sent, in hex.
	liveHeadBytes = 64
	// liveHeartbeat keeps proxies from closing a quiet stream.
	liveHeartbeat = 15 * time.Second
)

type liveHub struct {
	a     *api
	mu    sync.Mutex
	feeds map[string]*liveFeed
}

// liveFeed is one stream's subscription and its followers.
type liveFeed struct {
	hub    *liveHub
	stream string
	sub    *nats.Subscription

	mu        sync.Mutex
	followers map[*liveFollower]struct{}
	decoders  map[uint64]*liveDecoder // per track
	lookedUp  map[uint64]time.Time    // when each track's description was last looked for
}

type liveFollower struct {
	track   uint64 // 0: every track
	events  chan []byte
	dropped atomic.Int64
}

// follow adds a follower to stream's feed, subscribing when it is the first.
func (h *liveHub) follow(stream string, f *liveFollower) (*liveFeed, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	feed := h.feeds[stream]
	if feed == nil {
		feed = &liveFeed{hub: h, stream: stream, followers: map[*liveFollower]struct{}{}, decoders: map[uint64]*liveDecoder{}}
		sub, err := h.a.opts.NATS.Subscribe(h.a.opts.Subjects.Live(stream), feed.onFrame)
		if err != nil {
			return nil, fmt.Errorf("live: subscribe to %s: %w", stream, err)
		}
		// The bus may hold this many frames for the feed while it decodes;
		// past it NATS drops (a slow consumer), never the process's memory.
		_ = sub.SetPendingLimits(4096, 64<<20)
		feed.sub = sub
		h.feeds[stream] = feed
	}
	feed.mu.Lock()
	feed.followers[f] = struct{}{}
	feed.mu.Unlock()
	return feed, nil
}

// leave removes a follower, unsubscribing after the last.
func (h *liveHub) leave(feed *liveFeed, f *liveFollower) {
	h.mu.Lock()
	defer h.mu.Unlock()
	feed.mu.Lock()
	delete(feed.followers, f)
	n := len(feed.followers)
	feed.mu.Unlock()
	if n == 0 {
		_ = feed.sub.Unsubscribe()
		delete(h.feeds, feed.stream)
	}
}

func (h *liveHub) serve(w http.ResponseWriter, r *http.Request) {
	stream, err := streamParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var track uint64
	if v := r.URL.Query().Get("track"); v != "" {
		if track, err = strconv.ParseUint(v, 10, 64); err != nil || track == 0 {
			writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "track=%q is not a track number (1, 2, …)", truncateParam(v)))
			return
		}
	}
	if _, err := h.a.st.DescribeStream(store.StreamRef{Name: stream}); err != nil {
		writeError(w, err)
		return
	}
	f := &liveFollower{track: track, events: make(chan []byte, liveQueue)}
	feed, err := h.follow(stream, f)
	if err != nil {
		writeError(w, err)
		return
	}
	defer h.leave(feed, f)

	h.a.meterAs(r, stream, usage.Console)
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The first event says the feed is open, so that the page knows that
	// what it draws next came after it.
	if _, err := fmt.Fprintf(w, "retry: 2000\nevent: open\ndata: {\"stream\":%q,\"now\":%v}\n\n", stream, msOf(time.Now().UnixNano())); err != nil {
		return
	}
	_ = rc.Flush()
	beat := time.NewTicker(liveHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev := <-f.events:
			if n := f.dropped.Swap(0); n > 0 {
				if _, err := fmt.Fprintf(w, "event: dropped\ndata: {\"frames\":%d}\n\n", n); err != nil {
					return
				}
			}
			if _, err := w.Write(ev); err != nil {
				return
			}
			// Write what is queued too before flushing: one flush for a burst.
			for more := true; more; {
				select {
				case ev := <-f.events:
					if _, err := w.Write(ev); err != nil {
						return
					}
				default:
					more = false
				}
			}
			if err := rc.Flush(); err != nil {
				return
			}
		case <-beat.C:
			if _, err := w.Write([]byte(": beat\n\n")); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// onFrame decodes a live frame once and queues its event to every
// follower of its track.
func (feed *liveFeed) onFrame(m *nats.Msg) {
	track, _ := strconv.ParseUint(m.Header.Get(wire.HeaderTrack), 10, 64)
	ts, _ := strconv.ParseInt(m.Header.Get(wire.HeaderTimestamp), 10, 64)
	dur, _ := strconv.ParseInt(m.Header.Get(wire.HeaderDuration), 10, 64)
	key := m.Header.Get(wire.HeaderKey) == "1"
	feed.mu.Lock()
	want := false
	for f := range feed.followers {
		want = want || f.track == 0 || f.track == track
	}
	var ev []byte
	if want {
		ev = feed.event(track, ts, dur, key, m.Header.Get(wire.HeaderCodecID), m.Data)
	}
	for f := range feed.followers {
		if f.track != 0 && f.track != track {
			continue
		}
		select {
		case f.events <- ev:
		default:
			f.dropped.Add(1)
		}
	}
	feed.mu.Unlock()
}

// liveEvent is the JSON of a frame event.
type liveEvent struct {
	Track    uint64  `json:"track"`
	Time     float64 `json:"time"`     // ms since the epoch: the frame's producer time
	Duration float64 `json:"duration"` // ms
	Key      bool    `json:"key"`
	Size     int     `json:"size"` // the frame's bytes as produced
	Kind     string  `json:"kind,omitempty"`
	// Sampled kinds: Rows samples from T0, a sample every Step ms; each
	// channel's Values, or, past livePoints, Min and Max of Buckets buckets
	// of Bucket ms each.
	Rows    int     `json:"rows"`
	T0      float64 `json:"t0,omitempty"`
	Step    float64 `json:"step,omitempty"`
	Bucket  float64 `json:"bucket,omitempty"`
	Buckets int     `json:"buckets,omitempty"`
	// Elements kinds: every Stride-th of Rows elements; arrays: a Rows ×
	// Cols grid (pooled from the frame's).
	Stride  int          `json:"stride,omitempty"`
	Cols    int          `json:"cols,omitempty"`
	Columns []liveColumn `json:"columns,omitempty"`
	Head    string       `json:"head,omitempty"` // hex of a byte frame's first bytes
	Error   string       `json:"error,omitempty"`
}

// liveColumn holds little-endian float32 arrays in base64: 4 bytes a
// value, and a browser reads them with one Float32Array.
type liveColumn struct {
	Name   string `json:"name"`
	Unit   string `json:"unit,omitempty"`
	Values string `json:"values,omitempty"`
	Min    string `json:"min,omitempty"`
	Max    string `json:"max,omitempty"`
}

// liveDecoder decodes one track's frames into Arrow rows.
type liveDecoder struct {
	desc signals.Description
	dec  codecs.ArrowDecoder
	rb   *array.RecordBuilder
	fc   *codecs.FragmentContext
	rate float64
}

// decoder finds the track's description in the stream's newest fragment,
// at most once a second while it is not known (a stream whose first
// fragment has not closed yet sends frames before any description).
func (feed *liveFeed) decoder(track uint64) (*liveDecoder, error) {
	if d := feed.decoders[track]; d != nil {
		return d, nil
	}
	if time.Since(feed.lookedUp[track]) < time.Second {
		return nil, nil
	}
	if feed.lookedUp == nil {
		feed.lookedUp = map[uint64]time.Time{}
	}
	feed.lookedUp[track] = time.Now()
	a := feed.hub.a
	last, ok, err := a.st.Durable(feed.stream)
	if err != nil || !ok {
		return nil, err
	}
	entries, err := a.trackEntries(feed.stream, last)
	if err != nil {
		return nil, err
	}
	for _, t := range entries {
		if t.Number != track {
			continue
		}
		desc, err := signals.ParseDescription(t.CodecID, t.CodecPrivate)
		if err != nil {
			return nil, err
		}
		dec, err := codecs.NewArrowDecoder(desc, codecs.ArrowOptions{Layout: codecs.LayoutRows})
		if err != nil {
			return nil, err
		}
		d := &liveDecoder{desc: desc, dec: dec, rb: array.NewRecordBuilder(memory.DefaultAllocator, dec.Schema()),
			fc: &codecs.FragmentContext{Tags: map[string]string{}}}
		switch s := desc.(type) {
		case *signals.Scalar:
			d.rate = s.SampleRate
		case *signals.IMU:
			d.rate = s.SampleRate
		case *signals.Audio:
			d.rate = s.SampleRate
		case *signals.MatroskaAudio:
			d.rate = s.SampleRate
		}
		feed.decoders[track] = d
		return d, nil
	}
	return nil, nil
}

func (feed *liveFeed) event(track uint64, ts, dur int64, key bool, codecID string, data []byte) []byte {
	ev := liveEvent{Track: track, Time: msOf(ts), Duration: float64(dur) / 1e6, Key: key, Size: len(data)}
	d, err := feed.decoder(track)
	if err != nil {
		ev.Error = err.Error()
	}
	if d != nil {
		ev.Kind = d.desc.Kind().String()
		if err := d.fill(&ev, data, ts, key); err != nil {
			ev.Error = err.Error()
		}
	} else if ev.Kind == "" {
		ev.Kind = kindOfCodecID(codecID)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		b = []byte(`{"error":"live: encoding the event failed"}`)
	}
	out := make([]byte, 0, len(b)+32)
	out = append(out, "event: frame\ndata: "...)
	out = append(out, b...)
	return append(out, '\n', '\n')
}

// kindOfCodecID names the kind of a codec id before its description is
// known, for the byte kinds whose events need nothing else.
func kindOfCodecID(id string) string {
	switch id {
	case signals.CodecIDH264:
		return signals.KindVideo.String()
	case signals.CodecIDOpaque:
		return signals.KindOpaque.String()
	}
	return ""
}

func (d *liveDecoder) fill(ev *liveEvent, data []byte, ts int64, key bool) error {
	if d.desc.Kind() == signals.KindVideo {
		return nil // its bytes mean nothing to a plot; the size and key flag are the event
	}
	_, err := d.dec.Append(d.rb, codecs.Frame{Data: data, Time: ts, Key: key, Fragment: d.fc}, codecs.TimeRange{All: true})
	rec := d.rb.NewRecordBatch()
	defer rec.Release()
	if err != nil {
		return fmt.Errorf("live: frame at %d does not decode: %w", ts, err)
	}
	ev.Rows = int(rec.NumRows())
	if ev.Rows == 0 {
		return nil
	}
	sch := rec.Schema()
	if times, ok := rec.Column(0).(*array.Timestamp); ok {
		ev.T0 = msOf(int64(times.Value(0)))
	}
	switch {
	case d.rate > 0:
		ev.Step = 1e3 / d.rate
		for i := 1; i < int(rec.NumCols()); i++ {
			vals := floats(rec.Column(i))
			if vals == nil {
				continue
			}
			c := liveColumn{Name: sch.Field(i).Name, Unit: unitOf(sch.Field(i))}
			if len(vals) <= livePoints {
				c.Values = f32base64(vals)
			} else {
				mins, maxs := minMaxBuckets(vals, livePoints)
				c.Min, c.Max = f32base64(mins), f32base64(maxs)
				ev.Buckets = len(mins)
				ev.Bucket = ev.Step * float64(len(vals)) / float64(len(mins))
			}
			ev.Columns = append(ev.Columns, c)
		}
	case d.desc.Kind() == signals.KindArray:
		a := d.desc.(*signals.Array)
		for i := 1; i < int(rec.NumCols()); i++ {
			l, ok := rec.Column(i).(array.ListLike)
			if !ok {
				continue
			}
			vals := floats(l.ListValues())
			rows, cols := int(a.Rows), int(a.Cols)
			if len(vals) < rows*cols {
				continue
			}
			vals = vals[:rows*cols] // the first frame of the record
			pooled, pr, pc := maxPool(vals, rows, cols, liveArrayValues)
			ev.Rows, ev.Cols = pr, pc
			ev.Columns = append(ev.Columns, liveColumn{Name: sch.Field(i).Name, Unit: a.Unit, Values: f32base64(pooled)})
		}
	default:
		ev.Stride = 1
		if ev.Rows > liveElements {
			ev.Stride = (ev.Rows + liveElements - 1) / liveElements
		}
		for i := 0; i < int(rec.NumCols()); i++ {
			f := sch.Field(i)
			switch f.Name {
			case signals.TimeField, codecs.FrameTimeField, codecs.IndexField:
				continue
			}
			if b, ok := rec.Column(i).(*array.Binary); ok {
				head := b.Value(0)
				ev.Head = hex.EncodeToString(head[:min(len(head), liveHeadBytes)])
				continue
			}
			vals := floats(rec.Column(i))
			if vals == nil {
				continue
			}
			if ev.Stride > 1 {
				n := 0
				for j := 0; j < len(vals); j += ev.Stride {
					vals[n] = vals[j]
					n++
				}
				vals = vals[:n]
			}
			ev.Columns = append(ev.Columns, liveColumn{Name: f.Name, Unit: unitOf(f), Values: f32base64(vals)})
		}
	}
	return nil
}

func unitOf(f arrow.Field) string {
	if i := f.Metadata.FindKey(signals.MetaUnit); i >= 0 {
		return f.Metadata.Values()[i]
	}
	return ""
}

// floats copies a numeric column as float32s; nil for any other.
func floats(c arrow.Array) []float32 {
	n := c.Len()
	out := make([]float32, n)
	switch c := c.(type) {
	case *array.Float32:
		copy(out, c.Float32Values())
	case *array.Float64:
		for i, v := range c.Float64Values() {
			out[i] = float32(v)
		}
	case *array.Int8:
		for i, v := range c.Int8Values() {
			out[i] = float32(v)
		}
	case *array.Int16:
		for i, v := range c.Int16Values() {
			out[i] = float32(v)
		}
	case *array.Int32:
		for i, v := range c.Int32Values() {
			out[i] = float32(v)
		}
	case *array.Int64:
		for i, v := range c.Int64Values() {
			out[i] = float32(v)
		}
	case *array.Uint8:
		for i, v := range c.Uint8Values() {
			out[i] = float32(v)
		}
	case *array.Uint16:
		for i, v := range c.Uint16Values() {
			out[i] = float32(v)
		}
	case *array.Uint32:
		for i, v := range c.Uint32Values() {
			out[i] = float32(v)
		}
	default:
		return nil
	}
	return out
}

// minMaxBuckets reduces vals to n buckets' minima and maxima (NaN ignored
// unless a bucket holds nothing else).
func minMaxBuckets(vals []float32, n int) (mins, maxs []float32) {
	mins, maxs = make([]float32, n), make([]float32, n)
	for b := range n {
		lo, hi := b*len(vals)/n, (b+1)*len(vals)/n
		mn, mx := float32(math.Inf(1)), float32(math.Inf(-1))
		for _, v := range vals[lo:hi] {
			mn, mx = min(mn, v), max(mx, v)
		}
		if mn > mx {
			mn, mx = float32(math.NaN()), float32(math.NaN())
		}
		mins[b], maxs[b] = mn, mx
	}
	return mins, maxs
}

// maxPool shrinks a rows × cols grid by whole factors until it holds at
// most limit values, each cell the maximum of those it covers (a peak in a
// range-Doppler map stays visible).
func maxPool(vals []float32, rows, cols, limit int) ([]float32, int, int) {
	fr, fc := 1, 1
	for (rows/fr)*(cols/fc) > limit {
		if rows/fr >= cols/fc {
			fr++
		} else {
			fc++
		}
	}
	if fr == 1 && fc == 1 {
		return vals, rows, cols
	}
	pr, pc := (rows+fr-1)/fr, (cols+fc-1)/fc
	out := make([]float32, pr*pc)
	for i := range out {
		out[i] = float32(math.Inf(-1))
	}
	for r := range rows {
		for c := range cols {
			o := (r/fr)*pc + c/fc
			out[o] = max(out[o], vals[r*cols+c])
		}
	}
	return out, pr, pc
}

func f32base64(vals []float32) string {
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return base64.StdEncoding.EncodeToString(b)
}
