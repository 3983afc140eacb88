// Package api is Sensorium's HTTP API: the seed service's control plane,
// media and archived-media operations at its paths, with its field names,
// error names and status codes, plus Arrow range queries (POST /v1/query),
// health and metrics. It translates HTTP to calls on the store and the query
// service; it holds no state of its own. ErrorOf is the one place where the
// errors of the store and the query service get the service's names.
package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/service/throttle"
	"github.com/sensorium-io/sensorium/internal/service/usage"
	"github.com/sensorium-io/sensorium/query"
	"github.com/sensorium-io/sensorium/store"
)

// Options configure the API.
type Options struct {
	Store  *store.Store
	Query  *query.Service
	Logger *slog.Logger
	// DataEndpoint is the URL GetDataEndpoint answers: this server's own.
	DataEndpoint func() string
	// Metrics serves /metrics; nil leaves the path unrouted.
	Metrics http.Handler
	// MaxMediaConnections bounds the GetMedia responses open at once per
	// stream (ConnectionLimitExceededException past it); default 16.
	MaxMediaConnections int
	// MaxRequests bounds the requests served at once, long-lived ones
	// (PutMedia, GetMedia, live queries) included: past it a request is a
	// ClientLimitExceededException, so that a flood of connections cannot
	// exhaust the server. GET /healthz is not counted. Default 4096.
	MaxRequests int
	// Limits applies the rate limits (PutMedia and GetMedia connections
	// and bytes per second per stream, control-plane calls per second);
	// default throttle's defaults. The server passes its own so that
	// /metrics can count what it refused and slowed.
	Limits *throttle.Limiter
	// NATS and Subjects are the bus PutMedia publishes fragments to; nil
	// turns PutMedia off.
	NATS     *nats.Conn
	Subjects wire.Subjects
	// MaxPutMediaDuration ends a PutMedia session that has lasted this
	// long with MAX_CONNECTION_DURATION_REACHED (4003), at the next cluster
	// boundary; the producer reconnects and carries on. Default 24 h.
	MaxPutMediaDuration time.Duration
	// MaxFragmentSize is the largest PutMedia cluster, in bytes
	// (MAX_FRAGMENT_SIZE_REACHED, 4001, past it); default 50 MB, the seed
	// service's and the store's (ingest.MaxFragmentSizeDefault). A cluster
	// larger than a bus message is published as chunks.
	MaxFragmentSize int
	// MaxLargeClusters bounds the PutMedia sessions that hold a cluster
	// larger than a bus message at once (default 4): such a cluster is
	// gathered in memory before it is published, so the server's memory for
	// them is at most about twice MaxLargeClusters × MaxFragmentSize; a
	// session past the bound waits, and its producer with it.
	MaxLargeClusters int
	// PutMediaIdle is how long a PutMedia body may bring nothing before the
	// session sends an IDLE event, the seed service's keep-alive. Default 3 s.
	PutMediaIdle time.Duration
	// Auth verifies the SigV4 signature of every request but GET /healthz
	// and GET /metrics; nil: requests are not authenticated.
	Auth *awsauth.Verifier
	// Catalog is the control plane; default the store's own catalog.
	Catalog Catalog
	// Cluster, on a cluster node, routes reads to nodes that hold the
	// stream and serves the cluster's routes (cluster.go).
	Cluster Cluster
	// Usage meters the bytes each stream's reads send and serves GET
	// /v1/usage (usage.go); nil: not metered.
	Usage *usage.Meter
}

type api struct {
	st      *store.Store
	cat     Catalog
	cluster Cluster // nil on a single node
	q       *query.Service
	log     *slog.Logger
	opts    Options
	limits  *throttle.Limiter

	proxyTransport http.RoundTripper // to other nodes (routed reads)

	js jetstream.JetStream // PutMedia's publisher, when NATS is set

	inFlight atomic.Int64 // requests being served (MaxRequests)

	mediaMu    sync.Mutex
	mediaConns map[string]int  // open GetMedia responses per stream
	putting    map[string]bool // streams with a PutMedia session open

	largeClusters chan struct{} // MaxLargeClusters slots
}

// DefaultMaxFragmentSize is Options.MaxFragmentSize's default, the seed
// service's 50 MB (ingest.MaxFragmentSizeDefault, which the api does not
// import).
const DefaultMaxFragmentSize = 50_000_000

// DefaultMaxPutMediaDuration is Options.MaxPutMediaDuration's default: long
// enough for a recording of hours to be uploaded in one session.
const DefaultMaxPutMediaDuration = 24 * time.Hour

// New returns the API's handler.
func New(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxMediaConnections <= 0 {
		o.MaxMediaConnections = 16
	}
	if o.MaxRequests <= 0 {
		o.MaxRequests = DefaultMaxRequests
	}
	if o.MaxPutMediaDuration <= 0 {
		o.MaxPutMediaDuration = DefaultMaxPutMediaDuration
	}
	if o.PutMediaIdle <= 0 {
		o.PutMediaIdle = 3 * time.Second
	}
	if o.MaxFragmentSize <= 0 {
		o.MaxFragmentSize = DefaultMaxFragmentSize
	}
	if o.MaxLargeClusters <= 0 {
		o.MaxLargeClusters = 4
	}
	if o.Limits == nil {
		o.Limits = throttle.New(throttle.Options{Logger: o.Logger})
	}
	a := &api{st: o.Store, cat: o.Catalog, cluster: o.Cluster, q: o.Query, log: o.Logger, opts: o, limits: o.Limits, mediaConns: map[string]int{}, putting: map[string]bool{},
		proxyTransport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute},
		largeClusters:  make(chan struct{}, o.MaxLargeClusters)}
	if a.cat == nil {
		a.cat = storeCatalog{o.Store}
	}
	if o.NATS != nil {
		a.js, _ = jetstream.New(o.NATS) // fails only on a nil connection
	}
	mux := http.NewServeMux()
	// Every operation is checked against the key's grant (grant.go) before
	// it runs, and before a read is passed to another cluster node.
	ops := map[string]http.HandlerFunc{
		"/createStream":            a.authorized(awsauth.ActionCreateStream, bodyStream, a.controlPlane(a.createStream)),
		"/describeStream":          a.authorized(awsauth.ActionDescribeStream, bodyStream, a.controlPlane(a.describeStream)),
		"/listStreams":             a.authorized(awsauth.ActionListStreams, nil, a.controlPlane(a.listStreams)),
		"/updateStream":            a.authorized(awsauth.ActionUpdateStream, bodyStream, a.controlPlane(a.updateStream)),
		"/updateDataRetention":     a.authorized(awsauth.ActionUpdateDataRetention, bodyStream, a.controlPlane(a.updateDataRetention)),
		"/deleteStream":            a.authorized(awsauth.ActionDeleteStream, bodyStream, a.controlPlane(a.deleteStream)),
		"/tagStream":               a.authorized(awsauth.ActionTagStream, bodyStream, a.controlPlane(a.tagStream)),
		"/untagStream":             a.authorized(awsauth.ActionUntagStream, bodyStream, a.controlPlane(a.untagStream)),
		"/listTagsForStream":       a.authorized(awsauth.ActionListTagsForStream, bodyStream, a.controlPlane(a.listTagsForStream)),
		"/getDataEndpoint":         a.authorized(awsauth.ActionGetDataEndpoint, bodyStream, a.controlPlane(a.getDataEndpoint)),
		"/getMedia":                a.authorized(awsauth.ActionGetMedia, bodyStream, a.routed(streamOfBody, a.getMedia)),
		"/putMedia":                a.authorized(awsauth.ActionPutMedia, headerStream, a.putMedia),
		"/listFragments":           a.authorized(awsauth.ActionListFragments, bodyStream, a.routed(streamOfBody, a.listFragments)),
		"/getMediaForFragmentList": a.authorized(awsauth.ActionGetMediaForFragmentList, bodyStream, a.routed(streamOfBody, a.getMediaForFragmentList)),
		"/v1/query":                a.authorized(awsauth.ActionQuery, queryStreams, a.routed(streamsOfQuery, a.query)),
	}
	for path, h := range ops {
		mux.HandleFunc("POST "+path, h)
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "%s takes POST, not %s", path, r.Method))
		})
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	a.mountCluster(mux)
	for _, mount := range mounts {
		mount(a, mux)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, httpwire.Errorf(httpwire.ResourceNotFound, "no operation at %s %s", r.Method, r.URL.Path))
	})
	return a.logged(a.bounded(a.authenticated(mux)))
}

// mounts add the routes of parts of the API that live in files of their
// own (media out, the console, usage), each registered from its file's init
// with mount, so that such a part is its own files.
var mounts []func(a *api, mux *http.ServeMux)

func mount(m func(a *api, mux *http.ServeMux)) { mounts = append(mounts, m) }

// selfAuthenticatedPaths are the GET paths whose handlers check the
// request themselves instead of a SigV4 signature: an ordinary player (a
// browser, ffmpeg, VLC) fetches an HLS session's playlists and segments
// with the session's token in the URL, and a browser loads the console's
// page and assets before it holds a key. An entry ending in / covers the
// paths under it, any other (and "/" itself) only itself. Registered beside
// mount's routes.
var selfAuthenticatedPaths []string

func selfAuthenticated(path string) bool {
	for _, p := range selfAuthenticatedPaths {
		if path == p || p != "/" && strings.HasSuffix(p, "/") && strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// preAuthBodyTimeout bounds reading a body whose hash the signature covers.
const preAuthBodyTimeout = 30 * time.Second

// DefaultMaxRequests is Options.MaxRequests's default.
const DefaultMaxRequests = 4096

// bounded refuses a request past Options.MaxRequests in flight.
func (a *api) bounded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		if n := a.inFlight.Add(1); n > int64(a.opts.MaxRequests) {
			a.inFlight.Add(-1)
			writeError(w, httpwire.Errorf(httpwire.ClientLimitExceeded, "the server already serves %d requests, its limit (serve --max-requests); try again later", a.opts.MaxRequests))
			return
		}
		defer a.inFlight.Add(-1)
		next.ServeHTTP(w, r)
	})
}

// controlPlane holds a control-plane operation to the server's rate of
// control-plane calls (throttle.ControlPlane). It runs after the grant
// check, so a call a key may not make takes nothing from the others.
func (a *api) controlPlane(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := a.limits.Allow(throttle.ControlPlane, "", nil); err != nil {
			writeError(w, err)
			return
		}
		h(w, r)
	}
}

// authenticated refuses a request whose SigV4 signature does not verify,
// with the seed service's error (403 for a wrong key or secret), and logs
// the refusal with the access key id but never a secret or a signature.
// The health check and the metrics hold no stream data and are left open,
// for load balancers and Prometheus, which do not sign.
func (a *api) authenticated(next http.Handler) http.Handler {
	v := a.opts.Auth
	if v == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && (r.URL.Path == "/healthz" || r.URL.Path == "/metrics" || selfAuthenticated(r.URL.Path)) {
			next.ServeHTTP(w, r)
			return
		}
		var body awsauth.BodyHash
		if r.URL.Path != "/putMedia" { // PutMedia's body streams for hours
			body = func() ([]byte, error) {
				// Read before the signature is known good: bounded in time as
				// in size, so that a client trickling a body cannot hold a
				// request's place (MaxRequests) for long.
				rc := http.NewResponseController(w)
				_ = rc.SetReadDeadline(time.Now().Add(preAuthBodyTimeout))
				defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
				b, err := readBody(w, r)
				if err != nil {
					return nil, err
				}
				r.Body = io.NopCloser(bytes.NewReader(b))
				sum := sha256.Sum256(b)
				return sum[:], nil
			}
		}
		who, err := v.Verify(r, body)
		if err != nil {
			e := ErrorOf(err)
			a.log.Warn("http: request refused", "error", e.Name, "reason", e.Message, "access_key", who.AccessKeyID,
				"profile", who.Profile, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			writeError(w, err)
			return
		}
		if who.BodySHA256 != nil {
			r.Body = awsauth.CheckedBody(r.Body, who.BodySHA256)
		}
		next.ServeHTTP(w, r.WithContext(awsauth.WithIdentity(r.Context(), who.Identity)))
	})
}

// statusWriter remembers the status for the access log and passes Flush on.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	err    error      // the cause of an InternalFailure answered (writeError)
	meter  *readMeter // the stream and API the body's bytes are metered to (meterAs)
}

func (s *statusWriter) recordError(err error) { s.err = err }

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	if m := s.meter; m.to != nil {
		m.to.Out(m.stream, m.api, n)
	}
	return n, err
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// logged adds a request id (as the seed service's x-amzn-RequestId) and an
// access log line. Bodies and headers are not logged: they may hold secrets.
func (a *api) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var id [16]byte
		_, _ = rand.Read(id[:])
		w.Header().Set("x-amzn-RequestId", hex.EncodeToString(id[:]))
		sw := &statusWriter{ResponseWriter: w, meter: &readMeter{}}
		t0 := time.Now()
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), readMeterKey{}, sw.meter)))
		level := slog.LevelDebug
		if sw.status >= 500 {
			level = slog.LevelWarn
		}
		attrs := []any{"method", r.Method, "path", r.URL.Path, "status", sw.status,
			"bytes", sw.bytes, "duration", time.Since(t0).Round(time.Microsecond), "remote", r.RemoteAddr}
		if sw.err != nil {
			level, attrs = slog.LevelError, append(attrs, "err", sw.err)
		}
		a.log.Log(r.Context(), level, "http", attrs...)
	})
}

// holdMediaConnection counts an open GetMedia response on a stream, refusing
// one past the limit; the caller calls the returned release when done.
func (a *api) holdMediaConnection(stream string) (func(), error) {
	a.mediaMu.Lock()
	defer a.mediaMu.Unlock()
	if a.mediaConns[stream] >= a.opts.MaxMediaConnections {
		return nil, httpwire.Errorf(httpwire.ConnectionLimitExceeded, "stream %s already has %d GetMedia connections open, the limit", stream, a.opts.MaxMediaConnections)
	}
	a.mediaConns[stream]++
	return func() {
		a.mediaMu.Lock()
		defer a.mediaMu.Unlock()
		if a.mediaConns[stream]--; a.mediaConns[stream] == 0 {
			delete(a.mediaConns, stream)
		}
	}, nil
}
