package replicate

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/service/replicate/replicatetest"
	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/sdk"
)

// Faults only the HTTP way to the centre meets: a proxy in between, a link
// that hangs without a reset, a centre that does not take the dedupe key.

// startHTTPProxy serves a reverse proxy to target that first lets change
// see each request; it returns the proxy's URL.
func startHTTPProxy(t *testing.T, target string, change func(*http.Request) error) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1 // events stream back as they come
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := change(r); err != nil {
			return
		}
		rp.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// putEdge writes n edge fragments of size bytes to stream s.
func putEdge(t *testing.T, r *rig, n, size int) {
	t.Helper()
	r.createEdge(t, "s", 1)
	newProducer(t, r.edgeSrv.NATSURL(), "s", time.Now().Add(-time.Hour).Truncate(time.Millisecond), size).put(n)
}

// Behind a proxy that passes a request on only once its body has ended
// (nginx's default), a round's response starts after its last byte: a
// round that takes longer to send than the client's timeout (1 s here, the
// SDK's 30 s by default) still goes through, since the wait for the
// response starts again at each byte the body moves.
func TestBufferingProxyAndClientTimeout(t *testing.T) {
	r := newRig(t, ViaHTTP)
	putEdge(t, r, 30, 12<<10)
	buffering := startHTTPProxy(t, r.centreSrv.HTTPURL(), func(req *http.Request) error {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return err
		}
		req.Body, req.ContentLength, req.TransferEncoding = io.NopCloser(bytes.NewReader(body)), int64(len(body)), nil
		return nil
	})
	cfg := r.config(t, "s")
	cfg.Centre = sdk.NewClientWithOptions(buffering, sdk.ClientOptions{Timeout: time.Second})
	cfg.MaxRate = 150_000 // the round's 370 kB take about 2.5 s
	rep, _ := start(t, cfg)
	r.waitCopied(t, "s", "s", 60*time.Second)
	checkExactlyOnce(t, r.edge, r.centre, "s", "s")
	if st := rep.Status().Streams; len(st) != 1 {
		t.Fatalf("status %+v", st)
	}
}

// A link that hangs without a reset (a NAT or firewall dropping the flow)
// while a round's body is on its way ends the session after AckTimeout
// without a byte taken, with an error that says so; the round starts again.
func TestHungLinkEndsTheSession(t *testing.T) {
	r := newRig(t, ViaHTTP)
	putEdge(t, r, 30, 256<<10)
	cfg := r.config(t, "s")  // AckTimeout 2 s
	r.proxy.SetRate(1 << 20) // the round's 7.5 MB take about 7 s
	rep, _ := start(t, cfg)
	poll.Until(t, 30*time.Second, 20*time.Millisecond, func() error {
		if l, err := replicatetest.List(context.Background(), r.centre, "s"); err != nil || len(l) == 0 {
			return fmt.Errorf("nothing at the centre yet (%v)", err)
		}
		return nil
	})
	r.proxy.Stall(time.Minute)
	poll.Until(t, 20*time.Second, 50*time.Millisecond, func() error {
		st := rep.Status().Streams
		if len(st) != 1 || !strings.Contains(st[0].LastError, "took nothing of the PutMedia body for 2s") {
			return fmt.Errorf("status %+v; want the hung link in the last error", st)
		}
		return nil
	})
}

// A centre that does not take the dedupe key (another service, an older
// Sensorium; here a proxy drops the headers) would store re-sends twice: the
// stream's copy stops at once, saying why, and is not tried again.
func TestCentreThatIgnoresTheKey(t *testing.T) {
	r := newRig(t, ViaHTTP)
	putEdge(t, r, 10, 1<<10)
	cfg := r.config(t, "s")
	cfg.Centre = sdk.NewClient(startHTTPProxy(t, r.centreSrv.HTTPURL(), func(req *http.Request) error {
		req.Header.Del("x-sensorium-producer-id")
		req.Header.Del("x-sensorium-producer-sequence")
		return nil
	}), nil)
	rep, _ := start(t, cfg)
	var stopped StreamStatus
	poll.Until(t, 30*time.Second, 20*time.Millisecond, func() error {
		st := rep.Status().Streams
		if len(st) != 1 || st[0].State != "stopped" || !strings.Contains(st[0].LastError, "does not take PutMedia's dedupe key") {
			return fmt.Errorf("status %+v; want stopped, the key in the last error", st)
		}
		stopped = st[0]
		return nil
	})
	time.Sleep(3 * cfg.AckTimeout) // what a retry would take
	if st := rep.Status().Streams; st[0].SentFragments != stopped.SentFragments || st[0].Errors != stopped.Errors {
		t.Errorf("the copy went on after it stopped: %+v, then %+v", stopped, st[0])
	}
	if l, err := replicatetest.List(context.Background(), r.centre, "s"); err != nil || len(l) > 10 {
		t.Errorf("the centre holds %d copies of the edge's 10 fragments (%v)", len(l), err)
	}
}
