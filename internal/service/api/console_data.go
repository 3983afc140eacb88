package api

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/store"
)

// What the console asks of a stream beyond the seed service's operations,
// each a signed GET of its own (docs/CONSOLE.md has the JSON):
//
//	GET /v1/overview[?prefix&limit&next]    a page of the streams the key may list, with their state
//	GET /v1/stream?stream=S                 one stream: its tracks, their signals, its span
//	GET /v1/coverage?stream=S&from&to&gap   the stored spans of a range, gaps merged below gap
//
// Times in these answers are milliseconds since the Unix epoch as JSON
// numbers with a fraction (a double holds them to a quarter of a
// microsecond), the unit a browser's clock and Date take.

func init() {
	mount(func(a *api, mux *http.ServeMux) {
		mux.HandleFunc("GET /v1/overview", a.authorized(awsauth.ActionListStreams, nil, a.overview))
		mux.HandleFunc("GET /v1/stream", a.authorized(awsauth.ActionDescribeStream, queryParamStream, a.routedByParam(a.consoleStream)))
		mux.HandleFunc("GET /v1/coverage", a.authorized(awsauth.ActionListFragments, queryParamStream, a.routedByParam(a.coverage)))
	})
}

// routedByParam passes a console GET, on a cluster node, to a node that
// holds its stream (?stream=), as routed does for the API's reads: the
// answers come from a store that has the stream's fragments.
func (a *api) routedByParam(h http.HandlerFunc) http.HandlerFunc {
	if a.cluster == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		name, err := streamParam(r)
		if err != nil {
			h(w, r) // which answers the bad parameter
			return
		}
		a.routed(func([]byte) []string { return []string{name} }, h)(w, r)
	}
}

// queryParamStream reads the stream of a console GET (?stream=).
func queryParamStream(r *http.Request, _ []byte) ([]string, error) {
	name, err := streamParam(r)
	if err != nil {
		return nil, err
	}
	return []string{name}, nil
}

func streamParam(r *http.Request) (string, error) {
	s := r.URL.Query().Get("stream")
	if s == "" {
		return "", httpwire.Errorf(httpwire.InvalidArgument, "the stream query parameter is missing")
	}
	return store.ResolveName(store.StreamRef{Name: s})
}

// msOf is ns since the epoch as the console's milliseconds.
func msOf(ns int64) float64 { return float64(ns) / 1e6 }

// timeParam reads a time query parameter: an integer of ns since the
// epoch, or RFC 3339. A missing one is def.
func timeParam(r *http.Request, name string, def int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	if ns, err := strconv.ParseInt(v, 10, 64); err == nil {
		return ns, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, httpwire.Errorf(httpwire.InvalidArgument, "%s=%q is neither ns since the Unix epoch nor an RFC 3339 time", name, truncateParam(v))
	}
	return t.UnixNano(), nil
}

func truncateParam(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// consoleTrack is a track as the console shows it.
type consoleTrack struct {
	Number     uint64           `json:"number"`
	Name       string           `json:"name,omitempty"`
	CodecID    string           `json:"codecId"`
	Kind       string           `json:"kind"`
	SampleRate float64          `json:"sampleRate,omitempty"`
	Channels   []consoleChannel `json:"channels,omitempty"` // channels or per-element fields
	Rows       uint32           `json:"rows,omitempty"`     // an array's shape
	Cols       uint32           `json:"cols,omitempty"`
	Unit       string           `json:"unit,omitempty"` // an array's values
	MediaType  string           `json:"mediaType,omitempty"`
	Error      string           `json:"error,omitempty"` // a description that does not parse
}

type consoleChannel struct {
	Name string `json:"name"`
	Unit string `json:"unit,omitempty"`
}

func consoleTrackOf(t mkv.TrackEntry) consoleTrack {
	out := consoleTrack{Number: t.Number, Name: t.Name, CodecID: t.CodecID}
	d, err := signals.ParseDescription(t.CodecID, t.CodecPrivate)
	if err != nil {
		out.Kind, out.Error = "unknown", err.Error()
		return out
	}
	out.Kind = d.Kind().String()
	fields := func(fs []signals.Field) {
		for _, f := range fs {
			out.Channels = append(out.Channels, consoleChannel{f.Name, f.Unit})
		}
	}
	switch d := d.(type) {
	case *signals.Scalar:
		out.SampleRate = d.SampleRate
		for _, c := range d.Channels {
			out.Channels = append(out.Channels, consoleChannel{c.Name, c.Unit})
		}
	case *signals.IMU:
		s := d.Scalar()
		out.SampleRate = s.SampleRate
		for i, c := range s.Channels {
			// queries return the sensors' physical values (count × Scale), in
			// the sensor's unit, not the stored counts
			unit := c.Unit
			if i/len(signals.IMUAxes) < len(d.Sensors) {
				unit = d.Sensors[i/len(signals.IMUAxes)].Unit
			}
			out.Channels = append(out.Channels, consoleChannel{c.Name, unit})
		}
	case *signals.Audio:
		out.SampleRate = d.SampleRate
		for _, c := range d.Channels {
			out.Channels = append(out.Channels, consoleChannel{Name: c})
		}
	case *signals.MatroskaAudio:
		out.SampleRate = d.SampleRate
		for i := range d.Channels {
			out.Channels = append(out.Channels, consoleChannel{Name: "ch" + strconv.Itoa(i+1)})
		}
	case *signals.PointCloud:
		fields(d.Fields())
	case *signals.Detections:
		fields(d.Fields())
	case *signals.Array:
		out.Rows, out.Cols, out.Unit = d.Rows, d.Cols, d.Unit
	case *signals.Opaque:
		out.MediaType = d.MediaType
	}
	return out
}

// consoleTracks remembers the tracks of the fragments the console asked
// about: a fragment never changes, and the overview asks for every
// stream's newest fragment on each refresh.
type consoleTracks struct {
	mu sync.Mutex
	m  map[trackCacheKey][]consoleTrack
}

type trackCacheKey struct {
	stream  string
	created int64
	number  uint64
}

var consoleTrackCache = consoleTracks{m: map[trackCacheKey][]consoleTrack{}}

const maxConsoleTrackCache = 4096

func (a *api) tracksOf(info store.StreamInfo, f store.FragmentInfo) ([]consoleTrack, error) {
	key := trackCacheKey{info.Name, info.CreationTime.UnixNano(), f.Number}
	c := &consoleTrackCache
	c.mu.Lock()
	tracks, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return tracks, nil
	}
	entries, err := a.trackEntries(info.Name, f)
	if err != nil {
		return nil, err
	}
	for _, t := range entries {
		tracks = append(tracks, consoleTrackOf(t))
	}
	c.mu.Lock()
	if len(c.m) >= maxConsoleTrackCache {
		clear(c.m)
	}
	c.m[key] = tracks
	c.mu.Unlock()
	return tracks, nil
}

// trackEntries reads the Tracks element of a stored fragment.
func (a *api) trackEntries(stream string, f store.FragmentInfo) ([]mkv.TrackEntry, error) {
	r, err := a.st.NewReader(stream)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	sf, err := r.Read(f)
	if err != nil {
		return nil, fmt.Errorf("console: read fragment %d of %s: %w", f.Number, stream, err)
	}
	mr := mkv.NewReader(bytes.NewReader(sf.Payload))
	for {
		it, err := mr.Next()
		if err != nil {
			return nil, fmt.Errorf("console: fragment %d of %s has no Tracks element: %w", f.Number, stream, err)
		}
		if it.Kind == mkv.ItemTracks {
			return it.Tracks, nil
		}
	}
}

// consoleFragment is a fragment as the console shows it.
type consoleFragment struct {
	Number     string  `json:"number"` // decimal: fragment numbers exceed a double's integers
	Producer   float64 `json:"producer"`
	Server     float64 `json:"server"`
	DurationMs float64 `json:"durationMs"`
	Size       int     `json:"size"`
}

func consoleFragmentOf(f store.FragmentInfo) *consoleFragment {
	return &consoleFragment{Number: strconv.FormatUint(f.Number, 10), Producer: msOf(f.ProducerTime), Server: msOf(f.ServerTime),
		DurationMs: float64(f.Duration) / 1e6, Size: f.Size}
}

// streamSummary is a row of the console's streams page. What the stream's
// fragments say (stored) is read from this node's store: on a cluster node
// that holds no live copy of the stream it is left out (stored nil) and
// the row says remote, rather than show a partial or absent copy's
// numbers as the stream's; GET /v1/stream, which is passed to a node that
// holds it, gives them.
type streamSummary struct {
	Name           string  `json:"name"`
	ARN            string  `json:"arn"`
	Status         string  `json:"status"`
	Version        string  `json:"version"`
	MediaType      string  `json:"mediaType,omitempty"`
	Created        float64 `json:"created"`
	RetentionHours int     `json:"retentionHours"`
	State          string  `json:"state"`            // live, idle or empty; unknown when remote
	Remote         bool    `json:"remote,omitempty"` // another node holds the stream's copies
	*storedSummary
	Error string `json:"error,omitempty"` // what could not be read of it here
}

// storedSummary is what a stream's copy in this node's store says of it.
type storedSummary struct {
	Last  *consoleFragment `json:"last,omitempty"`
	First *consoleFragment `json:"first,omitempty"`
	// Rate is over the last RateWindowSeconds of server time.
	RateBytesPerSecond     float64        `json:"rateBytesPerSecond"`
	RateFragmentsPerMinute int            `json:"rateFragmentsPerMinute"`
	StoredBytes            int64          `json:"storedBytes"`
	StoredFragments        int            `json:"storedFragments"`
	Tracks                 []consoleTrack `json:"tracks,omitempty"`
}

// rateWindow is how far back the ingest rate looks.
const rateWindow = time.Minute

// liveWithin says when a stream counts as live: a fragment accepted within
// three of its durations (a producer closes one at least that often), and
// never less than ten seconds, so a stream of short fragments does not
// flicker between live and idle.
func liveWithin(last store.FragmentInfo) time.Duration {
	return max(3*time.Duration(last.Duration), 10*time.Second)
}

// catalogSummary is what the catalog says of a stream, read on any node.
func catalogSummary(info store.StreamInfo) streamSummary {
	return streamSummary{Name: info.Name, ARN: info.ARN, Status: info.Status, Version: info.Version, MediaType: info.MediaType,
		Created: msOf(info.CreationTime.UnixNano()), RetentionHours: info.RetentionHours, State: "empty"}
}

// summarize is a stream's summary from this node's store, which must hold
// a live copy of it (a single node's store holds every stream).
func (a *api) summarize(info store.StreamInfo, now time.Time) streamSummary {
	s := catalogSummary(info)
	last, ok, err := a.st.Durable(info.Name)
	if err != nil {
		s.Error = ErrorOf(err).Message
		return s
	}
	s.storedSummary = &storedSummary{}
	if u, err := a.st.Usage(info.Name); err == nil {
		s.StoredBytes, s.StoredFragments = u.Bytes, u.Fragments
	}
	if !ok {
		return s
	}
	s.Last = consoleFragmentOf(last)
	if first, err := a.st.Fragments(info.Name, 0, 1); err == nil && len(first) == 1 {
		s.First = consoleFragmentOf(first[0])
	}
	s.State = "idle"
	if now.Sub(time.Unix(0, last.ServerTime)) <= liveWithin(last) {
		s.State = "live"
	}
	recent, err := a.st.Range(info.Name, store.ServerTime, now.Add(-rateWindow).UnixNano(), now.UnixNano()+1, 0, 100000)
	if err == nil {
		var bytes int
		for _, f := range recent {
			bytes += f.Size
		}
		s.RateBytesPerSecond = float64(bytes) / rateWindow.Seconds()
		s.RateFragmentsPerMinute = len(recent)
	}
	if s.Tracks, err = a.tracksOf(info, last); err != nil {
		s.Error = err.Error()
	}
	return s
}

// overviewSummary is a row of the overview: summarize's, or on a cluster
// node without a live copy of the stream the catalog's part alone, marked
// remote and its state unknown.
func (a *api) overviewSummary(r *http.Request, info store.StreamInfo, now time.Time) streamSummary {
	if a.cluster != nil {
		_, local, err := a.cluster.Route(r.Context(), []string{info.Name})
		if err != nil || !local {
			s := catalogSummary(info)
			s.State, s.Remote = "unknown", true
			if err != nil {
				s.Error = fmt.Sprintf("no node can serve reads of %s now: %v", info.Name, err)
			}
			return s
		}
	}
	return a.summarize(info, now)
}

// The overview's page size: the console asks for 50 rows; a page is one
// summary per stream, so its cost and size grow with it.
const (
	defaultOverviewLimit = 100
	maxOverviewLimit     = 1000
)

// overviewPage is GET /v1/overview's answer.
type overviewPage struct {
	Now     float64         `json:"now"`
	Streams []streamSummary `json:"streams"`
	// Next continues the listing after the page's last stream; absent at
	// its end.
	Next string `json:"next,omitempty"`
}

// overview answers the streams page: a page of the streams the key may
// list, in name order, those whose name begins with prefix when given, from
// after next's stream. Only the page's streams are summarized (reading each
// one's store), so that a server of 10,000 streams answers the console's
// page of 50 in what 50 cost, not 10,000.
func (a *api) overview(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultOverviewLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxOverviewLimit {
			writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "limit=%q is not a page size of 1 to %d streams", truncateParam(v), maxOverviewLimit))
			return
		}
		limit = n
	}
	prefix, token := q.Get("prefix"), q.Get("next")
	infos, next, err := a.grantedPage(r, prefix, limit, token)
	if err != nil {
		writeError(w, err)
		return
	}
	now := time.Now()
	out := overviewPage{Now: msOf(now.UnixNano()), Streams: make([]streamSummary, 0, len(infos)), Next: next}
	for _, info := range infos {
		out.Streams = append(out.Streams, a.overviewSummary(r, info, now))
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, out)
}

// grantedPage lists up to limit streams of the key's grant whose names
// begin with prefix, after the stream of token (a ListStreams NextToken,
// or an overview's next). It returns the token after the page's last
// stream when a granted stream with the prefix follows it, "" when none
// does, so that a next page is never empty.
func (a *api) grantedPage(r *http.Request, prefix string, limit int, token string) ([]store.StreamInfo, string, error) {
	if _, err := store.ParseListToken(limit, token); err != nil {
		return nil, "", err
	}
	id, _ := awsauth.IdentityFrom(r.Context())
	var out []store.StreamInfo
	for {
		// One more than the page, to know whether the listing goes on. A
		// key granted every stream takes the catalog's page as it is; one
		// granted some skims larger pages, most of whose streams it may not
		// see, rather than ask the catalog many times.
		want := limit + 1 - len(out)
		if !id.Grant.AllStreams() {
			want = maxOverviewLimit
		}
		page, next, err := a.cat.ListStreams(r.Context(), prefix, want, token)
		if err != nil {
			return nil, "", err
		}
		for _, info := range page {
			if !id.Grant.AllowsStream(info.Name) {
				continue
			}
			if out = append(out, info); len(out) > limit {
				return out[:limit], store.ListToken(out[limit-1].Name), nil
			}
		}
		if next == "" {
			return out, "", nil
		}
		token = next
	}
}

// consoleStream answers a stream's page: its summary with the tracks of
// its newest fragment. It runs where the stream is held (routedByParam);
// what the catalog says (version, retention, status) is the catalog's, not
// the local copy's, which follows the catalog's changes a moment later.
func (a *api) consoleStream(w http.ResponseWriter, r *http.Request) {
	name, err := streamParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	info, err := a.cat.DescribeStream(r.Context(), store.StreamRef{Name: name})
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, a.summarize(info, time.Now()))
}

// coverageSpan is a run of stored fragments: [start, end) in producer time.
type coverageSpan struct {
	Start     float64 `json:"start"`
	End       float64 `json:"end"`
	Fragments int     `json:"fragments"`
	Bytes     int64   `json:"bytes"`
}

// maxCoverageSpans bounds an answer: the console draws a few thousand
// pixels, so spans closer than a pixel are merged anyway (gap).
const maxCoverageSpans = 20000

// coverage answers the stored spans of [from, to) in producer time, with
// the fragments whose gap to the previous one is below gap (ns; default
// (to − from) / 2000) merged into one span.
func (a *api) coverage(w http.ResponseWriter, r *http.Request) {
	name, err := streamParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	now := time.Now().UnixNano()
	from, err := timeParam(r, "from", 0)
	if err != nil {
		writeError(w, err)
		return
	}
	to, err := timeParam(r, "to", now)
	if err != nil {
		writeError(w, err)
		return
	}
	if to <= from {
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "to must be after from"))
		return
	}
	gap := (to - from) / 2000
	if v := r.URL.Query().Get("gap"); v != "" {
		if gap, err = strconv.ParseInt(v, 10, 64); err != nil || gap < 0 {
			writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "gap=%q is not a whole number of ns ≥ 0", truncateParam(v)))
			return
		}
	}
	if _, err := a.st.DescribeStream(store.StreamRef{Name: name}); err != nil {
		writeError(w, err)
		return
	}
	spans := []coverageSpan{}
	var cur *coverageSpan
	var curEnd int64
	next := uint64(0)
	for {
		page, err := a.st.Range(name, store.ProducerTime, from, to, next, 10000)
		if err != nil {
			writeError(w, err)
			return
		}
		for _, f := range page {
			if cur != nil && f.ProducerTime-curEnd <= gap {
				curEnd = max(curEnd, f.ProducerEnd())
				cur.End = msOf(curEnd)
				cur.Fragments++
				cur.Bytes += int64(f.Size)
				continue
			}
			if len(spans) == maxCoverageSpans {
				gap = math.MaxInt64 // merge the rest into the last span
				continue
			}
			spans = append(spans, coverageSpan{Start: msOf(f.ProducerTime), End: msOf(f.ProducerEnd()), Fragments: 1, Bytes: int64(f.Size)})
			cur, curEnd = &spans[len(spans)-1], f.ProducerEnd()
		}
		if len(page) < 10000 {
			break
		}
		next = page[len(page)-1].Number + 1
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, struct {
		From  float64        `json:"from"`
		To    float64        `json:"to"`
		Spans []coverageSpan `json:"spans"`
	}{msOf(from), msOf(to), spans})
}
