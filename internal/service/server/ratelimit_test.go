package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/service/throttle"
	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
)

// lockedLog keeps a server's log for counting lines, and passes it to the
// test's output.
type lockedLog struct {
	t   *testing.T
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Log(string(bytes.TrimRight(p, "\n")))
	return l.buf.Write(p)
}

func (l *lockedLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

// startLimited runs a server with these rate limits and a log to count in.
func startLimited(t *testing.T, rates throttle.Rates) (*Server, *lockedLog) {
	t.Helper()
	log := &lockedLog{t: t}
	srv, err := Start(context.Background(), Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelWarn})), RateLimits: rates})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv, log
}

// rateLimited is the value of sensorium_rate_limited_total for a limit.
func rateLimited(t *testing.T, srv *Server, limit string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^sensorium_rate_limited_total\{limit="` + limit + `"\} (\S+)$`).FindStringSubmatch(metrics(t, srv))
	if m == nil {
		t.Fatalf("/metrics has no sensorium_rate_limited_total for %s", limit)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// Each call limit: the calls of its burst (ten seconds' worth: 10 at 1 per
// second) pass, the next is a 400 ClientLimitExceededException in the
// service's shape, the refusals are logged once and counted on /metrics,
// and once the bucket has refilled calls pass again. A stream's tag
// overrides the server's rate for that stream alone.
func TestRateLimitsRefuseAndRecover(t *testing.T) {
	putOne := func(t *testing.T, srv *Server, stream string) (int, string, []byte) {
		now := uint64(time.Now().Add(-time.Minute).UnixMilli())
		req, _ := http.NewRequest(http.MethodPost, srv.HTTPURL()+"/putMedia", bytes.NewReader(opaqueMKV(now)))
		req.Header.Set("x-amzn-stream-name", stream)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK && !bytes.Contains(b, []byte(`"PERSISTED"`)) {
			t.Fatalf("PutMedia: no PERSISTED in %s", b)
		}
		return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), b
	}
	getOne := func(t *testing.T, srv *Server, stream string) (int, string, []byte) {
		return call(t, srv, "getMedia", map[string]any{"StreamName": stream, "StartSelector": map[string]string{"StartSelectorType": "EARLIEST"}, "Follow": false})
	}
	describe := func(t *testing.T, srv *Server, stream string) (int, string, []byte) {
		return call(t, srv, "describeStream", map[string]string{"StreamName": stream})
	}
	cases := []struct {
		name  string
		rates throttle.Rates
		limit throttle.Limit
		tags  map[string]string // of the stream called
		op    func(*testing.T, *Server, string) (int, string, []byte)
		rate  float64 // per second, the stream's
		burst int     // calls that pass before the first refusal, but for tokens that come back meanwhile
	}{
		{"PutMedia connections", throttle.Rates{PutMediaConnections: 1}, throttle.PutMediaConnections, nil, putOne, 1, 10},
		{"GetMedia connections", throttle.Rates{GetMediaConnections: 1}, throttle.GetMediaConnections, nil, getOne, 1, 10},
		// The server's rate would let 50 through; the stream's tag, 15.
		{"GetMedia connections, stream tag", throttle.Rates{}, throttle.GetMediaConnections,
			map[string]string{throttle.GetMediaConnections.Tag(): "1.5"}, getOne, 1.5, 15},
		// The stream's creation takes the first call.
		{"control plane", throttle.Rates{ControlPlane: 1}, throttle.ControlPlane, nil, describe, 1, 9},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, log := startLimited(t, tc.rates)
			c := sdk.NewClient(srv.HTTPURL(), nil)
			ctx := context.Background()
			if _, err := c.CreateStream(ctx, sdk.CreateStreamInput{StreamName: "limited", DataRetentionInHours: 1, Tags: tc.tags}); err != nil {
				t.Fatal(err)
			}
			if tc.limit != throttle.ControlPlane {
				fillInto(t, srv, "limited", 1)
			}
			passed, refused := 0, 0
			t0 := time.Now()
			for refused == 0 {
				status, typ, b := tc.op(t, srv, "limited")
				if status == http.StatusOK {
					// A slow machine (-race) gets back a token per 1/rate meanwhile.
					if passed++; passed > tc.burst+1+int(time.Since(t0).Seconds()*tc.rate) {
						t.Fatalf("%d calls passed in %v; the limit lets %d through at once, then %v per second", passed, time.Since(t0), tc.burst, tc.rate)
					}
					continue
				}
				var eb httpwire.ErrorBody
				_ = json.Unmarshal(b, &eb)
				if status != http.StatusBadRequest || typ != httpwire.ClientLimitExceeded || eb.Type != httpwire.ClientLimitExceeded ||
					!strings.Contains(eb.Message, "calls per second") {
					t.Fatalf("past the limit: %d %q %s; want 400 ClientLimitExceededException", status, typ, b)
				}
				refused++
			}
			if passed < tc.burst {
				t.Fatalf("refused after %d calls; the limit lets %d through at once", passed, tc.burst)
			}
			for range 3 { // refused too, unless a token came back meanwhile
				if status, _, _ := tc.op(t, srv, "limited"); status != http.StatusOK {
					refused++
				}
			}
			if n := log.count("rate limit reached"); n != 1 {
				t.Errorf("%d log lines for %d refusals, want 1 per interval", n, refused)
			}
			if n := rateLimited(t, srv, tc.limit.String()); n != float64(refused) {
				t.Errorf("sensorium_rate_limited_total{limit=%q} = %v, want %d", tc.limit, n, refused)
			}
			if tc.limit != throttle.ControlPlane {
				// The limit is the stream's: another stream is served.
				fillInto(t, srv, "other", 1)
				if status, typ, b := tc.op(t, srv, "other"); status != http.StatusOK {
					t.Fatalf("another stream: %d %s %s", status, typ, b)
				}
			}
			// Recovered: once a token has come back a call passes.
			poll.Until(t, 5*time.Second, 100*time.Millisecond, func() error {
				if status, typ, _ := tc.op(t, srv, "limited"); status != http.StatusOK {
					return fmt.Errorf("still refused: %d %s", status, typ)
				}
				return nil
			})
		})
	}
}

// fillInto creates stream (unless it exists) and publishes fragments of 10
// frames into it over NATS, each PERSISTED.
func fillInto(t *testing.T, srv *Server, stream string, fragments int) {
	t.Helper()
	c := sdk.NewClient(srv.HTTPURL(), nil)
	if _, err := c.DescribeStream(context.Background(), sdk.ByName(stream)); err != nil {
		if _, err := c.CreateStream(context.Background(), sdk.CreateStreamInput{StreamName: stream, DataRetentionInHours: 1}); err != nil {
			t.Fatal(err)
		}
	}
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	origin := time.Now().Add(-time.Hour).Truncate(time.Second).UnixNano()
	for f := range fragments {
		if ev := publish(t, nc, stream, scalarFragment(t, origin, int64(f)*1000, 10), "fill", uint64(f+1)); ev.EventType != wire.EventPersisted {
			t.Fatalf("fragment %d: %+v", f, ev)
		}
	}
}

// PutMedia past its bytes per second is slowed, not refused: N bytes at R
// bytes per second take at least (N - burst) / R, and every fragment is
// PERSISTED.
func TestPutMediaByteRateSlowsNotRefuses(t *testing.T) {
	const rate = 256 << 10 // burst: a quarter second, 64 KiB
	srv, _ := startLimited(t, throttle.Rates{PutMediaBytes: rate})
	client, _ := newStream(t, srv, "slow", 1)
	const clusters = 6
	body := bigClustersMKV(clusters, 56<<10)
	t0 := time.Now()
	status, typ, evs := postPutMedia(t, srv, map[string]string{"x-amzn-stream-name": "slow"}, bytes.NewReader(body))
	took := time.Since(t0)
	if status != http.StatusOK {
		t.Fatalf("PutMedia: %d %s", status, typ)
	}
	persisted := 0
	for _, ev := range evs {
		switch ev.EventType {
		case wire.EventPersisted:
			persisted++
		case wire.EventError:
			t.Fatalf("ERROR event: %+v", ev)
		}
	}
	if persisted != clusters {
		t.Fatalf("%d PERSISTED, want %d: %+v", persisted, clusters, evs)
	}
	least := time.Duration(float64(len(body)-rate/4) / rate * float64(time.Second))
	if took < least*8/10 { // loosely: machines are noisy, but never much faster than the rate
		t.Fatalf("%d bytes at %d bytes/s took %v, want at least about %v", len(body), rate, took, least)
	}
	frags, _, err := client.ListFragments(context.Background(), sdk.ListFragmentsInput{Stream: sdk.ByName("slow")})
	if err != nil || len(frags) != clusters {
		t.Fatalf("%d fragments stored (%v), want %d", len(frags), err, clusters)
	}
	if n := rateLimited(t, srv, "putmedia_bytes"); n == 0 {
		t.Error("sensorium_rate_limited_total{limit=\"putmedia_bytes\"} did not count the waits")
	}
	// Any positive time: about 1 s here, which prints as 0.98… as often as 1.02….
	if !regexp.MustCompile(`sensorium_rate_limited_wait_seconds_total\{limit="putmedia_bytes"\} (0\.0*[1-9]|[1-9])`).MatchString(metrics(t, srv)) {
		t.Error("/metrics does not show the time PutMedia waited")
	}
	t.Logf("%d bytes at %d bytes/s: %v (at least %v)", len(body), rate, took, least)
}

// GetMedia past the bytes per second its stream's tag sets is slowed: the
// reader gets every fragment, later.
func TestGetMediaByteRateSlows(t *testing.T) {
	srv, _ := startLimited(t, throttle.Rates{})
	c := sdk.NewClient(srv.HTTPURL(), nil)
	const rate = 64 << 10 // burst 16 KiB
	if _, err := c.CreateStream(context.Background(), sdk.CreateStreamInput{StreamName: "slow", DataRetentionInHours: 1,
		Tags: map[string]string{throttle.GetMediaBytes.Tag(): strconv.Itoa(rate)}}); err != nil {
		t.Fatal(err)
	}
	fillInto(t, srv, "slow", 8)
	t0 := time.Now()
	body, err := c.GetMedia(context.Background(), sdk.ByName("slow"), sdk.StartEarliest(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	took := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	if frags := fragmentsIn(t, bytes.NewReader(b)); len(frags) != 8 {
		t.Fatalf("%d fragments read, want 8", len(frags))
	}
	least := time.Duration(float64(len(b)-16<<10) / rate * float64(time.Second))
	if took < least*8/10 {
		t.Fatalf("%d bytes at %d bytes/s took %v, want at least about %v", len(b), rate, took, least)
	}
	t.Logf("%d bytes at %d bytes/s: %v (at least %v)", len(b), rate, took, least)
}

// The SDK's Follow waits out a spent GetMedia rate (its backoff) instead of
// giving up with ClientLimitExceededException.
func TestFollowWaitsOutTheGetMediaRate(t *testing.T) {
	srv, _ := startLimited(t, throttle.Rates{GetMediaConnections: 1}) // 10 at once
	fillInto(t, srv, "s", 1)
	c := sdk.NewClient(srv.HTTPURL(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for spent := false; !spent; {
		body, err := c.GetMedia(ctx, sdk.ByName("s"), sdk.StartEarliest(), false)
		if err != nil {
			if !errors.Is(err, &httpwire.APIError{Name: httpwire.ClientLimitExceeded}) {
				t.Fatal(err)
			}
			spent = true
			continue
		}
		body.Close()
	}
	errGot := errors.New("got a frame")
	err := c.Follow(ctx, sdk.ByName("s"), sdk.StartEarliest(), func(*sdk.MediaFrame) error { return errGot }, nil)
	if !errors.Is(err, errGot) {
		t.Fatalf("Follow with the rate spent: %v, want a frame once a token came back", err)
	}
}

// A rate-limit tag that is not a positive number is refused when it is set,
// not found later as a limit that does not apply.
func TestRateLimitTagChecked(t *testing.T) {
	srv := startServer(t, "")
	newStream(t, srv, "s", 1)
	cases := []struct {
		op   string
		body map[string]any
	}{
		{"createStream", map[string]any{"StreamName": "t", "Tags": map[string]string{throttle.PutMediaBytes.Tag(): "fast"}}},
		{"tagStream", map[string]any{"StreamName": "s", "Tags": map[string]string{throttle.GetMediaConnections.Tag(): "0"}}},
	}
	for _, tc := range cases {
		if status, typ, b := call(t, srv, tc.op, tc.body); status != http.StatusBadRequest || typ != httpwire.InvalidArgument {
			t.Errorf("%s: %d %s %s, want 400 InvalidArgumentException", tc.op, status, typ, b)
		}
	}
}

// bigClustersMKV is a PutMedia body of n clusters of one opaque frame of
// size bytes each, a second apart, a minute ago.
func bigClustersMKV(n, size int) []byte {
	now := uint64(time.Now().Add(-time.Minute).UnixMilli())
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale})
	b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: "S_SENSORIUM/OPAQUE", CodecPrivate: []byte("x")}})
	for i := range n {
		b = mkv.AppendCluster(b, now+uint64(i)*1000, []mkv.Block{{Track: 1, Keyframe: true, Data: bytes.Repeat([]byte{byte(i)}, size)}})
	}
	return b
}
