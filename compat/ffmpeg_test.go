package compat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The media tests' sources: ffmpeg's test patterns encoded live, written by
// ffmpeg's own Matroska muxer, as a producer that uses ffmpeg would.

// clip is an ffmpeg encoding to Matroska.
type clip struct {
	name      string
	mediaType string   // the stream's MediaType
	args      []string // ffmpeg's input and codec arguments
	// videoFrames and audioFrames are the frames ffmpeg makes; the test
	// checks the MKV against them.
	videoFrames, audioFrames int
}

// Key frame every 2 s at 25 fps (-g 50), 10 s: five fragments of H.264,
// with 16 kHz mono PCM beside it. A video key frame starts a cluster; the
// size and time limits keep ffmpeg from cutting one anywhere else (on a pipe
// or a URL it cuts every 32 KiB by default). The length is the sources'
// (duration=), not -t, which makes ffmpeg write the session's length as the
// Info Duration: see TestPutMediaInfoDuration.
var avClip = clip{
	name:      "h264+pcm",
	mediaType: "video/h264,audio/L16",
	args: []string{
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=10",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=10",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
		"-c:a", "pcm_s16le", "-ac", "1",
		"-cluster_time_limit", "10000", "-cluster_size_limit", "50000000",
	},
	videoFrames: 250,
	audioFrames: -1, // however many packets ffmpeg cuts 10 s of PCM into
}

// PCM only: 8 s of 48 kHz stereo, a cluster every 2 s (there are no key
// frames to cut at).
var audioClip = clip{
	name:      "pcm",
	mediaType: "audio/L16",
	args: []string{
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=8",
		"-c:a", "pcm_s16le", "-ac", "2",
		"-cluster_time_limit", "2000", "-cluster_size_limit", "50000000",
	},
	audioFrames: -1,
}

// ffmpegCmd is ffmpeg encoding c as Matroska to out (a path, pipe:1 or a URL),
// with extra output options before out.
func ffmpegCmd(ctx context.Context, t *testing.T, c clip, extra []string, out string) *exec.Cmd {
	t.Helper()
	bin := needTool(t, "ffmpeg")
	args := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y"}, c.args...)
	args = append(append(append(args, "-f", "matroska"), extra...), out)
	cmd := exec.CommandContext(ctx, bin, args...)
	return cmd
}

// encodeFile writes c to a file and returns its path and bytes.
func encodeFile(t *testing.T, c clip) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "source.mkv")
	cmd := ffmpegCmd(testContext(t, 60*time.Second), t, c, nil, path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b
}

// probeFrames counts the frames ffprobe decodes in the MKV at path, per
// stream type ("video", "audio").
func probeFrames(t *testing.T, path string) map[string]int {
	t.Helper()
	bin := needTool(t, "ffprobe")
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-v", "error", "-count_frames", "-show_entries", "stream=codec_type,nb_read_frames", "-of", "csv=p=0", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, stderr.String())
	}
	// Each chunk is a document of its own whose Segment has an unknown size,
	// as the service sends them; ffmpeg's reader says so once a chunk.
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if line != "" && !ffprobeNextSegment.MatchString(line) {
			t.Errorf("ffprobe %s: %s", path, line)
		}
	}
	got := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		kind, n, ok := strings.Cut(strings.TrimSpace(line), ",")
		if !ok {
			t.Fatalf("ffprobe line %q", line)
		}
		c, err := strconv.Atoi(n)
		if err != nil {
			t.Fatalf("ffprobe line %q: %v", line, err)
		}
		got[kind] += c
	}
	return got
}

// checkMkvinfo has mkvinfo (mkvtoolnix, a Matroska reader that is not
// ffmpeg's) read the MKV at path, and checks it lists every block. mkvinfo
// reads one Segment of unknown size up to the next EBML header and says it
// resyncs there: a warning that is expected at each document's start
// (starts), and an error anywhere else.
func checkMkvinfo(t *testing.T, path string, blocks int, starts []int) {
	t.Helper()
	bin := needTool(t, "mkvinfo")
	out, err := exec.Command(bin, "-v", path).CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) { // 1: warnings only
		t.Fatalf("mkvinfo -v %s: %v\n%s", path, err, tail(out, 4000))
	}
	if n := strings.Count(string(out), "Simple block") + strings.Count(string(out), "+ Block:"); n != blocks {
		t.Errorf("mkvinfo -v lists %d blocks, want %d", n, blocks)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if m := mkvinfoResync.FindStringSubmatch(line); m != nil {
			if pos, _ := strconv.Atoi(m[1]); m[1] != "" && !slices.Contains(starts, pos) {
				t.Errorf("mkvinfo resyncs at %d, which is not a document's start %v", pos, starts)
			}
		} else if strings.Contains(line, "Error") || strings.Contains(line, "Warning") {
			t.Errorf("mkvinfo: %s", line)
		}
	}
}

var mkvinfoResync = regexp.MustCompile(`^Warning: .*: Error in the Matroska file structure at position (\d+)\. Resyncing to the next level 1 element\.$|^Warning: Resyncing successful at position \d+\.$`)

var ffprobeNextSegment = regexp.MustCompile(`^\[matroska,webm @ 0x[0-9a-f]+\] Found unknown-length element with ID 0x18538067 at pos\. 0x[0-9a-f]+ for which no syntax for parsing is available\.$`)

func tail(b []byte, n int) string {
	if len(b) > n {
		return fmt.Sprintf("…%s", b[len(b)-n:])
	}
	return string(b)
}
