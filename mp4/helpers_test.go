package mp4_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sensorium-io/sensorium/sdk"
)

// needTools skips the test when a tool is missing, or fails it under CI
// (where scripts/install-test-deps.sh must have installed it).
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s missing: run scripts/install-test-deps.sh", tool)
			}
			t.Skipf("%s missing: run scripts/install-test-deps.sh", tool)
		}
	}
}

// encodeH264 has ffmpeg (libx264) encode its test pattern: frames at 25
// fps, an IDR every gop, up to bframes B-frames; it returns the access
// units in decode order (AVC form) and the avcC record.
func encodeH264(t *testing.T, frames, gop, bframes int) ([]sdk.AccessUnit, []byte) {
	t.Helper()
	needTools(t, "ffmpeg", "ffprobe")
	path := filepath.Join(t.TempDir(), "v.h264")
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25",
		"-frames:v", strconv.Itoa(frames), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0", "-bf", strconv.Itoa(bframes),
		"-f", "h264", path).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("Unknown encoder")) {
			needLibx264(t)
		}
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	stream, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	aus, avcC, err := sdk.SplitAnnexB(stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(aus) != frames {
		t.Fatalf("%d access units, want %d", len(aus), frames)
	}
	return aus, avcC
}

func needLibx264(t *testing.T) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal("ffmpeg has no libx264: run scripts/install-test-deps.sh")
	}
	t.Skip("ffmpeg has no libx264: run scripts/install-test-deps.sh")
}

// encodeAAC has ffmpeg's AAC encoder encode a tone as ADTS and returns the
// raw frames and the AudioSpecificConfig the ADTS headers describe.
func encodeAAC(t *testing.T, seconds float64, rate, channels int) ([][]byte, []byte) {
	t.Helper()
	needTools(t, "ffmpeg")
	path := filepath.Join(t.TempDir(), "a.aac")
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i",
		"sine=frequency=440:sample_rate="+strconv.Itoa(rate), "-t", strconv.FormatFloat(seconds, 'f', -1, 64),
		"-ac", strconv.Itoa(channels), "-c:a", "aac", "-f", "adts", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	var asc []byte
	for len(b) > 0 {
		if len(b) < 7 || b[0] != 0xff || b[1]&0xf0 != 0xf0 {
			t.Fatalf("not an ADTS header at %x", b[:min(len(b), 8)])
		}
		header := 7
		if b[1]&1 == 0 {
			header = 9 // CRC
		}
		size := int(b[3]&3)<<11 | int(b[4])<<3 | int(b[5])>>5
		if asc == nil {
			profile := b[2]>>6 + 1 // audio object type
			freq := b[2] >> 2 & 0xf
			ch := (b[2]&1)<<2 | b[3]>>6
			asc = []byte{profile<<3 | freq>>1, freq<<7 | ch<<3}
		}
		frames = append(frames, b[header:size])
		b = b[size:]
	}
	return frames, asc
}

// packet is one packet as ffprobe shows it.
type packet struct {
	Stream   int    `json:"stream_index"`
	PTS      int64  `json:"pts"`
	DTS      int64  `json:"dts"`
	Duration int64  `json:"duration"`
	Size     string `json:"size"`
	Flags    string `json:"flags"`
	Hash     string `json:"data_hash"`
}

// probePackets has ffprobe list path's packets with an MD5 of each; it
// fails the test on any warning ffprobe prints.
func probePackets(t *testing.T, path string) []packet {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("ffprobe", "-v", "warning", "-show_packets", "-show_data_hash", "md5", "-of", "json", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v: %s", path, err, stderr.Bytes())
	}
	if stderr.Len() > 0 {
		t.Errorf("ffprobe warns: %s", stderr.Bytes())
	}
	var doc struct{ Packets []packet }
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Packets
}

func md5Hex(b []byte) string {
	s := md5.Sum(b)
	return "MD5:" + hex.EncodeToString(s[:])
}

// probeStreams has ffprobe describe path's streams.
func probeStreams(t *testing.T, path string) []map[string]any {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe -show_streams %s: %v", path, err)
	}
	var doc struct {
		Streams []map[string]any
		Format  map[string]any
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Streams
}
