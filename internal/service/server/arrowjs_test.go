package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/sdk"
)

// arrowJS is what check.mjs prints of an IPC stream read with apache-arrow.
type arrowJS struct {
	Fields []struct {
		Name, Type string
		Unit       *string
	}
	Rows        int
	FirstTimeNs string
	Sums        map[string]float64
	Nulls       map[string]int
	Samples     map[string][]json.RawMessage
	Strings     map[string]map[string]int
}

// readWithArrowJS runs a query over HTTP and has apache-arrow read the bytes.
func readWithArrowJS(t *testing.T, srv *Server, in sdk.QueryInput) arrowJS {
	t.Helper()
	body, err := sdk.NewClient(srv.HTTPURL(), nil).QueryRaw(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return arrowJSReads(t, body)
}

// arrowJSReads has apache-arrow read an IPC stream.
func arrowJSReads(t *testing.T, body io.ReadCloser) arrowJS {
	t.Helper()
	js, _ := filepath.Abs(filepath.Join("testdata", "arrowjs"))
	path := filepath.Join(t.TempDir(), "q.arrow")
	f, _ := os.Create(path)
	if _, err := io.Copy(f, body); err != nil {
		t.Fatal(err)
	}
	body.Close()
	f.Close()
	cmd := exec.Command("node", filepath.Join(js, "check.mjs"), path)
	cmd.Dir = js
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var got arrowJS
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return got
}

func jsNumber(t *testing.T, raw json.RawMessage) float64 {
	t.Helper()
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s is not a number: %v", raw, err)
	}
	return v
}

func jsList(t *testing.T, raw json.RawMessage) []float64 {
	t.Helper()
	var v []float64
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s is not a list: %v", raw, err)
	}
	return v
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

// An Arrow implementation we did not write — the apache-arrow npm package,
// installed by scripts/install-test-deps.sh — reads our IPC streams, for
// every shape, and finds the schema, the row count and the values we sent:
// samples (timestamps, units), windows (fixed-size list tensors, the list of
// source fragments) and aligned (nullable columns, the nulls where we put
// them).
func TestArrowJSReadsQuery(t *testing.T) {
	needTools(t, "node")
	js, _ := filepath.Abs(filepath.Join("testdata", "arrowjs"))
	if _, err := os.Stat(filepath.Join(js, "node_modules", "apache-arrow")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("apache-arrow is not installed: run scripts/install-test-deps.sh")
		}
		t.Skip("apache-arrow is not installed: run scripts/install-test-deps.sh")
	}
	srv := startServer(t, "")
	origin, _ := fill(t, srv, "js-1", 3) // 3000 samples of 3 channels at 1 kHz
	start, end := time.Unix(0, origin), time.Unix(0, origin+int64(time.Hour))

	t.Run("samples", func(t *testing.T) {
		got := readWithArrowJS(t, srv, sdk.QueryInput{Stream: "js-1", Start: start, End: end})
		if got.Rows != 3000 || len(got.Fields) != 4 || got.Fields[0].Name != "time" || !strings.Contains(got.Fields[0].Type, "Timestamp") {
			t.Fatalf("apache-arrow saw %+v", got)
		}
		for ch, name := range []string{"x", "y", "z"} {
			if got.Fields[ch+1].Name != name || got.Fields[ch+1].Unit == nil || *got.Fields[ch+1].Unit != "g" {
				t.Errorf("field %d: %+v", ch+1, got.Fields[ch+1])
			}
			var sum float64
			for i := int64(0); i < 3000; i++ {
				sum += float64(sampleValue(i, ch))
			}
			if !near(got.Sums[name], sum) || got.Nulls[name] != 0 {
				t.Errorf("%s: apache-arrow sums %v (%d nulls), we sent %v", name, got.Sums[name], got.Nulls[name], sum)
			}
			if s := got.Samples[name]; jsNumber(t, s[1]) != float64(sampleValue(1, ch)) || jsNumber(t, s[2]) != float64(sampleValue(2999, ch)) {
				t.Errorf("%s: apache-arrow reads %s", name, s)
			}
		}
		// apache-arrow hands timestamps to JavaScript as float milliseconds.
		if ms, err := strconv.ParseFloat(got.FirstTimeNs, 64); err != nil || math.Abs(ms-float64(origin)/1e6) > 1e-3 {
			t.Errorf("first time %s ms, want %v", got.FirstTimeNs, float64(origin)/1e6)
		}
	})

	t.Run("windows", func(t *testing.T) {
		got := readWithArrowJS(t, srv, sdk.QueryInput{Stream: "js-1", Fields: []string{"y"}, Shape: "windows", Window: &sdk.QueryWindow{Length: 100, Hop: 250},
			Start: start, End: end})
		// Windows at samples 0, 250, … 2750: 12 of 100 samples.
		if got.Rows != 12 || len(got.Fields) != 3 || got.Fields[1].Name != "fragments" || !strings.Contains(got.Fields[2].Type, "FixedSizeList[100]") {
			t.Fatalf("apache-arrow saw %+v", got)
		}
		var sum float64
		for w := int64(0); w < 12; w++ {
			for i := int64(0); i < 100; i++ {
				sum += float64(sampleValue(250*w+i, 1))
			}
		}
		if !near(got.Sums["y"], sum) {
			t.Errorf("apache-arrow sums the tensors to %v, we sent %v", got.Sums["y"], sum)
		}
		if w1 := jsList(t, got.Samples["y"][1]); len(w1) != 100 || w1[0] != float64(sampleValue(250, 1)) || w1[99] != float64(sampleValue(349, 1)) {
			t.Errorf("window 1: %v", w1)
		}
		if f := jsList(t, got.Samples["fragments"][0]); len(f) != 1 {
			t.Errorf("window 0's fragments: %v", f)
		}
	})

	t.Run("streams", func(t *testing.T) {
		// Not in sdk.QueryInput yet: the query's JSON as any client sends it.
		fill(t, srv, "js-2", 2)
		q, _ := json.Marshal(map[string]any{"streams": []string{"js-2", "js-1"}, "fields": []string{"x"}, "start": origin - int64(time.Minute), "end": origin + int64(time.Hour)})
		resp, err := http.Post(srv.HTTPURL()+"/v1/query", "application/json", bytes.NewReader(q))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /v1/query: %v %v", resp, err)
		}
		got := arrowJSReads(t, resp.Body)
		if got.Rows != 5000 || got.Fields[0].Name != "stream" || !strings.Contains(got.Fields[0].Type, "Dictionary") ||
			got.Strings["stream"]["js-1"] != 3000 || got.Strings["stream"]["js-2"] != 2000 {
			t.Fatalf("apache-arrow saw %+v", got)
		}
	})

	t.Run("aligned", func(t *testing.T) {
		// A 400 Hz grid over 1 kHz samples with "none": a value only where a
		// sample falls on the grid (every other grid time), else null; past
		// the samples, nulls.
		got := readWithArrowJS(t, srv, sdk.QueryInput{Shape: "aligned", Inputs: []sdk.QueryInputStream{{Stream: "js-1", Fields: []string{"z"}}},
			Align: &sdk.QueryAlign{Rate: 400, Interpolation: "none"}, Start: start, End: start.Add(4 * time.Second)})
		if got.Rows != 1600 || got.Fields[1].Name != "js-1.z" || !strings.Contains(got.Fields[1].Type, "Float64") {
			t.Fatalf("apache-arrow saw %+v", got)
		}
		var sum float64
		for k := int64(0); k < 1200; k += 2 { // grid time k × 2.5 ms is sample k × 2.5 when k is even
			sum += float64(sampleValue(k*5/2, 2))
		}
		if got.Nulls["js-1.z"] != 1600-600 || !near(got.Sums["js-1.z"], sum) {
			t.Errorf("apache-arrow: %d nulls and a sum of %v; we sent %d nulls and %v", got.Nulls["js-1.z"], got.Sums["js-1.z"], 1000, sum)
		}
	})
}
