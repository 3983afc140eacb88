package server

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
)

// Media out (GetClip here, HLS in hls_test.go) is checked against what a
// producer put: ffmpeg encodes H.264 with B-frames and AAC to Matroska, as
// a camera's producer would, the test puts it through PutMedia a few
// clusters (fragments) at a time, and ffprobe — a reader that is not ours —
// must read every frame back, byte for byte, from the MP4 we serve.

// avSource is ffmpeg's Matroska, split at its clusters.
type avSource struct {
	header   []byte     // EBML header, Segment start, Info, Tracks
	clusters [][]byte   // one fragment each
	frames   [][]mframe // per cluster, its frames in order
}

// mframe is one frame as put.
type mframe struct {
	video bool
	key   bool
	hash  string // as ffprobe's -show_data_hash md5 prints it
}

func md5Of(b []byte) string {
	s := md5.Sum(b)
	return "MD5:" + hex.EncodeToString(s[:])
}

// encodeAV has ffmpeg encode seconds of its test pattern (25 fps, an IDR
// every second, two B-frames) and a tone (AAC, 48 kHz stereo) as Matroska
// with a cluster per second.
func encodeAV(t *testing.T, seconds int) *avSource { return encodeAVWith(t, seconds, "aac") }

// encodeAVWith is encodeAV with another audio codec (pcm_s16le, say).
func encodeAVWith(t *testing.T, seconds int, audioCodec string) *avSource {
	t.Helper()
	needLibx264(t)
	return splitMKV(t, seconds, "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", strconv.Itoa(seconds),
		"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-bf", "2",
		"-c:a", audioCodec, "-ac", "2", "-cluster_size_limit", "8000000", "-cluster_time_limit", "5000")
}

// splitMKV runs ffmpeg with args to Matroska and splits its output at its
// clusters, which must be one a second when seconds is not 0.
func splitMKV(t *testing.T, seconds int, args ...string) *avSource {
	t.Helper()
	needTools(t, "ffmpeg", "ffprobe")
	out, err := exec.Command("ffmpeg", append(append([]string{"-v", "error"}, args...), "-f", "matroska", "-")...).Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	s := &avSource{}
	rd := mkv.NewReader(bytes.NewReader(out))
	var starts []int64
	var video uint64
	for {
		it, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch it.Kind {
		case mkv.ItemTracks:
			for _, te := range it.Tracks {
				if te.CodecID == "V_MPEG4/ISO/AVC" {
					video = te.Number
				}
			}
		case mkv.ItemClusterStart:
			starts = append(starts, it.Offset)
			s.frames = append(s.frames, nil)
		case mkv.ItemBlock:
			c := len(s.frames) - 1
			s.frames[c] = append(s.frames[c], mframe{video: it.Block.Track == video, key: it.Block.Keyframe, hash: md5Of(it.Block.Data)})
		}
	}
	s.header = out[:starts[0]]
	for i, at := range starts {
		end := int64(len(out))
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		s.clusters = append(s.clusters, out[at:end])
	}
	if seconds > 0 && len(s.clusters) != seconds {
		t.Fatalf("ffmpeg wrote %d clusters, want one a second (%d)", len(s.clusters), seconds)
	}
	return s
}

// put sends clusters [from, to) through PutMedia, times relative to origin
// (as ffmpeg's cluster timecodes are), and waits for the stream to hold them.
func (s *avSource) put(t *testing.T, srv *Server, client *sdk.Client, stream string, origin time.Time, from, to int) {
	t.Helper()
	body := append([]byte(nil), s.header...)
	for _, c := range s.clusters[from:to] {
		body = append(body, c...)
	}
	status, errType, _ := postPutMedia(t, srv, map[string]string{
		"x-amzn-stream-name": stream, "x-amzn-fragment-timecode-type": "RELATIVE",
		"x-amzn-producer-start-timestamp": fmt.Sprintf("%.3f", float64(origin.UnixMilli())/1000),
	}, bytes.NewReader(body))
	if status != http.StatusOK {
		t.Fatalf("PutMedia: %d %s", status, errType)
	}
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		frags, _, err := client.ListFragments(context.Background(), sdk.ListFragmentsInput{Stream: sdk.ByName(stream), MaxResults: 1000})
		if err != nil {
			return err
		}
		if len(frags) < to {
			return fmt.Errorf("%d fragments stored, want %d", len(frags), to)
		}
		return nil
	})
}

// want is the frames of clusters [from, to) per track.
func (s *avSource) want(from, to int) (video, audio []mframe) {
	for _, fr := range s.frames[from:to] {
		for _, f := range fr {
			if f.video {
				video = append(video, f)
			} else {
				audio = append(audio, f)
			}
		}
	}
	return video, audio
}

// probedPacket is a packet as ffprobe shows it.
type probedPacket struct {
	Stream int    `json:"stream_index"`
	PTS    int64  `json:"pts"`
	DTS    int64  `json:"dts"`
	Flags  string `json:"flags"`
	Hash   string `json:"data_hash"`
}

// probeMP4 has ffprobe read the packets of an MP4 (a file or a URL) with
// their hashes, per stream, failing on any warning; and the codecs.
func probeMP4(t *testing.T, input string, extra ...string) (video, audio []probedPacket, codecs []string) {
	t.Helper()
	var stderr bytes.Buffer
	args := append(append([]string{"-v", "warning"}, extra...), "-show_packets", "-show_streams", "-show_data_hash", "md5", "-of", "json", input)
	cmd := exec.Command("ffprobe", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v: %s", input, err, stderr.Bytes())
	}
	if w := strings.TrimSpace(stderr.String()); w != "" {
		t.Errorf("ffprobe warns: %s", w)
	}
	var doc struct {
		Packets []probedPacket
		Streams []struct {
			Index     int    `json:"index"`
			CodecName string `json:"codec_name"`
			CodecType string `json:"codec_type"`
		}
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	kind := map[int]string{}
	for _, st := range doc.Streams {
		kind[st.Index] = st.CodecType
		codecs = append(codecs, st.CodecName)
	}
	for _, p := range doc.Packets {
		if kind[p.Stream] == "video" {
			video = append(video, p)
		} else {
			audio = append(audio, p)
		}
	}
	return video, audio, codecs
}

// samePackets checks that the packets are the frames, in order, with the
// key frames flagged.
func samePackets(t *testing.T, what string, got []probedPacket, want []mframe) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d packets, %d frames were put", what, len(got), len(want))
	}
	for i := range got {
		if got[i].Hash != want[i].hash {
			t.Fatalf("%s: packet %d's bytes differ from the frame put", what, i)
		}
		if want[i].key != strings.HasPrefix(got[i].Flags, "K") {
			t.Fatalf("%s: packet %d has flags %q; the frame put was key %v", what, i, got[i].Flags, want[i].key)
		}
	}
}

// getClip posts a GetClip request and returns the status, error type and body.
func getClip(t *testing.T, srv *Server, body any) (int, string, string, []byte) {
	t.Helper()
	j, _ := json.Marshal(body)
	resp, err := http.Post(srv.HTTPURL()+"/getClip", "application/json", bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), resp.Header.Get("Content-Type"), out
}

func clipRequest(stream, selector string, start, end time.Time) map[string]any {
	return map[string]any{"StreamName": stream, "ClipFragmentSelector": map[string]any{
		"FragmentSelectorType": selector,
		"TimestampRange": map[string]any{
			"StartTimestamp": json.Number(fmt.Sprintf("%.3f", float64(start.UnixMilli())/1000)),
			"EndTimestamp":   json.Number(fmt.Sprintf("%.3f", float64(end.UnixMilli())/1000)),
		},
	}}
}

// GetClip of H.264 with B-frames and AAC: the whole stream on server time,
// and two of its fragments on producer time, read back by ffprobe frame for
// frame; the video's presentation times rise by a frame each once sorted,
// from the decode delay, and ffmpeg decodes the clip without a word.
func TestGetClipH264AAC(t *testing.T) {
	src := encodeAV(t, 4)
	srv := startServer(t, "")
	client, _ := newStream(t, srv, "cam-clip", 1)
	origin := time.Now().Add(-time.Minute).Truncate(time.Second)
	before := time.Now().Add(-time.Second)
	src.put(t, srv, client, "cam-clip", origin, 0, 4)

	status, errType, ctype, body := getClip(t, srv, clipRequest("cam-clip", "SERVER_TIMESTAMP", before, time.Now()))
	if status != http.StatusOK || ctype != "video/mp4" {
		t.Fatalf("GetClip: %d %s %s: %s", status, errType, ctype, body)
	}
	path := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	video, audio, codecs := probeMP4(t, path)
	if strings.Join(codecs, ",") != "h264,aac" {
		t.Fatalf("codecs %v", codecs)
	}
	wv, wa := src.want(0, 4)
	samePackets(t, "video", video, wv)
	samePackets(t, "audio", audio, wa)
	pts := make([]int64, len(video))
	for i, p := range video {
		pts[i] = p.PTS
	}
	sortInts(pts)
	for i := range pts {
		if pts[i] != pts[0]+int64(i)*3600 { // 90 kHz
			t.Fatalf("sorted video pts %v do not rise by one frame (3600)", pts[:min(len(pts), 12)])
		}
	}
	if pts[0] != 3600 {
		t.Errorf("the first picture is presented at %d, want the decode delay of x264's two B-frames, one frame (3600)", pts[0])
	}
	var stderr bytes.Buffer
	dec := exec.Command("ffmpeg", "-v", "warning", "-i", path, "-f", "null", "-")
	dec.Stderr = &stderr
	if err := dec.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg decodes the clip with %v: %s", err, stderr.Bytes())
	}

	// Fragments 1 and 2 by producer time: those that start in the range,
	// ends included; not fragment 0, which began before and reaches into it.
	status, errType, _, body = getClip(t, srv, clipRequest("cam-clip", "PRODUCER_TIMESTAMP", origin.Add(500*time.Millisecond), origin.Add(2*time.Second)))
	if status != http.StatusOK {
		t.Fatalf("GetClip on producer time: %d %s: %s", status, errType, body)
	}
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	video, audio, _ = probeMP4(t, path)
	wv, wa = src.want(1, 3)
	samePackets(t, "video of fragments 1-2", video, wv)
	samePackets(t, "audio of fragments 1-2", audio, wa)
}

// H.264 with PCM (as ffmpeg's Matroska carries a camera's raw audio): the
// clip holds the PCM in lpcm, every block a packet as put, and ffmpeg
// decodes it.
func TestGetClipH264PCM(t *testing.T) {
	src := encodeAVWith(t, 2, "pcm_s16le")
	srv := startServer(t, "")
	client, _ := newStream(t, srv, "cam-pcm", 1)
	before := time.Now().Add(-time.Second)
	src.put(t, srv, client, "cam-pcm", time.Now().Add(-time.Minute).Truncate(time.Second), 0, 2)
	status, errType, _, body := getClip(t, srv, clipRequest("cam-pcm", "SERVER_TIMESTAMP", before, time.Now()))
	if status != http.StatusOK {
		t.Fatalf("GetClip: %d %s: %s", status, errType, body)
	}
	path := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	video, audio, codecs := probeMP4(t, path)
	if strings.Join(codecs, ",") != "h264,pcm_s16le" {
		t.Fatalf("codecs %v", codecs)
	}
	wv, wa := src.want(0, 2)
	samePackets(t, "video", video, wv)
	samePackets(t, "audio", audio, wa)
	var stderr bytes.Buffer
	dec := exec.Command("ffmpeg", "-v", "warning", "-i", path, "-f", "null", "-")
	dec.Stderr = &stderr
	if err := dec.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg decodes the clip with %v: %s", err, stderr.Bytes())
	}
}

func sortInts(v []int64) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

// GetClip's refusals, named and coded as the service's.
func TestGetClipErrors(t *testing.T) {
	srv := startServer(t, "")
	ctx := context.Background()
	fill(t, srv, "pump", 2) // scalar samples: no track a player reads
	client, nc := newStream(t, srv, "cam-nocpd", 1)
	if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: "live-only", DataRetentionInHours: 0}); err != nil {
		t.Fatal(err)
	}
	// H.264 without its avcC.
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "cam-nocpd", Tracks: []sdk.Track{{Number: 1, CodecID: "V_MPEG4/ISO/AVC", Type: mkv.TrackTypeVideo}}})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute)
	if err := p.PutFrame(ctx, sdk.Frame{Track: 1, Timestamp: at.UnixNano(), Duration: 40e6, Key: true, Data: []byte{0, 0, 0, 2, 0x65, 0x88}}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	hourAgo := now.Add(-time.Hour - time.Minute)
	cases := []struct {
		name   string
		body   any
		status int
		errT   string
	}{
		{"unknown stream", clipRequest("nope", "SERVER_TIMESTAMP", hourAgo, now), 404, "ResourceNotFoundException"},
		{"no fragments in the range", clipRequest("pump", "SERVER_TIMESTAMP", now.Add(-48*time.Hour), now.Add(-47*time.Hour)), 404, "ResourceNotFoundException"},
		{"end before start", clipRequest("pump", "SERVER_TIMESTAMP", now, hourAgo), 400, "InvalidArgumentException"},
		{"more than 24 hours", clipRequest("pump", "PRODUCER_TIMESTAMP", now.Add(-25*time.Hour), now), 400, "InvalidArgumentException"},
		{"server time in the future", clipRequest("pump", "SERVER_TIMESTAMP", hourAgo, now.Add(time.Hour)), 400, "InvalidArgumentException"},
		{"bad selector type", clipRequest("pump", "ARRIVAL", hourAgo, now), 400, "InvalidArgumentException"},
		{"no selector", map[string]any{"StreamName": "pump"}, 400, "InvalidArgumentException"},
		{"no data retention", clipRequest("live-only", "SERVER_TIMESTAMP", hourAgo, now), 400, "NoDataRetentionException"},
		{"not H.264 or AAC", clipRequest("pump", "SERVER_TIMESTAMP", hourAgo, now), 400, "UnsupportedStreamMediaTypeException"},
		{"H.264 without its avcC", clipRequest("cam-nocpd", "SERVER_TIMESTAMP", hourAgo, time.Now()), 400, "MissingCodecPrivateDataException"},
	}
	for _, c := range cases {
		status, errT, _, body := getClip(t, srv, c.body)
		if status != c.status || errT != c.errT {
			t.Errorf("%s: %d %s (%s), want %d %s", c.name, status, errT, body, c.status, c.errT)
		}
	}
	resp, err := http.Get(srv.HTTPURL() + "/getClip")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("x-amzn-ErrorType") != "InvalidArgumentException" {
		t.Errorf("GET /getClip: %d %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
	}
}

// A clip is written as its fragments are read: while a slow client has
// read the first bytes of a 20 MB clip, the server holds about one
// fragment of it (0.5 MB), not the clip.
func TestGetClipMemoryBounded(t *testing.T) {
	srv := startServer(t, "")
	ctx := context.Background()
	_, nc := newStream(t, srv, "cam-big", 1)
	avcC, _ := hex.DecodeString("0164000dffe100196764000dacd94141fb011000000300100000030320f142996001000468ef8fcbfdf8f800")
	track, err := sdk.H264Track(1, "camera", avcC, 320, 240)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "cam-big", Tracks: []sdk.Track{track}, MinFragmentDuration: time.Second, MaxFragmentDuration: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// 40 fragments of ten 50 KB access units: the remux copies bytes, it
	// does not decode them, so any bytes stand for pictures.
	const frames, size = 400, 50_000
	origin := time.Now().Add(-time.Hour).Truncate(time.Second).UnixNano()
	before := time.Now().Add(-time.Second)
	au := make([]byte, size)
	for i := range frames {
		au[0], au[1], au[2], au[3], au[4] = 0, 0, byte((size-4)>>8), byte((size-4)&0xff), 0x41
		au[5] = byte(i)
		if err := p.PutH264(ctx, 1, origin+int64(i)*100_000_000, 100_000_000, au, i%10 == 0); err != nil {
			t.Fatal(err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatal(err)
	}
	j, _ := json.Marshal(clipRequest("cam-big", "SERVER_TIMESTAMP", before, time.Now()))
	// The heap settles first: the bus and the store release what the put
	// held on their own schedules.
	var base runtime.MemStats
	prev := int64(-1)
	poll.Until(t, 30*time.Second, 200*time.Millisecond, func() error {
		runtime.GC()
		runtime.ReadMemStats(&base)
		cur := int64(base.HeapInuse)
		if d := cur - prev; prev < 0 || d > 256<<10 || d < -256<<10 {
			prev = cur
			return fmt.Errorf("the heap is still moving: %d bytes in use", cur)
		}
		return nil
	})
	resp, err := http.Post(srv.HTTPURL()+"/getClip", "application/json", bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GetClip: %s %s", resp.Status, b)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 256<<10)); err != nil {
		t.Fatal(err)
	}
	// Mid-stream: the server is blocked writing, the rest of the clip
	// unread.
	var mid runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&mid)
	rest, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	total := rest + 256<<10
	if total < frames*size {
		t.Fatalf("the clip has %d bytes, less than the %d put", total, frames*size)
	}
	grew := int64(mid.HeapInuse) - int64(base.HeapInuse)
	t.Logf("clip of %d bytes; mid-stream the heap held %d bytes more than before it", total, grew)
	if grew > 4<<20 {
		t.Fatalf("the heap grew by %d bytes while a %d-byte clip was being read: the clip is held, not streamed", grew, total)
	}
}

// Who may cut clips and open sessions: a key granted GetClip,
// GetHLSStreamingSessionURL and GetDASHStreamingSessionURL on a stream (the
// reader's Get*), on that stream only; a key without them, nobody unsigned.
// A session's GETs need no signature.
func TestMediaOutGrants(t *testing.T) {
	srv, _ := startGrantServer(t, false)
	now := time.Now()
	clip := func(stream string) map[string]any {
		return clipRequest(stream, "SERVER_TIMESTAMP", now.Add(-time.Hour), now)
	}
	hls := func(stream string) map[string]any { return map[string]any{"StreamName": stream} }
	for _, c := range []struct {
		name   string
		key    awsauth.Key
		op     string
		body   map[string]any
		status int
		errT   string
	}{
		// The grant passes; the stream's scalar samples are no video.
		{"reader, its stream: GetClip", grantReader, "getClip", clip("cam-1"), 400, "UnsupportedStreamMediaTypeException"},
		{"reader, its stream: HLS", grantReader, "getHLSStreamingSessionURL", hls("cam-1"), 400, "UnsupportedStreamMediaTypeException"},
		{"reader, its stream: DASH", grantReader, "getDASHStreamingSessionURL", hls("cam-1"), 400, "UnsupportedStreamMediaTypeException"},
		{"reader, another stream: GetClip", grantReader, "getClip", clip("cam-2"), 403, "AccessDeniedException"},
		{"reader, another stream: HLS", grantReader, "getHLSStreamingSessionURL", hls("cam-2"), 403, "AccessDeniedException"},
		{"producer: GetClip", grantProd, "getClip", clip("cam-1"), 403, "AccessDeniedException"},
		{"producer: HLS", grantProd, "getHLSStreamingSessionURL", hls("cam-1"), 403, "AccessDeniedException"},
		{"producer: DASH", grantProd, "getDASHStreamingSessionURL", hls("cam-1"), 403, "AccessDeniedException"},
	} {
		status, errT, body := signedCall(t, srv, c.key, c.op, c.body)
		if status != c.status || errT != c.errT {
			t.Errorf("%s: %d %s (%s), want %d %s", c.name, status, errT, body, c.status, c.errT)
		}
	}
	status, errT, _, _ := getClip(t, srv, clip("cam-1"))
	if status != 403 || errT != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned GetClip: %d %s", status, errT)
	}
	// The session's paths check their token, not a signature.
	for _, path := range []string{"/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken=AQID", "/dash/v1/getDASHManifest.mpd?SessionToken=AQID"} {
		status, errT, _, _ := get(t, srv.HTTPURL()+path)
		if status != 403 || errT != "NotAuthorizedException" {
			t.Errorf("GET %s with a bad token, unsigned: %d %s, want the token refused", path, status, errT)
		}
	}
}
