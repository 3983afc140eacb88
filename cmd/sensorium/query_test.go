package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// `sensorium query` writes the same samples as Parquet (read back with
// pqarrow) and CSV; a list column cannot go to CSV and says why.
func TestQueryToParquetAndCSV(t *testing.T) {
	srv, err := server.Start(context.Background(), server.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	ctx := context.Background()
	client := sdk.NewClient(srv.HTTPURL(), nil)
	if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: "t", DataRetentionInHours: 1}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	desc := &signals.Scalar{SampleRate: 100, SampleType: signals.Float64, Channels: []signals.Channel{{Name: "temp", Unit: "°C"}}}
	track, _ := sdk.ScalarTrack(1, "t", desc)
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "t", Tracks: []sdk.Track{track}})
	if err != nil {
		t.Fatal(err)
	}
	origin := time.Now().Add(-time.Minute).Truncate(time.Second)
	w, _ := sdk.NewSampleWriter(p, 1, desc, sdk.SampleWriterOptions{Origin: origin.UnixNano()})
	vals := make([]float64, 1000)
	for i := range vals {
		vals[i] = float64(i) / 4
	}
	if err := w.WriteFloat64(ctx, vals); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	run := func(args ...string) error {
		root := newRoot()
		root.SetArgs(append(args, "--endpoint", srv.HTTPURL()))
		return root.ExecuteContext(ctx)
	}
	start := origin.Add(-time.Second).Format(time.RFC3339Nano)

	pq := filepath.Join(dir, "t.parquet")
	if err := run("query", "t", "--start", start, "-o", pq); err != nil {
		t.Fatal(err)
	}
	f, err := file.OpenParquetFile(pq, false)
	if err != nil {
		t.Fatal(err)
	}
	fr, err := pqarrow.NewFileReader(f, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	if tbl.NumRows() != int64(len(vals)) {
		t.Fatalf("parquet holds %d rows, want %d", tbl.NumRows(), len(vals))
	}
	col := tbl.Column(1).Data().Chunk(0).(*array.Float64)
	if col.Value(7) != vals[7] || tbl.Schema().Field(1).Name != "temp" {
		t.Errorf("parquet column: %v, schema %v", col.Value(7), tbl.Schema())
	}

	cs := filepath.Join(dir, "t.csv")
	if err := run("query", "t", "--start", start, "-o", cs); err != nil {
		t.Fatal(err)
	}
	fh, _ := os.Open(cs)
	recs, err := csv.NewReader(fh).ReadAll()
	fh.Close()
	if err != nil || len(recs) != len(vals)+1 || recs[0][1] != "temp" {
		t.Fatalf("csv: %d lines, header %v, %v", len(recs), recs[0], err)
	}
	if v, _ := strconv.ParseFloat(recs[11][1], 64); v != vals[10] {
		t.Errorf("csv row 10: %v", recs[11])
	}
	if err := run("query", "t", "--start", start, "-o", filepath.Join(dir, "t.xlsx")); err == nil || !strings.Contains(err.Error(), ".parquet") {
		t.Errorf("an unknown extension: %v", err)
	}

	// Windows as Parquet: a fixed-size list per channel, read back with pqarrow.
	wq := filepath.Join(dir, "w.parquet")
	if err := run("query", "t", "--start", origin.Format(time.RFC3339Nano), "--shape", "windows", "--window", "100", "--hop", "50", "-o", wq); err != nil {
		t.Fatal(err)
	}
	wt := readParquet(t, wq)
	defer wt.Release()
	if wt.NumRows() != 19 || wt.Schema().Field(2).Name != "temp" || wt.Schema().Field(2).Type.ID() != arrow.FIXED_SIZE_LIST {
		t.Fatalf("windows parquet: %d rows, schema %v", wt.NumRows(), wt.Schema())
	}
	fl := wt.Column(2).Data().Chunk(0).(*array.FixedSizeList)
	if v := fl.ListValues().(*array.Float64).Value(3*100 + 7); v != vals[3*50+7] {
		t.Errorf("window 3 value 7: %v, want %v", v, vals[3*50+7])
	}
	if err := run("query", "t", "--start", start, "--shape", "windows", "--window", "10", "-o", filepath.Join(dir, "w.csv")); err == nil || !strings.Contains(err.Error(), "list column") {
		t.Errorf("windows to csv: %v", err)
	}

	// 1 s statistics as CSV: a row per window, its count, and the ones asked for.
	ag := filepath.Join(dir, "agg.csv")
	if err := run("query", "t", "--start", origin.Format(time.RFC3339Nano), "--shape", "aggregate", "--window", "100", "--aggregates", "min,max,mean", "-o", ag); err != nil {
		t.Fatal(err)
	}
	fh, _ = os.Open(ag)
	recs, err = csv.NewReader(fh).ReadAll()
	fh.Close()
	if err != nil || len(recs) != 11 || strings.Join(recs[0], ",") != "start,count,temp_min,temp_max,temp_mean" {
		t.Fatalf("aggregate csv: %d lines, header %v, %v", len(recs), recs[0], err)
	}
	for k, rec := range recs[1:] {
		want := []float64{100, 25 * float64(k), float64(100*k+99) / 4, (float64(100*k) + 49.5) / 4}
		for i, w := range want {
			if v, _ := strconv.ParseFloat(rec[i+1], 64); v != w {
				t.Fatalf("aggregate window %d: %v, want %v", k, rec, want)
			}
		}
	}

	// Aligned onto a 10 Hz grid, linear, as Arrow.
	aq := filepath.Join(dir, "a.arrow")
	if err := run("query", "t", "--start", origin.Format(time.RFC3339Nano), "--end", origin.Add(2*time.Second).Format(time.RFC3339Nano),
		"--shape", "aligned", "--rate", "10", "--interpolation", "linear", "-o", aq); err != nil {
		t.Fatal(err)
	}
	at := readArrow(t, aq)
	defer at.Release()
	if at.NumRows() != 20 || at.Schema().Field(1).Name != "t.temp" {
		t.Fatalf("aligned: %d rows, schema %v", at.NumRows(), at.Schema())
	}
	if v := at.Column(1).Data().Chunk(0).(*array.Float64).Value(3); v != vals[30] {
		t.Errorf("aligned row 3: %v, want %v", v, vals[30])
	}

	// Usage errors cost no request and name the flag.
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"query", "t", "--start", start, "--shape", "windows"}, "--window"},
		{[]string{"query", "t", "--start", start, "--shape", "aligned", "--rate", "10"}, "--interpolation"},
		{[]string{"query", "t", "--start", start, "--shape", "aligned", "--interpolation", "none", "--reference", "3"}, "--reference"},
		{[]string{"query", "t", "--start", start, "--input", "u"}, "--shape aligned"},
		{[]string{"query", "t", "--start", start, "--shape", "cubes"}, "--shape"},
		{[]string{"query", "t", "--start", start, "--aggregates", "min"}, "--shape aggregate"},
		{[]string{"query", "t", "--start", start, "--shape", "aggregate"}, "--window"},
		{[]string{"query", "--start", start}, "stream name"},
	} {
		err := run(bad.args...)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: %v, want a usage error naming %s", bad.args, err, bad.want)
		}
	}
}

// `sensorium query --follow` writes the stored rows, then follows; stopped
// (Ctrl-C: the context ends) it leaves a complete Arrow IPC stream.
func TestQueryFollowStops(t *testing.T) {
	srv, err := server.Start(context.Background(), server.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	origin := writeTemps(t, srv, 1000)
	path := filepath.Join(t.TempDir(), "live.arrows")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		root := newRoot()
		root.SetArgs([]string{"query", "t", "--start", origin.Format(time.RFC3339Nano), "--follow", "-o", path, "--endpoint", srv.HTTPURL()})
		done <- root.ExecuteContext(ctx)
	}()
	// The 1000 stored rows (16 kB of time and value) are in the file.
	poll.Until(t, 20*time.Second, 10*time.Millisecond, func() error {
		if fi, err := os.Stat(path); err != nil || fi.Size() < 16000 {
			return fmt.Errorf("the live query wrote %v, %v", fi, err)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("stopped: %v", err)
	}
	tbl := readArrow(t, path)
	defer tbl.Release()
	if tbl.NumRows() != 1000 {
		t.Fatalf("the stopped live query's file holds %d rows, want 1000", tbl.NumRows())
	}
}

// writeTemps makes stream t of n samples of a 100 Hz temperature, sample i
// i/4 °C, from a second a minute ago.
func writeTemps(t *testing.T, srv *server.Server, n int) time.Time {
	t.Helper()
	ctx := context.Background()
	client := sdk.NewClient(srv.HTTPURL(), nil)
	if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: "t", DataRetentionInHours: 1}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	desc := &signals.Scalar{SampleRate: 100, SampleType: signals.Float64, Channels: []signals.Channel{{Name: "temp", Unit: "°C"}}}
	track, _ := sdk.ScalarTrack(1, "t", desc)
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "t", Tracks: []sdk.Track{track}})
	if err != nil {
		t.Fatal(err)
	}
	origin := time.Now().Add(-time.Minute).Truncate(time.Second)
	w, _ := sdk.NewSampleWriter(p, 1, desc, sdk.SampleWriterOptions{Origin: origin.UnixNano()})
	vals := make([]float64, n)
	for i := range vals {
		vals[i] = float64(i) / 4
	}
	if err := w.WriteFloat64(ctx, vals); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return origin
}

func readParquet(t *testing.T, path string) arrow.Table {
	t.Helper()
	f, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
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

// readArrow reads what `sensorium query -o path` wrote: an Arrow IPC file
// (.arrow, .ipc), which must open with ipc.NewFileReader, or an Arrow IPC
// stream (.arrows), which must end with its end-of-stream marker.
func readArrow(t *testing.T, path string) arrow.Table {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []arrow.RecordBatch
	var schema *arrow.Schema
	if ext := filepath.Ext(path); ext == ".arrow" || ext == ".ipc" {
		r, err := ipc.NewFileReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s is not an Arrow IPC file: %v", path, err)
		}
		defer r.Close()
		schema = r.Schema()
		for i := 0; i < r.NumRecords(); i++ {
			rec, err := r.RecordBatch(i)
			if err != nil {
				t.Fatal(err)
			}
			rec.Retain()
			recs = append(recs, rec)
		}
	} else {
		if eos := []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}; !bytes.HasSuffix(b, eos) {
			t.Fatalf("%s does not end with the IPC end-of-stream marker", path)
		}
		r, err := ipc.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		schema = r.Schema()
		for r.Next() {
			rec := r.RecordBatch()
			rec.Retain()
			recs = append(recs, rec)
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
	}
	tbl := array.NewTableFromRecords(schema, recs)
	for _, rec := range recs {
		rec.Release()
	}
	return tbl
}
