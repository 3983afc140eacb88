package main

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/server"
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
}
