package query

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sensorium-io/sensorium/store"
)

// BenchmarkAggregateFromSummaries is the console's plot of a long range of
// the pump (3 × 25.6 kHz, float32, 10 s fragments) at 1 s resolution: the
// aggregate shape with 1 s windows from a whole second, read from the
// per-second summaries, against the same query decoding every sample, in
// the same run (x-vs-decode). The store is encrypted, as a server's is.
// SENSORIUM_AGGREGATE_HOURS sizes it (default 1; 24 for the day,
// which stores about 10 GB and takes several minutes to make).
//
// It also reports what summarising costs: samples a second on one core
// (Msamples/s-summarised, against the pump's 76,800 a second), and the
// summaries' size as a part of the fragments' (summary-bytes-%).
func BenchmarkAggregateFromSummaries(b *testing.B) {
	hours := 1
	if v := os.Getenv("SENSORIUM_AGGREGATE_HOURS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("SENSORIUM_AGGREGATE_HOURS=%q is not a number of hours", v)
		}
		hours = n
	}
	key := make([]byte, 32)
	rand.Read(key)
	ring, err := store.KeyringFromEnv("bench=" + base64.StdEncoding.EncodeToString(key))
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{b}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := store.Open(store.Options{Dir: b.TempDir(), Logger: log, RetentionInterval: -1, Keyring: ring})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, err := st.CreateStream(store.CreateStreamInput{Name: "pump", RetentionHours: 24 * 365}); err != nil {
		b.Fatal(err)
	}
	svc := New(Options{Store: st, Logger: log})
	seconds := hours * 3600
	t0 := time.Now()
	start, end := pumpFragments(b, st, "pump", seconds)
	b.Logf("%d h of the pump stored in %v", hours, time.Since(t0).Round(time.Second))

	z := NewSummarizer(SummarizerOptions{Store: st, Logger: log, Share: 1})
	t1 := time.Now()
	for z.turn("pump") {
	}
	summarising := time.Since(t1)
	if done, failed := z.Summarised(); failed != 0 || done == 0 {
		b.Fatalf("%d fragments summarised, %d failed", done, failed)
	}
	samples := float64(seconds) * 25600 * 3

	req := Request{Stream: "pump", Start: start, End: end, Shape: "aggregate", Window: Window{Length: 25600}}
	query := func(req Request) int64 {
		p, err := svc.PrepareQuery(req)
		if err != nil {
			b.Fatal(err)
		}
		var rows int64
		if err := svc.QueryBatches(context.Background(), p, func(rec arrow.RecordBatch) error { rows += rec.NumRows(); return nil }); err != nil {
			b.Fatal(err)
		}
		if rows != int64(seconds) {
			b.Fatalf("%d windows of 1 s, want %d", rows, seconds)
		}
		return rows
	}
	decode := req
	decode.NoSummaries = true
	t2 := time.Now()
	query(decode)
	decoded := time.Since(t2)
	used := svc.SummariesUsed()
	for b.Loop() {
		query(req)
	}
	if svc.SummariesUsed() == used {
		b.Fatal("no summary was used")
	}
	per := b.Elapsed() / time.Duration(b.N)
	// The console's request for the range at 1,300 pixels: min and max in
	// windows of whole seconds, written as the Arrow IPC stream HTTP sends.
	console := req
	console.Window = Window{Length: 25600 * max(1, seconds/1300)}
	console.Aggregates = []string{"min", "max"}
	t3 := time.Now()
	const consoleRuns = 3
	for range consoleRuns {
		p, err := svc.PrepareQuery(console)
		if err != nil {
			b.Fatal(err)
		}
		if err := svc.Query(context.Background(), p, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	consolePer := time.Since(t3) / consoleRuns
	b.ReportMetric(consolePer.Seconds(), "s/console-plot")
	b.ReportMetric(per.Seconds(), "s/query")
	b.ReportMetric(decoded.Seconds()/per.Seconds(), "x-vs-decode")
	b.ReportMetric(samples/summarising.Seconds()/1e6, "Msamples/s-summarised")
	u, err := st.Usage("pump")
	if err != nil {
		b.Fatal(err)
	}
	var summaryBytes int64
	filepath.WalkDir(st.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), summaryFilePrefix) {
			if fi, err := d.Info(); err == nil {
				summaryBytes += fi.Size()
			}
		}
		return nil
	})
	b.ReportMetric(100*float64(summaryBytes)/float64(u.Bytes), "summary-bytes-%")
	b.Logf("%d h: %v from summaries, %v decoding every sample; the console's plot (%d s windows, IPC) %v; summarised in %v; summaries %d B of %d B stored",
		hours, per.Round(time.Millisecond), decoded.Round(time.Millisecond), max(1, seconds/1300), consolePer.Round(time.Millisecond),
		summarising.Round(time.Millisecond), summaryBytes, u.Bytes)
}
