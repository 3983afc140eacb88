package server

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/sdk"
)

// needLibx264 is needTools for an ffmpeg that can encode H.264.
func needLibx264(t *testing.T) {
	t.Helper()
	needTools(t, "ffmpeg", "ffprobe")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-encoders").Output()
	if err == nil && bytes.Contains(out, []byte("libx264")) {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("ffmpeg has no libx264: run scripts/install-test-deps.sh")
	}
	t.Skip("ffmpeg has no libx264: run scripts/install-test-deps.sh")
}

// h264Clip encodes a test clip with ffmpeg's lavfi source (e.g.
// "testsrc=size=320x240:rate=25"), seconds long, with an IDR every gop
// pictures and up to bframes B-frames between references, as an Annex B
// stream in a temporary file; it returns the file and its access units and
// avcC. The caller checks for the tools (needLibx264).
func h264Clip(t *testing.T, source string, seconds, gop, bframes int) (string, []sdk.AccessUnit, []byte) {
	t.Helper()
	clip := filepath.Join(t.TempDir(), "clip.h264")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", source, "-t", strconv.Itoa(seconds),
		"-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", strconv.Itoa(gop), "-bf", strconv.Itoa(bframes),
		"-bsf:v", "h264_mp4toannexb", "-f", "h264", clip).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	stream, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	aus, avcC, err := sdk.SplitAnnexB(stream)
	if err != nil {
		t.Fatal(err)
	}
	return clip, aus, avcC
}

// ffprobeLines runs ffprobe and returns its output's lines and its stderr.
func ffprobeLines(t *testing.T, args ...string) ([]string, string) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("ffprobe", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %v: %v: %s", args, err, stderr.Bytes())
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines, stderr.String()
}

// ints parses the first comma-separated field of each line.
func ints(t *testing.T, lines []string) []int64 {
	t.Helper()
	var out []int64
	for _, l := range lines {
		v, err := strconv.ParseInt(strings.SplitN(l, ",", 2)[0], 10, 64)
		if err != nil {
			t.Fatalf("ffprobe line %q: %v", l, err)
		}
		out = append(out, v)
	}
	return out
}

// H.264 with B-frames: access units go in in decode order with their
// presentation times (from SplitAnnexB's Order), and GetMedia's output is
// Matroska that ffmpeg reads with increasing presentation times, increasing
// decode times (no "non monotonically increasing dts" when remuxing) and the
// same pictures as the clip, in the same order.
func TestSDKH264BFramesEndToEnd(t *testing.T) {
	needLibx264(t)
	dir := t.TempDir()
	// Two B-frames, and an IDR every second so that a fragment starts at the
	// second one.
	clip, aus, avcC := h264Clip(t, "testsrc=size=320x240:rate=25", 2, 25, 2)
	// ffprobe's presentation order: pictures come out in it, and their
	// packets' positions rank them in decode order.
	lines, _ := ffprobeLines(t, "-v", "error", "-show_frames", "-show_entries", "frame=pkt_pos", "-of", "csv=p=0", clip)
	pos := ints(t, lines)
	decode := slices.Clone(pos)
	slices.Sort(decode)
	if len(aus) != 50 || len(pos) != 50 {
		t.Fatalf("%d access units, ffprobe sees %d pictures; want 50", len(aus), len(pos))
	}
	reordered := 0
	for display, p := range pos {
		i, _ := slices.BinarySearch(decode, p)
		if aus[i].Order != display {
			t.Fatalf("access unit %d: Order %d, ffprobe presents it %d-th", i, aus[i].Order, display)
		}
		if i != display {
			reordered++
		}
	}
	if reordered == 0 || !aus[0].Key || !aus[25].Key {
		t.Fatalf("the clip has no B-frames (%d reordered) or not an IDR at 0 and 25", reordered)
	}

	srv := startServer(t, "")
	ctx := context.Background()
	client, nc := newStream(t, srv, "cam-b", 1)
	track, err := sdk.H264Track(1, "camera", avcC, 320, 240)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "cam-b", Tracks: []sdk.Track{track}, MinFragmentDuration: time.Second, MaxFragmentDuration: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const frame = 40_000_000 // 25 fps
	origin := time.Now().Add(-time.Minute).Truncate(time.Second).UnixNano()
	for i, au := range aus {
		if err := p.PutH264(ctx, 1, origin+int64(au.Order)*frame, frame, au.Data, au.Key); err != nil {
			t.Fatalf("access unit %d (Order %d): %v", i, au.Order, err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatal(err)
	}
	frags, _, err := client.ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName("cam-b")})
	if err != nil || len(frags) != 2 {
		t.Fatalf("%d fragments (%v), want 2: one per group of pictures", len(frags), err)
	}
	path := getMediaFile(t, client, "cam-b")

	// Pictures in presentation order, one frame apart; decode times rising.
	lines, probeErr := ffprobeLines(t, "-v", "warning", "-show_frames", "-show_entries", "frame=pts", "-of", "csv=p=0", path)
	pts := ints(t, lines)
	if len(pts) != 50 {
		t.Fatalf("ffprobe decodes %d frames, want 50 (stderr: %s)", len(pts), probeErr)
	}
	for i := range pts {
		if pts[i]-pts[0] != int64(i)*40 { // ms: Matroska's timecode scale
			t.Fatalf("frame pts %v: not increasing by 40 ms", pts)
		}
	}
	// Matroska has no decode times: ffmpeg derives them from the
	// presentation times, once it has seen as many packets as the stream
	// reorders (N/A before).
	lines, _ = ffprobeLines(t, "-v", "error", "-show_packets", "-show_entries", "packet=dts", "-of", "csv=p=0", path)
	lines = slices.DeleteFunc(lines, func(l string) bool { return l == "N/A" })
	dts := ints(t, lines)
	if len(dts) < 45 {
		t.Fatalf("ffprobe derives %d packet dts, want all but the first few of 50", len(dts))
	}
	for i := 1; i < len(dts); i++ {
		if dts[i] <= dts[i-1] {
			t.Fatalf("packet dts %v do not increase", dts)
		}
	}
	var stderr bytes.Buffer
	remux := exec.Command("ffmpeg", "-v", "warning", "-i", path, "-c", "copy", "-f", "mp4", filepath.Join(dir, "out.mp4"))
	remux.Stderr = &stderr
	if err := remux.Run(); err != nil {
		t.Fatalf("ffmpeg remux: %v: %s", err, stderr.Bytes())
	}
	for _, s := range []string{probeErr, stderr.String()} {
		if strings.Contains(s, "non monotonically increasing dts") || strings.Contains(s, "Invalid") {
			t.Fatalf("ffmpeg warns: %s", s)
		}
	}

	// The same pictures as the clip, in the same order.
	md5s := func(in string) []string {
		out, err := exec.Command("ffmpeg", "-v", "error", "-i", in, "-fps_mode", "passthrough", "-f", "framemd5", "-").Output()
		if err != nil {
			t.Fatalf("ffmpeg framemd5 %s: %v", in, err)
		}
		var sums []string
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Split(l, ","); len(f) == 6 && !strings.HasPrefix(l, "#") {
				sums = append(sums, strings.TrimSpace(f[5]))
			}
		}
		return sums
	}
	if got, want := md5s(path), md5s(clip); !slices.Equal(got, want) || len(want) != 50 {
		t.Fatalf("GetMedia's pictures differ from the clip's (%d and %d)", len(got), len(want))
	}
}
