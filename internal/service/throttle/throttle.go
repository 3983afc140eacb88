// Package throttle holds the HTTP API's rate limits, the seed service's:
// PutMedia and GetMedia connections per second per stream, their bytes per
// second, and control-plane calls per second per server. It owns the token
// buckets (golang.org/x/time/rate) keyed by stream, their eviction when
// idle, the per-stream overrides read from stream tags, and the counting and
// logging of what was refused or slowed. It does not decide which request
// counts against which limit (the api package does), and it does not limit
// the NATS ingest path, whose producers are bounded by the bus.
//
// A call limit refuses past its rate with ClientLimitExceededException, the
// service's answer (HTTP 400); a byte limit never refuses: a body read or a
// response written through it waits for its tokens, which slows the client
// through TCP flow control (back-pressure) and loses nothing.
//
// Limits are per process: on a cluster each node keeps its own buckets, so
// a stream read through three nodes may get three times a node's rate.
package throttle

import (
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
)

// Limit names one rate limit.
type Limit int

// The limits. Per-stream ones may be overridden by a stream tag (Tag).
const (
	PutMediaConnections Limit = iota // PutMedia calls per second per stream
	PutMediaBytes                    // PutMedia body bytes per second per stream
	GetMediaConnections              // GetMedia calls per second per stream
	GetMediaBytes                    // GetMedia response bytes per second per connection
	ControlPlane                     // control-plane calls per second per server
	numLimits
)

// Limits lists every limit, for metrics and documentation.
var Limits = []Limit{PutMediaConnections, PutMediaBytes, GetMediaConnections, GetMediaBytes, ControlPlane}

var limitNames = [numLimits]string{"putmedia_connections", "putmedia_bytes", "getmedia_connections", "getmedia_bytes", "control_plane"}

// String is the limit's name on /metrics (the limit label) and in logs.
func (l Limit) String() string { return limitNames[l] }

// TagPrefix starts the stream tags that override a stream's limits.
const TagPrefix = "sensorium:"

// Tag is the stream tag that overrides the limit for one stream; "" for a
// per-server limit. Tags, not a serve flag, because they are set through the
// API the operator already uses (TagStream, CreateStream's Tags), persist
// with the stream and replicate to every node of a cluster.
func (l Limit) Tag() string {
	switch l {
	case PutMediaConnections:
		return TagPrefix + "putmedia-connections-per-second"
	case PutMediaBytes:
		return TagPrefix + "putmedia-bytes-per-second"
	case GetMediaConnections:
		return TagPrefix + "getmedia-connections-per-second"
	case GetMediaBytes:
		return TagPrefix + "getmedia-bytes-per-second"
	}
	return ""
}

// isBytes reports whether the limit counts bytes (and so slows instead of
// refusing).
func (l Limit) isBytes() bool { return l == PutMediaBytes || l == GetMediaBytes }

// Rates are the server's limits, per second. A stream tag overrides a
// per-stream one for its stream.
type Rates struct {
	PutMediaConnections float64 // per stream
	PutMediaBytes       float64 // per stream (one session at a time, so per session too)
	GetMediaConnections float64 // per stream
	GetMediaBytes       float64 // per GetMedia connection, as the service counts it
	ControlPlane        float64 // per server, every control-plane operation together
}

// The defaults. The media ones are the seed service's figures
// (KVS-REFERENCE.md). The service limits the control plane per account (50
// calls per second for most operations, 300 for DescribeStream and
// GetDataEndpoint, 5 per stream); a self-hosted server has no accounts and
// its own tools and tests create and describe streams in quick loops, so
// its default is a generous 1000 per second, a guard against a runaway
// client rather than a quota; --control-plane-per-second 50 gives the
// service's figure.
const (
	DefaultPutMediaConnections = 5
	DefaultPutMediaBytes       = 12_500_000 // 100 Mbps
	DefaultGetMediaConnections = 5
	DefaultGetMediaBytes       = 25_000_000
	DefaultControlPlane        = 1000
)

// DefaultRates are the defaults of every limit.
func DefaultRates() Rates {
	return Rates{PutMediaConnections: DefaultPutMediaConnections, PutMediaBytes: DefaultPutMediaBytes,
		GetMediaConnections: DefaultGetMediaConnections, GetMediaBytes: DefaultGetMediaBytes, ControlPlane: DefaultControlPlane}
}

func (r *Rates) of(l Limit) *float64 {
	switch l {
	case PutMediaConnections:
		return &r.PutMediaConnections
	case PutMediaBytes:
		return &r.PutMediaBytes
	case GetMediaConnections:
		return &r.GetMediaConnections
	case GetMediaBytes:
		return &r.GetMediaBytes
	}
	return &r.ControlPlane
}

// Of is the rate of limit l.
func (r Rates) Of(l Limit) float64 { return *r.of(l) }

// WithDefaults fills each zero rate with its default.
func (r Rates) WithDefaults() Rates {
	d := DefaultRates()
	for _, l := range Limits {
		if *r.of(l) == 0 {
			*r.of(l) = d.Of(l)
		}
	}
	return r
}

// Check refuses a negative, infinite or NaN rate; flag names the setting
// in the message.
func (r Rates) Check(flag func(Limit) string) error {
	for _, l := range Limits {
		if v := r.Of(l); v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return fmt.Errorf("%s %v must be a positive number", flag(l), v)
		}
	}
	return nil
}

// CheckTags refuses a stream tag that overrides a limit with anything but a
// positive number, so that a typo is told at TagStream, not found later as
// a limit that does not apply.
func CheckTags(tags map[string]string) error {
	for _, l := range Limits {
		if k := l.Tag(); k != "" {
			if v, ok := tags[k]; ok {
				if _, err := parseRate(v); err != nil {
					return httpwire.Errorf(httpwire.InvalidArgument, "tag %s: %v", k, err)
				}
			}
		}
	}
	return nil
}

func parseRate(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("%q is not a positive number (per second)", s)
	}
	return v, nil
}

// burst is how many tokens a bucket of rate r holds. Calls: ten seconds'
// worth, so that the long-run rate is the service's while a client that
// opens several sessions in a row (a player seeking, a producer retrying
// after an error, a test's table of cases) is not refused; a client in a
// tight loop is refused after the burst and then held to the rate. Bytes:
// a quarter of a second's worth, and at least 16 KiB so that reads and
// writes go in chunks of a useful size; the smaller the burst, the smoother
// the flow.
func burst(l Limit, r float64) int {
	if l.isBytes() {
		return int(max(math.Min(r/4, math.MaxInt32), 16<<10))
	}
	return int(max(math.Min(math.Ceil(callBurstSeconds*r), math.MaxInt32), 1))
}

// callBurstSeconds is how many seconds of a call limit's rate its bucket
// holds.
const callBurstSeconds = 10

// Burst is how many calls (or bytes) limit lim lets through at once at
// rate r: the bucket's size.
func Burst(lim Limit, r float64) int { return burst(lim, r) }

// Options configure a Limiter.
type Options struct {
	Rates  Rates // zero rates take the defaults
	Logger *slog.Logger
	// LogEvery is the least time between two log lines about one limit:
	// refusals are logged once per interval with how many there were, never
	// once per request. Default 10 s.
	LogEvery time.Duration
	// SweepEvery is how often idle buckets are dropped; default 30 s.
	SweepEvery time.Duration
}

// Limiter applies the limits. Its methods are safe for concurrent use.
type Limiter struct {
	rates Rates
	log   *slog.Logger
	every time.Duration

	tables [numLimits]*table // keyed buckets; nil for GetMediaBytes (one bucket per connection)

	counts [numLimits]counts
}

// counts are one limit's counters; hot paths only touch atomics.
type counts struct {
	hits      atomic.Uint64 // refused calls, or slowed reads and writes
	waitedNS  atomic.Int64  // time spent waiting for byte tokens
	sinceLog  atomic.Uint64 // hits since the last log line
	lastLogNS atomic.Int64
}

// New returns a Limiter.
func New(o Options) *Limiter {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LogEvery <= 0 {
		o.LogEvery = 10 * time.Second
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = 30 * time.Second
	}
	l := &Limiter{rates: o.Rates.WithDefaults(), log: o.Logger, every: o.LogEvery}
	for _, lim := range []Limit{PutMediaConnections, PutMediaBytes, GetMediaConnections, ControlPlane} {
		l.tables[lim] = newTable(o.SweepEvery)
	}
	return l
}

// RateFor is limit lim's rate for a stream with these tags: the tag's when
// it has a valid one, else the server's.
func (l *Limiter) RateFor(lim Limit, tags map[string]string) float64 {
	if k := lim.Tag(); k != "" {
		if s, ok := tags[k]; ok {
			if v, err := parseRate(s); err == nil {
				return v
			}
		}
	}
	return l.rates.Of(lim)
}

// Allow takes one call's token of limit lim for key (a stream name, or ""
// for a per-server limit) at the rate the stream's tags give, or refuses
// with ClientLimitExceededException. A refused call takes no token, so a
// client that backs off for a second is served again.
func (l *Limiter) Allow(lim Limit, key string, tags map[string]string) error {
	r := l.RateFor(lim, tags)
	now := time.Now()
	b := l.tables[lim].get(key, r, burst(lim, r), now)
	ok := b.lim.AllowN(now, 1)
	l.tables[lim].put(b)
	if ok {
		return nil
	}
	l.hit(lim, key, r, 0)
	what := "stream " + key
	if key == "" {
		what = "this server"
	}
	return httpwire.Errorf(httpwire.ClientLimitExceeded, "%s is over its limit of %s calls per second (%s); slow down and retry",
		what, strconv.FormatFloat(r, 'f', -1, 64), l.setWith(lim))
}

// setWith says how the limit is changed, for the refusal's message.
func (l *Limiter) setWith(lim Limit) string {
	if t := lim.Tag(); t != "" {
		return "stream tag " + t + " or the server's --" + Flag(lim)
	}
	return "the server's --" + Flag(lim)
}

// Flag is the serve flag (without its dashes) that sets a limit.
func Flag(lim Limit) string {
	switch lim {
	case PutMediaConnections:
		return "putmedia-connections-per-second"
	case PutMediaBytes:
		return "putmedia-bytes-per-second"
	case GetMediaConnections:
		return "getmedia-connections-per-second"
	case GetMediaBytes:
		return "getmedia-bytes-per-second"
	}
	return "control-plane-per-second"
}

// hit counts one refusal (or one slowed read or write, waited > 0) and logs
// it when the last line about this limit is older than LogEvery.
func (l *Limiter) hit(lim Limit, key string, r float64, waited time.Duration) {
	c := &l.counts[lim]
	c.hits.Add(1)
	c.sinceLog.Add(1)
	if waited > 0 {
		c.waitedNS.Add(int64(waited))
	}
	now := time.Now().UnixNano()
	last := c.lastLogNS.Load()
	if now-last < int64(l.every) || !c.lastLogNS.CompareAndSwap(last, now) {
		return
	}
	n := c.sinceLog.Swap(0)
	since := "start"
	if last != 0 {
		since = time.Duration(now - last).Round(time.Second).String()
	}
	msg := "api: rate limit reached: calls refused with ClientLimitExceededException"
	if lim.isBytes() {
		msg = "api: rate limit reached: transfers slowed"
	}
	l.log.Warn(msg, "limit", lim.String(), "stream", key, "per_second", r, "times", n, "since_last_line", since)
}

// Stat is one limit's counters.
type Stat struct {
	Limit  Limit
	Hits   uint64        // calls refused, or reads and writes slowed
	Waited time.Duration // time spent waiting for byte tokens
}

// Stats are every limit's counters, in the order of Limits.
func (l *Limiter) Stats() []Stat {
	out := make([]Stat, 0, len(Limits))
	for _, lim := range Limits {
		c := &l.counts[lim]
		out = append(out, Stat{Limit: lim, Hits: c.hits.Load(), Waited: time.Duration(c.waitedNS.Load())})
	}
	return out
}

// table is the buckets of one limit, keyed by stream. A bucket that has
// refilled to its burst is the same as a new one, so dropping it when it is
// not in use loses nothing: memory stays bounded by the streams that were
// busy in the last sweep interval, however many streams there are.
type table struct {
	mu        sync.Mutex
	m         map[string]*bucket
	every     time.Duration
	nextSweep time.Time
}

type bucket struct {
	key   string
	lim   *rate.Limiter
	burst int
	refs  int // holders (get without put); a held bucket is never dropped
}

func newTable(every time.Duration) *table {
	return &table{m: map[string]*bucket{}, every: every}
}

// get returns key's bucket, made or re-rated to r and burst, held until put.
func (t *table) get(key string, r float64, burst int, now time.Time) *bucket {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweepLocked(now)
	b, ok := t.m[key]
	if !ok {
		b = &bucket{key: key, lim: rate.NewLimiter(rate.Limit(r), burst), burst: burst}
		t.m[key] = b
	} else if b.lim.Limit() != rate.Limit(r) || b.burst != burst {
		// A stream's tag changed: the new rate applies from now on.
		b.lim.SetLimitAt(now, rate.Limit(r))
		b.lim.SetBurstAt(now, burst)
		b.burst = burst
	}
	b.refs++
	return b
}

// put releases a bucket from get.
func (t *table) put(b *bucket) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b.refs--
}

// sweepLocked drops the buckets that are full and not held, once per
// interval; its cost is spread over the calls of the interval.
func (t *table) sweepLocked(now time.Time) {
	if now.Before(t.nextSweep) {
		return
	}
	t.nextSweep = now.Add(t.every)
	for k, b := range t.m {
		if b.refs == 0 && b.lim.TokensAt(now) >= float64(b.burst) {
			delete(t.m, k)
		}
	}
}

func (t *table) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
