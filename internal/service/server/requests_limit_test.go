package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
)

// Past --max-requests in flight a request is a ClientLimitExceededException,
// the health check still answers, and a freed place is taken again.
func TestMaxRequests(t *testing.T) {
	srv, err := Start(context.Background(), Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		Logger: testLogger(t), MaxRequests: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	newStream(t, srv, "s", 1)
	follow := func() (*http.Response, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.HTTPURL()+"/getMedia",
			strings.NewReader(`{"StreamName":"s","StartSelector":{"StartSelectorType":"NOW"}}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GetMedia: %d", resp.StatusCode)
		}
		return resp, cancel
	}
	r1, stop1 := follow()
	defer r1.Body.Close()
	r2, stop2 := follow()
	defer r2.Body.Close()
	defer stop2()
	if status, typ, _ := call(t, srv, "listStreams", "{}"); status != http.StatusBadRequest || typ != httpwire.ClientLimitExceeded {
		t.Fatalf("a third request: %d %s, want 400 ClientLimitExceededException", status, typ)
	}
	resp, err := http.Get(srv.HTTPURL() + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the health check past the limit: %v %v", resp, err)
	}
	resp.Body.Close()
	stop1() // the client goes away: its place is free
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, _, _ := call(t, srv, "listStreams", "{}")
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the freed place was not taken: %d", status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
