package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
)

// putMedia posts body to /putMedia with the headers and returns the events
// the response streamed.
func putMedia(t *testing.T, srv *Server, headers map[string]string, body func() (interface{ Read([]byte) (int, error) }, func() error)) (int, []wire.AckEvent) {
	t.Helper()
	r, wait := body()
	status, _, evs := postPutMedia(t, srv, headers, r)
	if wait != nil {
		_ = wait()
	}
	return status, evs
}

// postPutMedia posts one PutMedia body and returns the status, the error
// type of a refused session and the events of an accepted one.
func postPutMedia(t *testing.T, srv *Server, headers map[string]string, body io.Reader) (int, string, []wire.AckEvent) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.HTTPURL()+"/putMedia", body)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var evs []wire.AckEvent
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && resp.StatusCode == http.StatusOK {
		var ev wire.AckEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("not an event: %q", sc.Text())
		}
		evs = append(evs, ev)
	}
	return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), evs
}

// ffmpeg as an external producer: it writes MKV (H.264 video and PCM audio)
// to stdout, which goes to PutMedia as it is made; every cluster comes back
// RECEIVED then PERSISTED, and GetMedia serves what ffprobe decodes to the
// same 150 video frames.
func TestPutMediaFromFFmpeg(t *testing.T) {
	needTools(t, "ffmpeg", "ffprobe")
	srv := startServer(t, "")
	client, _ := newStream(t, srv, "cam-9", 1)
	start := time.Now().Add(-time.Minute)
	var sent bytes.Buffer // what ffmpeg wrote, to compare frames with
	status, evs := putMedia(t, srv, map[string]string{
		"x-amzn-stream-name": "cam-9", "x-amzn-fragment-timecode-type": "RELATIVE",
		"x-amzn-producer-start-timestamp": fmt.Sprintf("%.3f", float64(start.UnixMilli())/1000),
	}, func() (interface{ Read([]byte) (int, error) }, func() error) {
		cmd := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000",
			"-t", "6", "-c:v", "libx264", "-g", "50", "-bf", "0", "-c:a", "pcm_s16le", "-f", "matroska",
			// Piped, ffmpeg cuts a cluster every 32 KiB; bigger limits make it cut at video
			// key frames, as a fragment must start (the seed service's producers do this too).
			"-cluster_size_limit", "8000000", "-cluster_time_limit", "5000", "-")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return io.TeeReader(out, &sent), cmd.Wait
	})
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	counts := map[wire.EventType]int{}
	for _, ev := range evs {
		counts[ev.EventType]++
		if ev.EventType == wire.EventError {
			t.Fatalf("ERROR event: %+v", ev)
		}
	}
	if counts[wire.EventPersisted] == 0 || counts[wire.EventPersisted] != counts[wire.EventReceived] || counts[wire.EventBuffering] != counts[wire.EventReceived] {
		t.Fatalf("events: %v", counts)
	}
	frags, _, err := client.ListFragments(context.Background(), sdk.ListFragmentsInput{Stream: sdk.ByName("cam-9"), MaxResults: 100})
	if err != nil || len(frags) != counts[wire.EventPersisted] {
		t.Fatalf("%d fragments listed, %d PERSISTED (%v)", len(frags), counts[wire.EventPersisted], err)
	}
	path := getMediaFile(t, client, "cam-9")
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != "h264,150" {
		t.Fatalf("ffprobe: %q, want h264,150", got)
	}
	// Every frame comes back byte for byte, in order, on its track.
	var want [][]byte
	rd := mkv.NewReader(bytes.NewReader(sent.Bytes()))
	for {
		it, err := rd.Next()
		if err != nil {
			break
		}
		if it.Kind == mkv.ItemBlock {
			want = append(want, append([]byte{byte(it.Block.Track)}, it.Block.Data...))
		}
	}
	body, err := client.GetMedia(context.Background(), sdk.ByName("cam-9"), sdk.StartEarliest(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	mr := sdk.NewMediaReader(body)
	n := 0
	for {
		f, err := mr.Next()
		if err != nil {
			break
		}
		if n >= len(want) || !bytes.Equal(append([]byte{byte(f.Track.Number)}, f.Data...), want[n]) {
			t.Fatalf("frame %d differs from what ffmpeg sent", n)
		}
		n++
	}
	if n != len(want) || n < 150 {
		t.Fatalf("GetMedia returned %d frames, ffmpeg sent %d", n, len(want))
	}
	t.Logf("ffmpeg → PutMedia: %d clusters, all PERSISTED; GetMedia decodes 150 frames", counts[wire.EventPersisted])
}

// Bad PutMedia sessions: each gets its error, and the stream takes a good
// session afterwards.
func TestPutMediaBadInput(t *testing.T) {
	srv := startServer(t, "")
	newStream(t, srv, "s", 1)
	str := func(s string) func() (interface{ Read([]byte) (int, error) }, func() error) {
		return func() (interface{ Read([]byte) (int, error) }, func() error) { return strings.NewReader(s), nil }
	}
	if status, _ := putMedia(t, srv, map[string]string{}, str("x")); status != http.StatusBadRequest {
		t.Errorf("no stream header: status %d", status)
	}
	if status, _ := putMedia(t, srv, map[string]string{"x-amzn-stream-name": "nope"}, str("x")); status != http.StatusNotFound && status != http.StatusBadRequest {
		t.Errorf("unknown stream: status %d", status)
	}
	status, evs := putMedia(t, srv, map[string]string{"x-amzn-stream-name": "s"}, str("garbage, not matroska"))
	if status != http.StatusOK || len(evs) == 0 || evs[len(evs)-1].EventType != wire.EventError || evs[len(evs)-1].ErrorID != wire.ErrInvalidMKVData {
		t.Errorf("garbage: %d %+v", status, evs)
	}
}

// A cluster whose timecode goes back is refused with
// FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS and ends the session; a second
// concurrent session on a stream is a ConnectionLimitExceededException; the
// stream then takes a good session.
func TestPutMediaRules(t *testing.T) {
	srv := startServer(t, "")
	newStream(t, srv, "r", 1)
	now := uint64(time.Now().Add(-time.Minute).UnixMilli())
	doc := func(clusters ...uint64) []byte {
		b := mkv.AppendEBMLHeader(nil, "matroska")
		b = mkv.AppendSegmentStart(b)
		b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale})
		b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: "S_SENSORIUM/OPAQUE", CodecPrivate: []byte("x")}})
		for _, c := range clusters {
			b = mkv.AppendCluster(b, c, []mkv.Block{{Track: 1, Keyframe: true, Data: []byte("frame")}})
		}
		return b
	}
	body := func(b []byte) func() (interface{ Read([]byte) (int, error) }, func() error) {
		return func() (interface{ Read([]byte) (int, error) }, func() error) { return bytes.NewReader(b), nil }
	}
	h := map[string]string{"x-amzn-stream-name": "r"}
	_, evs := putMedia(t, srv, h, body(doc(now, now+1000, now+500, now+2000)))
	var persisted int
	var last wire.AckEvent
	for _, ev := range evs {
		if ev.EventType == wire.EventPersisted {
			persisted++
		}
		last = ev
	}
	if persisted != 2 || last.EventType != wire.EventError || last.ErrorID != wire.ErrFragmentTimecodeLesser {
		t.Fatalf("backwards cluster: %d PERSISTED, last %+v", persisted, last)
	}

	// A session that stays open (a pipe that brings nothing after its first
	// cluster) holds the stream. Its response's headers, which come with the
	// first event, say the session has started; the cluster is larger than
	// the client's write buffer, so that the request is on the wire at once.
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() }) // before the server's shutdown, which waits for the session
	req, _ := http.NewRequest(http.MethodPost, srv.HTTPURL()+"/putMedia", pr)
	req.Header.Set("x-amzn-stream-name", "r")
	started, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			close(started)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	first := mkv.AppendCluster(doc(), now+2500, []mkv.Block{{Track: 1, Keyframe: true, Data: make([]byte, 16<<10)}})
	go func() { _, _ = pw.Write(first) }()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the held session did not start")
	}
	if status, _ := putMedia(t, srv, h, body(doc(now+3000))); status != http.StatusBadRequest {
		t.Fatalf("a second session was let in (status %d)", status)
	}
	pw.Close()
	<-done
	if _, evs := putMedia(t, srv, h, body(doc(now+5000, now+6000))); len(evs) == 0 || evs[len(evs)-1].EventType != wire.EventPersisted {
		t.Fatalf("a good session afterwards: %+v", evs)
	}
}

// A cluster larger than a fragment may be is MAX_FRAGMENT_SIZE_REACHED; a
// body cut in the middle of a cluster is INVALID_MKV_DATA for that cluster,
// while the clusters before it stay PERSISTED.
func TestPutMediaOversizeAndTruncated(t *testing.T) {
	srv := startServer(t, "")
	newStream(t, srv, "o", 1)
	now := uint64(time.Now().Add(-time.Minute).UnixMilli())
	head := opaqueHead
	body := func(b []byte) func() (interface{ Read([]byte) (int, error) }, func() error) {
		return func() (interface{ Read([]byte) (int, error) }, func() error) { return bytes.NewReader(b), nil }
	}
	h := map[string]string{"x-amzn-stream-name": "o"}
	big := mkv.AppendCluster(head(), now, []mkv.Block{{Track: 1, Keyframe: true, Data: make([]byte, 51_000_000)}})
	if _, evs := putMedia(t, srv, h, body(big)); len(evs) == 0 || evs[len(evs)-1].ErrorID != wire.ErrMaxFragmentSize {
		t.Fatalf("a 51 MB cluster: %+v", evs)
	}
	good := mkv.AppendCluster(head(), now+1000, []mkv.Block{{Track: 1, Keyframe: true, Data: []byte("one")}})
	good = mkv.AppendCluster(good, now+2000, []mkv.Block{{Track: 1, Keyframe: true, Data: []byte("two")}})
	cut := mkv.AppendCluster(append([]byte(nil), good...), now+3000, []mkv.Block{{Track: 1, Keyframe: true, Data: bytes.Repeat([]byte("three"), 100)}})
	cut = cut[:len(cut)-50]
	_, evs := putMedia(t, srv, h, body(cut))
	persisted := 0
	for _, ev := range evs {
		if ev.EventType == wire.EventPersisted {
			persisted++
		}
	}
	if persisted != 2 || evs[len(evs)-1].ErrorID != wire.ErrInvalidMKVData {
		t.Fatalf("a truncated body: %d PERSISTED, events %+v", persisted, evs)
	}
}
