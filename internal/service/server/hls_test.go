package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/sdk"
)

// hlsSession posts GetHLSStreamingSessionURL and returns the URL, or fails.
func hlsSession(t *testing.T, srv *Server, body map[string]any) string {
	t.Helper()
	status, errType, out := call(t, srv, "getHLSStreamingSessionURL", body)
	if status != http.StatusOK {
		t.Fatalf("GetHLSStreamingSessionURL: %d %s: %s", status, errType, out)
	}
	var resp struct{ HLSStreamingSessionURL string }
	if err := json.Unmarshal(out, &resp); err != nil || !strings.HasPrefix(resp.HLSStreamingSessionURL, srv.HTTPURL()+"/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken=") {
		t.Fatalf("session URL %q (%v)", resp.HLSStreamingSessionURL, err)
	}
	return resp.HLSStreamingSessionURL
}

// get fetches a URL and returns its status, error type, content type and body.
func get(t *testing.T, url string) (int, string, string, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), resp.Header.Get("Content-Type"), b
}

// mediaPlaylist follows the master playlist to the media playlist and
// returns its URL and lines.
func mediaPlaylist(t *testing.T, master string) (string, []string) {
	t.Helper()
	status, _, ctype, body := get(t, master)
	if status != http.StatusOK || ctype != "application/vnd.apple.mpegurl" {
		t.Fatalf("master playlist: %d %s", status, ctype)
	}
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	url := master[:strings.LastIndex(master, "/")+1] + lines[len(lines)-1]
	return url, playlistLines(t, url)
}

func playlistLines(t *testing.T, url string) []string {
	t.Helper()
	status, errType, _, body := get(t, url)
	if status != http.StatusOK {
		t.Fatalf("media playlist: %d %s: %s", status, errType, body)
	}
	return strings.Split(strings.TrimSpace(string(body)), "\n")
}

var segmentRE = regexp.MustCompile(`^getMP4MediaFragment\.mp4\?FragmentNumber=(\d+)&SessionToken=`)

// segments lists a media playlist's fragment numbers and its media
// sequence number.
func segments(t *testing.T, lines []string) (numbers []uint64, sequence int) {
	t.Helper()
	sequence = -1
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"); ok {
			sequence, _ = strconv.Atoi(v)
		}
		if m := segmentRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			numbers = append(numbers, n)
		}
	}
	return numbers, sequence
}

func has(lines []string, line string) bool {
	for _, l := range lines {
		if l == line {
			return true
		}
	}
	return false
}

// An ON_DEMAND session played by ffprobe from its URL — master playlist,
// media playlist, init segment, a segment per fragment — gives back every
// frame put, byte for byte; the playlists have the shape players expect;
// and the init segment with any one media segment is an MP4 of its own, as
// a browser's Media Source Extensions append them.
func TestHLSOnDemand(t *testing.T) {
	src := encodeAV(t, 4)
	srv := startServer(t, "")
	client, _ := newStream(t, srv, "cam-hls", 1)
	before := time.Now().Add(-time.Second)
	src.put(t, srv, client, "cam-hls", time.Now().Add(-time.Minute).Truncate(time.Second), 0, 4)
	ts := func(t time.Time) json.Number { return json.Number(fmt.Sprintf("%.3f", float64(t.UnixMilli())/1000)) }
	master := hlsSession(t, srv, map[string]any{"StreamName": "cam-hls", "PlaybackMode": "ON_DEMAND",
		"DisplayFragmentTimestamp": "ALWAYS", "DiscontinuityMode": "NEVER",
		"HLSFragmentSelector": map[string]any{"FragmentSelectorType": "SERVER_TIMESTAMP",
			"TimestampRange": map[string]any{"StartTimestamp": ts(before), "EndTimestamp": ts(time.Now())}}})

	_, _, _, mbody := get(t, master)
	if !regexp.MustCompile(`(?m)^#EXT-X-STREAM-INF:BANDWIDTH=\d+,CODECS="avc1\.64[0-9a-f]{4},mp4a\.40\.2",RESOLUTION=320x240$`).Match(mbody) {
		t.Errorf("master playlist:\n%s", mbody)
	}
	url, lines := mediaPlaylist(t, master)
	numbers, seq := segments(t, lines)
	for _, want := range []string{"#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-ENDLIST"} {
		if !has(lines, want) {
			t.Errorf("media playlist has no %s:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	if len(numbers) != 4 || seq != 0 || strings.Contains(strings.Join(lines, "\n"), "DISCONTINUITY") ||
		strings.Count(strings.Join(lines, "\n"), "#EXT-X-PROGRAM-DATE-TIME:") != 4 || !strings.HasPrefix(lines[len(lines)-2], "getMP4MediaFragment.mp4") {
		t.Errorf("media playlist:\n%s", strings.Join(lines, "\n"))
	}

	video, audio, codecs := probeMP4(t, master)
	if strings.Join(codecs, ",") != "h264,aac" {
		t.Fatalf("codecs %v", codecs)
	}
	wv, wa := src.want(0, 4)
	samePackets(t, "video", video, wv)
	samePackets(t, "audio", audio, wa)

	// MSE's way: the init segment, then a media segment (the third).
	base := url[:strings.LastIndex(url, "/")+1]
	token := url[strings.Index(url, "SessionToken="):]
	status, _, ctype, init := get(t, base+"getMP4InitFragment.mp4?"+token)
	if status != http.StatusOK || ctype != "video/mp4" {
		t.Fatalf("init segment: %d %s", status, ctype)
	}
	status, _, _, seg := get(t, fmt.Sprintf("%sgetMP4MediaFragment.mp4?FragmentNumber=%d&%s", base, numbers[2], token))
	if status != http.StatusOK {
		t.Fatalf("media segment: %d", status)
	}
	path := filepath.Join(t.TempDir(), "init+2.mp4")
	if err := os.WriteFile(path, append(init, seg...), 0o644); err != nil {
		t.Fatal(err)
	}
	video, audio, _ = probeMP4(t, path)
	wv, wa = src.want(2, 3)
	samePackets(t, "video of segment 2", video, wv)
	samePackets(t, "audio of segment 2", audio, wa)

	// A fragment that is not the session's is not served through it.
	status, errType, _, _ := get(t, fmt.Sprintf("%sgetMP4MediaFragment.mp4?FragmentNumber=%d&%s", base, numbers[3]+1000, token))
	if status != http.StatusNotFound || errType != "ResourceNotFoundException" {
		t.Errorf("a fragment outside the session: %d %s", status, errType)
	}
}

// A LIVE session: its playlist shows the newest fragments and slides as new
// ones are stored, each keeping its media sequence number; ffmpeg plays it
// from its URL, and what it reads are the frames put, in order.
func TestHLSLive(t *testing.T) {
	src := encodeAV(t, 6)
	srv := startServer(t, "")
	client, _ := newStream(t, srv, "cam-live", 1)
	origin := time.Now().Add(-time.Minute).Truncate(time.Second)
	src.put(t, srv, client, "cam-live", origin, 0, 3)
	master := hlsSession(t, srv, map[string]any{"StreamName": "cam-live", "MaxMediaPlaylistFragmentResults": 2})
	url, lines := mediaPlaylist(t, master)
	first, seq := segments(t, lines)
	if len(first) != 2 || seq != 0 || has(lines, "#EXT-X-ENDLIST") || strings.Contains(strings.Join(lines, "\n"), "PLAYLIST-TYPE") {
		t.Fatalf("live playlist of 3 fragments, 2 shown:\n%s", strings.Join(lines, "\n"))
	}

	src.put(t, srv, client, "cam-live", origin, 3, 5)
	var now []uint64
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		lines = playlistLines(t, url)
		now, seq = segments(t, lines)
		if seq != 2 {
			return fmt.Errorf("media sequence %d, want 2 after two more fragments:\n%s", seq, strings.Join(lines, "\n"))
		}
		return nil
	})
	if len(now) != 2 || now[0] <= first[1] || now[1] <= now[0] {
		t.Fatalf("window %v after %v", now, first)
	}
	// The default on server time: a discontinuity between fragments, but
	// none before the window's first, which the sequence counts.
	if !has(lines, "#EXT-X-DISCONTINUITY") || !has(lines, "#EXT-X-DISCONTINUITY-SEQUENCE:2") {
		t.Errorf("discontinuities:\n%s", strings.Join(lines, "\n"))
	}

	// ffmpeg plays from the window's start; a second and a half of it is
	// the frames of fragments 3 and 4 from their start.
	needTools(t, "ffmpeg")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-live_start_index", "0", "-i", master, "-c", "copy", "-t", "1.5", "-f", "framemd5", "-")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, stderr.Bytes())
	}
	var gotV, gotA []string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Split(l, ",")
		if len(f) != 6 || strings.HasPrefix(l, "#") {
			continue
		}
		h := "MD5:" + strings.TrimSpace(f[5])
		if strings.TrimSpace(f[0]) == "0" {
			gotV = append(gotV, h)
		} else {
			gotA = append(gotA, h)
		}
	}
	wv, wa := src.want(3, 5)
	if len(gotV) < 30 || len(gotA) < 60 {
		t.Fatalf("ffmpeg read %d video and %d audio packets of 1.5 s", len(gotV), len(gotA))
	}
	for i, h := range gotV {
		if h != wv[i].hash {
			t.Fatalf("video packet %d of the live session differs from the frame put", i)
		}
	}
	for i, h := range gotA {
		if h != wa[i].hash {
			t.Fatalf("audio packet %d of the live session differs from the frame put", i)
		}
	}
}

// LIVE_REPLAY starts at a time and adds a fragment once as much time has
// passed since the session began as lies between it and the first.
func TestHLSLiveReplay(t *testing.T) {
	src := encodeAV(t, 3)
	srv := startServer(t, "")
	client, _ := newStream(t, srv, "cam-replay", 1)
	origin := time.Now().Add(-time.Minute).Truncate(time.Second)
	src.put(t, srv, client, "cam-replay", origin, 0, 3)
	ts := json.Number(fmt.Sprintf("%.3f", float64(origin.UnixMilli())/1000))
	began := time.Now()
	master := hlsSession(t, srv, map[string]any{"StreamName": "cam-replay", "PlaybackMode": "LIVE_REPLAY",
		"HLSFragmentSelector": map[string]any{"FragmentSelectorType": "PRODUCER_TIMESTAMP", "TimestampRange": map[string]any{"StartTimestamp": ts}}})
	url, lines := mediaPlaylist(t, master)
	if n, _ := segments(t, lines); len(n) != 1 && time.Since(began) < time.Second {
		t.Fatalf("at the start, %d fragments shown, want the first:\n%s", len(n), strings.Join(lines, "\n"))
	}
	poll.Until(t, 10*time.Second, 50*time.Millisecond, func() error {
		n, _ := segments(t, playlistLines(t, url))
		if len(n) < 3 {
			return fmt.Errorf("%d fragments shown", len(n))
		}
		return nil
	})
	waited := time.Since(began)
	frags, _, err := client.ListFragments(context.Background(), sdk.ListFragmentsInput{Stream: sdk.ByName("cam-replay")})
	if err != nil || len(frags) != 3 {
		t.Fatalf("%d fragments (%v)", len(frags), err)
	}
	if apart := frags[2].ProducerTimestamp.Sub(frags[0].ProducerTimestamp.Time); waited < apart-time.Millisecond {
		t.Fatalf("the third fragment (%s after the first) was shown after %s", apart, waited)
	}
}

// GetHLSStreamingSessionURL's refusals and a session's: a stream a player
// cannot play, no fragments, no retention, a forged token.
func TestHLSErrors(t *testing.T) {
	srv := startServer(t, "")
	fill(t, srv, "pump", 2)
	client, _ := newStream(t, srv, "empty", 1)
	_ = client
	if _, _, out := call(t, srv, "createStream", map[string]any{"StreamName": "live-only", "DataRetentionInHours": 0}); out == nil {
		t.Fatal("createStream")
	}
	for _, c := range []struct {
		name   string
		body   map[string]any
		status int
		errT   string
	}{
		{"unknown stream", map[string]any{"StreamName": "nope"}, 404, "ResourceNotFoundException"},
		{"LIVE without fragments", map[string]any{"StreamName": "empty"}, 404, "ResourceNotFoundException"},
		{"no data retention", map[string]any{"StreamName": "live-only"}, 400, "NoDataRetentionException"},
		{"not H.264 or AAC", map[string]any{"StreamName": "pump"}, 400, "UnsupportedStreamMediaTypeException"},
		{"MPEG_TS", map[string]any{"StreamName": "pump", "ContainerFormat": "MPEG_TS"}, 400, "InvalidArgumentException"},
		{"Expires too short", map[string]any{"StreamName": "pump", "Expires": 60}, 400, "InvalidArgumentException"},
	} {
		status, errT, body := call(t, srv, "getHLSStreamingSessionURL", c.body)
		if status != c.status || errT != c.errT {
			t.Errorf("%s: %d %s (%s), want %d %s", c.name, status, errT, body, c.status, c.errT)
		}
	}
	// A forged token: the master playlist of a real session with one
	// character of its token changed.
	src := encodeAV(t, 2)
	cam, _ := newStream(t, srv, "cam-x", 1)
	src.put(t, srv, cam, "cam-x", time.Now().Add(-time.Minute), 0, 2)
	master := hlsSession(t, srv, map[string]any{"StreamName": "cam-x"})
	if status, _, _, _ := get(t, master); status != http.StatusOK {
		t.Fatalf("the real session: %d", status)
	}
	i := strings.Index(master, "SessionToken=") + len("SessionToken=") + 20
	c := byte('A')
	if master[i] == 'A' {
		c = 'B'
	}
	forged := master[:i] + string(c) + master[i+1:]
	if status, errT, _, body := get(t, forged); status != http.StatusForbidden || errT != "NotAuthorizedException" {
		t.Errorf("forged token: %d %s %s", status, errT, body)
	}
}

// In a cluster, a session asked of a node that does not hold the stream
// works through that node: the POST is passed to a holder, the URL names
// the node asked, and its GETs are passed on too — the token, signed with a
// key derived from the shared credentials, verifies on every node.
func TestHLSClusterNodeWithoutTheStream(t *testing.T) {
	needLibx264(t)
	_, aus, avcC := h264Clip(t, "testsrc=size=160x120:rate=25", 3, 25, 2)
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("[ml]\naws_access_key_id = "+authKeyID+"\naws_secret_access_key = "+authSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tc := startTestCluster(t, 3, func(_ int, c *Config) {
		c.Credentials = creds
		c.Cluster.StreamReplicas = 2
	})
	ctx := context.Background()
	key := &sdk.Credentials{AccessKeyID: authKeyID, SecretAccessKey: authSecret}
	signed := func(i int) *sdk.Client {
		return sdk.NewClientWithOptions(tc.nodes[i].HTTPURL(), sdk.ClientOptions{Credentials: key})
	}
	if _, err := signed(0).CreateStream(ctx, sdk.CreateStreamInput{StreamName: "cam-far", DataRetentionInHours: 2}); err != nil {
		t.Fatal(err)
	}
	holders := tc.replicas(0, "cam-far")
	outsider := -1
	for i, c := range tc.cfgs {
		if !slices.Contains(holders, c.Cluster.Node) {
			outsider = i
		}
	}
	if len(holders) != 2 || outsider < 0 {
		t.Fatalf("cam-far on %v", holders)
	}
	nc, err := nats.Connect(tc.nodes[outsider].NATSURL(), nats.UserInfo(authKeyID, authSecret))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	track, err := sdk.H264Track(1, "camera", avcC, 160, 120)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "cam-far", Tracks: []sdk.Track{track}, MinFragmentDuration: time.Second, MaxFragmentDuration: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	origin := time.Now().Add(-time.Minute).Truncate(time.Second).UnixNano()
	var want []mframe
	for _, au := range aus {
		if err := p.PutH264(ctx, 1, origin+int64(au.Order)*40_000_000, 40_000_000, au.Data, au.Key); err != nil {
			t.Fatal(err)
		}
		want = append(want, mframe{video: true, key: au.Key, hash: md5Of(au.Data)})
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, 50*time.Millisecond, func() error {
		f, _, err := signed(outsider).ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName("cam-far")})
		if err != nil || len(f) != 3 {
			return fmt.Errorf("%d fragments (%v)", len(f), err)
		}
		return nil
	})

	body, _ := json.Marshal(map[string]any{"StreamName": "cam-far", "PlaybackMode": "ON_DEMAND", "HLSFragmentSelector": map[string]any{
		"FragmentSelectorType": "PRODUCER_TIMESTAMP", "TimestampRange": map[string]any{
			"StartTimestamp": json.Number(strconv.FormatInt(origin/1e9-1, 10)), "EndTimestamp": json.Number(strconv.FormatInt(origin/1e9+10, 10))}}})
	req, _ := http.NewRequest(http.MethodPost, tc.nodes[outsider].HTTPURL()+"/getHLSStreamingSessionURL", bytes.NewReader(body))
	if err := awsauth.Sign(req, awsauth.Key{AccessKeyID: authKeyID, SecretAccessKey: authSecret}, "us-east-1", body, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var session struct{ HLSStreamingSessionURL string }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(out, &session) != nil ||
		!strings.HasPrefix(session.HLSStreamingSessionURL, tc.nodes[outsider].HTTPURL()+"/hls/v1/") {
		t.Fatalf("GetHLSStreamingSessionURL on the node without the stream: %s %s", resp.Status, out)
	}
	video, audio, _ := probeMP4(t, session.HLSStreamingSessionURL)
	if len(audio) != 0 {
		t.Fatalf("%d audio packets from a video stream", len(audio))
	}
	samePackets(t, "video through the node without the stream", video, want)
}

// An audio-only AAC stream plays through HLS too (the service's "audio only
// streaming"): no RESOLUTION, every AAC frame as put.
func TestHLSAudioOnly(t *testing.T) {
	src := splitMKV(t, 0, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "3",
		"-c:a", "aac", "-ac", "1", "-cluster_size_limit", "8000000", "-cluster_time_limit", "1000")
	srv := startServer(t, "")
	client, _ := newStream(t, srv, "mic-1", 1)
	before := time.Now().Add(-time.Second)
	src.put(t, srv, client, "mic-1", time.Now().Add(-time.Minute).Truncate(time.Second), 0, len(src.clusters))
	ts := func(t time.Time) json.Number { return json.Number(fmt.Sprintf("%.3f", float64(t.UnixMilli())/1000)) }
	master := hlsSession(t, srv, map[string]any{"StreamName": "mic-1", "PlaybackMode": "ON_DEMAND",
		"HLSFragmentSelector": map[string]any{"TimestampRange": map[string]any{"StartTimestamp": ts(before), "EndTimestamp": ts(time.Now())}}})
	_, _, _, mbody := get(t, master)
	if !regexp.MustCompile(`(?m)^#EXT-X-STREAM-INF:BANDWIDTH=\d+,CODECS="mp4a\.40\.2"$`).Match(mbody) {
		t.Fatalf("master playlist:\n%s", mbody)
	}
	video, audio, codecs := probeMP4(t, master)
	if len(video) != 0 || strings.Join(codecs, ",") != "aac" {
		t.Fatalf("%d video packets, codecs %v", len(video), codecs)
	}
	_, wa := src.want(0, len(src.clusters))
	samePackets(t, "audio", audio, wa)
}
