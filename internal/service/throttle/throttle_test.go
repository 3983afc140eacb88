package throttle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/testkit/poll"
)

// Many streams' buckets do not pile up: a sweep drops every bucket that has
// refilled and is not held, and keeps those that are held or still short.
func TestTableDropsIdleBuckets(t *testing.T) {
	tb := newTable(time.Second)
	t0 := time.Unix(1000, 0)
	const streams = 10000
	for i := range streams {
		b := tb.get(fmt.Sprint("s", i), 5, 10, t0)
		b.lim.AllowN(t0, 10) // empties it
		tb.put(b)
	}
	held := tb.get("held", 5, 10, t0)
	if n := tb.len(); n != streams+1 {
		t.Fatalf("%d buckets, want %d", n, streams+1)
	}
	// Half a second on, a bucket of 5/s holds 2.5 of its 10: nothing is
	// dropped, since a dropped bucket would come back full.
	tb.get("probe", 5, 10, t0.Add(1500*time.Millisecond)).refs--
	if n := tb.len(); n < streams {
		t.Fatalf("a sweep before the buckets refilled dropped them: %d left", n)
	}
	// Past 2 s every bucket is full again; the next sweep drops all but the
	// held one.
	tb.get("probe", 5, 10, t0.Add(3*time.Second)).refs--
	if n := tb.len(); n != 2 { // held, and probe itself (just used)
		t.Fatalf("%d buckets after the sweep, want 2 (held, probe)", n)
	}
	tb.put(held)
}

func TestBurst(t *testing.T) {
	cases := []struct {
		lim  Limit
		rate float64
		want int
	}{
		{GetMediaConnections, 5, 50},
		{ControlPlane, 0.05, 1},
		{ControlPlane, 1000, 10000},
		{PutMediaBytes, 12_500_000, 3_125_000},
		{GetMediaBytes, 1000, 16 << 10},
	}
	for _, tc := range cases {
		if got := burst(tc.lim, tc.rate); got != tc.want {
			t.Errorf("burst(%s, %v) = %d, want %d", tc.lim, tc.rate, got, tc.want)
		}
	}
}

// A call past the rate is refused with ClientLimitExceededException, the
// stream's tag overrides the server's rate, another stream is not affected,
// and calls pass again once the bucket has refilled.
func TestAllowRefusesAndRecovers(t *testing.T) {
	var logs bytes.Buffer
	// Slow rates, so that no token comes back while the test runs.
	l := New(Options{Rates: Rates{GetMediaConnections: 0.2}, Logger: slog.New(slog.NewTextHandler(&logs, nil)), LogEvery: time.Hour})
	tagged := map[string]string{GetMediaConnections.Tag(): "0.4"}
	cases := []struct {
		stream string
		tags   map[string]string
		pass   int // burst: ten seconds' worth
	}{
		{"a", nil, 2},
		{"b", tagged, 4},
	}
	for _, tc := range cases {
		for i := range tc.pass {
			if err := l.Allow(GetMediaConnections, tc.stream, tc.tags); err != nil {
				t.Fatalf("%s: call %d: %v", tc.stream, i, err)
			}
		}
		err := l.Allow(GetMediaConnections, tc.stream, tc.tags)
		var e *httpwire.APIError
		if !errors.As(err, &e) || e.Name != httpwire.ClientLimitExceeded || e.Status() != 400 {
			t.Fatalf("%s: call past the burst: %v", tc.stream, err)
		}
	}
	// Refusals are logged once per interval, with their count.
	for range 5 {
		_ = l.Allow(GetMediaConnections, "a", nil)
	}
	if n := strings.Count(logs.String(), "rate limit reached"); n != 1 {
		t.Fatalf("%d log lines for 7 refusals, want 1:\n%s", n, logs.String())
	}
	if st := l.Stats(); st[2].Limit != GetMediaConnections || st[2].Hits != 7 {
		t.Fatalf("stats %+v, want 7 getmedia_connections hits", st)
	}
	// A token comes back every 5 s on "a": re-rated by a tag, the bucket
	// refills at the new rate from then on.
	fast := map[string]string{GetMediaConnections.Tag(): "20"}
	poll.Until(t, 3*time.Second, 20*time.Millisecond, func() error {
		return l.Allow(GetMediaConnections, "a", fast)
	})
}

func TestCheckTags(t *testing.T) {
	cases := []struct {
		tags map[string]string
		ok   bool
	}{
		{map[string]string{"site": "x"}, true},
		{map[string]string{PutMediaBytes.Tag(): "1000000"}, true},
		{map[string]string{GetMediaConnections.Tag(): "0.5"}, true},
		{map[string]string{PutMediaBytes.Tag(): "fast"}, false},
		{map[string]string{GetMediaBytes.Tag(): "0"}, false},
		{map[string]string{PutMediaConnections.Tag(): "-1"}, false},
		{map[string]string{PutMediaConnections.Tag(): "+Inf"}, false},
	}
	for _, tc := range cases {
		err := CheckTags(tc.tags)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, httpwire.ErrInvalidArgument)) {
			t.Errorf("CheckTags(%v) = %v, want ok %v", tc.tags, err, tc.ok)
		}
	}
}

// A writer past its rate waits instead of failing: N bytes at R bytes per
// second take at least (N - burst) / R, and all of them arrive.
func TestWriterSlows(t *testing.T) {
	const rate, n = 64 << 10, 96 << 10 // burst 16 KiB: at least 1.25 s
	l := New(Options{Rates: Rates{GetMediaBytes: rate}})
	var out bytes.Buffer
	w := l.Writer(context.Background(), GetMediaBytes, "s", nil, &out)
	t0 := time.Now()
	if _, err := w.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	min := time.Duration(float64(n-burst(GetMediaBytes, rate)) / rate * float64(time.Second))
	if d := time.Since(t0); d < min*9/10 || out.Len() != n {
		t.Fatalf("%d bytes in %v, want all %d in at least %v", out.Len(), d, n, min)
	}
	if st := l.Stats()[3]; st.Hits == 0 || st.Waited <= 0 {
		t.Fatalf("stats %+v: the waits were not counted", st)
	}
}

// A reader stops waiting when its context ends and reads on at full speed:
// what a client sent before it went away is still published (PutMedia).
func TestReaderStopsWaitingWithContext(t *testing.T) {
	l := New(Options{Rates: Rates{PutMediaBytes: 1}}) // 16 KiB, then 1 byte per second
	ctx, cancel := context.WithCancel(context.Background())
	r, done := l.Reader(ctx, PutMediaBytes, "s", nil, bytes.NewReader(make([]byte, 64<<10)))
	defer done()
	var wg sync.WaitGroup
	wg.Add(1)
	var n int64
	var err error
	go func() {
		defer wg.Done()
		n, err = io.Copy(io.Discard, r)
	}()
	cancel()
	wg.Wait()
	if err != nil || n != 64<<10 {
		t.Fatalf("io.Copy through a cancelled wait: %d bytes, %v; want all 65536", n, err)
	}
}
