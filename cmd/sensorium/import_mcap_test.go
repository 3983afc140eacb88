package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/sdk"
)

// mcapJS returns the folder of the Node scripts, skipping the test (failing
// it under CI) when node or @mcap/core is missing.
func mcapJS(t *testing.T) string {
	t.Helper()
	js, _ := filepath.Abs(filepath.Join("testdata", "mcap"))
	_, nodeErr := exec.LookPath("node")
	_, coreErr := os.Stat(filepath.Join(js, "node_modules", "@mcap", "core"))
	if nodeErr != nil || coreErr != nil {
		msg := "node or @mcap/core is not installed: run scripts/install-test-deps.sh"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return js
}

func runNode(t *testing.T, js string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("node", append([]string{filepath.Join(js, args[0])}, args[1:]...)...)
	cmd.Dir = js
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", args[0], err, stderr.String())
	}
	return out
}

// mcapLine is one message as the Node scripts print it.
type mcapLine struct {
	Topic          string         `json:"topic"`
	SchemaName     string         `json:"schemaName"`
	SchemaEncoding string         `json:"schemaEncoding"`
	MessageEncod   string         `json:"messageEncoding"`
	LogTime        string         `json:"logTime"`
	Message        map[string]any `json:"message"`
	t              int64
}

func readLines(t *testing.T, b []byte) []mcapLine {
	t.Helper()
	var out []mcapLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var l mcapLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%v: %.200s", err, sc.Text())
		}
		l.t, _ = strconv.ParseInt(l.LogTime, 10, 64)
		out = append(out, l)
	}
	return out
}

func byTopic(ls []mcapLine) map[string][]mcapLine {
	m := map[string][]mcapLine{}
	for _, l := range ls {
		m[l.Topic] = append(m[l.Topic], l)
	}
	for _, v := range m {
		sort.SliceStable(v, func(i, j int) bool { return v[i].t < v[j].t })
	}
	return m
}

// An MCAP file written by Foxglove's own writer (@mcap/core) with a topic
// of each mapped type and two unmapped ones is imported, exported with zstd
// and with lz4 chunks, and read back message by message by @mcap/core's
// indexed reader (chunk CRCs, message indexes, summary), each message
// decoded with the schema our file carries by Foxglove's ROS 2
// deserialiser, and compared with what was written.
func TestMCAPImportExportFoxglove(t *testing.T) {
	js := mcapJS(t)
	dir := t.TempDir()

	// The video topic: a real H.264 stream's access units, in Annex B.
	raw, err := os.ReadFile(filepath.Join("..", "..", "sdk", "testdata", "h264-baseline.h264"))
	if err != nil {
		t.Fatal(err)
	}
	aus, _, err := sdk.SplitAnnexB(raw)
	if err != nil {
		t.Fatal(err)
	}
	var frames []string
	for _, au := range aus {
		b, err := annexB(nil, au.Data, 4)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, base64.StdEncoding.EncodeToString(b))
	}
	vj, _ := json.Marshal(frames)
	videoPath, in, expPath := filepath.Join(dir, "video.json"), filepath.Join(dir, "in.mcap"), filepath.Join(dir, "expected.jsonl")
	if err := os.WriteFile(videoPath, vj, 0o644); err != nil {
		t.Fatal(err)
	}
	runNode(t, js, "write.mjs", in, "zstd", videoPath, expPath)
	unchunked := filepath.Join(dir, "unchunked.mcap")
	runNode(t, js, "write.mjs", unchunked, "unchunked", videoPath, filepath.Join(dir, "expected2.jsonl"))
	expB, err := os.ReadFile(expPath)
	if err != nil {
		t.Fatal(err)
	}
	want := byTopic(readLines(t, expB))

	srv := startServer(t)
	ep := srv.HTTPURL()
	t0 := time.Unix(0, 1764000000000123456)
	// The chunked file goes out with zstd chunks, the unchunked one with lz4.
	for _, in := range []struct{ path, prefix, comp string }{{in, "r1.", "zstd"}, {unchunked, "r2.", "lz4"}} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), []string{"import", in.path, "--stream-prefix", in.prefix, "--endpoint", ep, "--nats", srv.NATSURL()}, &stdout, &stderr); code != 0 {
			t.Fatalf("import %s: exit %d: %s", in.path, code, stderr.String())
		}
		t.Logf("import: %s", stdout.String())
		var streams []string
		for _, s := range []string{"velodyne_points", "imu.data", "camera.image.compressed", "camera.video", "camera.h264_image", "battery.voltage", "counter", "status", "events"} {
			streams = append(streams, in.prefix+s)
			if !strings.Contains(stdout.String(), "→ "+in.prefix+s+" ") {
				t.Errorf("import output does not name stream %s:\n%s", in.prefix+s, stdout.String())
			}
		}
		out := filepath.Join(dir, "out-"+in.comp+".mcap")
		args := append([]string{"export"}, streams...)
		args = append(args, "--start", t0.Add(-time.Second).Format(time.RFC3339Nano), "--end", t0.Add(10*time.Second).Format(time.RFC3339Nano),
			"-o", out, "--compression", in.comp, "--chunk-size", "4096", "--endpoint", ep)
		stdout.Reset()
		stderr.Reset()
		if code := run(t.Context(), args, &stdout, &stderr); code != 0 {
			t.Fatalf("export %s: exit %d: %s", in.comp, code, stderr.String())
		}
		got := runNode(t, js, "read.mjs", out)
		first, rest, _ := bytes.Cut(got, []byte("\n"))
		var sum struct {
			Profile       string   `json:"profile"`
			Chunks        int      `json:"chunks"`
			Compressions  []string `json:"compressions"`
			MessageCount  string   `json:"messageCount"`
			MessageIndexs bool     `json:"messageIndexes"`
		}
		if err := json.Unmarshal(first, &sum); err != nil {
			t.Fatal(err)
		}
		lines := readLines(t, rest)
		if sum.Profile != "ros2" || sum.Chunks < 2 || !reflect.DeepEqual(sum.Compressions, []string{in.comp}) || !sum.MessageIndexs || sum.MessageCount != strconv.Itoa(len(lines)) {
			t.Fatalf("%s: summary %s, %d messages read", in.comp, first, len(lines))
		}
		compareMCAP(t, in.comp, want, byTopic(lines))
	}
}

// compareMCAP checks each topic's messages as exported against those
// written, by what each mapping keeps (docs/MCAP.md).
func compareMCAP(t *testing.T, comp string, want, got map[string][]mcapLine) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: topics %v, want %v", comp, keys(got), keys(want))
	}
	const ms = int64(time.Millisecond)
	for topic, ws := range want {
		gs := got[topic]
		if len(gs) != len(ws) {
			t.Errorf("%s %s: %d messages, want %d", comp, topic, len(gs), len(ws))
			continue
		}
		for i := range ws {
			w, g := ws[i], gs[i]
			exactTime := topic == "/velodyne_points" || topic == "/imu/data" || topic == "/battery/voltage" || topic == "/counter"
			if exactTime && g.t != w.t || !exactTime && g.t != w.t/ms*ms {
				t.Errorf("%s %s #%d: log time %d, want %d", comp, topic, i, g.t, w.t)
			}
			if g.SchemaName != w.SchemaName {
				t.Errorf("%s %s: schema %q, want %q", comp, topic, g.SchemaName, w.SchemaName)
			}
			wm, gm := w.Message, g.Message
			switch topic {
			case "/velodyne_points":
				comparePoints(t, comp, i, wm, gm)
			case "/imu/data":
				// All of it: accelerations and rates in the IMU track,
				// orientation and covariances in the second; the header
				// stamp is the log time, which the writer gave it too.
				if !reflect.DeepEqual(wm, gm) {
					t.Errorf("%s imu #%d: %v, want %v", comp, i, gm, wm)
				}
			case "/camera/image/compressed", "/camera/h264_image":
				if gm["data"] != wm["data"] || gm["format"] != wm["format"] || !reflect.DeepEqual(gm["header"].(map[string]any)["frame_id"], wm["header"].(map[string]any)["frame_id"]) {
					t.Errorf("%s image #%d: %v, want %v", comp, i, gm, wm)
				}
			case "/camera/video":
				if gm["data"] != wm["data"] || gm["format"] != "h264" || gm["frame_id"] != "camera" {
					t.Errorf("%s video #%d: %.200v, want %.200v", comp, i, gm, wm)
				}
			default: // the numbers, and the unmapped topics: as written
				if !reflect.DeepEqual(wm, gm) {
					t.Errorf("%s %s #%d: %v, want %v", comp, topic, i, gm, wm)
				}
			}
		}
	}
}

// comparePoints compares a PointCloud2 with the one written: the same
// layout, every point with a return, x/y/z within the import's resolution,
// the other fields exact.
func comparePoints(t *testing.T, comp string, i int, wm, gm map[string]any) {
	t.Helper()
	if !reflect.DeepEqual(wm["fields"], gm["fields"]) || wm["point_step"] != gm["point_step"] {
		t.Errorf("%s points #%d: fields %v step %v, want %v %v", comp, i, gm["fields"], gm["point_step"], wm["fields"], wm["point_step"])
		return
	}
	wd, _ := base64.StdEncoding.DecodeString(wm["data"].(string))
	gd, _ := base64.StdEncoding.DecodeString(gm["data"].(string))
	const step = 24
	var kept [][]byte
	for k := 0; k+step <= len(wd); k += step {
		if x := math.Float32frombits(binary.LittleEndian.Uint32(wd[k:])); !math.IsNaN(float64(x)) {
			kept = append(kept, wd[k:k+step])
		}
	}
	if len(gd) != len(kept)*step {
		t.Errorf("%s points #%d: %d points, want %d (those with a return)", comp, i, len(gd)/step, len(kept))
		return
	}
	f32 := func(b []byte, off int) float64 {
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b[off:])))
	}
	for k, w := range kept {
		g := gd[k*step:]
		for _, off := range []int{0, 4, 8} {
			if d := math.Abs(f32(g, off) - f32(w, off)); d > 0.0001/2+1e-6 {
				t.Fatalf("%s points #%d point %d: coordinate at %d is %v, want %v", comp, i, k, off, f32(g, off), f32(w, off))
			}
		}
		if !bytes.Equal(g[12:step], w[12:step]) {
			t.Fatalf("%s points #%d point %d: intensity, ring, time % x, want % x", comp, i, k, g[12:step], w[12:step])
		}
	}
}

func keys[V any](m map[string]V) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

// Wrong command lines exit 2 before anything is done; a damaged file exits
// 1 naming the file and where it is damaged, and stores nothing after it.
func TestMCAPCommandErrors(t *testing.T) {
	srv := startServer(t)
	ep, nurl := srv.HTTPURL(), srv.NATSURL()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.mcap")
	writeLidarMCAP(t, good, 2)
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(dir, "damaged.mcap")
	d := bytes.Clone(b)
	d[len(d)/2] ^= 0x10 // inside the first chunk's compressed records
	if err := os.WriteFile(damaged, d, 0o644); err != nil {
		t.Fatal(err)
	}
	notMCAP := filepath.Join(dir, "text.mcap")
	os.WriteFile(notMCAP, []byte("hello, world"), 0o644)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"--stream", []string{"import", good, "--stream", "s", "--endpoint", ep, "--nats", nurl}, 2, "use --stream-prefix, not --stream"},
		{"bad --topics", []string{"import", good, "--topics", "/a[", "--endpoint", ep, "--nats", nurl}, 2, `--topics "/a["`},
		{"bad resolution", []string{"import", good, "--lidar-resolution", "2", "--endpoint", ep, "--nats", nurl}, 2, "--lidar-resolution 2"},
		{"missing file", []string{"import", filepath.Join(dir, "none.mcap"), "--endpoint", ep, "--nats", nurl}, 1, "none.mcap"},
		{"not MCAP", []string{"import", notMCAP, "--endpoint", ep, "--nats", nurl}, 1, "does not begin with the MCAP magic"},
		{"damaged chunk", []string{"import", damaged, "--stream-prefix", "d.", "--endpoint", ep, "--nats", nurl}, 1, "damaged.mcap: mcap: chunk at"},
		{"export without --start", []string{"export", "s", "-o", filepath.Join(dir, "o.mcap"), "--endpoint", ep}, 2, "--start is required"},
		{"export without -o", []string{"export", "s", "--start", "-1h", "--endpoint", ep}, 2, "-o is required"},
		{"export to .txt", []string{"export", "s", "--start", "-1h", "-o", filepath.Join(dir, "o.txt"), "--endpoint", ep}, 2, "name the file .mcap"},
		{"export bad compression", []string{"export", "s", "--start", "-1h", "-o", filepath.Join(dir, "o.mcap"), "--compression", "gzip", "--endpoint", ep}, 2, `--compression "gzip"`},
		{"export no stream", []string{"export", "--start", "-1h", "-o", filepath.Join(dir, "o.mcap"), "--endpoint", ep}, 2, "takes one or more stream names"},
		{"export unknown stream", []string{"export", "nope", "--start", "-1h", "-o", filepath.Join(dir, "o.mcap"), "--endpoint", ep}, 1, "ResourceNotFoundException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d with %q", code, stderr, tc.code, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "o.mcap")); err == nil {
		t.Error("a failed export left its file behind")
	}
	// --topics takes only the topics it names.
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"import", good, "--topics", "/imu,/nothing/*", "--stream-prefix", "only.", "--endpoint", ep, "--nats", nurl}, &stdout, &stderr); code != 0 {
		t.Fatalf("import --topics: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "/imu → only.imu (IMU): 40 messages") || !strings.Contains(stdout.String(), "topics left out (--topics): /velodyne_points") ||
		strings.Contains(stdout.String(), "only.velodyne_points") {
		t.Fatalf("import --topics:\n%s", stdout.String())
	}
}
