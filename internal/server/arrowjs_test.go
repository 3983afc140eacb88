package server

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/sdk"
)

// An Arrow implementation we did not write — the apache-arrow npm package,
// installed by scripts/install-test-deps.sh — reads a query's IPC stream and
// finds the schema, the row count and the values we sent.
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
	ctx := context.Background()
	body, err := sdk.NewClient(srv.HTTPURL(), nil).QueryRaw(ctx, sdk.QueryInput{Stream: "js-1",
		Start: time.Unix(0, origin), End: time.Unix(0, origin+int64(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
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
	var got struct {
		Fields []struct {
			Name, Type string
			Unit       *string
		}
		Rows        int
		FirstTimeNs string
		Sums        map[string]float64
		Samples     map[string][]float64
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
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
		if math.Abs(got.Sums[name]-sum) > 1e-6*math.Abs(sum) {
			t.Errorf("%s: apache-arrow sums %v, we sent %v", name, got.Sums[name], sum)
		}
		if got.Samples[name][1] != float64(sampleValue(1, ch)) || got.Samples[name][2] != float64(sampleValue(2999, ch)) {
			t.Errorf("%s: apache-arrow reads %v", name, got.Samples[name])
		}
	}
	// apache-arrow hands timestamps to JavaScript as float milliseconds.
	if ms, err := strconv.ParseFloat(got.FirstTimeNs, 64); err != nil || math.Abs(ms-float64(origin)/1e6) > 1e-3 {
		t.Errorf("first time %s ms, want %v", got.FirstTimeNs, float64(origin)/1e6)
	}
	t.Logf("apache-arrow: %d rows, first time %s, schema %+v", got.Rows, got.FirstTimeNs, got.Fields)
}
