package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/query"
	"github.com/sensorium-io/sensorium/store"
)

// Catalog is the control plane the API serves: the store's own catalog on
// a single node (the default), the cluster's replicated one on a cluster
// node (internal/service/cluster).
type Catalog interface {
	CreateStream(ctx context.Context, in store.CreateStreamInput) (store.StreamInfo, error)
	DescribeStream(ctx context.Context, ref store.StreamRef) (store.StreamInfo, error)
	ListStreams(ctx context.Context, prefix string, limit int, nextToken string) ([]store.StreamInfo, string, error)
	UpdateStream(ctx context.Context, ref store.StreamRef, currentVersion string, deviceName, mediaType *string) error
	UpdateDataRetention(ctx context.Context, ref store.StreamRef, currentVersion string, increase bool, changeHours int) error
	TagStream(ctx context.Context, ref store.StreamRef, tags map[string]string) error
	UntagStream(ctx context.Context, ref store.StreamRef, keys []string) error
	DeleteStream(ctx context.Context, ref store.StreamRef, currentVersion string) error
}

// storeCatalog is a single node's catalog: the store's.
type storeCatalog struct{ st *store.Store }

func (c storeCatalog) CreateStream(_ context.Context, in store.CreateStreamInput) (store.StreamInfo, error) {
	return c.st.CreateStream(in)
}

func (c storeCatalog) DescribeStream(_ context.Context, ref store.StreamRef) (store.StreamInfo, error) {
	return c.st.DescribeStream(ref)
}

func (c storeCatalog) ListStreams(_ context.Context, prefix string, limit int, token string) ([]store.StreamInfo, string, error) {
	return c.st.ListStreams(prefix, limit, token)
}

func (c storeCatalog) UpdateStream(_ context.Context, ref store.StreamRef, v string, dev, mt *string) error {
	return c.st.UpdateStream(ref, v, dev, mt)
}

func (c storeCatalog) UpdateDataRetention(_ context.Context, ref store.StreamRef, v string, inc bool, h int) error {
	return c.st.UpdateDataRetention(ref, v, inc, h)
}

func (c storeCatalog) TagStream(_ context.Context, ref store.StreamRef, tags map[string]string) error {
	return c.st.TagStream(ref, tags)
}

func (c storeCatalog) UntagStream(_ context.Context, ref store.StreamRef, keys []string) error {
	return c.st.UntagStream(ref, keys)
}

func (c storeCatalog) DeleteStream(_ context.Context, ref store.StreamRef, v string) error {
	return c.st.DeleteStream(ref, v)
}

// Cluster is what the API needs of a cluster node.
type Cluster interface {
	// Route says where reads of the streams are served: here (local), or
	// by the nodes at the returned base URLs (each serves them all), best
	// first.
	Route(ctx context.Context, streams []string) (urls []string, local bool, err error)
	// DataEndpoint is the URL of a node that serves reads of the stream.
	DataEndpoint(ctx context.Context, stream string) (string, error)
	// Status is the cluster's status (GET /v1/cluster).
	Status(ctx context.Context) any
	// FillHandler serves other nodes' fills.
	FillHandler() http.Handler
	// Remove takes a stopped node out of the cluster.
	Remove(ctx context.Context, node string) error
	// Self is this node's name.
	Self() string
}

// ForwardedHeader marks a request one node passed to another: the second
// serves it from its own store rather than passing it on again.
const ForwardedHeader = "X-Sensorium-Forwarded-By"

// notServedHeader marks a node's refusal of a passed-on read that it has no
// live copy for.
const notServedHeader = "X-Sensorium-Not-Served"

var errNotServed = errors.New("no live copy there")

// FillPath is where other nodes fetch a stream's fragments from this one.
const FillPath = "/internal/v1/fill"

// mountCluster adds the cluster's own routes: its status, node removal and
// the fill endpoint (node to node, signed like any request).
func (a *api) mountCluster(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/cluster", a.unrestrictedOnly(func(w http.ResponseWriter, r *http.Request) {
		if a.cluster == nil {
			writeError(w, httpwire.Errorf(httpwire.ResourceNotFound, "this server is a single node, not a cluster node (serve --node)"))
			return
		}
		writeJSON(w, a.cluster.Status(r.Context()))
	}))
	mux.HandleFunc("POST /v1/cluster/remove", a.unrestrictedOnly(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Node string `json:"Node"`
		}
		if err := decode(w, r, &in); err != nil {
			writeError(w, err)
			return
		}
		if a.cluster == nil {
			writeError(w, httpwire.Errorf(httpwire.ResourceNotFound, "this server is a single node, not a cluster node (serve --node)"))
			return
		}
		if err := a.cluster.Remove(r.Context(), in.Node); err != nil {
			writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "%v", err))
			return
		}
		writeJSON(w, nil)
	}))
	if a.cluster != nil {
		mux.Handle("POST "+FillPath, a.unrestrictedOnly(a.cluster.FillHandler().ServeHTTP))
	}
}

// routed serves a read here when this node holds a live copy of its
// streams, and otherwise passes it, unchanged, to a node that does: the
// same method, path, headers (the client's signature included, which covers
// the Host header, kept as the client sent it) and body. names reads the
// stream names from the body.
func (a *api) routed(names func(body []byte) []string, h http.HandlerFunc) http.HandlerFunc {
	if a.cluster == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(w, r)
		if err != nil {
			writeError(w, err)
			return
		}
		streams := names(body)
		if r.Header.Get(ForwardedHeader) != "" {
			// Passed on by another node, whose view of this one may be a
			// heartbeat old: serve only a live copy, else say so, and the
			// other node tries the next replica.
			if len(streams) > 0 {
				if _, local, err := a.cluster.Route(r.Context(), streams); err != nil || !local {
					w.Header().Set(notServedHeader, a.cluster.Self())
					writeError(w, httpwire.Errorf(httpwire.ServiceUnavailable, "node %s has no live copy of %s", a.cluster.Self(), strings.Join(streams, ", ")))
					return
				}
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			h(w, r)
			return
		}
		var targets []string
		local := true
		if len(streams) > 0 {
			var err error
			if targets, local, err = a.cluster.Route(r.Context(), streams); err != nil {
				writeError(w, routeError(streams, err))
				return
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if local {
			h(w, r)
			return
		}
		a.forward(w, r, targets, body)
	}
}

// routeError: no node can serve the stream's reads now (its replicas are
// catching up or down, or the catalog cannot be read); the client retries.
func routeError(streams []string, err error) error {
	return httpwire.Errorf(httpwire.ServiceUnavailable, "no node can serve reads of %s now (its replicas are catching up, or down): %v", strings.Join(streams, ", "), err)
}

// forward passes a request to another node and streams its answer back. A
// node that cannot be reached (it stopped a moment ago) is skipped for the
// next; once an answer has begun, it is the answer.
func (a *api) forward(w http.ResponseWriter, r *http.Request, targets []string, body []byte) {
	var lastErr error
	for _, target := range targets {
		u, err := url.Parse(target)
		if err != nil {
			lastErr = err
			continue
		}
		var failed error
		p := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(u)
				pr.Out.Host = pr.In.Host // the client signed its Host
				pr.Out.Header.Set(ForwardedHeader, a.cluster.Self())
				pr.Out.Body = io.NopCloser(bytes.NewReader(body))
				pr.Out.ContentLength = int64(len(body))
			},
			FlushInterval: -1, // GetMedia and live queries stream
			Transport:     a.proxyTransport,
			ModifyResponse: func(resp *http.Response) error {
				if resp.Header.Get(notServedHeader) != "" {
					resp.Body.Close()
					return errNotServed
				}
				return nil
			},
			ErrorHandler: func(_ http.ResponseWriter, _ *http.Request, err error) { failed = err },
		}
		p.ServeHTTP(w, r)
		if failed == nil || r.Context().Err() != nil {
			return
		}
		a.log.Warn("http: passing a read to another node failed; trying the next replica", "node", target, "path", r.URL.Path, "err", failed)
		lastErr = failed
	}
	writeError(w, httpwire.Errorf(httpwire.ServiceUnavailable, "no node holding this stream answered (%v); retry", lastErr))
}

// streamOfBody reads StreamName / StreamARN from a KVS request body.
func streamOfBody(body []byte) []string {
	var in httpwire.StreamRef
	if json.Unmarshal(body, &in) != nil {
		return nil // the handler answers the bad body
	}
	name, err := store.ResolveName(ref(in))
	if err != nil {
		return nil
	}
	return []string{name}
}

// streamsOfQuery reads the streams of a POST /v1/query body.
func streamsOfQuery(body []byte) []string {
	req, err := query.ParseRequest(body)
	if err != nil {
		return nil
	}
	return req.StreamNames()
}
