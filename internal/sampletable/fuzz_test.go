package sampletable

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// FuzzCSV reads arbitrary bytes as a CSV table through the chunker: it
// must return rows or an error, never panic. The seed corpus is in
// testdata/fuzz/FuzzCSV.
func FuzzCSV(f *testing.F) {
	f.Add([]byte("time,x [m/s^2],y\n2026-11-24T12:00:00Z,1,2\n2026-11-24T12:00:00.1Z,3,\n"))
	f.Add([]byte("t,v\n0,1\n0.5,2\n"))
	f.Add([]byte("timestamp_ms;a\n1732449600000;1\n1732449600010;NaN\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "f.csv")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, o := range []Options{{BatchRows: 3}, {BatchRows: 3, HasStart: true, Start: 1e18}, {TimeColumn: "none", HasStart: true, Start: 1e18, BatchRows: 2}} {
			_, _ = readAll(path, o, 10)
		}
	})
}

// FuzzParseDecimal checks the exact decimal reader of time cells against
// strconv on what both read.
func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"1732449600.123456789", "-0.5", "1e3", "12", ".", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ns, err := parseDecimal(s, 1e9)
		if err != nil {
			return
		}
		v, perr := strconv.ParseFloat(s, 64)
		if perr != nil {
			return // parseDecimal is laxer ("+.5"): fine, as long as it does not panic
		}
		if d := float64(ns) - v*1e9; d > 1e-6*abs(v*1e9)+1 || d < -1e-6*abs(v*1e9)-1 {
			t.Fatalf("parseDecimal(%q) = %d ns; strconv reads %v s", s, ns, v)
		}
	})
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// FuzzCSVPaths reads arbitrary bytes on the parallel CSV path (blocks of 64
// bytes) and on encoding/csv alone: the same rows, or the same error.
func FuzzCSVPaths(f *testing.F) {
	f.Add([]byte("time,x\n1732449600,1\n1732449600.5,2\n1732449601,\n"))
	f.Add([]byte("time,x\r\n# c\r\n\r\n2026-11-24T12:00:00Z,1\r\n2026-11-24T12:00:01Z,2\r\n2026-11-24T12:00:02Z,\"3\"\n"))
	f.Add([]byte("a;b\n1;2\n3;4;5\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "f.csv")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		defer func(b int, on bool) { fastBlockBytes, fastCSV = b, on }(fastBlockBytes, fastCSV)
		for _, o := range []Options{{BatchRows: 5}, {BatchRows: 5, TimeColumn: "none"}} {
			fastCSV = false
			want, werr := readRows(path, o)
			fastCSV, fastBlockBytes = true, 64
			got, err := readRows(path, o)
			if (err == nil) != (werr == nil) || werr == nil && got != want {
				t.Fatalf("options %+v:\nparallel path: %q, %v\nencoding/csv:  %q, %v", o, got, err, want, werr)
			}
		}
	})
}

// FuzzParseFloatFast: wherever the fast float reader answers, it answers
// what strconv.ParseFloat does, to the bit.
func FuzzParseFloatFast(f *testing.F) {
	for _, s := range []string{"0", "-0", "1.5", "0.000123", "123456789012345678", "9007199254740993", "1e22", "1e23", "4.9e-324", ".5", "5.", "-1.25E+3", "0.1", "3.4028235e38"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseFloatFast(s)
		if !ok {
			return
		}
		want, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("parseFloatFast(%q) = %v (%x); strconv: %v (%x), %v", s, got, math.Float64bits(got), want, math.Float64bits(want), err)
		}
	})
}
