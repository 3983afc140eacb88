package api

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/service/throttle"
	"github.com/sensorium-io/sensorium/internal/service/usage"
	"github.com/sensorium-io/sensorium/query"
	"github.com/sensorium-io/sensorium/store"
)

// mediaContentType is what GetMedia answers with: the stream's media type when
// it has one, as the seed service does, else Matroska.
func mediaContentType(info store.StreamInfo) string {
	if info.MediaType != "" {
		return strings.SplitN(info.MediaType, ",", 2)[0]
	}
	return "video/x-matroska"
}

func (a *api) getMedia(w http.ResponseWriter, r *http.Request) {
	var in httpwire.GetMediaInput
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	sel := in.StartSelector
	follow := in.Follow == nil || *in.Follow
	info, from, err := a.q.PrepareGetMedia(query.GetMediaInput{
		Stream: ref(in.StreamRef),
		Start: query.StartSelector{
			Type: query.SelectorType(sel.StartSelectorType), AfterFragmentNumber: sel.AfterFragmentNumber,
			StartTimestamp: sel.StartTimestamp.NS, ContinuationToken: sel.ContinuationToken,
		},
		Follow: follow,
	})
	if err != nil {
		writeError(w, err)
		return
	}
	// Counted once the request is known good (a malformed selector or an
	// unknown stream takes no token), before the connections open at once.
	if err := a.limits.Allow(throttle.GetMediaConnections, info.Name, info.Tags); err != nil {
		writeError(w, err)
		return
	}
	release, err := a.holdMediaConnection(info.Name)
	if err != nil {
		writeError(w, err)
		return
	}
	defer release()
	a.meterAs(r, info.Name, usage.GetMedia)
	w.Header().Set("Content-Type", mediaContentType(info))
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// A followed response lives as long as the client wants it.
	_ = rc.SetWriteDeadline(time.Time{})
	flush := func() { _ = rc.Flush() }
	flush()
	// Past its bytes per second the response is written more slowly: the
	// reader gets every chunk, later.
	out := a.limits.Writer(r.Context(), throttle.GetMediaBytes, info.Name, info.Tags, w)
	if err := a.q.GetMedia(r.Context(), info.Name, from, follow, out, flush); err != nil && r.Context().Err() == nil {
		a.log.Warn("api: GetMedia ended with an error", "stream", info.Name, "err", err)
	}
}

func (a *api) getMediaForFragmentList(w http.ResponseWriter, r *http.Request) {
	var in httpwire.GetMediaForFragmentListInput
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	info, frags, err := a.q.PrepareFragmentList(ref(in.StreamRef), in.Fragments)
	if err != nil {
		writeError(w, err)
		return
	}
	a.meterAs(r, info.Name, usage.GetMediaForFragmentList)
	w.Header().Set("Content-Type", mediaContentType(info))
	w.WriteHeader(http.StatusOK)
	if err := a.q.GetMediaForFragmentList(info.Name, frags, w); err != nil && r.Context().Err() == nil {
		a.log.Warn("api: GetMediaForFragmentList ended with an error", "stream", info.Name, "err", err)
	}
}

func (a *api) listFragments(w http.ResponseWriter, r *http.Request) {
	var in httpwire.ListFragmentsInput
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	var sel *query.FragmentSelector
	if fs := in.FragmentSelector; fs != nil {
		sel = &query.FragmentSelector{Start: fs.TimestampRange.StartTimestamp.NS, End: fs.TimestampRange.EndTimestamp.NS}
		switch fs.FragmentSelectorType {
		case "PRODUCER_TIMESTAMP":
			sel.Basis = store.ProducerTime
		case "SERVER_TIMESTAMP":
			sel.Basis = store.ServerTime
		default:
			writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "FragmentSelectorType must be PRODUCER_TIMESTAMP or SERVER_TIMESTAMP"))
			return
		}
		if !fs.TimestampRange.StartTimestamp.Set || !fs.TimestampRange.EndTimestamp.Set {
			writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "TimestampRange needs StartTimestamp and EndTimestamp"))
			return
		}
	}
	frags, next, err := a.q.ListFragments(ref(in.StreamRef), sel, in.MaxResults, in.NextToken)
	if err != nil {
		writeError(w, err)
		return
	}
	var meta []map[string]string
	if in.IncludeFragmentMetadata && len(frags) > 0 {
		// The stream was just resolved by ListFragments; name it as the
		// store knows it (the request may have given an ARN).
		info, err := a.q.ResolveStream(ref(in.StreamRef))
		if err == nil {
			meta, err = a.q.FragmentMetadata(info.Name, frags)
		}
		if err != nil {
			writeError(w, err)
			return
		}
	}
	out := httpwire.ListFragmentsOutput{Fragments: []httpwire.Fragment{}, NextToken: next}
	for i, f := range frags {
		out.Fragments = append(out.Fragments, httpwire.Fragment{
			FragmentLengthInMilliseconds: f.Duration / int64(time.Millisecond),
			FragmentNumber:               strconv.FormatUint(f.Number, 10),
			FragmentSizeInBytes:          int64(f.Size),
			ProducerTimestamp:            httpwire.At(f.ProducerTime),
			ServerTimestamp:              httpwire.At(f.ServerTime),
		})
		if meta != nil {
			out.Fragments[i].FragmentMetadata = meta[i]
		}
	}
	writeJSON(w, out)
}

func (a *api) query(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	req, err := query.ParseRequest(body)
	if err != nil {
		writeError(w, err)
		return
	}
	p, err := a.q.PrepareQuery(req)
	if err != nil {
		writeError(w, err)
		return
	}
	// A query of several streams is metered to the first it names.
	if names := req.StreamNames(); len(names) > 0 {
		a.meterAs(r, names[0], usage.Query)
	}
	w.Header().Set("Content-Type", query.ArrowContentType)
	w.Header().Set("Trailer", "Sensorium-Error")
	// The status goes out with the first bytes of the result, so that a query
	// that fails before its first batch (a corrupt frame) answers with its
	// error and status, not 200 and an empty body — or after statusGrace
	// when the first batch is slow in coming (a sparse range, a windows
	// query), since clients wait for the headers with a timeout. A live
	// query sends its status at once: its first batch may be hours away.
	rc := http.NewResponseController(w)
	hw := &statusOnWrite{w: w, rc: rc}
	var out io.Writer = hw
	if req.Follow { // a live query: every batch goes out as it is made
		_ = rc.SetWriteDeadline(time.Time{})
		hw.sendStatus()
		out = flushWriter{w: hw, rc: rc}
	} else {
		grace := time.AfterFunc(statusGrace, hw.sendStatus)
		defer grace.Stop()
	}
	err = a.q.Query(r.Context(), p, out)
	started := hw.finish() // from here on the handler alone touches w
	if err != nil && !errors.Is(err, r.Context().Err()) {
		a.log.Warn("api: query ended with an error", "stream", req.Stream, "err", err)
		if !started {
			w.Header().Del("Trailer")
			writeError(w, err)
			return
		}
		// The stream has started: the status is sent. The trailer tells a client
		// that reads it; any Arrow reader sees a stream without its end marker.
		w.Header().Set("Sensorium-Error", ErrorOf(err).Error())
	}
}

// statusGrace is how long a query may take to its first batch before its
// status is sent anyway; well inside a client's header timeout (30 s by
// default).
const statusGrace = 2 * time.Second

// statusOnWrite sends a 200 status just before the first bytes of a body, or
// when sendStatus is called (a timer's goroutine may call it). finish ends
// that: afterwards nothing but the handler touches the ResponseWriter.
type statusOnWrite struct {
	w  http.ResponseWriter
	rc *http.ResponseController

	mu      sync.Mutex
	started bool // the status is sent
	done    bool // finish was called
}

// sendStatus sends the status and flushes it, unless it went out already or
// the handler has finished.
func (s *statusOnWrite) sendStatus() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.done {
		return
	}
	s.started = true
	s.w.WriteHeader(http.StatusOK)
	_ = s.rc.Flush()
}

func (s *statusOnWrite) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.started = true
		s.w.WriteHeader(http.StatusOK)
	}
	return s.w.Write(p)
}

// finish reports whether the status was sent, and stops sendStatus.
func (s *statusOnWrite) finish() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	return s.started
}

// flushWriter flushes the response after every write.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}
