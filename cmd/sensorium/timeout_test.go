package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// testTimeout is the client timeout of these tests: short, so that they are
// quick, and far below the hang guard.
const testTimeout = 200 * time.Millisecond

// hangGuard bounds what must end on its own: without the client timeout, the
// calls below would wait forever.
const hangGuard = 20 * time.Second

// silentListener accepts connections and never answers on them.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// within runs f and fails the test if it has not returned within hangGuard.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(hangGuard):
		t.Fatalf("%s still waiting after %v", what, hangGuard)
	}
}

// A server that accepts the connection and never answers: every call gives
// up after the timeout with a *TimeoutError, and the CLI exits 1 saying so.
func TestTimeoutOnSilentServer(t *testing.T) {
	ep := silentListener(t)
	var code int
	var stderr string
	within(t, "stream list", func() {
		code, stderr = runCLI(t, "stream", "list", "--endpoint", ep, "--timeout", testTimeout.String())
	})
	if want := "no answer from " + ep + "/listStreams within 200ms"; code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}

	ctx := context.Background()
	c := sdk.NewClientWithOptions(ep, sdk.ClientOptions{Timeout: testTimeout})
	calls := map[string]func() error{
		"listStreams": func() error { _, _, err := c.ListStreams(ctx, "", 0, ""); return err },
		"createStream": func() error {
			_, err := c.CreateStream(ctx, sdk.CreateStreamInput{StreamName: "s"})
			return err
		},
		"getMedia": func() error { _, err := c.GetMedia(ctx, sdk.ByName("s"), sdk.StartNow(), true); return err },
		"getMediaForFragmentList": func() error {
			_, err := c.GetMediaForFragmentList(ctx, sdk.ByName("s"), []string{"1"})
			return err
		},
		"v1/query": func() error {
			_, err := c.QueryRaw(ctx, sdk.QueryInput{Stream: "s", Start: time.Now().Add(-time.Hour), End: time.Now()})
			return err
		},
	}
	for op, call := range calls {
		var err error
		start := time.Now()
		within(t, op, func() { err = call() })
		var te *sdk.TimeoutError
		if !errors.As(err, &te) || te.Op != op || te.After != testTimeout || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %T %v, want a *sdk.TimeoutError after %v", op, err, err, testTimeout)
		}
		if d := time.Since(start); d < testTimeout {
			t.Errorf("%s gave up after %v, before the timeout", op, d)
		}
	}

	// The caller's own deadline still wins when it is the shorter.
	short, cancel := context.WithTimeout(ctx, testTimeout/4)
	defer cancel()
	_, _, err := sdk.NewClientWithOptions(ep, sdk.ClientOptions{Timeout: hangGuard}).ListStreams(short, "", 0, "")
	var te *sdk.TimeoutError
	if errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the caller's deadline: %T %v", err, err)
	}
}

// The timeout of a control-plane call covers its whole answer; a streaming
// call's covers only its headers: a body that streams slowly is never cut.
func TestTimeoutBodyOfStreamsNotCut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		if r.URL.Path == "/listStreams" {
			<-r.Context().Done() // headers, then a body that never comes
			return
		}
		select {
		case <-release:
			io.WriteString(w, "late bytes")
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx := context.Background()
	c := sdk.NewClientWithOptions(srv.URL, sdk.ClientOptions{Timeout: testTimeout})

	var err error
	within(t, "listStreams", func() { _, _, err = c.ListStreams(ctx, "", 0, "") })
	var te *sdk.TimeoutError
	if !errors.As(err, &te) {
		t.Errorf("a stalled control-plane answer: %T %v, want a *sdk.TimeoutError", err, err)
	}

	opens := map[string]func() (io.ReadCloser, error){
		"getMedia": func() (io.ReadCloser, error) { return c.GetMedia(ctx, sdk.ByName("s"), sdk.StartNow(), true) },
		"getMediaForFragmentList": func() (io.ReadCloser, error) {
			return c.GetMediaForFragmentList(ctx, sdk.ByName("s"), []string{"1"})
		},
		"query": func() (io.ReadCloser, error) {
			return c.QueryRaw(ctx, sdk.QueryInput{Stream: "s", Start: time.Now().Add(-time.Hour), End: time.Now()})
		},
	}
	for op, open := range opens {
		body, err := open()
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		got := make(chan string, 1)
		go func() {
			b, err := io.ReadAll(body)
			if err != nil {
				got <- "error: " + err.Error()
				return
			}
			got <- string(b)
		}()
		// The property is about time: the body must still flow well after the
		// timeout has passed.
		time.Sleep(3 * testTimeout)
		release <- struct{}{}
		select {
		case s := <-got:
			if s != "late bytes" {
				t.Errorf("%s: body %q, want the late bytes", op, s)
			}
		case <-time.After(hangGuard):
			t.Fatalf("%s: the body never came", op)
		}
		body.Close()
	}
}

// produceScalar writes n samples of a 100 Hz signal starting at origin into
// stream and waits until they are PERSISTED.
func produceScalar(t *testing.T, srv *server.Server, stream string, origin time.Time, n int) {
	t.Helper()
	ctx := context.Background()
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	desc := &signals.Scalar{SampleRate: 100, SampleType: signals.Float64, Channels: []signals.Channel{{Name: "temp", Unit: "°C"}}}
	track, _ := sdk.ScalarTrack(1, stream, desc)
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: stream, Tracks: []sdk.Track{track}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := sdk.NewSampleWriter(p, 1, desc, sdk.SampleWriterOptions{Origin: origin.UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFloat64(ctx, make([]float64, n)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// On a real server, a followed GetMedia and a live query that wait longer
// than the timeout for data are not cut off, and neither is `sensorium get
// --follow`.
func TestTimeoutFollowOutlivesIt(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := sdk.NewClientWithOptions(srv.HTTPURL(), sdk.ClientOptions{Timeout: testTimeout})
	if _, err := c.CreateStream(ctx, sdk.CreateStreamInput{StreamName: "live", DataRetentionInHours: 1}); err != nil {
		t.Fatal(err)
	}
	// A query needs a fragment to know the stream's signals: one from before.
	produceScalar(t, srv, "live", time.Now().Add(-time.Minute), 100)

	media, err := c.GetMedia(ctx, sdk.ByName("live"), sdk.StartNow(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer media.Close()
	frames := make(chan error, 1)
	go func() {
		_, err := sdk.NewMediaReader(media).Next()
		frames <- err
	}()
	// QueryRaw of a live query returns when the first batch is made.
	rows := make(chan error, 1)
	go func() {
		res, err := c.Query(ctx, sdk.QueryInput{Stream: "live", Start: time.Now().Add(-time.Second), Follow: true}, nil)
		if err == nil {
			defer res.Close()
			if !res.Next() {
				err = errors.Join(errors.New("no batch"), res.Err())
			}
		}
		rows <- err
	}()
	out := filepath.Join(t.TempDir(), "live.mkv")
	cliDone := make(chan int, 1)
	go func() {
		cliDone <- run(ctx, []string{"get", "live", "--from", "now", "--follow", "--timeout", testTimeout.String(),
			"--endpoint", srv.HTTPURL(), "-o", out}, io.Discard, io.Discard)
	}()

	time.Sleep(3 * testTimeout) // longer than the timeout, with nothing to send
	produceScalar(t, srv, "live", time.Now(), 100)

	for what, ch := range map[string]chan error{"GetMedia": frames, "live query": rows} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
		case <-time.After(hangGuard):
			t.Fatalf("%s: no data", what)
		}
	}
	deadline := time.Now().Add(hangGuard)
	for {
		if fi, err := os.Stat(out); err == nil && fi.Size() > 0 {
			break
		}
		select {
		case code := <-cliDone:
			t.Fatalf("sensorium get --follow ended with %d before any data", code)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("sensorium get --follow wrote nothing")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-cliDone; code != 0 {
		t.Errorf("sensorium get --follow, interrupted: exit %d", code)
	}
}
