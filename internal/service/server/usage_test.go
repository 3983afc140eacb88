package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/sdk"
)

// usageOf reads GET /v1/usage for the query q and returns the stream's row.
func usageOf(t *testing.T, srv *Server, q, stream string) map[string]any {
	t.Helper()
	resp, err := http.Get(srv.HTTPURL() + "/v1/usage?" + q)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Streams []map[string]any
		Total   map[string]any
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v1/usage?%s: %d, %v", q, resp.StatusCode, err)
	}
	for _, s := range out.Streams {
		if s["StreamName"] == stream {
			return s
		}
	}
	return nil
}

// A stream's usage: the bytes of its fragments stored, the bytes each read
// API sent (as the client received them), and what it holds over time —
// on /v1/usage, on /metrics, and after a restart.
func TestUsagePerStream(t *testing.T) {
	dir := t.TempDir()
	srv, err := Start(context.Background(), Config{DataDir: dir, NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: testLogger(t), UsageEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, srv, "pump-1", 5)
	ctx := context.Background()
	c := sdk.NewClient(srv.HTTPURL(), nil)
	frags, _, err := c.ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName("pump-1")})
	if err != nil || len(frags) != 5 {
		t.Fatalf("list: %d, %v", len(frags), err)
	}
	var stored int64
	for _, f := range frags {
		stored += f.FragmentSizeInBytes
	}
	// Two reads, counted as the client gets them.
	body, err := c.GetMediaForFragmentList(ctx, sdk.ByName("pump-1"), []string{frags[0].FragmentNumber, frags[3].FragmentNumber})
	if err != nil {
		t.Fatal(err)
	}
	media, _ := io.ReadAll(body)
	body.Close()
	res, err := c.Query(ctx, sdk.QueryInput{Stream: "pump-1", Start: time.Unix(0, 0), End: time.Now()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for res.Next() {
	}
	res.Close()
	raw := &countingBody{}
	resp, err := http.Post(srv.HTTPURL()+"/v1/query", "application/json", strings.NewReader(`{"stream":"pump-1","start":0,"end":`+jsonNow()+`}`))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(raw, resp.Body)
	resp.Body.Close()

	var u map[string]any
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		u = usageOf(t, srv, "", "pump-1")
		if u == nil || u["StoredByteHours"].(float64) == 0 {
			return errors.New("no byte-hours stored yet")
		}
		return nil
	})
	if got := int64(u["BytesIn"].(float64)); got != stored {
		t.Errorf("BytesIn %d, the fragments' sizes add up to %d", got, stored)
	}
	if got := int64(u["FragmentsIn"].(float64)); got != 5 {
		t.Errorf("FragmentsIn %d, want 5", got)
	}
	out := u["BytesOut"].(map[string]any)
	if got := int64(out["GET_MEDIA_FOR_FRAGMENT_LIST"].(float64)); got != int64(len(media)) {
		t.Errorf("GET_MEDIA_FOR_FRAGMENT_LIST %d bytes, the client read %d", got, len(media))
	}
	// The SDK's query and the raw one: both counted; the raw one exactly.
	if got := int64(out["QUERY"].(float64)); got <= n {
		t.Errorf("QUERY %d bytes, the raw query alone read %d", got, n)
	}
	if m := metrics(t, srv); !strings.Contains(m, `sensorium_stream_ingest_bytes_total{stream="pump-1"}`) ||
		!strings.Contains(m, `sensorium_stream_read_bytes_total{api="GET_MEDIA_FOR_FRAGMENT_LIST",stream="pump-1"}`) {
		t.Errorf("/metrics lacks the per-stream usage counters")
	}

	// Kept across a restart.
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	srv = startServer(t, dir)
	again := usageOf(t, srv, "from="+time.Now().Add(-24*time.Hour).UTC().Format(time.RFC3339), "pump-1")
	if again == nil || int64(again["BytesIn"].(float64)) != stored || again["BytesOut"].(map[string]any)["GET_MEDIA_FOR_FRAGMENT_LIST"] == nil {
		t.Fatalf("after a restart: %v", again)
	}
	if other := usageOf(t, srv, "stream=nope", "pump-1"); other != nil {
		t.Errorf("stream=nope still reports pump-1")
	}

	for _, bad := range []string{"from=yesterday", "from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z"} {
		resp, err := http.Get(srv.HTTPURL() + "/v1/usage?" + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 || resp.Header.Get("x-amzn-ErrorType") != "InvalidArgumentException" {
			t.Errorf("%s: %d %s", bad, resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
		}
	}
}

type countingBody struct{ n int64 }

func (c *countingBody) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func jsonNow() string { b, _ := json.Marshal(time.Now().UnixNano()); return string(b) }
