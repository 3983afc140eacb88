package sampletable

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/sensorium-io/sensorium/signals"
)

func TestParseDecimal(t *testing.T) {
	cases := []struct {
		in     string
		factor int64
		want   int64
		err    bool
	}{
		{"1732449600", 1e9, 1732449600e9, false},
		{"1732449600.123456789", 1e9, 1732449600123456789, false},
		{"1732449600.1234567894", 1e9, 1732449600123456789, false},
		{"1732449600.1234567895", 1e9, 1732449600123456790, false},
		{"-0.5", 1e9, -5e8, false},
		{"+2.25", 1e3, 2250, false},
		{".5", 1e6, 5e5, false},
		{"1732449600123", 1e6, 1732449600123e6, false},
		{"1.5e3", 1e6, 1500e6, false},
		{"12a", 1, 0, true},
		{"", 1, 0, true},
		{".", 1, 0, true},
		{"99999999999999999999", 1, 0, true},
		{"9999999999999", 1e9, 0, true},
	}
	for _, c := range cases {
		got, err := parseDecimal(c.in, c.factor)
		if (err != nil) != c.err || (!c.err && got != c.want) {
			t.Errorf("parseDecimal(%q, %d) = %d, %v; want %d, error %v", c.in, c.factor, got, err, c.want, c.err)
		}
	}
}

func TestSplitUnitAndTimeUnit(t *testing.T) {
	cases := []struct{ header, name, unit, timeUnit string }{
		{"x [m/s^2]", "x", "m/s^2", ""},
		{"temp (°C)", "temp", "°C", ""},
		{"plain", "plain", "", ""},
		{"time [ms]", "time", "ms", "ms"},
		{"time_us", "time_us", "", "us"},
		{"timestamp (s)", "timestamp", "s", "s"},
		{"(odd)", "(odd)", "", ""},
	}
	for _, c := range cases {
		n, u := splitUnit(c.header)
		if n != c.name || u != c.unit || unitFromName(n, u) != c.timeUnit {
			t.Errorf("%q: %q, %q, time unit %q; want %q, %q, %q", c.header, n, u, unitFromName(n, u), c.name, c.unit, c.timeUnit)
		}
	}
	for v, want := range map[float64]string{1.7e9: "s", 1.7e12: "ms", 1.7e15: "us", 1.7e18: "ns", 3: "s"} {
		if got := detectUnit(v); got != want {
			t.Errorf("detectUnit(%g) = %s, want %s", v, got, want)
		}
	}
}

func TestEstimateRate(t *testing.T) {
	grid := func(rate float64, n int, jitter func(k int) int64) []int64 {
		d := &signals.Scalar{SampleRate: rate}
		out := make([]int64, n)
		for k := range out {
			out[k] = d.SampleTime(1_700_000_000e9, k) + jitter(k)
		}
		return out
	}
	none := func(int) int64 { return 0 }
	cases := []struct {
		name  string
		times []int64
		want  float64
	}{
		{"25.6 kHz in ns", grid(25600, 5000, none), 25600},
		{"1 kHz rounded to µs", grid(1000, 3000, func(k int) int64 { return -int64(k*7) % 1000 }), 1000},
		{"44.1 kHz", grid(44100, 10000, none), 44100},
		{"0.5 Hz", grid(0.5, 20, none), 0.5},
		{"a gap in the middle", append(grid(100, 50, none), grid(100, 100, func(int) int64 { return 10e9 })...), 100},
	}
	for _, c := range cases {
		got, err := EstimateRate(c.times)
		if err != nil || got != c.want {
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	if _, err := EstimateRate([]int64{5}); err == nil {
		t.Error("one row: no error")
	}
	if _, err := EstimateRate([]int64{5, 5, 5}); err == nil {
		t.Error("constant time: no error")
	}
}

// chunks cuts rows (times, one value per row) into chunks of size and
// returns them as "start:N" strings with the stats.
func chunks(t *testing.T, rate float64, size int, times []int64) ([]string, Stats, error) {
	t.Helper()
	d := &signals.Scalar{SampleRate: rate, SampleType: signals.Float64, Channels: []signals.Channel{{Name: "v"}}}
	ck := NewChunker(d, size, 0)
	b := &Batch{N: len(times), Time: times, Values: [][]float64{make([]float64, len(times))}, first: 1, path: "f"}
	for i := range times {
		b.Values[0][i] = float64(i)
	}
	var out []string
	next := 0.0
	emit := func(c *Chunk) error {
		if c.Samples.F64[0] != next {
			t.Errorf("chunk %d starts with value %v, want %v", c.Index, c.Samples.F64[0], next)
		}
		next += float64(c.Samples.N)
		out = append(out, fmt.Sprintf("%d:%d", c.Samples.Start, c.Samples.N))
		ck.Release(c)
		return nil
	}
	if err := ck.Add(b, emit); err != nil {
		return out, ck.Stats(), err
	}
	err := ck.Close(emit)
	return out, ck.Stats(), err
}

func TestChunker(t *testing.T) {
	seq := func(n int, f func(k int) int64) []int64 {
		out := make([]int64, n)
		for k := range out {
			out[k] = f(k)
		}
		return out
	}
	cases := []struct {
		name    string
		times   []int64
		want    string
		gaps    int64
		retimed int64
	}{
		{"regular", seq(10, func(k int) int64 { return 1000 + int64(k)*10 }), "[1000:4 1040:4 1080:2]", 0, 0},
		{"jitter within half a period", seq(6, func(k int) int64 { return 1000 + int64(k)*10 + int64(k%2)*4 }), "[1000:4 1040:2]", 0, 0},
		{"a gap", append(seq(3, func(k int) int64 { return int64(k) * 10 }), 50, 60), "[0:3 50:2]", 1, 0},
		{"drift", append(seq(3, func(k int) int64 { return int64(k) * 10 }), 36, 46), "[0:3 36:2]", 0, 1},
		{"early sample", append(seq(3, func(k int) int64 { return int64(k) * 10 }), 24, 34), "[0:3 24:2]", 0, 1},
	}
	for _, c := range cases {
		got, st, err := chunks(t, 1e8, 4, c.times)
		if err != nil || fmt.Sprint(got) != c.want || st.Gaps != c.gaps || st.Retimed != c.retimed || st.Rows != int64(len(c.times)) {
			t.Errorf("%s: %v, %+v, %v; want %s, %d gaps, %d retimed", c.name, got, st, err, c.want, c.gaps, c.retimed)
		}
	}
	if _, _, err := chunks(t, 1e8, 4, []int64{0, 10, 10}); err == nil || !strings.Contains(err.Error(), "f row 3: the time") {
		t.Errorf("a repeated time: %v", err)
	}
}

// Without a time column the chunks are stamped from the start by
// SampleTime (never one chunk's start from the previous one's).
func TestChunkerWithoutTime(t *testing.T) {
	d := &signals.Scalar{SampleRate: 3, SampleType: signals.Int16, Channels: []signals.Channel{{Name: "a"}, {Name: "b"}}}
	ck := NewChunker(d, 4, 1e18)
	b := &Batch{N: 5, Values: [][]float64{{1, 2, 3, 4, 5}, {-1, -2, -3, -4, -5}}, first: 1, path: "f"}
	var got []string
	emit := func(c *Chunk) error {
		got = append(got, fmt.Sprint(c.Samples.Start, c.Samples.I16))
		return nil
	}
	if err := ck.Add(b, emit); err != nil {
		t.Fatal(err)
	}
	if err := ck.Close(emit); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("[%d [1 -1 2 -2 3 -3 4 -4] %d [5 -5]]", int64(1e18), d.SampleTime(1e18, 4))
	if fmt.Sprint(got) != want {
		t.Errorf("got %v, want %s", got, want)
	}
}

// readAll reads a table file through a chunker and returns the rows and
// the first error.
func readAll(path string, o Options, rate float64) (int64, error) {
	tbl, err := Open(path, o)
	if err != nil {
		return 0, err
	}
	defer tbl.Close()
	var ck *Chunker
	b := new(Batch)
	for {
		err := tbl.Next(b)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
		if ck == nil {
			d := &signals.Scalar{SampleRate: rate, SampleType: tbl.Type, Channels: tbl.Channels}
			if err := d.Validate(); err != nil {
				return 0, err
			}
			ck = NewChunker(d, ChunkSamples(d), o.Start)
		}
		if err := ck.Add(b, func(c *Chunk) error { ck.Release(c); return nil }); err != nil {
			return 0, err
		}
	}
	if ck == nil {
		return 0, nil
	}
	return ck.Stats().Rows, ck.Close(func(c *Chunk) error { return nil })
}

// CSV files: separators, a byte order mark, comments, quoted cells, NaN
// spellings, and batches smaller than the file.
func TestCSVShapes(t *testing.T) {
	cases := []struct {
		name, content string
		o             Options
		rows          int64
		err           string
	}{
		{"comma", "time,x\n1700000000,1\n1700000000.1,2\n", Options{}, 2, ""},
		{"tab", "time\tx\n1700000000\t1\n", Options{}, 1, ""},
		{"semicolon", "time;x\n1700000000;1\n", Options{}, 1, ""},
		{"bom", "\xef\xbb\xbftime,x\n1700000000,1\n", Options{}, 1, ""},
		{"comment and quotes", "# logger v2\ntime,\"x, filtered\"\n1700000000,\"1.5\"\n", Options{}, 1, ""},
		{"NaN spellings", "time,x\n1700000000,\n1700000000.1,NA\n1700000000.2,null\n1700000000.3,nan\n", Options{}, 4, ""},
		{"small batches", "time,x\n" + strings.Repeat("", 0) + "1700000000,1\n1700000000.1,2\n1700000000.2,3\n", Options{BatchRows: 2}, 3, ""},
		{"decimal comma", "time;x\n1700000000;1,5\n1700000000,1;-2,25\n", Options{}, 2, ""},
		{"no decimal comma with commas", "time,x\n1700000000,\"1,5\"\n", Options{}, 0, "f.csv:2: column 2 (\"x\"), character 12: \"1,5\" is not a number"},
		{"quote error", "time,x\n1700000000,\"1\n", Options{}, 0, "f.csv:2: column"},
	}
	for _, c := range cases {
		path := filepath.Join(t.TempDir(), "f.csv")
		if err := os.WriteFile(path, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		rows, err := readAll(path, c.o, 10)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want an error with %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || rows != c.rows {
			t.Errorf("%s: %d rows, %v; want %d", c.name, rows, err, c.rows)
		}
	}
}

func TestWiden(t *testing.T) {
	I16, I32, F32, F64 := signals.Int16, signals.Int32, signals.Float32, signals.Float64
	cases := [][3]signals.SampleType{{0, I16, I16}, {I16, I16, I16}, {I16, I32, I32}, {I16, F32, F32}, {I32, F32, F64}, {F32, F64, F64}, {I32, I16, I32}}
	for _, c := range cases {
		if got := widen(c[0], c[1]); got != c[2] {
			t.Errorf("widen(%s, %s) = %s, want %s", c[0], c[1], got, c[2])
		}
	}
}

var _ = math.NaN

// The fast ISO reader agrees with time.Parse, and leaves what it does not
// know to it.
func TestParseISO(t *testing.T) {
	for _, s := range []string{
		"2026-11-24T12:00:00Z", "2026-11-24T12:00:00.123456789Z", "2026-11-24 12:00:00.5", "2026-11-24T12:00:00.5+02:00",
		"2026-11-24T23:59:59.999-0130", "2024-02-29T00:00:00", "1969-12-31T23:59:59.9Z", "2026-11-25T00:00:00.000001Z",
		"2026-11-24 12:00:00.004+00", "2026-11-24 12:00:00-05", "2026-02-31T00:00:00Z", "2026-11-24T24:00:00Z", "2026-11-24T12:00:00.1234567891Z", "2026-11-24T12:00:00 -0700 MST", "2026-11-24T12:00:00.Z",
	} {
		c := &timeConv{}
		got, err := c.parseISO(s)
		var want int64
		var werr error = fmt.Errorf("none")
		for _, l := range isoLayouts {
			if tt, e := time.Parse(l, s); e == nil {
				want, werr = tt.UnixNano(), nil
				break
			}
		}
		if (err != nil) != (werr != nil) || got != want {
			t.Errorf("%q: %d, %v; time.Parse: %d, %v", s, got, err, want, werr)
		}
	}
}

// readRows reads every row of a CSV file as text, or the first error.
func readRows(path string, o Options) (string, error) {
	tbl, err := Open(path, o)
	if err != nil {
		return "", err
	}
	defer tbl.Close()
	var sb strings.Builder
	b := new(Batch)
	for {
		err := tbl.Next(b)
		if errors.Is(err, io.EOF) {
			return sb.String(), nil
		}
		if err != nil {
			return sb.String(), err
		}
		for i := 0; i < b.N; i++ {
			fmt.Fprintf(&sb, "%s %d", b.Where(i), b.Row(i))
			if b.Time != nil {
				fmt.Fprintf(&sb, " %d", b.Time[i])
			}
			for _, col := range b.Values {
				fmt.Fprintf(&sb, " %v", col[i])
			}
			sb.WriteByte('\n')
		}
	}
}

// The parallel CSV path reads what encoding/csv reads — rows, line numbers,
// NaNs, CRLF, comments and empty lines — over blocks of a few lines, hands
// the rest of the file to encoding/csv at the first quote, and names the
// same line and column in its errors.
func TestCSVFastPathAgrees(t *testing.T) {
	defer func(b int, f bool) { fastBlockBytes, fastCSV = b, f }(fastBlockBytes, fastCSV)
	var plain strings.Builder
	plain.WriteString("# exported\ntime,x [m/s^2],y\r\n")
	for k := 0; k < 3000; k++ {
		switch {
		case k%500 == 7:
			plain.WriteString("\n# a comment\n")
		case k%300 == 11:
			fmt.Fprintf(&plain, "2026-11-24T12:%02d:%02d.%03dZ,,NA\r\n", k/6000, (k/100)%60, (k%100)*10)
			continue
		}
		fmt.Fprintf(&plain, "2026-11-24T12:%02d:%02d.%03dZ,%d.5,%g\n", k/6000, (k/100)%60, (k%100)*10, k, float64(k)/7)
	}
	quoted := plain.String() + "2026-11-24T12:00:30.000Z,\"1\",2\n2026-11-24T12:00:30.010Z,3,4\n"
	badFast := strings.Replace(plain.String(), ",2500.5,", ",25x0.5,", 1)
	badSlow := quoted + "2026-11-24T12:00:30.020Z,3,oops\n"
	short := strings.Replace(plain.String(), ",1234.5,", ",", 1)
	for _, c := range []struct{ name, content string }{
		{"plain", plain.String()}, {"quote after 3000 rows", quoted}, {"bad cell", badFast}, {"bad cell after a quote", badSlow}, {"short row", short},
	} {
		path := filepath.Join(t.TempDir(), "f.csv")
		if err := os.WriteFile(path, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		fastCSV = false
		want, werr := readRows(path, Options{BatchRows: 100})
		fastCSV, fastBlockBytes = true, 700
		got, err := readRows(path, Options{BatchRows: 100})
		// Rows before an error come in blocks on one path and batches on
		// the other; the error, and without one every row, must agree.
		if fmt.Sprint(err) != fmt.Sprint(werr) || werr == nil && got != want {
			t.Errorf("%s: the parallel path reads\n%s\n%v\nencoding/csv\n%s\n%v", c.name, tail(got, 3), err, tail(want, 3), werr)
		}
		if c.name == "plain" && strings.Count(got, "\n") != 3000 {
			t.Errorf("plain: %d rows", strings.Count(got, "\n"))
		}
		if strings.HasPrefix(c.name, "bad") && werr == nil || c.name == "short row" && !strings.Contains(fmt.Sprint(err), "2 fields, but the header has 3") {
			t.Errorf("%s: no error: %v", c.name, err)
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// A CSV file compressed with gzip or zstd (data.csv.gz, data.tsv.zst) reads
// the same rows as the plain file, progress counted in compressed bytes.
func TestCompressedCSV(t *testing.T) {
	var plain strings.Builder
	plain.WriteString("time,x\n")
	for k := 0; k < 20000; k++ {
		fmt.Fprintf(&plain, "%d.%03d,%d\n", 1_700_000_000+k/1000, k%1000, k%77)
	}
	dir := t.TempDir()
	write := func(name string, compress func(io.Writer) io.WriteCloser) string {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w := compress(f)
		if _, err := io.WriteString(w, plain.String()); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		return path
	}
	want, err := readRows(write("a.csv", func(w io.Writer) io.WriteCloser { return nopWriteCloser{w} }), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		write("a.csv.gz", func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) }),
		write("a.csv.zst", func(w io.Writer) io.WriteCloser { z, _ := zstd.NewWriter(w); return z }),
	} {
		got, err := readRows(path, Options{})
		// The rows name their own file; the rest must agree.
		got = strings.ReplaceAll(got, filepath.Base(path), "a.csv")
		if err != nil || got != want {
			t.Errorf("%s: %v\n%s\nwant\n%s", path, err, head(got, 3), head(want, 3))
		}
	}
	if FormatOf("a.parquet.gz") != "" || FormatOf("A.TSV.ZST") != FormatCSV {
		t.Error("FormatOf of compressed names")
	}
	// A file that is not what its name says.
	bad := filepath.Join(dir, "bad.csv.gz")
	os.WriteFile(bad, []byte("time,x\n1,2\n"), 0o644)
	if _, err := Open(bad, Options{}); err == nil || !strings.Contains(err.Error(), "bad.csv.gz: gzip:") {
		t.Errorf("a plain file named .gz: %v", err)
	}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func head(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// Progress counts the file's bytes — compressed ones for a compressed file —
// and ends at its size.
func TestProgress(t *testing.T) {
	defer func(b int) { fastBlockBytes = b }(fastBlockBytes)
	fastBlockBytes = 4096
	var plain strings.Builder
	plain.WriteString("time,x\n")
	for k := 0; k < 50000; k++ {
		fmt.Fprintf(&plain, "%d.%03d,%d\n", 1_700_000_000+k/1000, k%1000, k%77)
	}
	dir := t.TempDir()
	var gz strings.Builder
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, plain.String())
	zw.Close()
	for name, content := range map[string]string{"p.csv": plain.String(), "p.csv.gz": gz.String()} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(content), 0o644)
		tbl, err := Open(path, Options{BatchRows: 1000})
		if err != nil {
			t.Fatal(err)
		}
		b := new(Batch)
		var last int64
		for {
			err := tbl.Next(b)
			done, total := tbl.Progress()
			if done < last || done > total || total != int64(len(content)) {
				t.Fatalf("%s: progress %d of %d after %d; the file is %d bytes", name, done, total, last, len(content))
			}
			last = done
			if err != nil {
				break
			}
		}
		tbl.Close()
		if last != int64(len(content)) {
			t.Errorf("%s: progress ends at %d of %d", name, last, len(content))
		}
	}
}
