package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/service/usage"
)

// readMeter says which stream and API the bytes of a response's body are
// metered to: a handler that reads a stream's data out sets it (meterAs)
// before it writes the body, and the access log's writer counts each write.
type readMeter struct {
	to     *usage.Meter
	stream string
	api    usage.API
}

type readMeterKey struct{}

// meterAs meters the rest of r's response body to stream's api reads. A
// read passed to another cluster node is metered there, where it is read.
func (a *api) meterAs(r *http.Request, stream string, api usage.API) {
	if a.opts.Usage == nil {
		return
	}
	if m, ok := r.Context().Value(readMeterKey{}).(*readMeter); ok {
		m.to, m.stream, m.api = a.opts.Usage, stream, api
	}
}

func init() {
	mount(func(a *api, mux *http.ServeMux) {
		if a.opts.Usage == nil {
			return
		}
		mux.HandleFunc("GET /v1/usage", a.authorized(awsauth.ActionListStreams, nil, a.usage))
	})
}

// usageOutput is the JSON of GET /v1/usage.
type usageOutput struct {
	From, To time.Time
	Streams  []streamUsage
	Total    usageCounts
}

type streamUsage struct {
	StreamName string
	usageCounts
}

// usageCounts are a stream's usage in the names the managed service bills
// by: data in, data out per API, data stored over time.
type usageCounts struct {
	BytesIn            int64
	FragmentsIn        int64
	BytesOut           map[usage.API]int64
	BytesOutTotal      int64
	StoredByteHours    float64
	StoredGBMonths     float64 // GB (10⁹ bytes) kept for 730 hours: the unit storage is billed in
	StoredFragmentHour float64 `json:"StoredFragmentHours"`
}

func countsOf(c usage.Counts) usageCounts {
	out := usageCounts{BytesIn: c.BytesIn, FragmentsIn: c.FragmentsIn, BytesOut: c.BytesOut, StoredByteHours: c.ByteHours,
		StoredGBMonths: c.ByteHours / 1e9 / 730, StoredFragmentHour: c.FragmentHours}
	if out.BytesOut == nil {
		out.BytesOut = map[usage.API]int64{}
	}
	for _, n := range c.BytesOut {
		out.BytesOutTotal += n
	}
	return out
}

// usage answers GET /v1/usage?from=&to=[&stream=|&prefix=]: each stream's
// usage over the whole UTC hours that [from, to) touches. from and to are
// RFC 3339 or Unix seconds; to defaults to now, from to to's day's start.
// A key narrowed to some streams sees those only.
func (a *api) usage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := time.Now()
	to, err := usageTime(q.Get("to"), now)
	if err != nil {
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "to: %v", err))
		return
	}
	from, err := usageTime(q.Get("from"), to.Truncate(24*time.Hour))
	if err != nil {
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "from: %v", err))
		return
	}
	if !from.Before(to) {
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "from %s is not before to %s", from.Format(time.RFC3339), to.Format(time.RFC3339)))
		return
	}
	stream, prefix := q.Get("stream"), q.Get("prefix")
	id, _ := awsauth.IdentityFrom(r.Context())
	keep := func(s string) bool {
		switch {
		case stream != "" && s != stream, !strings.HasPrefix(s, prefix):
			return false
		case a.opts.Auth != nil && !id.Grant.Unrestricted() && !id.Grant.AllStreams() && !id.Grant.AllowsStream(s):
			return false
		}
		return true
	}
	rep, err := a.opts.Usage.Usage(from, to, keep)
	if err != nil {
		writeError(w, err)
		return
	}
	out := usageOutput{From: rep.From, To: rep.To, Streams: []streamUsage{}, Total: countsOf(rep.Total)}
	for _, s := range rep.Streams {
		out.Streams = append(out.Streams, streamUsage{StreamName: s.Stream, usageCounts: countsOf(s.Counts)})
	}
	writeJSON(w, out)
}

// usageTime reads a time of GET /v1/usage: RFC 3339 or Unix seconds; empty: def.
func usageTime(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	var sec int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return time.Time{}, errBadUsageTime(s)
		}
		sec = sec*10 + int64(c-'0')
		if sec > 1<<40 {
			return time.Time{}, errBadUsageTime(s)
		}
	}
	return time.Unix(sec, 0), nil
}

func errBadUsageTime(s string) error {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return fmt.Errorf("%q is neither RFC 3339 (2026-12-01T00:00:00Z) nor Unix seconds", s)
}
