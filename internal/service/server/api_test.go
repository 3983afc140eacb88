package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
)

func TestControlPlaneShapes(t *testing.T) {
	srv := startServer(t, "")
	status, _, body := call(t, srv, "createStream", map[string]any{"StreamName": "pump-1", "DataRetentionInHours": 24, "Tags": map[string]string{"site": "A"}})
	if status != 200 || !strings.Contains(string(body), `"StreamARN":"arn:aws:kinesisvideo:us-east-1:000000000000:stream/pump-1/`) {
		t.Fatalf("createStream: %d %s", status, body)
	}
	status, _, body = call(t, srv, "describeStream", map[string]any{"StreamName": "pump-1"})
	var d struct{ StreamInfo map[string]any }
	if status != 200 || json.Unmarshal(body, &d) != nil {
		t.Fatalf("describeStream: %d %s", status, body)
	}
	ct, ok := d.StreamInfo["CreationTime"].(float64)
	if !ok || time.Since(time.Unix(int64(ct), 0)) > time.Minute || d.StreamInfo["Status"] != "ACTIVE" || d.StreamInfo["DataRetentionInHours"] != float64(24) {
		t.Fatalf("StreamInfo: %v", d.StreamInfo)
	}
	version := d.StreamInfo["Version"].(string)

	cases := []struct {
		name, op string
		body     any
		status   int
		errType  string
	}{
		{"unknown stream", "describeStream", map[string]any{"StreamName": "nope"}, 404, httpwire.ResourceNotFound},
		{"invalid name", "createStream", map[string]any{"StreamName": "bad/name"}, 400, httpwire.InvalidArgument},
		{"exists", "createStream", map[string]any{"StreamName": "pump-1"}, 400, httpwire.ResourceInUse},
		{"stale version", "updateDataRetention", map[string]any{"StreamName": "pump-1", "CurrentVersion": "old", "Operation": "INCREASE_DATA_RETENTION", "DataRetentionChangeInHours": 1}, 400, httpwire.VersionMismatch},
		{"bad operation", "updateDataRetention", map[string]any{"StreamName": "pump-1", "CurrentVersion": version, "Operation": "MORE", "DataRetentionChangeInHours": 1}, 400, httpwire.InvalidArgument},
		{"bad json", "createStream", `{"StreamName": `, 400, httpwire.InvalidArgument},
		{"name and arn", "describeStream", map[string]any{"StreamName": "pump-1", "StreamARN": "arn:aws:kinesisvideo:x:y:stream/pump-1/1"}, 400, httpwire.InvalidArgument},
		{"too many tags", "tagStream", map[string]any{"StreamName": "pump-1", "Tags": manyTags(60)}, 400, httpwire.TagsPerResourceExceeded},
		{"bad data API", "getDataEndpoint", map[string]any{"StreamName": "pump-1", "APIName": "NOPE"}, 400, httpwire.InvalidArgument},
		{"unknown path", "nothingHere", map[string]any{}, 404, httpwire.ResourceNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, errType, body := call(t, srv, tc.op, tc.body)
			var eb struct {
				Type    string `json:"__type"`
				Message string `json:"message"`
			}
			_ = json.Unmarshal(body, &eb)
			if status != tc.status || errType != tc.errType || eb.Type != tc.errType || eb.Message == "" {
				t.Fatalf("got %d %q %s, want %d %s", status, errType, body, tc.status, tc.errType)
			}
		})
	}
	status, _, body = call(t, srv, "getDataEndpoint", map[string]any{"StreamName": "pump-1", "APIName": "GET_MEDIA"})
	if status != 200 || !strings.Contains(string(body), srv.HTTPURL()) {
		t.Fatalf("getDataEndpoint: %d %s", status, body)
	}
	// GET on an operation path is an error in the same shape.
	resp, err := http.Get(srv.HTTPURL() + "/describeStream")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("x-amzn-ErrorType") != httpwire.InvalidArgument {
		t.Fatalf("GET: %d %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
	}
	// Through the SDK client: list, retention, delete.
	c := sdk.NewClient(srv.HTTPURL(), nil)
	ctx := context.Background()
	if err := c.UpdateDataRetention(ctx, sdk.ByName("pump-1"), version, 6); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateDataRetention(ctx, sdk.ByName("pump-1"), version, 6); !errors.Is(err, sdk.ErrVersionMismatch) {
		t.Fatalf("stale version through the SDK: %v", err)
	}
	list, _, err := c.ListStreams(ctx, "pump", 10, "")
	if err != nil || len(list) != 1 || list[0].DataRetentionInHours != 30 {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := c.DeleteStream(ctx, sdk.StreamRef{StreamARN: list[0].StreamARN}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeStream(ctx, sdk.ByName("pump-1")); !errors.Is(err, sdk.ErrResourceNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func manyTags(n int) map[string]string {
	m := map[string]string{}
	for i := 0; i < n; i++ {
		m[fmt.Sprint("k", i)] = "v"
	}
	return m
}

// fill publishes fragments of 10 frames (1 s) each and returns the origin.
func fill(t *testing.T, srv *Server, stream string, fragments int) (int64, *nats.Conn) {
	t.Helper()
	c := sdk.NewClient(srv.HTTPURL(), nil)
	if _, err := c.CreateStream(context.Background(), sdk.CreateStreamInput{StreamName: stream, DataRetentionInHours: 24}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	origin := time.Now().Add(-time.Hour).Truncate(time.Second).UnixNano() + 123_456_789 // not on a ms boundary
	for f := 0; f < fragments; f++ {
		ev := publish(t, nc, stream, scalarFragment(t, origin, int64(f)*1000, 10), "test", uint64(f+1))
		if ev.EventType != wire.EventPersisted {
			t.Fatalf("fragment %d: %+v", f, ev)
		}
	}
	return origin, nc
}

func TestArchivedMediaAndQuery(t *testing.T) {
	srv := startServer(t, "")
	origin, _ := fill(t, srv, "pump-1", 8)
	c := sdk.NewClient(srv.HTTPURL(), nil)
	ctx := context.Background()

	// ListFragments: all, by producer range, paged.
	all, next, err := c.ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName("pump-1")})
	if err != nil || len(all) != 8 || next != "" {
		t.Fatalf("list all: %d %q %v", len(all), next, err)
	}
	sec := time.Second
	o := time.Unix(0, origin)
	in := sdk.ListFragmentsInput{Stream: sdk.ByName("pump-1"), Selector: "PRODUCER_TIMESTAMP", Start: o.Add(2*sec + sec/2), End: o.Add(4 * sec), MaxResults: 2}
	page1, next, err := c.ListFragments(ctx, in)
	if err != nil || len(page1) != 2 || next == "" {
		t.Fatalf("page 1: %+v %q %v", page1, next, err)
	}
	in.NextToken = next
	page2, next, err := c.ListFragments(ctx, in)
	if err != nil || len(page2) != 1 || next != "" || page2[0].FragmentNumber != all[4].FragmentNumber {
		t.Fatalf("page 2: %+v %q %v", page2, next, err)
	}
	if page1[0].FragmentNumber != all[2].FragmentNumber || page1[0].FragmentLengthInMilliseconds != 1000 {
		t.Fatalf("page 1 starts at %+v", page1[0])
	}

	// GetMediaForFragmentList, in the order asked.
	body, err := c.GetMediaForFragmentList(ctx, sdk.ByName("pump-1"), []string{all[5].FragmentNumber, all[1].FragmentNumber})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	mr := sdk.NewMediaReader(body)
	for {
		f, err := mr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) == 0 || seen[len(seen)-1] != f.Fragment.Number {
			seen = append(seen, f.Fragment.Number)
		}
	}
	body.Close()
	if len(seen) != 2 || seen[0] != all[5].FragmentNumber || seen[1] != all[1].FragmentNumber {
		t.Fatalf("fragment list order: %v", seen)
	}
	if _, err := c.GetMediaForFragmentList(ctx, sdk.ByName("pump-1"), []string{"999999999"}); !errors.Is(err, sdk.ErrResourceNotFound) {
		t.Fatalf("unknown fragment: %v", err)
	}

	// Arrow query with exact edges: samples [1234, 5678) of channels z and x.
	start := pumpDesc.SampleTime(origin, 1234)
	end := pumpDesc.SampleTime(origin, 5678)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	res, err := c.Query(ctx, sdk.QueryInput{Stream: "pump-1", Start: time.Unix(0, start), End: time.Unix(0, end), Channels: []string{"z", "x"}, BatchRows: 1000}, mem)
	if err != nil {
		t.Fatal(err)
	}
	i := int64(1234)
	batches := 0
	for res.Next() {
		rec := res.RecordBatch()
		batches++
		if rec.NumCols() != 3 || rec.Schema().Field(1).Name != "z" || rec.Schema().Field(2).Name != "x" {
			t.Fatalf("schema %v", rec.Schema())
		}
		tc := rec.Column(0).(*array.Timestamp)
		z := rec.Column(1).(*array.Float32)
		x := rec.Column(2).(*array.Float32)
		for r := 0; r < int(rec.NumRows()); r++ {
			if int64(tc.Value(r)) != pumpDesc.SampleTime(origin, int(i)) || !f32eq(z.Value(r), sampleValue(i, 2)) || !f32eq(x.Value(r), sampleValue(i, 0)) {
				t.Fatalf("row of sample %d: time %d z %v x %v", i, tc.Value(r), z.Value(r), x.Value(r))
			}
			i++
		}
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	res.Close()
	if i != 5678 || batches < 4 {
		t.Fatalf("query ended at sample %d after %d batches", i, batches)
	}

	// Bad queries are clean errors.
	for name, q := range map[string]sdk.QueryInput{
		"end before start": {Stream: "pump-1", Start: time.Unix(0, end), End: time.Unix(0, start)},
		"unknown channel":  {Stream: "pump-1", Start: time.Unix(0, start), End: time.Unix(0, end), Channels: []string{"w"}},
		"bad basis":        {Stream: "pump-1", Start: time.Unix(0, start), End: time.Unix(0, end), Basis: "wallclock"},
	} {
		if _, err := c.QueryRaw(ctx, q); !errors.Is(err, sdk.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := c.QueryRaw(ctx, sdk.QueryInput{Stream: "nope", Start: time.Unix(0, start), End: time.Unix(0, end)}); !errors.Is(err, sdk.ErrResourceNotFound) {
		t.Errorf("unknown stream: %v", err)
	}
}

func TestGetMediaSelectorsAndFollow(t *testing.T) {
	srv := startServer(t, "")
	origin, nc := fill(t, srv, "cam", 5)
	c := sdk.NewClient(srv.HTTPURL(), nil)
	ctx := context.Background()
	all, _, _ := c.ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName("cam")})
	o := time.Unix(0, origin)
	cases := []struct {
		name  string
		sel   sdk.StartSelector
		first string
		count int
	}{
		{"earliest", sdk.StartEarliest(), all[0].FragmentNumber, 5},
		{"fragment number", sdk.StartAtFragment(all[2].FragmentNumber), all[2].FragmentNumber, 3},
		{"continuation", sdk.StartAfterToken(all[2].FragmentNumber), all[3].FragmentNumber, 2},
		{"producer time inside", sdk.StartAtProducerTime(o.Add(3500 * time.Millisecond)), all[3].FragmentNumber, 2},
		{"server time", sdk.StartAtServerTime(all[4].ServerTimestamp.Time), all[4].FragmentNumber, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body, err := c.GetMedia(ctx, sdk.ByName("cam"), tc.sel, false)
			if err != nil {
				t.Fatal(err)
			}
			defer body.Close()
			frags := fragmentsIn(t, body)
			if len(frags) != tc.count || frags[0] != tc.first {
				t.Fatalf("got %v, want %d from %s", frags, tc.count, tc.first)
			}
		})
	}
	for name, sel := range map[string]sdk.StartSelector{
		"no type":   {},
		"bad type":  {StartSelectorType: "YESTERDAY"},
		"bad token": sdk.StartAfterToken("xyz"),
	} {
		if _, err := c.GetMedia(ctx, sdk.ByName("cam"), sel, false); !errors.Is(err, sdk.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}

	// NOW follows live: a fragment published after the request arrives on the
	// open response.
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	body, err := c.GetMedia(fctx, sdk.ByName("cam"), sdk.StartNow(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	got := make(chan *sdk.MediaFrame, 1)
	go func() {
		mr := sdk.NewMediaReader(body)
		f, err := mr.Next()
		if err == nil {
			got <- f
		}
		close(got)
	}()
	ev := publish(t, nc, "cam", scalarFragment(t, origin, 5000, 10), "test", 6)
	select {
	case f := <-got:
		if f == nil || f.Fragment.Number != ev.FragmentNumber {
			t.Fatalf("live frame: %+v, want fragment %s", f, ev.FragmentNumber)
		}
	case <-fctx.Done():
		t.Fatal("no live frame")
	}
}

func fragmentsIn(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	mr := sdk.NewMediaReader(r)
	for {
		f, err := mr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(out) == 0 || out[len(out)-1] != f.Fragment.Number {
			out = append(out, f.Fragment.Number)
		}
	}
}

// GetMedia output must be what Matroska tools accept: ffprobe reads it and
// mkvinfo parses it, KVS tags included.
func TestGetMediaAcceptedByFFprobeAndMkvinfo(t *testing.T) {
	needTools(t, "ffprobe", "mkvinfo")
	srv := startServer(t, "")
	fill(t, srv, "pump-1", 3)
	c := sdk.NewClient(srv.HTTPURL(), nil)
	body, err := c.GetMedia(context.Background(), sdk.ByName("pump-1"), sdk.StartEarliest(), false)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(body)
	body.Close()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "getmedia.mkv")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Every chunk's frames must come through. Chunks are concatenated MKV
	// documents with unknown-size Segments, as the seed service sends them;
	// ffmpeg logs one line at each boundary (the next document's Segment where
	// it expects a child) and reads on. Nothing else may appear on stderr.
	cmd := exec.Command("ffprobe", "-v", "error", "-show_packets", "-show_streams", "-show_format", "-of", "json", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, stderr.Bytes())
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if line != "" && !strings.Contains(line, "Found unknown-length element with ID 0x18538067") {
			t.Fatalf("ffprobe complained: %s", line)
		}
	}
	if n := bytes.Count(out, []byte(`"stream_index": 0`)); n != 30 { // 3 fragments × 10 frames
		t.Fatalf("ffprobe saw %d packets, want 30", n)
	}
	for _, want := range []string{`"format_name": "matroska,webm"`, `"nb_streams": 1`, `"AWS_KINESISVIDEO_FRAGMENT_NUMBER": "`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Fatalf("ffprobe output lacks %s:\n%s", want, out)
		}
	}
	out, err = exec.Command("mkvinfo", path).CombinedOutput()
	if err != nil {
		t.Fatalf("mkvinfo: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte(mkv.TagFragmentNumber)) || !bytes.Contains(out, []byte("S_SENSORIUM/SCALAR")) {
		t.Fatalf("mkvinfo output lacks the tags or the codec:\n%s", out)
	}

}
