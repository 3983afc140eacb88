package api

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/sensorium-io/sensorium/internal/service/throttle"
	"github.com/sensorium-io/sensorium/query"
	"github.com/sensorium-io/sensorium/store"
)

// unthrottledServer is a real server on loopback over st whose rate limits
// are out of reach: they are tested elsewhere, and a player, a fuzzer or a
// benchmark makes many calls at once by design. more, when given, changes
// the options before the server starts.
func unthrottledServer(tb testing.TB, st *store.Store, more func(*Options)) *httptest.Server {
	tb.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	lots := 1e9
	limits := throttle.New(throttle.Options{Logger: log, Rates: throttle.Rates{
		PutMediaConnections: lots, PutMediaBytes: lots, GetMediaConnections: lots, GetMediaBytes: lots, ControlPlane: lots,
	}})
	var srv *httptest.Server
	o := Options{Store: st, Query: query.New(query.Options{Store: st, Logger: log}), Logger: log, Limits: limits,
		DataEndpoint: func() string { return srv.URL }}
	if more != nil {
		more(&o)
	}
	srv = httptest.NewServer(New(o))
	tb.Cleanup(srv.Close)
	return srv
}
