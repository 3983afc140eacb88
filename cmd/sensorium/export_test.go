package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/sensorium-io/sensorium/internal/platform/tablefile"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// The extension chooses the Arrow IPC format by Arrow's names: .arrow (and
// .ipc) the file format, which ipc.NewFileReader opens by its footer;
// .arrows the stream format. A live query refuses .arrow, naming .arrows.
func TestQueryArrowFileAndStream(t *testing.T) {
	srv := startServer(t)
	origin := writeTemps(t, srv, 1000)
	dir := t.TempDir()
	start := origin.Add(-time.Second).Format(time.RFC3339Nano)
	for _, name := range []string{"t.arrow", "t.ipc", "t.arrows"} {
		path := filepath.Join(dir, name)
		if code, stderr := runCLI(t, "query", "t", "--start", start, "-o", path, "--endpoint", srv.HTTPURL()); code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, stderr)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		var rows int64
		var schema *arrow.Schema
		if name == "t.arrows" {
			if bytes.HasPrefix(b, []byte("ARROW1")) {
				t.Fatalf("%s has the file format's magic", name)
			}
			r, err := ipc.NewReader(bytes.NewReader(b), ipc.WithAllocator(mem))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for r.Next() {
				rows += r.RecordBatch().NumRows()
			}
			if err := r.Err(); err != nil {
				t.Fatal(err)
			}
			schema = r.Schema()
			r.Release()
		} else {
			if !bytes.HasPrefix(b, []byte("ARROW1")) || !bytes.HasSuffix(b, []byte("ARROW1")) {
				t.Fatalf("%s does not begin and end with the Arrow file magic", name)
			}
			r, err := ipc.NewFileReader(bytes.NewReader(b), ipc.WithAllocator(mem))
			if err != nil {
				t.Fatalf("%s is not an Arrow IPC file: %v", name, err)
			}
			for i := 0; i < r.NumRecords(); i++ {
				rec, err := r.RecordBatchAt(i)
				if err != nil {
					t.Fatal(err)
				}
				rows += rec.NumRows()
				rec.Release()
			}
			schema = r.Schema()
			r.Close()
		}
		mem.AssertSize(t, 0)
		if rows != 1000 || schema.Field(0).Name != "time" || schema.Field(1).Name != "temp" {
			t.Errorf("%s: %d rows, schema %v", name, rows, schema)
		}
	}

	live := filepath.Join(dir, "live.arrow")
	code, stderr := runCLI(t, "query", "t", "--start", start, "--follow", "-o", live, "--endpoint", srv.HTTPURL())
	if code != exitUsage || !strings.Contains(stderr, "live.arrows") {
		t.Errorf("--follow to .arrow: exit %d, %q; want 2 and a message naming live.arrows", code, stderr)
	}
	if _, err := os.Stat(live); !os.IsNotExist(err) {
		t.Errorf("the refused live query left a file: %v", err)
	}
}

// A range without samples exits 0, writes a valid file of every format —
// the schema (Arrow, Parquet), the header line (CSV) — and says on stderr
// what the stream holds.
func TestQueryEmptyRange(t *testing.T) {
	srv := startServer(t)
	origin := writeTemps(t, srv, 1000) // 10 s from origin
	dir := t.TempDir()
	before := []string{"--start", origin.Add(-time.Hour).Format(time.RFC3339Nano), "--end", origin.Add(-59 * time.Minute).Format(time.RFC3339Nano)}
	holds := fmt.Sprintf("0 rows; stream t holds %s %s–%s (UTC, producer time)",
		origin.UTC().Format(time.DateOnly), origin.UTC().Format(time.TimeOnly), origin.Add(10*time.Second).UTC().Format(time.TimeOnly))
	if origin.UTC().Format(time.DateOnly) != origin.Add(10*time.Second).UTC().Format(time.DateOnly) {
		holds = "0 rows; stream t holds " // the test ran across midnight (UTC)
	}
	for _, name := range []string{"e.arrow", "e.arrows", "e.parquet", "e.csv"} {
		path := filepath.Join(dir, name)
		code, stderr := runCLI(t, append([]string{"query", "t", "-o", path, "--endpoint", srv.HTTPURL()}, before...)...)
		if code != 0 || !strings.Contains(stderr, holds) {
			t.Errorf("%s: exit %d, stderr %q; want 0 and %q", name, code, stderr, holds)
		}
		switch filepath.Ext(name) {
		case ".arrow", ".arrows":
			tbl := readArrow(t, path)
			if tbl.NumRows() != 0 || tbl.Schema().Field(1).Name != "temp" || tbl.Schema().Field(0).Type.ID() != arrow.TIMESTAMP {
				t.Errorf("%s: %d rows, schema %v", name, tbl.NumRows(), tbl.Schema())
			}
			tbl.Release()
		case ".parquet":
			tbl := readParquet(t, path)
			if tbl.NumRows() != 0 || tbl.Schema().Field(1).Name != "temp" || tbl.Schema().Field(0).Type.ID() != arrow.TIMESTAMP {
				t.Errorf("%s: %d rows, schema %v", name, tbl.NumRows(), tbl.Schema())
			}
			tbl.Release()
		case ".csv":
			if b, _ := os.ReadFile(path); string(b) != "time,temp\n" {
				t.Errorf("%s holds %q, want the header line", name, b)
			}
		}
	}

	// A stream that never held a fragment has no schema to write: the server
	// refuses the query, saying so, and no file is left behind.
	if _, err := sdk.NewClient(srv.HTTPURL(), nil).CreateStream(context.Background(), sdk.CreateStreamInput{StreamName: "none", DataRetentionInHours: 1}); err != nil {
		t.Fatal(err)
	}
	none := filepath.Join(dir, "n.arrow")
	code, stderr := runCLI(t, append([]string{"query", "none", "-o", none, "--endpoint", srv.HTTPURL()}, before...)...)
	if code != exitFailure || !strings.Contains(stderr, "stream none holds no fragments") {
		t.Errorf("a stream without fragments: exit %d, %q; want 1 and a message that it holds no fragments", code, stderr)
	}
	if _, err := os.Stat(none); !os.IsNotExist(err) {
		t.Errorf("the refused query left a file: %v", err)
	}
}

// pumpStream writes seconds of the demo's pump (25.6 kHz, three float32
// axes of 24-bit ADC counts) to a server as stream demoStream. It returns
// the arguments that query them all, and the bytes the store keeps for those
// samples (the fragments' sizes, as ListFragments gives them).
func pumpStream(t *testing.T, seconds int) (query []string, storeBytes int64) {
	t.Helper()
	srv := startServer(t)
	ctx := context.Background()
	client := sdk.NewClient(srv.HTTPURL(), nil)
	if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: demoStream, DataRetentionInHours: 24}); err != nil {
		t.Fatal(err)
	}
	desc := &signals.Scalar{SampleRate: demoRate, SampleType: signals.Float32,
		Channels: []signals.Channel{{Name: "x", Unit: "g"}, {Name: "y", Unit: "g"}, {Name: "z", Unit: "g"}}}
	origin := time.Now().Add(-time.Duration(seconds) * time.Second).Truncate(time.Millisecond)
	if _, err := demoProduce(ctx, srv.NATSURL(), desc, origin, seconds); err != nil {
		t.Fatal(err)
	}
	for token, first := "", true; first || token != ""; first = false {
		page, next, err := client.ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName(demoStream), MaxResults: 1000, NextToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range page {
			storeBytes += f.FragmentSizeInBytes
		}
		token = next
	}
	return []string{"query", demoStream, "--start", origin.Format(time.RFC3339Nano),
		"--end", origin.Add(time.Duration(seconds) * time.Second).Format(time.RFC3339Nano), "--endpoint", srv.HTTPURL()}, storeBytes
}

// The Parquet file is laid out for readers: row groups of tablefile.ParquetRowGroupRows,
// zstd, the time column DELTA_BINARY_PACKED, the floats BYTE_STREAM_SPLIT,
// statistics on every column chunk — checked in the file's own metadata.
//
// Its size against the bytes the store keeps for the same samples is printed
// and bounded. For the pump (float32 samples of 24-bit ADC counts) it is
// 1.44: the time column costs nothing, but no Parquet encoding that every
// reader opens predicts floats the way the store's codec does (PLAIN, or
// BYTE_STREAM_SPLIT for zstd, are all there is), so 1.3 is out of reach
// without changing the column types; zstd level 19 only gets 1.41. Before
// these properties (plain floats and time, a row group per server batch) it
// was 2.28. The bound catches a return to that.
func TestQueryParquetLayout(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 50 s of 25.6 kHz vibration")
	}
	const seconds = 50 // 1.28 Mi rows: two row groups
	query, storeBytes := pumpStream(t, seconds)
	rows := int64(seconds * demoRate)
	path := filepath.Join(t.TempDir(), "pump.parquet")
	if code, stderr := runCLI(t, append(query, "-o", path)...); code != 0 {
		t.Fatalf("query: exit %d: %s", code, stderr)
	}
	f, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	md := f.MetaData()
	if md.NumRows != rows || f.NumRowGroups() != 2 || f.RowGroup(0).NumRows() != tablefile.ParquetRowGroupRows {
		t.Fatalf("%d rows in %d row groups (the first of %d); want %d in 2, the first of %d",
			md.NumRows, f.NumRowGroups(), f.RowGroup(0).NumRows(), rows, tablefile.ParquetRowGroupRows)
	}
	want := map[string]parquet.Encoding{"time": parquet.Encodings.DeltaBinaryPacked,
		"x": parquet.Encodings.ByteStreamSplit, "y": parquet.Encodings.ByteStreamSplit, "z": parquet.Encodings.ByteStreamSplit}
	for g := 0; g < f.NumRowGroups(); g++ {
		rg := md.RowGroup(g)
		for c := 0; c < rg.NumColumns(); c++ {
			cc, err := rg.ColumnChunk(c)
			if err != nil {
				t.Fatal(err)
			}
			name := cc.PathInSchema().String()
			if cc.Compression() != compress.Codecs.Zstd {
				t.Errorf("row group %d %s: compression %v", g, name, cc.Compression())
			}
			found := false
			for _, e := range cc.Encodings() {
				found = found || e == want[name]
			}
			if !found {
				t.Errorf("row group %d %s: encodings %v, want %v", g, name, cc.Encodings(), want[name])
			}
			if ok, err := cc.StatsSet(); !ok || err != nil {
				t.Errorf("row group %d %s: no statistics (%v)", g, name, err)
			} else if st, _ := cc.Statistics(); !st.HasMinMax() {
				t.Errorf("row group %d %s: statistics without min and max", g, name)
			}
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	ratio := float64(fi.Size()) / float64(storeBytes)
	t.Logf("parquet %d B, store %d B for the same %d samples × 3 axes: ratio %.3f", fi.Size(), storeBytes, rows, ratio)
	if ratio > 1.5 {
		t.Errorf("the Parquet file is %.2f times the store's bytes, want at most 1.5", ratio)
	}
}

// readersOut is what testdata/readers/check.mjs prints.
type readersOut struct {
	Arrow struct {
		IsFile  bool     `json:"isFile"`
		Batches int      `json:"batches"`
		Rows    int64    `json:"rows"`
		Fields  []string `json:"fields"`
	} `json:"arrow"`
	Parquet struct {
		Rows    int64    `json:"rows"`
		Columns []string `json:"columns"`
		Types   []string `json:"types"`
	} `json:"parquet"`
}

// Readers we did not write open what `sensorium query` writes: apache-arrow
// (JavaScript) reads a .arrow as an IPC file, by its footer, and DuckDB
// reads the Parquet with the right rows and columns, empty or not. They are
// npm packages installed by scripts/install-test-deps.sh (pinned by
// testdata/readers/package-lock.json); missing, the test fails under CI and
// is skipped elsewhere.
func TestQueryFilesOpenInOtherReaders(t *testing.T) {
	js, _ := filepath.Abs(filepath.Join("testdata", "readers"))
	_, nodeErr := exec.LookPath("node")
	_, arrowErr := os.Stat(filepath.Join(js, "node_modules", "apache-arrow"))
	_, duckErr := os.Stat(filepath.Join(js, "node_modules", "@duckdb", "node-api"))
	if nodeErr != nil || arrowErr != nil || duckErr != nil {
		msg := "node, apache-arrow or @duckdb/node-api is not installed: run scripts/install-test-deps.sh"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	srv := startServer(t)
	origin := writeTemps(t, srv, 1000)
	dir := t.TempDir()
	for _, c := range []struct {
		name       string
		start, end time.Time
		rows       int64
	}{
		{"full", origin, origin.Add(time.Minute), 1000},
		{"empty", origin.Add(-time.Hour), origin.Add(-59 * time.Minute), 0},
	} {
		arrowPath, pqPath := filepath.Join(dir, c.name+".arrow"), filepath.Join(dir, c.name+".parquet")
		for _, p := range []string{arrowPath, pqPath} {
			if code, stderr := runCLI(t, "query", "t", "--start", c.start.Format(time.RFC3339Nano), "--end", c.end.Format(time.RFC3339Nano),
				"-o", p, "--endpoint", srv.HTTPURL()); code != 0 {
				t.Fatalf("%s: exit %d: %s", p, code, stderr)
			}
		}
		cmd := exec.Command("node", filepath.Join(js, "check.mjs"), arrowPath, pqPath)
		cmd.Dir = js
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("node: %v\n%s", err, out)
		}
		var got readersOut
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if !got.Arrow.IsFile || got.Arrow.Rows != c.rows || strings.Join(got.Arrow.Fields, ",") != "time,temp" {
			t.Errorf("%s: apache-arrow read %+v, want an IPC file of %d rows", c.name, got.Arrow, c.rows)
		}
		if got.Parquet.Rows != c.rows || strings.Join(got.Parquet.Columns, ",") != "time,temp" || !strings.HasPrefix(got.Parquet.Types[0], "TIMESTAMP") {
			t.Errorf("%s: DuckDB read %+v, want %d rows of time, temp", c.name, got.Parquet, c.rows)
		}
	}
}
