package compat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	credsv1 "github.com/aws/aws-sdk-go/aws/credentials"
	v4 "github.com/aws/aws-sdk-go/aws/signer/v4"
)

// The console's own GETs (docs/CONSOLE.md) as any client calls them:
// signed with the v1 SDK's signer (headers, or presigned for the live
// feed), against a real server fed by the examples.

// signedGet GETs path?query signed with key, and returns the response.
func signedGet(t *testing.T, s *server, key keyPair, path string, q url.Values) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	signer := v4.NewSigner(credsv1.NewStaticCredentials(key.ID, key.Secret, ""))
	if _, err := signer.Sign(req, nil, "kinesisvideo", s.Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// presignGet presigns a GET of path?query, as the console does for
// EventSource.
func presignGet(t *testing.T, s *server, path string, q url.Values) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	signer := v4.NewSigner(credsv1.NewStaticCredentials(s.Key.ID, s.Key.Secret, ""))
	if _, err := signer.Presign(req, nil, "kinesisvideo", s.Region, 5*time.Minute, time.Now()); err != nil {
		t.Fatal(err)
	}
	return req.URL.String()
}

func TestConsoleAPI(t *testing.T) {
	s := startServerWith(t, "\n[pumps-only]\naws_access_key_id = AKIAPUMPSONLY0000001\naws_secret_access_key = pumpsonlysecret0123456789\nstreams = pump-*\nactions = ListStreams, DescribeStream, Query, GetMedia, ListFragments\n")
	// A section with a grant makes every key a NATS login (docs/NATS.md):
	// the producers log in with the unrestricted one.
	nu, err := url.Parse(s.natsURL(t))
	if err != nil {
		t.Fatal(err)
	}
	nu.User = url.UserPassword(s.Key.ID, s.Key.Secret)
	nats := nu.String()
	bins := buildExamples(t)
	ctx := testContext(t, 2*time.Minute)
	var wg sync.WaitGroup
	for _, e := range [][2]string{{"pump", "pump-1"}, {"automotive-radar", "radar-1"}, {"can-bus", "can-1"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := runExample(ctx, s, nats, bins, e[0], e[1], 4*time.Second).CombinedOutput(); err != nil {
				t.Errorf("example %s: %v\n%s", e[0], err, out)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	pumpsOnly := keyPair{ID: "AKIAPUMPSONLY0000001", Secret: "pumpsonlysecret0123456789"}

	t.Run("page and assets without a signature", func(t *testing.T) {
		for _, p := range []string{"/", "/console/", "/console/app.js", "/console/console.css"} {
			resp, err := http.Get(s.URL + p)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || len(body) == 0 {
				t.Errorf("GET %s: HTTP %d", p, resp.StatusCode)
				continue
			}
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "http") || strings.Contains(csp, "unsafe") {
				t.Errorf("GET %s: Content-Security-Policy %q lets in more than this origin", p, csp)
			}
			etag := resp.Header.Get("ETag")
			req, _ := http.NewRequest(http.MethodGet, s.URL+p, nil)
			req.Header.Set("If-None-Match", etag)
			again, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			again.Body.Close()
			if etag == "" || again.StatusCode != http.StatusNotModified {
				t.Errorf("GET %s with If-None-Match %s: HTTP %d, want 304", p, etag, again.StatusCode)
			}
		}
		// The root alone: a path below it still needs a signature.
		if resp, err := http.Get(s.URL + "/streams"); err != nil {
			t.Fatal(err)
		} else if resp.Body.Close(); resp.StatusCode != 403 || resp.Header.Get("x-amzn-ErrorType") != "MissingAuthenticationTokenException" {
			t.Errorf("unsigned GET /streams: HTTP %d %s, want 403 MissingAuthenticationTokenException", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
		}
		// Data is not: an unsigned GET of the console's data is refused.
		resp, err := http.Get(s.URL + "/v1/overview")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("x-amzn-ErrorType") != "MissingAuthenticationTokenException" {
			t.Errorf("unsigned GET /v1/overview: HTTP %d %s, want 403 MissingAuthenticationTokenException", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
		}
	})

	t.Run("overview and grants", func(t *testing.T) {
		for _, tc := range []struct {
			key  keyPair
			want []string
		}{{s.Key, []string{"can-1", "pump-1", "radar-1"}}, {pumpsOnly, []string{"pump-1"}}} {
			resp := signedGet(t, s, tc.key, "/v1/overview", nil)
			var o struct {
				Streams []struct {
					Name, State     string
					StoredBytes     int64
					StoredFragments int
					Tracks          []struct{ Kind string }
				}
			}
			err := json.NewDecoder(resp.Body).Decode(&o)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET /v1/overview as %s: HTTP %d, %v", tc.key.ID, resp.StatusCode, err)
			}
			var names []string
			for _, st := range o.Streams {
				names = append(names, st.Name)
				if st.StoredBytes <= 0 || st.StoredFragments <= 0 || len(st.Tracks) == 0 || st.State == "empty" {
					t.Errorf("stream %+v: nothing stored or no tracks", st)
				}
			}
			if fmt.Sprint(names) != fmt.Sprint(tc.want) {
				t.Errorf("key %s sees streams %v, want %v", tc.key.ID, names, tc.want)
			}
		}
		resp := signedGet(t, s, pumpsOnly, "/v1/preview", url.Values{"stream": {"radar-1"}})
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("x-amzn-ErrorType") != "AccessDeniedException" {
			t.Errorf("a preview of a stream outside the key's grant: HTTP %d %s, want 403 AccessDeniedException", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
		}
	})

	t.Run("preview", func(t *testing.T) {
		for _, stream := range []string{"pump-1", "radar-1", "can-1"} {
			resp := signedGet(t, s, s.Key, "/v1/preview", url.Values{"stream": {stream}, "width": {"300"}, "height": {"80"}})
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
				t.Errorf("preview of %s: HTTP %d %s: %s", stream, resp.StatusCode, resp.Header.Get("Content-Type"), body)
				continue
			}
			img, err := png.Decode(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("preview of %s: %v", stream, err)
			}
			if b := img.Bounds(); b.Dx() != 300 || b.Dy() != 80 {
				t.Errorf("preview of %s is %v, want 300×80", stream, b)
			}
			if n := inked(img); n < 100 {
				t.Errorf("preview of %s has %d coloured pixels: blank", stream, n)
			}
		}
		for _, tc := range []struct {
			q      url.Values
			status int
			code   string
		}{
			{url.Values{"stream": {"no-such-stream"}}, 404, "ResourceNotFoundException"},
			{url.Values{"stream": {"pump-1"}, "width": {"0"}}, 400, "InvalidArgumentException"},
			{url.Values{"stream": {"pump-1"}, "from": {"2026-01-02T00:00:00Z"}, "to": {"2026-01-01T00:00:00Z"}}, 400, "InvalidArgumentException"},
			{url.Values{"stream": {"pump-1"}, "from": {"yesterday"}}, 400, "InvalidArgumentException"},
			{url.Values{}, 400, "InvalidArgumentException"},
		} {
			resp := signedGet(t, s, s.Key, "/v1/preview", tc.q)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("x-amzn-ErrorType") != tc.code {
				t.Errorf("preview %v: HTTP %d %s (%s), want %d %s", tc.q, resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), body, tc.status, tc.code)
			}
		}
	})

	t.Run("coverage", func(t *testing.T) {
		resp := signedGet(t, s, s.Key, "/v1/coverage", url.Values{"stream": {"pump-1"}, "from": {"0"}})
		var c struct {
			Spans []struct {
				Start, End float64
				Fragments  int
			}
		}
		err := json.NewDecoder(resp.Body).Decode(&c)
		resp.Body.Close()
		if err != nil || len(c.Spans) != 1 || c.Spans[0].Fragments < 2 || c.Spans[0].End-c.Spans[0].Start < 3000 {
			t.Errorf("coverage of 4 s of pump: %+v (%v), want one span of its fragments", c, err)
		}
	})

	t.Run("export equals query", func(t *testing.T) {
		var c struct{ Spans []struct{ Start float64 } }
		resp := signedGet(t, s, s.Key, "/v1/coverage", url.Values{"stream": {"pump-1"}, "from": {"0"}})
		_ = json.NewDecoder(resp.Body).Decode(&c)
		resp.Body.Close()
		if len(c.Spans) == 0 {
			t.Fatal("no coverage")
		}
		start := int64(c.Spans[0].Start*1e6) + 500_000_000
		body := fmt.Sprintf(`{"stream":"pump-1","start":%d,"end":%d}`, start, start+1_000_000_000)
		want := readArrowStream(t, signedPost(t, s, "/v1/query", body))
		pq := signedPost(t, s, "/v1/export?format=parquet", body)
		got := readParquet(t, pq)
		if want.NumRows() != 25600 || got.NumRows() != want.NumRows() || got.NumCols() != want.NumCols() {
			t.Fatalf("the Parquet export has %d rows × %d columns, the query of the same second %d × %d", got.NumRows(), got.NumCols(), want.NumRows(), want.NumCols())
		}
		for i := range int(want.NumCols()) {
			w, g := want.Column(i), got.Column(i)
			if w.Name() != g.Name() || !arrow.TypeEqual(w.DataType(), g.DataType()) || !array.ChunkedEqual(w.Data(), g.Data()) {
				t.Errorf("column %d: the Parquet export's %s %s differs from the query's %s %s", i, g.Name(), g.DataType(), w.Name(), w.DataType())
			}
			// The Parquet reader adds its PARQUET:field_id; the query's own keys (the unit) must be kept.
			for k, key := range w.Field().Metadata.Keys() {
				if i := g.Field().Metadata.FindKey(key); i < 0 || g.Field().Metadata.Values()[i] != w.Field().Metadata.Values()[k] {
					t.Errorf("column %s: metadata %v in the export, %v in the query", w.Name(), g.Field().Metadata, w.Field().Metadata)
				}
			}
		}
		csvBody := signedPost(t, s, "/v1/export?format=csv", body)
		lines := strings.Split(strings.TrimSuffix(string(csvBody), "\n"), "\n")
		if len(lines) != int(want.NumRows())+1 || lines[0] != "time,x,y,z" {
			t.Errorf("the CSV export has %d lines (header %q), want a header and %d rows", len(lines), lines[0], want.NumRows())
		}
		resp2 := signedPostResp(t, s, "/v1/export?format=xlsx", body)
		if resp2.StatusCode != 400 || resp2.Header.Get("x-amzn-ErrorType") != "InvalidArgumentException" {
			t.Errorf("an export to xlsx: HTTP %d %s, want 400 InvalidArgumentException", resp2.StatusCode, resp2.Header.Get("x-amzn-ErrorType"))
		}
	})

	// The sampled envelope: each column's min and max are those of one
	// stored frame inside the column, so they lie within the exact min/max
	// of the column's samples, and equal the frame's own.
	t.Run("envelope", func(t *testing.T) {
		var c struct {
			Spans []struct{ Start, End float64 }
		}
		resp := signedGet(t, s, s.Key, "/v1/coverage", url.Values{"stream": {"pump-1"}, "from": {"0"}})
		_ = json.NewDecoder(resp.Body).Decode(&c)
		resp.Body.Close()
		from, to := int64(c.Spans[0].Start*1e6), int64(c.Spans[0].End*1e6)
		resp = signedGet(t, s, s.Key, "/v1/envelope", url.Values{"stream": {"pump-1"}, "track": {"1"}, "from": {strconv.FormatInt(from, 10)}, "to": {strconv.FormatInt(to, 10)}, "columns": {"8"}})
		var e struct {
			Channels []string
			Columns  []struct {
				Start, End float64
				Min, Max   []float64
			}
		}
		err := json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || len(e.Columns) != 8 || fmt.Sprint(e.Channels) != "[x y z]" {
			t.Fatalf("envelope: HTTP %d, %v, %+v", resp.StatusCode, err, e)
		}
		filled := 0
		for i, col := range e.Columns {
			if col.Min == nil {
				continue
			}
			filled++
			// the frame's samples, by a query of its span
			start, end := int64(col.Start*1e6)-1000, int64(col.End*1e6)+1000
			tbl := readArrowStream(t, signedPost(t, s, "/v1/query", fmt.Sprintf(`{"stream":"pump-1","start":%d,"end":%d}`, start, end)))
			for k := range e.Channels {
				mn, mx := math.Inf(1), math.Inf(-1)
				for _, chunk := range tbl.Column(k + 1).Data().Chunks() {
					for _, v := range chunk.(*array.Float32).Float32Values() {
						mn, mx = min(mn, float64(v)), max(mx, float64(v))
					}
				}
				if mn != col.Min[k] || mx != col.Max[k] {
					t.Errorf("column %d channel %s: envelope [%v, %v], the frame's samples [%v, %v]", i, e.Channels[k], col.Min[k], col.Max[k], mn, mx)
				}
			}
			if mid := float64(from) + (float64(i)+0.5)*float64(to-from)/8; col.Start*1e6 > mid+1e6 || col.End*1e6 < float64(from)+float64(i)*float64(to-from)/8-200e6 {
				t.Errorf("column %d's frame [%v, %v] is not the one at its middle %v", i, col.Start, col.End, mid/1e6)
			}
		}
		if filled < 7 {
			t.Errorf("%d of 8 columns of a stored span have a frame", filled)
		}
		resp = signedGet(t, s, s.Key, "/v1/envelope", url.Values{"stream": {"radar-1"}, "from": {strconv.FormatInt(from, 10)}, "to": {strconv.FormatInt(to, 10)}})
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("an envelope of RADAR detections: HTTP %d, want 400", resp.StatusCode)
		}
	})

	t.Run("live", func(t *testing.T) {
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		req, _ := http.NewRequestWithContext(lctx, http.MethodGet, presignGet(t, s, "/v1/live", url.Values{"stream": {"pump-1"}}), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("GET /v1/live: HTTP %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		cmd := runExample(lctx, s, nats, bins, "pump", "pump-1", 10*time.Second)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = cmd.Wait() }()
		events := readEvents(resp.Body, "frame", 20)
		if len(events) < 20 {
			t.Fatalf("%d live frames in the feed, want 20", len(events))
		}
		var lat []float64
		for _, e := range events {
			var ev struct {
				Time, Duration, T0, Step float64
				Rows, Buckets            int
				Kind, Error              string
				Columns                  []struct{ Name, Unit, Values, Min, Max string }
			}
			if err := json.Unmarshal([]byte(e.data), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Error != "" || ev.Kind != "scalar" || ev.Rows == 0 || len(ev.Columns) != 3 || ev.Columns[0].Unit != "g" || (ev.Columns[0].Values == "" && ev.Columns[0].Min == "") {
				t.Fatalf("live event %s", e.data)
			}
			lat = append(lat, float64(e.at.UnixNano())/1e6-(ev.Time+ev.Duration))
		}
		t.Logf("live frames, end of frame → received: %v ms", fmtMs(lat))
	})
}

func readArrowStream(t *testing.T, b []byte) arrow.Table {
	t.Helper()
	r, err := ipc.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	var recs []arrow.RecordBatch
	for r.Next() {
		rec := r.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return array.NewTableFromRecords(r.Schema(), recs)
}

func readParquet(t *testing.T, b []byte) arrow.Table {
	t.Helper()
	f, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the export is not a Parquet file: %v", err)
	}
	fr, err := pqarrow.NewFileReader(f, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// signedPostResp posts body signed with s.Key and returns the response.
func signedPostResp(t *testing.T, s *server, path, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	signer := v4.NewSigner(credsv1.NewStaticCredentials(s.Key.ID, s.Key.Secret, ""))
	if _, err := signer.Sign(req, strings.NewReader(body), "kinesisvideo", s.Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

type sseEvent struct {
	name, data string
	at         time.Time
}

// readEvents reads Server-Sent Events until n of the named kind arrived
// or the body ends.
func readEvents(r io.Reader, name string, n int) []sseEvent {
	var out []sseEvent
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.name == name {
				ev.at = time.Now()
				out = append(out, ev)
				if len(out) == n {
					return out
				}
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = strings.TrimPrefix(line, "data: ")
		}
	}
	return out
}

func fmtMs(v []float64) string {
	var b strings.Builder
	for i, x := range v {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(strconv.FormatFloat(x, 'f', 0, 64))
	}
	return b.String()
}

// inked counts the pixels in colour (data), not white nor grey.
func inked(img image.Image) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if max(r, g, bl)-min(r, g, bl) > 60<<8 {
				n++
			}
		}
	}
	return n
}

// TestConsoleLiveCost measures what ten browsers following a stream live
// cost the server: its CPU time (from /proc) over the same window of the
// same producer with no follower and with ten, the difference being the
// followers' cost. The bound is 5 % of a core.
func TestConsoleLiveCost(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc: the server's CPU time cannot be read here")
	}
	if raceEnabled {
		t.Skip("the race detector's cost would be measured, not the feed's")
	}
	s := startServer(t)
	nats := s.natsURL(t)
	bins := buildExamples(t)
	ctx := testContext(t, 2*time.Minute)
	cmd := runExample(ctx, s, nats, bins, "pump", "pump-1", 40*time.Second)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	window := 5 * time.Second
	if v := os.Getenv("SENSORIUM_CONSOLE_COST_SECONDS"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 && n <= 30 {
			window = time.Duration(n) * time.Second
		}
	}
	time.Sleep(2 * time.Second) // the stream exists and ingest has settled
	base := cpuOver(t, s, window)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var frames sync.WaitGroup
	counts := make([]int, 10)
	for i := range counts {
		req, _ := http.NewRequestWithContext(lctx, http.MethodGet, presignGet(t, s, "/v1/live", url.Values{"stream": {"pump-1"}}), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		frames.Add(1)
		go func() {
			defer frames.Done()
			defer resp.Body.Close()
			counts[i] = len(readEvents(resp.Body, "frame", 1<<30))
		}()
	}
	withTen := cpuOver(t, s, window)
	cancel()
	frames.Wait()
	extra := withTen - base
	t.Logf("server CPU: %.1f %% of a core ingesting the pump alone, %.1f %% with ten live followers: they cost %.1f %% (frames each: %v)",
		100*base, 100*withTen, 100*extra, counts)
	for i, n := range counts {
		if n < int(window.Seconds()) {
			t.Errorf("follower %d got %d frames in %v", i, n, window)
		}
	}
	if extra > 0.05 {
		t.Errorf("ten live followers cost the server %.1f %% of a core, over the 5 %% bound", 100*extra)
	}
}

// cpuOver is the server's CPU time over d, in cores.
func cpuOver(t *testing.T, s *server, d time.Duration) float64 {
	t.Helper()
	a := procCPU(t, s.cmd.Process.Pid)
	t0 := time.Now()
	time.Sleep(d)
	b := procCPU(t, s.cmd.Process.Pid)
	return (b - a).Seconds() / time.Since(t0).Seconds()
}

// procCPU reads a process's user + system time from /proc/PID/stat.
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}
