package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// produceSignal puts n samples per channel of desc into a new stream, from
// origin, through a SampleWriter; sample k of channel c is value(k, c).
func produceSignal(t *testing.T, srv *server.Server, stream string, desc *signals.Scalar, origin time.Time, n int, value func(k, c int) float64) {
	t.Helper()
	ctx := context.Background()
	if _, err := sdk.NewClient(srv.HTTPURL(), nil).CreateStream(ctx, sdk.CreateStreamInput{StreamName: stream, DataRetentionInHours: 1}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	track, _ := sdk.ScalarTrack(1, stream, desc)
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: stream, Tracks: []sdk.Track{track}})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := sdk.NewSampleWriter(p, 1, desc, sdk.SampleWriterOptions{Origin: origin.UnixNano()})
	ch := len(desc.Channels)
	vals := make([]float32, n*ch)
	for k := 0; k < n; k++ {
		for c := 0; c < ch; c++ {
			vals[k*ch+c] = float32(value(k, c))
		}
	}
	if err := w.WriteFloat32(ctx, vals); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// dumpArrows reads an Arrow IPC stream file as text: the schema with its
// metadata, then a line per row (float bits, so that NaN compares).
func dumpArrows(t *testing.T, path string) (string, int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := ipc.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	var b strings.Builder
	for _, f := range r.Schema().Fields() {
		fmt.Fprintf(&b, "%s: %s %v; ", f.Name, f.Type, f.Metadata)
	}
	fmt.Fprintf(&b, "%v\n", r.Schema().Metadata())
	rows := 0
	for r.Next() {
		rec := r.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			for c := 0; c < int(rec.NumCols()); c++ {
				switch a := rec.Column(c).(type) {
				case *array.Timestamp:
					fmt.Fprintf(&b, "%d", a.Value(i))
				case *array.Float32:
					fmt.Fprintf(&b, " %08x", math.Float32bits(a.Value(i)))
				case *array.Float64:
					fmt.Fprintf(&b, " %016x", math.Float64bits(a.Value(i)))
				default:
					fmt.Fprintf(&b, " %v", a.ValueStr(i))
				}
			}
			b.WriteByte('\n')
			rows++
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String(), rows
}

// queryArrows writes stream's samples from start to end as an Arrow stream
// file and returns its dump.
func queryArrows(t *testing.T, ep, stream string, start, end time.Time) (string, int) {
	t.Helper()
	out := filepath.Join(t.TempDir(), stream+".arrows")
	code, stderr := runCLI(t, "query", stream, "--start", start.Format(time.RFC3339Nano), "--end", end.Format(time.RFC3339Nano), "-o", out, "--endpoint", ep)
	if code != 0 {
		t.Fatalf("query %s: exit %d: %s", stream, code, stderr)
	}
	return dumpArrows(t, out)
}

// What `sensorium query` writes — .arrow, .arrows, .parquet and .csv —
// imports into another stream, which queries back to the same samples:
// times to the ns, values to the bit (a NaN included), channel names,
// units and the rate. Importing the same file again stores nothing.
func TestImportTableRoundTrip(t *testing.T) {
	srv := startServer(t)
	ep := srv.HTTPURL()
	desc := &signals.Scalar{SampleRate: 1000, SampleType: signals.Float32,
		Channels: []signals.Channel{{Name: "x", Unit: "m/s²"}, {Name: "y", Unit: "m/s²"}, {Name: "z"}}}
	origin := time.Now().Add(-time.Hour).Truncate(time.Millisecond).Add(123456 * time.Nanosecond)
	const n = 25_000 // three chunks of 10 s
	produceSignal(t, srv, "src", desc, origin, n, func(k, c int) float64 {
		if k == 777 && c == 1 {
			return math.NaN()
		}
		return math.Sin(float64(k)/50+float64(c)) * 9.81
	})
	start, end := origin.Add(-time.Second), origin.Add(time.Minute)
	want, rows := queryArrows(t, ep, "src", start, end)
	if rows != n {
		t.Fatalf("the source stream holds %d rows, want %d", rows, n)
	}
	dir := t.TempDir()
	for _, ext := range []string{"arrow", "arrows", "parquet", "csv"} {
		t.Run(ext, func(t *testing.T) {
			file := filepath.Join(dir, "src."+ext)
			if code, stderr := runCLI(t, "query", "src", "--start", start.Format(time.RFC3339Nano), "--end", end.Format(time.RFC3339Nano), "-o", file, "--endpoint", ep); code != 0 {
				t.Fatalf("query: exit %d: %s", code, stderr)
			}
			stream := "copy-" + ext
			args := []string{"import", file, "--stream", stream, "--create", "--endpoint", ep, "--nats", srv.NATSURL()}
			if ext == "csv" {
				// CSV keeps neither the type, the units nor the rate: the
				// flags give the first two, the time column the third.
				args = append(args, "--type", "float32", "--units", "x=m/s²,y=m/s²")
			}
			code, stdout, stderr := runCLIOut(t, args...)
			if code != 0 || !strings.Contains(stdout, "25,000 samples × 3 channels (float32) at 1000 Hz") || !strings.Contains(stdout, "3 fragments stored") {
				t.Fatalf("import: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
			}
			got, _ := queryArrows(t, ep, stream, start, end)
			if got != want {
				t.Fatalf("%s reads back differently from src:\n%s\nwant\n%s", stream, head(got, 5), head(want, 5))
			}
			// Again: the stream holds every fragment of the file already.
			code, stdout, stderr = runCLIOut(t, args...)
			if code != 0 || !strings.Contains(stdout, "already holds all 3 fragments") {
				t.Fatalf("second import: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
			}
			if got, _ := queryArrows(t, ep, stream, start, end); got != want {
				t.Fatalf("after a second import %s reads back differently", stream)
			}
		})
	}
}

func head(s string, lines int) string {
	parts := strings.SplitN(s, "\n", lines+1)
	return strings.Join(parts[:min(lines, len(parts))], "\n")
}

// writeFile writes a file of the test's own under name.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Files from other tools: CSV with units in the header and epoch ms, ISO
// times without a zone, no time column (--start, --rate), a gap; Parquet
// with a timestamp[us] column and int16 channels; Arrow IPC file and
// stream with timestamp[ms]. Each comes back with the right times, units,
// type and values.
func TestImportTableForeignFiles(t *testing.T) {
	srv := startServer(t)
	ep, natsURL := srv.HTTPURL(), srv.NATSURL()
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	ms := t0.UnixMilli()
	var epochMS, iso, noTime, gap strings.Builder
	epochMS.WriteString("timestamp_ms,accel x [m/s^2],temp (°C)\n")
	iso.WriteString("time;x\n")
	noTime.WriteString("a,b\n")
	gap.WriteString("time,v\n")
	for k := 0; k < 50; k++ {
		fmt.Fprintf(&epochMS, "%d,%g,%d\n", ms+int64(k)*10, float64(k)/8, 20+k%3)
		fmt.Fprintf(&iso, "%s;%d\n", t0.Add(time.Duration(k)*100*time.Millisecond).UTC().Format("2006-01-02 15:04:05.000"), k)
		fmt.Fprintf(&noTime, "%d,%d\n", k, -k)
		if k == 20 {
			continue // a missing sample: a gap of 2 periods
		}
		fmt.Fprintf(&gap, "%d.%03d,%d\n", (ms+int64(k)*4)/1000, (ms+int64(k)*4)%1000, k)
	}
	pq := writeParquet(t, t0)
	feather, arrows := writeArrowIPC(t, t0)
	cases := []struct {
		name, file string
		flags      []string
		stdout     []string // in what import prints
		first      string   // the first row of the query, as dumpArrows writes it
		rows       int
	}{
		{"csv epoch ms, units in the header", writeFile(t, "a.csv", epochMS.String()), nil,
			[]string{"50 samples × 2 channels (float64) at 100 Hz (measured from the time column)", `time column "timestamp_ms" (Unix time in ms)`},
			fmt.Sprintf("%d 0000000000000000 4034000000000000", t0.UnixNano()), 50},
		{"csv.gz", gzipFile(t, "a.csv.gz", epochMS.String()), nil,
			[]string{"50 samples × 2 channels (float64) at 100 Hz"}, fmt.Sprintf("%d 0000000000000000 4034000000000000", t0.UnixNano()), 50},
		{"csv ISO without a zone, semicolons", writeFile(t, "b.csv", iso.String()), []string{"--type", "int16"},
			[]string{"50 samples × 1 channels (int16) at 10 Hz", "(ISO 8601)"}, fmt.Sprintf("%d 0", t0.UnixNano()), 50},
		{"csv without time", writeFile(t, "c.csv", noTime.String()), []string{"--start", t0.Format(time.RFC3339), "--rate", "2", "--type", "int32", "--units", "V"},
			[]string{"50 samples × 2 channels (int32) at 2 Hz (--rate)"}, fmt.Sprintf("%d 0 0", t0.UnixNano()), 50},
		{"csv with a gap, epoch seconds", writeFile(t, "d.csv", gap.String()), []string{"--rate", "250"},
			[]string{"49 samples × 1 channels", "1 gaps in the time column (the longest 4ms, at ", "d.csv:22)"}, fmt.Sprintf("%d 0000000000000000", t0.UnixNano()), 49},
		{"parquet timestamp[us], int16", pq, nil,
			[]string{"1,000 samples × 2 channels (int16) at 200 Hz (measured from the time column)"}, fmt.Sprintf("%d 0 -1000", t0.UnixNano()), 1000},
		{"parquet ISO text time, unit in a name, --channels", writeParquetText(t, t0), []string{"--channels", "p"},
			[]string{"400 samples × 1 channels (float32) at 100 Hz", "(ISO 8601)"}, fmt.Sprintf("%d 3f000000", t0.UnixNano()), 400},
		{"arrow file (.feather) timestamp[ms]", feather, nil,
			[]string{"300 samples × 1 channels (float64) at 50 Hz"}, fmt.Sprintf("%d 3ff0000000000000", t0.UnixNano()), 300},
		{"arrow stream timestamp[ms]", arrows, nil,
			[]string{"300 samples × 1 channels (float64) at 50 Hz"}, fmt.Sprintf("%d 3ff0000000000000", t0.UnixNano()), 300},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stream := fmt.Sprintf("foreign-%d", i)
			args := append([]string{"import", tc.file, "--stream", stream, "--create", "--endpoint", ep, "--nats", natsURL}, tc.flags...)
			code, stdout, stderr := runCLIOut(t, args...)
			if code != 0 {
				t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			got, rows := queryArrows(t, ep, stream, t0.Add(-time.Second), t0.Add(time.Hour))
			lines := strings.Split(got, "\n")
			if rows != tc.rows || lines[1] != tc.first {
				t.Fatalf("query: %d rows, first %q; want %d, %q\n%s", rows, lines[1], tc.rows, tc.first, head(got, 4))
			}
		})
	}
	// Units from the header reach the query's schema.
	got, _ := queryArrows(t, ep, "foreign-0", t0.Add(-time.Second), t0.Add(time.Hour))
	if !strings.Contains(got, `accel x: float64 ["unit": "m/s^2"]`) || !strings.Contains(got, `temp: float64 ["unit": "°C"]`) {
		t.Errorf("units lost: %s", head(got, 1))
	}
	if got, _ := queryArrows(t, ep, "foreign-6", t0.Add(-time.Second), t0.Add(time.Hour)); !strings.Contains(got, `p: float32 ["unit": "bar"]`) {
		t.Errorf("the unit of \"p [bar]\" lost: %s", head(got, 1))
	}
}

// gzipFile writes content gzipped under name.
func gzipFile(t *testing.T, name, content string) string {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(content))
	w.Close()
	return writeFile(t, name, b.String())
}

// writeParquet writes 1,000 rows at 200 Hz: a timestamp[us] column and two
// int16 channels, as a tool other than Sensorium would.
func writeParquet(t *testing.T, t0 time.Time) string {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
		{Name: "a", Type: arrow.PrimitiveTypes.Int16},
		{Name: "b", Type: arrow.PrimitiveTypes.Int16},
	}, nil)
	path := filepath.Join(t.TempDir(), "p.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(schema, f, parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(300)), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for k := 0; k < 1000; k++ {
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(t0.UnixMicro() + int64(k)*5000))
		b.Field(1).(*array.Int16Builder).Append(int16(k))
		b.Field(2).(*array.Int16Builder).Append(int16(-k - 1000))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeParquetText writes 400 rows at 100 Hz with the time as ISO 8601
// text, a channel "p [bar]" of float32 and a text column left out by
// --channels.
func writeParquetText(t *testing.T, t0 time.Time) string {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "time", Type: arrow.BinaryTypes.String},
		{Name: "p [bar]", Type: arrow.PrimitiveTypes.Float32},
		{Name: "note", Type: arrow.BinaryTypes.String},
	}, nil)
	path := filepath.Join(t.TempDir(), "text.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(schema, f, parquet.NewWriterProperties(), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for k := 0; k < 400; k++ {
		b.Field(0).(*array.StringBuilder).Append(t0.Add(time.Duration(k) * 10 * time.Millisecond).UTC().Format(time.RFC3339Nano))
		b.Field(1).(*array.Float32Builder).Append(float32(k)/4 + 0.5)
		b.Field(2).(*array.StringBuilder).Append("ok")
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeArrowIPC writes the same 300 rows at 50 Hz (timestamp[ms], one
// float64 channel) as an IPC file (.feather) and an IPC stream (.arrows),
// in batches of 100 rows.
func writeArrowIPC(t *testing.T, t0 time.Time) (string, string) {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "time", Type: &arrow.TimestampType{Unit: arrow.Millisecond}},
		{Name: "level", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	dir := t.TempDir()
	fpath, spath := filepath.Join(dir, "f.feather"), filepath.Join(dir, "s.arrows")
	ff, _ := os.Create(fpath)
	sf, _ := os.Create(spath)
	fw, err := ipc.NewFileWriter(ff, ipc.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	sw := ipc.NewWriter(sf, ipc.WithSchema(schema))
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for batch := 0; batch < 3; batch++ {
		for k := batch * 100; k < (batch+1)*100; k++ {
			b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(t0.UnixMilli() + int64(k)*20))
			b.Field(1).(*array.Float64Builder).Append(float64(k + 1))
		}
		rec := b.NewRecordBatch()
		if err := fw.Write(rec); err != nil {
			t.Fatal(err)
		}
		if err := sw.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	ff.Close()
	sf.Close()
	return fpath, spath
}

// Bad input fails with the file, the line and the column, and the right
// exit status: 2 for what the command line gets wrong, 1 for a file that
// cannot be imported.
func TestImportTableBadInput(t *testing.T) {
	srv := startServer(t)
	ep := srv.HTTPURL()
	t0 := time.Now().Add(-time.Hour).Unix()
	rows := func(n int, line func(k int) string) string {
		var b strings.Builder
		for k := 0; k < n; k++ {
			b.WriteString(line(k))
			b.WriteByte('\n')
		}
		return b.String()
	}
	good := func(k int) string { return fmt.Sprintf("%d.%02d,1,2", t0+int64(k/100), k%100) }
	cases := []struct {
		name, content string
		flags         []string
		code          int
		want          []string
	}{
		{"bad number", "time,x,y\n" + rows(10, good) + fmt.Sprintf("%d.10,1,2.5.1\n", t0+1), nil, 1,
			[]string{"bad.csv:12: column 3 (\"y\")", `"2.5.1" is not a number`}},
		{"bad number after a megabyte", "time,x,y\n" + rows(100_000, good) + fmt.Sprintf("%d.00,x,2\n", t0+1000), nil, 1,
			[]string{"bad.csv:100002: column 2 (\"x\")", "fragments before it are stored in bad-1, up to ", "; the rest of the file is not)"}},
		{"missing time column", "x,y\n1,2\n3,4\n", nil, 2,
			[]string{"no time column (the columns are x, y)", "--start and --rate"}},
		{"empty file", "", nil, 1, []string{"the file is empty"}},
		{"header only", "time,x\n", nil, 1, []string{"no rows after the header"}},
		{"too few fields", "time,x,y\n" + rows(5, good) + fmt.Sprintf("%d.05,1\n", t0), nil, 1,
			[]string{"bad.csv:7: 2 fields, but the header has 3"}},
		{"too many fields", "time,x,y\n" + rows(5, good) + fmt.Sprintf("%d.05,1,2,3\n", t0), nil, 1,
			[]string{"bad.csv:7: 4 fields, but the header has 3"}},
		{"no header", "1,2,3\n4,5,6\n", nil, 1, []string{"bad.csv:1: the first line holds numbers"}},
		{"time goes back", "time,x\n" + rows(5, func(k int) string { return fmt.Sprintf("%d.%02d,1", t0, 10*k) }) + fmt.Sprintf("%d.30,1\n", t0), nil, 1,
			[]string{"bad.csv:7: the time", "is not after the previous row's"}},
		{"fraction in int16", "time,x\n" + rows(5, func(k int) string { return fmt.Sprintf("%d.%02d,%d", t0, 10*k, k) }) + fmt.Sprintf("%d.50,1.5\n", t0), []string{"--type", "int16"}, 1,
			[]string{"bad.csv:7: channel \"x\": 1.5 is not an int16"}},
		{"empty cell in int32", "time,x\n" + rows(5, func(k int) string { return fmt.Sprintf("%d.%02d,%d", t0, 10*k, k) }) + fmt.Sprintf("%d.50,\n", t0), []string{"--type", "int32"}, 1,
			[]string{"bad.csv:7: column 2 (\"x\")", "is empty; an integer channel"}},
		{"not a time", "time,x\nyesterday,1\n", nil, 1, []string{"bad.csv:2: the time column \"time\" holds \"yesterday\""}},
		{"relative time without start", "t,x\n0.0,1\n0.1,2\n", nil, 1, []string{"looks like offsets from a start; give the start (--start)"}},
		{"unknown channel", "time,x\n1,2\n", []string{"--channels", "q"}, 1, []string{`no column "q"; the columns are "time", "x"`}},
		{"bad type flag", "time,x\n1,2\n", []string{"--type", "int8"}, 2, []string{`--type "int8"`}},
		{"bad time unit", "time,x\n1,2\n", []string{"--time-unit", "min"}, 2, []string{`--time-unit "min"`}},
		{"irregular", "time,x\n" + rows(400, func(k int) string { return fmt.Sprintf("%d.%03d,1", t0+int64(k/100), (k%100)*10+(k%3)*4) }), []string{"--rate", "100"}, 1,
			[]string{"the time column is not evenly spaced at 100 Hz", "give the right one with --rate"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "bad.csv", tc.content)
			args := append([]string{"import", path, "--stream", fmt.Sprintf("bad-%d", i), "--create", "--endpoint", ep, "--nats", srv.NATSURL()}, tc.flags...)
			code, stdout, stderr := runCLIOut(t, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout %s\nstderr %s", code, tc.code, stdout, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
	if code, stderr := runCLI(t, "import", writeFile(t, "x.csv", "time,x\n1,2\n"), "--endpoint", ep); code != exitUsage || !strings.Contains(stderr, "--stream is required") {
		t.Errorf("no --stream: exit %d: %s", code, stderr)
	}
	if code, stderr := runCLI(t, "import", filepath.Join(t.TempDir(), "nope.parquet"), "--stream", "s", "--endpoint", ep); code != exitUsage || !strings.Contains(stderr, "no such file") {
		t.Errorf("missing file: exit %d: %s", code, stderr)
	}
	// A stream that does not exist is not created without --create.
	code, stderr := runCLI(t, "import", writeFile(t, "y.csv", "time,x,y\n"+rows(3, good)), "--stream", "absent", "--endpoint", ep, "--nats", srv.NATSURL())
	if code != exitFailure || !strings.Contains(stderr, "stream absent does not exist") || !strings.Contains(stderr, "--create") {
		t.Errorf("absent stream: exit %d: %s", code, stderr)
	}
}

// A stream that already holds other data in the file's time range is not
// written to: the file cannot go in among it.
func TestImportTableRefusesForeignOverlap(t *testing.T) {
	srv := startServer(t)
	ep := srv.HTTPURL()
	origin := time.Now().Add(-time.Hour).Truncate(time.Second)
	desc := &signals.Scalar{SampleRate: 100, SampleType: signals.Float32, Channels: []signals.Channel{{Name: "v"}}}
	produceSignal(t, srv, "busy", desc, origin.Add(5*time.Second), 500, func(k, c int) float64 { return float64(k) })
	var b strings.Builder
	b.WriteString("time,v\n")
	for k := 0; k < 2000; k++ {
		fmt.Fprintf(&b, "%d,%d\n", origin.UnixMilli()+int64(k)*10, k)
	}
	code, stderr := runCLI(t, "import", writeFile(t, "o.csv", b.String()), "--stream", "busy", "--endpoint", ep, "--nats", srv.NATSURL())
	if code != exitFailure || !strings.Contains(stderr, "stream busy already holds fragments from this file's start on that are not this file's chunks (the first, number ") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

// killEnv runs TestImportTableResumesAfterKill at full size: a larger file
// and more kills.
const killEnv = "SENSORIUM_IMPORT_KILLS"

// An import killed with SIGKILL part way, again and again, then run to the
// end, stores every sample once: the stream holds exactly the file's
// fragments, and queries back to the file's rows, in order. The import is
// this test binary run as the CLI (TestMain), killed when the stream holds
// a given number of its fragments, in different segments.
func TestImportTableResumesAfterKill(t *testing.T) {
	srv := startServer(t)
	ep := srv.HTTPURL()
	c := sdk.NewClient(ep, nil)
	// One int16 channel at 100 Hz: a chunk (a fragment) is 1,000 samples,
	// so that the file spans several segments of importSegmentChunks.
	chunks, kills := 3*importSegmentChunks+50, []int{90, 300, 600}
	if os.Getenv(killEnv) != "" {
		chunks = 12*importSegmentChunks + 7
		kills = nil
		for k := 1; k <= 10; k++ {
			kills = append(kills, k*chunks/11+k*13)
		}
	}
	rows := chunks*1000 - 400
	t0 := time.Now().Add(-time.Duration(rows)*10*time.Millisecond - time.Hour).Truncate(time.Second)
	schema := arrow.NewSchema([]arrow.Field{{Name: "time", Type: arrow.FixedWidthTypes.Timestamp_ns}, {Name: "level", Type: arrow.PrimitiveTypes.Int16}}, nil)
	file := filepath.Join(t.TempDir(), "long.arrows")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w := ipc.NewWriter(f, ipc.WithSchema(schema))
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	for k := 0; k < rows; k++ {
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(t0.UnixNano() + int64(k)*10e6))
		b.Field(1).(*array.Int16Builder).Append(int16(k % 30000))
		if (k+1)%50_000 == 0 || k == rows-1 {
			rec := b.NewRecordBatch()
			if err := w.Write(rec); err != nil {
				t.Fatal(err)
			}
			rec.Release()
		}
	}
	b.Release()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	count := func() int {
		n, token := 0, ""
		for {
			page, next, err := c.ListFragments(context.Background(), sdk.ListFragmentsInput{Stream: sdk.ByName("long"), MaxResults: 1000, NextToken: token})
			if err != nil {
				return 0 // not created yet
			}
			n += len(page)
			if next == "" || len(page) == 0 {
				return n
			}
			token = next
		}
	}
	landed := 0
	var last string
	for run := 0; ; run++ {
		if run > len(kills)+3 {
			t.Fatalf("the import has not finished after %d runs; last output:\n%s", run, last)
		}
		cmd := exec.Command(os.Args[0], "import", file, "--stream", "long", "--create", "--endpoint", ep, "--nats", srv.NATSURL())
		cmd.Env = append(os.Environ(), cliEnv+"=1")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var exit error
		exited := false
		if run < len(kills) {
			poll.Until(t, time.Minute, time.Millisecond, func() error {
				select {
				case exit = <-done:
					exited = true
					return nil
				default:
				}
				if n := count(); n < kills[run] {
					return fmt.Errorf("run %d: the stream holds %d fragments; waiting for %d to kill the import", run, n, kills[run])
				}
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					return err
				}
				return nil
			})
		}
		if !exited {
			exit = <-done
		}
		last = out.String()
		if run < len(kills) && !exited {
			if n := count(); n < chunks {
				landed++
			}
			continue
		}
		if exit != nil {
			t.Fatalf("run %d: %v\n%s", run, exit, last)
		}
		break
	}
	if landed == 0 {
		t.Fatalf("no kill landed while the import was under way (it finished before the stream held %d fragments): the test proved nothing; last output:\n%s", kills[0], last)
	}
	// The last run resumed, or found everything stored: what the last
	// killed run had on the bus may all have been stored after its death.
	if !strings.Contains(last, "resumed:") && !strings.Contains(last, "already holds all") {
		t.Errorf("the last run does not say it resumed:\n%s", last)
	}
	if n := count(); n != chunks {
		t.Fatalf("the stream holds %d fragments; the file is %d chunks\n%s", n, chunks, last)
	}
	// Every row once, in order, with its value.
	out := filepath.Join(t.TempDir(), "back.arrows")
	if code, stderr := runCLI(t, "query", "long", "--start", t0.Add(-time.Second).Format(time.RFC3339Nano), "--end", t0.Add(time.Duration(rows)*10*time.Millisecond).Format(time.RFC3339Nano), "-o", out, "--endpoint", ep); code != 0 {
		t.Fatalf("query: exit %d: %s", code, stderr)
	}
	rf, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	r, err := ipc.NewReader(rf)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	k := 0
	for r.Next() {
		rec := r.RecordBatch()
		ts, vs := rec.Column(0).(*array.Timestamp), rec.Column(1).(*array.Int16)
		for i := 0; i < int(rec.NumRows()); i++ {
			if want := t0.UnixNano() + int64(k)*10e6; int64(ts.Value(i)) != want || vs.Value(i) != int16(k%30000) {
				t.Fatalf("row %d: %d %d; want %d %d", k, ts.Value(i), vs.Value(i), want, k%30000)
			}
			k++
		}
	}
	if k != rows {
		t.Fatalf("%d rows back; the file holds %d", k, rows)
	}
	t.Logf("%d kills landed mid-import; the last run: %s", landed, strings.TrimSpace(last))
}

// A file that shares its first times with one imported before — the same
// log grown since, a corrected copy — is not taken for it: the stream
// holds that range from another import, and the re-run says so.
func TestImportTableRefusesAnotherImport(t *testing.T) {
	srv := startServer(t)
	ep := srv.HTTPURL()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli()
	log := func(rows int, scale int) string {
		var b strings.Builder
		b.WriteString("time,v\n")
		for k := 0; k < rows; k++ {
			fmt.Fprintf(&b, "%d,%d\n", t0+int64(k)*10, k*scale)
		}
		return b.String()
	}
	args := func(file string) []string {
		return []string{"import", file, "--stream", "grow", "--create", "--endpoint", ep, "--nats", srv.NATSURL()}
	}
	if code, stdout, stderr := runCLIOut(t, args(writeFile(t, "log.csv", log(2500, 1)))...); code != 0 {
		t.Fatalf("first import: exit %d: %s %s", code, stdout, stderr)
	}
	for name, content := range map[string]string{"grown": log(4000, 1), "corrected": log(2500, 2)} {
		code, stdout, stderr := runCLIOut(t, args(writeFile(t, "log.csv", content))...)
		if code != exitFailure || !strings.Contains(stderr, "stream grow already holds this file's time range up to") || !strings.Contains(stderr, "by another import (import-") {
			t.Errorf("%s: exit %d\nstdout %s\nstderr %s", name, code, stdout, stderr)
		}
	}
	// A file of more than 2 MiB edited in the middle, its size unchanged:
	// its first and last MiB are the same, and only its modification time
	// tells it from the file imported.
	big := log(200_000, 1)
	path := filepath.Join(t.TempDir(), "big.csv")
	if err := os.WriteFile(path, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	bigArgs := []string{"import", path, "--stream", "edited", "--create", "--endpoint", ep, "--nats", srv.NATSURL()}
	if code, stdout, stderr := runCLIOut(t, bigArgs...); code != 0 {
		t.Fatalf("big import: exit %d: %s %s", code, stdout, stderr)
	}
	old := fmt.Sprintf("\n%d,100000\n", t0+1_000_000)
	i := strings.Index(big, old)
	if i < 1<<20 || i > len(big)-1<<20 {
		t.Fatalf("the edit at %d is not in the middle of %d bytes", i, len(big))
	}
	edited := big[:i] + fmt.Sprintf("\n%d,100001\n", t0+1_000_000) + big[i+len(old):]
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLIOut(t, bigArgs...)
	if code != exitFailure || !strings.Contains(stderr, "by another import (import-") {
		t.Errorf("edited in the middle: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
}

// Against a server whose NATS authenticates (a credentials file with
// grants), the import logs in to NATS with the key of --profile, as it
// signs its HTTP requests; without a key NATS refuses it, and it says to
// whom it tried to connect.
func TestImportTableSigned(t *testing.T) {
	const id, secret = "AKIDTABLEIMPORT01", "table-secret-0123456789abcdef"
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("[ops]\naws_access_key_id = "+id+"\naws_secret_access_key = "+secret+"\nstreams = *\nactions = *\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := server.Start(context.Background(), server.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "")
	t0 := time.Now().Add(-time.Hour).Unix()
	var b strings.Builder
	b.WriteString("time,v\n")
	for k := 0; k < 300; k++ {
		fmt.Fprintf(&b, "%d.%02d,%d\n", t0+int64(k/100), k%100, k)
	}
	file := writeFile(t, "signed.csv", b.String())
	args := []string{"import", file, "--stream", "signed", "--create", "--endpoint", srv.HTTPURL(), "--nats", srv.NATSURL(), "--profile", "ops"}
	if code, stdout, stderr := runCLIOut(t, args...); code != 0 || !strings.Contains(stdout, "300 samples") {
		t.Fatalf("signed import: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	// NATS does authenticate here: the import's producer logged in.
	if nc, err := nats.Connect(srv.NATSURL()); err == nil {
		nc.Close()
		t.Fatal("the server's NATS takes a connection without a login: the test proves nothing")
	}
	code, stderr := runCLI(t, "import", file, "--stream", "signed-2", "--endpoint", srv.HTTPURL(), "--nats", srv.NATSURL())
	if code != exitFailure || !strings.Contains(stderr, "MissingAuthenticationToken") {
		t.Fatalf("unsigned import: exit %d: %s", code, stderr)
	}
}

// Files from writers we did not write: apache-arrow (JavaScript) writes an
// Arrow IPC file and stream, DuckDB a Parquet file and CSV files, one with
// TIMESTAMP times and one with TIMESTAMPTZ (whose offsets are "+00")
// (testdata/table/write.mjs). Each imports to the signal written: 5,000
// rows at 250 Hz, vib = k/4, count = k % 1000. The npm packages are
// installed by scripts/install-test-deps.sh (pinned by
// testdata/table/package-lock.json); missing, the test fails under CI and
// is skipped elsewhere.
func TestImportTableFilesFromOtherWriters(t *testing.T) {
	js, _ := filepath.Abs(filepath.Join("testdata", "table"))
	_, nodeErr := exec.LookPath("node")
	_, arrowErr := os.Stat(filepath.Join(js, "node_modules", "apache-arrow"))
	_, duckErr := os.Stat(filepath.Join(js, "node_modules", "@duckdb", "node-api"))
	if nodeErr != nil || arrowErr != nil || duckErr != nil {
		msg := "node, apache-arrow or @duckdb/node-api is not installed in testdata/table: run scripts/install-test-deps.sh"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	if out, err := exec.Command("node", filepath.Join(js, "write.mjs"), dir, fmt.Sprint(t0.UnixMilli())).CombinedOutput(); err != nil {
		t.Fatalf("write.mjs: %v\n%s", err, out)
	}
	srv := startServer(t)
	ep := srv.HTTPURL()
	const n = 5000
	for i, c := range []struct{ file, types string }{
		{"arrowjs.arrow", "float32"},
		{"arrowjs.arrows", "float32"},
		{"duckdb.parquet", "float64"},
		{"duckdb.csv", "float64"},
		{"duckdb-tz.csv", "float64"},
	} {
		t.Run(c.file, func(t *testing.T) {
			stream := fmt.Sprintf("writer-%d", i)
			code, stdout, stderr := runCLIOut(t, "import", filepath.Join(dir, c.file), "--stream", stream, "--create", "--endpoint", ep, "--nats", srv.NATSURL())
			if code != 0 || !strings.Contains(stdout, fmt.Sprintf("5,000 samples × 2 channels (%s) at 250 Hz", c.types)) {
				t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
			}
			got, rows := queryArrows(t, ep, stream, t0.Add(-time.Second), t0.Add(time.Minute))
			if rows != n {
				t.Fatalf("%d rows, want %d", rows, n)
			}
			lines := strings.Split(got, "\n")
			for _, k := range []int{0, 1, 1234, n - 1} {
				f := strings.Fields(lines[1+k])
				want := fmt.Sprintf("%d %v %v", t0.UnixNano()+int64(k)*4e6, float64(k)/4, k%1000)
				if g := fmt.Sprintf("%s %v %v", f[0], dumpValue(t, f[1]), dumpValue(t, f[2])); g != want {
					t.Errorf("row %d: %s, want %s", k, g, want)
				}
			}
		})
	}
}

// dumpValue reads a value as dumpArrows writes it: float32 or float64 bits
// in hex, or an integer.
func dumpValue(t *testing.T, s string) float64 {
	t.Helper()
	switch len(s) {
	case 8:
		var u uint32
		fmt.Sscanf(s, "%x", &u)
		return float64(math.Float32frombits(u))
	case 16:
		var u uint64
		fmt.Sscanf(s, "%x", &u)
		return math.Float64frombits(u)
	}
	var v int64
	if _, err := fmt.Sscan(s, &v); err != nil {
		t.Fatalf("value %q: %v", s, err)
	}
	return float64(v)
}

// --check reads the whole file as an import would and says what it would
// store, with no server and no stream: a bad cell at the end of the file
// is found before anything is sent.
func TestImportTableCheck(t *testing.T) {
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli()
	var b strings.Builder
	b.WriteString("time,v\n")
	for k := 0; k < 25_000; k++ {
		if k == 12_000 {
			continue // a gap
		}
		fmt.Fprintf(&b, "%d,%d\n", t0+int64(k)*2, k)
	}
	good := writeFile(t, "good.csv", b.String())
	code, stdout, stderr := runCLIOut(t, "import", good, "--check", "--endpoint", "http://127.0.0.1:9")
	if code != 0 || !strings.Contains(stdout, "24,999 samples × 1 channels (float64) at 500 Hz (measured from the time column)") ||
		!strings.Contains(stdout, ": 6 fragments; nothing sent (--check)") || !strings.Contains(stdout, "1 gaps in the time column (the longest 2ms, at ") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	bad := writeFile(t, "bad.csv", b.String()+fmt.Sprintf("%d,oops\n", t0+60_000))
	code, _, stderr = runCLIOut(t, "import", bad, "--check", "--endpoint", "http://127.0.0.1:9")
	if code != exitFailure || !strings.Contains(stderr, "bad.csv:25001: column 2 (\"v\")") {
		t.Fatalf("bad file: exit %d: %s", code, stderr)
	}
}
