package query

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/store"
)

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
	Streams   []string  `json:"streams"`
	Start     queryTime `json:"start"`
	End       queryTime `json:"end"`
	Basis     string    `json:"basis"`
	Channels  []string  `json:"channels"`
	Fields    []string  `json:"fields"`
	Layout    string    `json:"layout"`
	Track     uint64    `json:"track"`
	BatchRows int       `json:"batch_rows"`
	Shape     string    `json:"shape"`
	Follow    bool      `json:"follow"`
	Inputs    []struct {
		Stream string   `json:"stream"`
		Fields []string `json:"fields"`
		Track  uint64   `json:"track"`
	} `json:"inputs"`
	Align *struct {
		Rate          float64   `json:"rate"`
		Reference     int       `json:"reference"`
		Interpolation string    `json:"interpolation"`
		Anchor        queryTime `json:"anchor"`
	} `json:"align"`
	Aggregates []string `json:"aggregates"`
	Window     *struct {
		Length       int       `json:"length"`
		Hop          int       `json:"hop"`
		Anchor       queryTime `json:"anchor"`
		StartsBefore queryTime `json:"starts_before"`
	} `json:"window"`
	// Partitions is the Arrow Flight server's (how many endpoints
	// GetFlightInfo answers); it reads it from the same body, so it is a known
	// key here and ignored.
	Partitions int `json:"partitions"`
}

// queryKeys lists the keys of queryBody for the error that names an unknown
// one; keep it in step with queryBody and the README.
const queryKeys = `stream (or streams), start, end, basis, fields (or its alias channels), layout, track, batch_rows, ` +
	`shape, window {length, hop, anchor, starts_before}, aggregates, inputs [{stream, fields, track}], ` +
	`align {rate, reference, interpolation, anchor}, follow, ` +
	`and for Arrow Flight partitions`

// ParseRequest turns the JSON body of a query (POST /v1/query, an Arrow
// Flight descriptor or ticket) into a Request; every error is a
// *RequestError naming what is wrong.
func ParseRequest(body []byte) (Request, error) {
	in, err := decodeQueryBody(body)
	if err != nil {
		return Request{}, err
	}
	req := Request{Stream: in.Stream, Streams: in.Streams, Start: in.Start.NS, End: in.End.NS, Fields: append(in.Fields, in.Channels...), Track: in.Track, BatchRows: in.BatchRows}
	if in.Follow {
		req.Follow = true
		if !in.End.Set {
			req.End = math.MaxInt64
		}
	}
	req.Shape = in.Shape
	req.Aggregates = in.Aggregates
	if len(in.Aggregates) > 0 && req.Shape != "aggregate" {
		return req, invalid(`aggregates are for the aggregate shape ("shape": "aggregate")`)
	}
	if in.Window != nil {
		req.Window = Window{Length: in.Window.Length, Hop: in.Window.Hop, Anchor: in.Window.Anchor.NS, StartsBefore: in.Window.StartsBefore.NS}
		if req.Window.Hop == 0 {
			req.Window.Hop = req.Window.Length
		}
	}
	for _, x := range in.Inputs {
		req.Inputs = append(req.Inputs, Input{Stream: x.Stream, Fields: x.Fields, Track: x.Track})
	}
	if in.Align != nil {
		req.Align = Align{Rate: in.Align.Rate, Reference: in.Align.Reference, Interpolation: in.Align.Interpolation, Anchor: in.Align.Anchor.NS}
	}
	if req.Shape == "aligned" && (len(in.Inputs) == 0 || in.Align == nil) {
		return req, invalid(`the aligned shape needs "inputs": [{"stream": …, "fields": […]}, …] and "align": {"rate": Hz or "reference": input, "interpolation": "none", "previous" or "linear"}`)
	}
	if (req.Shape == "windows" || req.Shape == "aggregate") && in.Window == nil {
		return req, invalid(`the %s shape needs "window": {"length": samples, "hop": samples}`, req.Shape)
	}
	switch in.Layout {
	case "", "rows":
	case "frames":
		req.Layout = codecs.LayoutFrames
	default:
		return req, invalid("layout must be rows or frames, not %q", truncate(in.Layout, 64))
	}
	switch in.Basis {
	case "", "producer":
		req.Basis = store.ProducerTime
	case "server":
		req.Basis = store.ServerTime
	default:
		return req, invalid("basis must be producer or server, not %q", truncate(in.Basis, 64))
	}
	switch {
	case in.Stream == "" && len(in.Streams) == 0 && req.Shape != "aligned":
		return req, invalid("stream (or streams) is required")
	case !in.Start.Set || (!in.End.Set && !in.Follow):
		return req, invalid("start and end are required (or follow: true for a live query without an end)")
	case in.BatchRows < 0 || in.BatchRows > 1<<24:
		return req, invalid("batch_rows must be 1 to %d", 1<<24)
	}
	return req, nil
}

// decodeQueryBody reads the JSON of a query strictly: a key it does not know
// (a misspelt "feilds", at any depth) is an error naming it rather than a
// setting silently left at its default. Keys match case-insensitively, as
// encoding/json matches them.
func decodeQueryBody(body []byte) (queryBody, error) {
	var in queryBody
	if len(bytes.TrimSpace(body)) == 0 {
		return in, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		// encoding/json has no typed error for an unknown field; its message is
		// `json: unknown field "name"`.
		if key, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return in, invalid("the query has an unknown key %s; the keys are %s", truncate(key, 80), queryKeys)
		}
		return in, invalid("the query is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return in, invalid("the query is not valid JSON: there is more after its object")
	}
	return in, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// MarshalJSON writes r as the body ParseRequest reads back to the same
// request (times as integer ns): what an Arrow Flight ticket holds.
func (r Request) MarshalJSON() ([]byte, error) {
	m := map[string]any{"start": r.Start, "end": r.End, "fields": r.Fields, "track": r.Track, "batch_rows": r.BatchRows}
	if len(r.Streams) > 0 {
		m["streams"] = r.Streams
	} else {
		m["stream"] = r.Stream
	}
	if r.Basis == store.ServerTime {
		m["basis"] = "server"
	}
	if r.Layout == codecs.LayoutFrames {
		m["layout"] = "frames"
	}
	if r.Shape != "" {
		m["shape"] = r.Shape
	}
	if r.Follow {
		m["follow"] = true
	}
	if r.Shape == "aggregate" && len(r.Aggregates) > 0 {
		m["aggregates"] = r.Aggregates
	}
	if r.Shape == "windows" || r.Shape == "aggregate" {
		w := map[string]any{"length": r.Window.Length, "hop": r.Window.Hop}
		if r.Window.Anchor != 0 {
			w["anchor"] = r.Window.Anchor
		}
		if r.Window.StartsBefore != 0 {
			w["starts_before"] = r.Window.StartsBefore
		}
		m["window"] = w
	}
	if r.Shape == "aligned" {
		var in []map[string]any
		for _, x := range r.Inputs {
			in = append(in, map[string]any{"stream": x.Stream, "fields": x.Fields, "track": x.Track})
		}
		m["inputs"] = in
		a := map[string]any{"rate": r.Align.Rate, "reference": r.Align.Reference, "interpolation": r.Align.Interpolation}
		if r.Align.Anchor != 0 {
			a["anchor"] = r.Align.Anchor
		}
		m["align"] = a
	}
	return json.Marshal(m)
}

// StreamNames are the streams a request reads, each once, in the order the
// request names them (a cluster node routes the request to a node that
// holds them all).
func (r Request) StreamNames() []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	add(r.Stream)
	for _, s := range r.Streams {
		add(s)
	}
	for _, in := range r.Inputs {
		add(in.Stream)
	}
	return out
}
