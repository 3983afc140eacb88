package server

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/sdk"
)

// The server keeps per-second summaries of what it stores and answers
// aggregate queries on whole-second windows from them (counted on
// /metrics); the same queries on a server started with NoSummaries, over
// the same data folder, decode every sample and give the same windows.
func TestServerAggregatesFromSummaries(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir)
	ctx := context.Background()
	_, nc := newStream(t, srv, "vib", 1)
	track, _ := sdk.ScalarTrack(1, "vibration", pumpDesc)
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "vib", Tracks: []sdk.Track{track}, MinFragmentDuration: time.Second, MaxFragmentDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const seconds = 12
	origin := time.Now().Add(-time.Hour).Truncate(time.Second).UnixNano() + 250_000_000 // mid-second: fragments cut seconds
	w, err := sdk.NewSampleWriter(p, 1, pumpDesc, sdk.SampleWriterOptions{Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]float32, 3*1000*seconds)
	for i := range 1000 * seconds {
		for ch := range 3 {
			buf[3*i+ch] = sampleValue(int64(i), ch)
		}
	}
	if err := w.WriteFloat32(ctx, buf); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	stored := 0
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		u, err := srv.Store().Usage("vib")
		if err != nil {
			return err
		}
		stored = u.Fragments
		if done, failed := srv.sum.Summarised(); failed != 0 || done < uint64(stored) || stored < seconds {
			return fmt.Errorf("%d of %d fragments summarised, %d failed", done, stored, failed)
		}
		return nil
	})

	start := time.Unix(0, origin).Truncate(time.Second)
	queries := []sdk.QueryInput{
		{Stream: "vib", Shape: "aggregate", Window: &sdk.QueryWindow{Length: 1000}, Start: start, End: start.Add(time.Hour)},
		{Stream: "vib", Shape: "aggregate", Fields: []string{"z"}, Window: &sdk.QueryWindow{Length: 3000, Hop: 1000}, Start: start.Add(2 * time.Second), End: start.Add(9500 * time.Millisecond)},
	}
	read := func(srv *Server) [][][]float64 {
		c := sdk.NewClient(srv.HTTPURL(), nil)
		var out [][][]float64
		for _, q := range queries {
			res, err := c.Query(ctx, q, nil)
			if err != nil {
				t.Fatal(err)
			}
			var cols [][]float64
			for res.Next() {
				rec := res.RecordBatch()
				if cols == nil {
					cols = make([][]float64, rec.NumCols())
				}
				for i := range cols {
					cols[i] = appendFloats(t, cols[i], rec.Column(i))
				}
			}
			if err := res.Err(); err != nil {
				t.Fatal(err)
			}
			res.Close()
			out = append(out, cols)
		}
		return out
	}
	fromSummaries := read(srv)
	if used := srv.q.SummariesUsed(); used < seconds-2 {
		t.Errorf("%d fragments were read from summaries; want most of the %d", used, stored)
	}
	if got := metric(t, srv, "sensorium_query_fragments_from_summaries_total"); got == "" || got == "0" {
		t.Errorf("/metrics says %q fragments were read from summaries", got)
	}
	if got := metric(t, srv, "sensorium_query_fragments_summarised_total"); got != fmt.Sprint(stored) {
		t.Errorf("/metrics says %s fragments were summarised, want %d", got, stored)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	plain, err := Start(ctx, Config{DataDir: dir, NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: testLogger(t), NoSummaries: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plain.Shutdown(context.Background()) })
	decoded := read(plain)
	if used := plain.q.SummariesUsed(); used != 0 {
		t.Errorf("with NoSummaries, %d fragments were read from summaries", used)
	}
	for qi := range queries {
		a, b := fromSummaries[qi], decoded[qi]
		if len(a) != len(b) || len(a) == 0 || len(a[0]) != len(b[0]) || len(a[0]) < 5 {
			t.Fatalf("query %d: %d columns of %d rows from summaries, %d of %d decoded", qi, len(a), rowsOf(a), len(b), rowsOf(b))
		}
		for c := range a {
			for r := range a[c] {
				if x, y := a[c][r], b[c][r]; x != y && math.Abs(x-y) > 1e-9*max(1, math.Abs(y)) {
					t.Fatalf("query %d: row %d column %d is %v from summaries, %v decoded", qi, r, c, x, y)
				}
			}
		}
	}
}

func rowsOf(cols [][]float64) int {
	if len(cols) == 0 {
		return 0
	}
	return len(cols[0])
}

// appendFloats appends a column's values as float64s.
func appendFloats(t *testing.T, dst []float64, col arrow.Array) []float64 {
	t.Helper()
	for i := range col.Len() {
		switch c := col.(type) {
		case *array.Timestamp:
			dst = append(dst, float64(c.Value(i)))
		case *array.Int64:
			dst = append(dst, float64(c.Value(i)))
		case *array.Float32:
			dst = append(dst, float64(c.Value(i)))
		case *array.Float64:
			dst = append(dst, c.Value(i))
		default:
			t.Fatalf("a %s column in an aggregate", col.DataType())
		}
	}
	return dst
}

// metric is the value of an unlabelled metric on srv's /metrics, "" when absent.
func metric(t *testing.T, srv *Server, name string) string {
	t.Helper()
	resp, err := http.Get(srv.HTTPURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}
