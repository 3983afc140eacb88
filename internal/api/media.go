package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/internal/wire"
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
	var in struct {
		streamRef
		StartSelector struct {
			StartSelectorType   string    `json:"StartSelectorType"`
			AfterFragmentNumber string    `json:"AfterFragmentNumber"`
			StartTimestamp      Timestamp `json:"StartTimestamp"`
			ContinuationToken   string    `json:"ContinuationToken"`
		} `json:"StartSelector"`
		// Follow is Sensorium's: false ends the response once it has caught up
		// (the seed service always follows).
		Follow *bool `json:"Follow"`
	}
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	sel := in.StartSelector
	follow := in.Follow == nil || *in.Follow
	info, from, err := a.q.PrepareGetMedia(query.GetMediaInput{
		Stream: in.ref(),
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
	release, err := a.holdMediaConnection(info.Name)
	if err != nil {
		writeError(w, err)
		return
	}
	defer release()
	w.Header().Set("Content-Type", mediaContentType(info))
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// A followed response lives as long as the client wants it.
	_ = rc.SetWriteDeadline(time.Time{})
	flush := func() { _ = rc.Flush() }
	flush()
	if err := a.q.GetMedia(r.Context(), info.Name, from, follow, w, flush); err != nil && r.Context().Err() == nil {
		a.log.Warn("api: GetMedia ended with an error", "stream", info.Name, "err", err)
	}
}

func (a *api) getMediaForFragmentList(w http.ResponseWriter, r *http.Request) {
	var in struct {
		streamRef
		Fragments []string `json:"Fragments"`
	}
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	info, frags, err := a.q.PrepareFragmentList(in.ref(), in.Fragments)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", mediaContentType(info))
	w.WriteHeader(http.StatusOK)
	if err := a.q.GetMediaForFragmentList(info.Name, frags, w); err != nil && r.Context().Err() == nil {
		a.log.Warn("api: GetMediaForFragmentList ended with an error", "stream", info.Name, "err", err)
	}
}

type fragmentOut struct {
	FragmentLengthInMilliseconds int64     `json:"FragmentLengthInMilliseconds"`
	FragmentNumber               string    `json:"FragmentNumber"`
	FragmentSizeInBytes          int       `json:"FragmentSizeInBytes"`
	ProducerTimestamp            Timestamp `json:"ProducerTimestamp"`
	ServerTimestamp              Timestamp `json:"ServerTimestamp"`
}

func (a *api) listFragments(w http.ResponseWriter, r *http.Request) {
	var in struct {
		streamRef
		MaxResults       int    `json:"MaxResults"`
		NextToken        string `json:"NextToken"`
		FragmentSelector *struct {
			FragmentSelectorType string `json:"FragmentSelectorType"`
			TimestampRange       struct {
				StartTimestamp Timestamp `json:"StartTimestamp"`
				EndTimestamp   Timestamp `json:"EndTimestamp"`
			} `json:"TimestampRange"`
		} `json:"FragmentSelector"`
	}
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
			writeError(w, wire.Errorf(wire.InvalidArgument, "FragmentSelectorType must be PRODUCER_TIMESTAMP or SERVER_TIMESTAMP"))
			return
		}
		if !fs.TimestampRange.StartTimestamp.Set || !fs.TimestampRange.EndTimestamp.Set {
			writeError(w, wire.Errorf(wire.InvalidArgument, "TimestampRange needs StartTimestamp and EndTimestamp"))
			return
		}
	}
	frags, next, err := a.q.ListFragments(in.ref(), sel, in.MaxResults, in.NextToken)
	if err != nil {
		writeError(w, err)
		return
	}
	out := struct {
		Fragments []fragmentOut `json:"Fragments"`
		NextToken string        `json:"NextToken,omitempty"`
	}{Fragments: []fragmentOut{}, NextToken: next}
	for _, f := range frags {
		out.Fragments = append(out.Fragments, fragmentOut{
			FragmentLengthInMilliseconds: f.Duration / int64(time.Millisecond),
			FragmentNumber:               strconv.FormatUint(f.Number, 10),
			FragmentSizeInBytes:          f.Size,
			ProducerTimestamp:            ts(f.ProducerTime),
			ServerTimestamp:              ts(f.ServerTime),
		})
	}
	writeJSON(w, out)
}

// queryTime is a query bound: an RFC 3339 string, or an integer of ns since
// the Unix epoch.
type queryTime struct {
	NS  int64
	Set bool
}

func (q *queryTime) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		t, err := time.Parse(time.RFC3339Nano, strings.Trim(s, `"`))
		if err != nil {
			return fmt.Errorf("time %s is not RFC 3339 (e.g. 2026-11-24T12:00:00.5Z)", s)
		}
		q.NS, q.Set = t.UnixNano(), true
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("time %s is neither RFC 3339 nor integer ns since the Unix epoch", s)
	}
	q.NS, q.Set = n, true
	return nil
}

// queryBody is the JSON of POST /v1/query.
type queryBody struct {
	Stream    string    `json:"stream"`
	Start     queryTime `json:"start"`
	End       queryTime `json:"end"`
	Basis     string    `json:"basis"`
	Channels  []string  `json:"channels"`
	Fields    []string  `json:"fields"`
	Layout    string    `json:"layout"`
	Track     uint64    `json:"track"`
	BatchRows int       `json:"batch_rows"`
}

// parseQuery turns a request body into a query request; every error is an
// InvalidArgumentException naming what is wrong.
func parseQuery(body []byte) (query.Request, error) {
	var in queryBody
	if err := decodeBody(body, &in); err != nil {
		return query.Request{}, err
	}
	req := query.Request{Stream: in.Stream, Start: in.Start.NS, End: in.End.NS, Fields: append(in.Fields, in.Channels...), Track: in.Track, BatchRows: in.BatchRows}
	switch in.Layout {
	case "", "rows":
	case "frames":
		req.Layout = codecs.LayoutFrames
	default:
		return req, wire.Errorf(wire.InvalidArgument, "layout must be rows or frames, not %q", truncate(in.Layout, 64))
	}
	switch in.Basis {
	case "", "producer":
		req.Basis = store.ProducerTime
	case "server":
		req.Basis = store.ServerTime
	default:
		return req, wire.Errorf(wire.InvalidArgument, "basis must be producer or server, not %q", truncate(in.Basis, 64))
	}
	switch {
	case in.Stream == "":
		return req, wire.Errorf(wire.InvalidArgument, "stream is required")
	case !in.Start.Set || !in.End.Set:
		return req, wire.Errorf(wire.InvalidArgument, "start and end are required")
	case in.BatchRows < 0 || in.BatchRows > 1<<24:
		return req, wire.Errorf(wire.InvalidArgument, "batch_rows must be 1 to %d", 1<<24)
	}
	return req, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (a *api) query(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	req, err := parseQuery(body)
	if err != nil {
		writeError(w, err)
		return
	}
	p, err := a.q.PrepareQuery(req)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", query.ArrowContentType)
	w.Header().Set("Trailer", "Sensorium-Error")
	w.WriteHeader(http.StatusOK)
	if err := a.q.Query(r.Context(), p, w); err != nil && !errors.Is(err, r.Context().Err()) {
		// The stream has started: the status is sent. The trailer tells a client
		// that reads it; any Arrow reader sees a stream without its end marker.
		a.log.Warn("api: query ended with an error", "stream", req.Stream, "err", err)
		w.Header().Set("Sensorium-Error", wire.AsAPIError(err).Error())
	}
}
