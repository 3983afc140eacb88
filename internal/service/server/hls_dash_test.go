package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The same sessions as MPEG-DASH: an ON_DEMAND session's manifest, a
// SegmentList per track, played by ffprobe (ffmpeg's DASH demuxer) frame
// for frame.
func TestDASHOnDemand(t *testing.T) {
	src := encodeAV(t, 3)
	srv := startServer(t, "")
	client, _ := newStream(t, srv, "cam-dash", 1)
	before := time.Now().Add(-time.Second)
	src.put(t, srv, client, "cam-dash", time.Now().Add(-time.Minute).Truncate(time.Second), 0, 3)
	ts := func(t time.Time) json.Number { return json.Number(fmt.Sprintf("%.3f", float64(t.UnixMilli())/1000)) }
	status, errType, out := call(t, srv, "getDASHStreamingSessionURL", map[string]any{"StreamName": "cam-dash", "PlaybackMode": "ON_DEMAND",
		"DASHFragmentSelector": map[string]any{"FragmentSelectorType": "SERVER_TIMESTAMP",
			"TimestampRange": map[string]any{"StartTimestamp": ts(before), "EndTimestamp": ts(time.Now())}}})
	var resp struct{ DASHStreamingSessionURL string }
	if status != http.StatusOK || json.Unmarshal(out, &resp) != nil || !strings.HasPrefix(resp.DASHStreamingSessionURL, srv.HTTPURL()+"/dash/v1/getDASHManifest.mpd?SessionToken=") {
		t.Fatalf("GetDASHStreamingSessionURL: %d %s %s", status, errType, out)
	}
	status, _, ctype, mpd := get(t, resp.DASHStreamingSessionURL)
	if status != http.StatusOK || ctype != "application/dash+xml" || !strings.Contains(string(mpd), `type="static"`) ||
		strings.Count(string(mpd), "<SegmentURL ") != 6 || !strings.Contains(string(mpd), `codecs="mp4a.40.2"`) {
		t.Fatalf("manifest: %d %s\n%s", status, ctype, mpd)
	}
	// One track at a time: read together, ffmpeg 5.1's DASH demuxer ends at
	// the end of the representation that ends first (here the video, a
	// frame before the last AAC frame), which all of them hold.
	video, _, codecs := probeMP4(t, resp.DASHStreamingSessionURL, "-select_streams", "v")
	_, audio, acodecs := probeMP4(t, resp.DASHStreamingSessionURL, "-select_streams", "a")
	if strings.Join(codecs, ",") != "h264" || strings.Join(acodecs, ",") != "aac" {
		t.Fatalf("codecs %v %v", codecs, acodecs)
	}
	wv, wa := src.want(0, 3)
	samePackets(t, "video", video, wv)
	samePackets(t, "audio", audio, wa)
}

// A LIVE DASH session's manifest is dynamic, on the Unix epoch, and lists
// the newest fragments' segments per track; ffmpeg plays it from the
// window's start, picture for picture.
func TestDASHLiveManifest(t *testing.T) {
	src := encodeAV(t, 3)
	srv := startServer(t, "")
	client, _ := newStream(t, srv, "cam-dlive", 1)
	src.put(t, srv, client, "cam-dlive", time.Now().Add(-time.Minute).Truncate(time.Second), 0, 3)
	status, errType, out := call(t, srv, "getDASHStreamingSessionURL", map[string]any{"StreamName": "cam-dlive", "MaxManifestFragmentResults": 2})
	var resp struct{ DASHStreamingSessionURL string }
	if status != http.StatusOK || json.Unmarshal(out, &resp) != nil {
		t.Fatalf("GetDASHStreamingSessionURL: %d %s %s", status, errType, out)
	}
	_, _, _, mpd := get(t, resp.DASHStreamingSessionURL)
	m := string(mpd)
	if !strings.Contains(m, `type="dynamic"`) || !strings.Contains(m, `availabilityStartTime="1970-01-01T00:00:00Z"`) ||
		strings.Count(m, "<SegmentURL ") != 4 || strings.Count(m, "<AdaptationSet ") != 2 || !strings.Contains(m, `presentationTimeOffset="0"`) {
		t.Fatalf("manifest:\n%s", m)
	}
	// A segment of one track, as a DASH player fetches it.
	base := resp.DASHStreamingSessionURL[:strings.LastIndex(resp.DASHStreamingSessionURL, "/")+1]
	i := strings.Index(m, `<SegmentURL media="`) + len(`<SegmentURL media="`)
	seg := strings.ReplaceAll(m[i:i+strings.Index(m[i:], `"`)], "&amp;", "&")
	if status, errType, ctype, _ := get(t, base+seg); status != http.StatusOK || ctype != "video/mp4" {
		t.Fatalf("segment %s: %d %s", seg, status, errType)
	}
	needTools(t, "ffmpeg")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ffmpeg", "-v", "warning", "-i", resp.DASHStreamingSessionURL, "-map", "0:v", "-c", "copy", "-t", "1.5", "-f", "framemd5", "-")
	cmd.Stderr = &stderr
	md5s, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg plays the live manifest: %v: %s", err, stderr.Bytes())
	}
	// Its video is the window's (fragments 1 and 2), from its start.
	var got []string
	for _, l := range strings.Split(string(md5s), "\n") {
		if f := strings.Split(l, ","); len(f) == 6 && !strings.HasPrefix(l, "#") {
			got = append(got, "MD5:"+strings.TrimSpace(f[5]))
		}
	}
	wv, _ := src.want(1, 3)
	if len(got) < 30 {
		t.Fatalf("ffmpeg read %d pictures of 1.5 s", len(got))
	}
	for i := range got {
		if got[i] != wv[i].hash {
			t.Fatalf("picture %d of the live DASH session differs from the one put", i)
		}
	}
}
