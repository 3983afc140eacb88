package mkv

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// These tests hand writer output to ffprobe and mkvinfo, two independent
// Matroska readers. scripts/install-test-deps.sh installs them; in CI a
// missing tool fails the test, elsewhere it skips it.
//
// What the tools say about concatenated documents (ffmpeg 5.1, mkvtoolnix
// 74; the FFmpeg source has not changed here since): a single document with
// an unknown-size Segment reads cleanly. Several documents back to back, as
// GetMedia sends them, read cleanly when their Segments have known sizes
// (FinishSegment). With unknown-size Segments both tools log one error per
// document boundary and resync to the next document, losing nothing:
// ffmpeg finds the next Segment where it expects a Segment child ("Found
// unknown-length element with ID 0x18538067 ... for which no syntax for
// parsing is available"), mkvinfo -v warns "Error in the Matroska file
// structure" and exits 1. The tests pin exactly that, so any other complaint
// fails them.

func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing: run scripts/install-test-deps.sh", name)
		}
		t.Skipf("%s missing: run scripts/install-test-deps.sh", name)
	}
	return p
}

// runTool runs a tool and returns stdout, stderr and the exit code.
func runTool(t *testing.T, name string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(requireTool(t, name), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("%s: %v", name, err)
	}
	return stdout.String(), stderr.String(), code
}

// toolFile is a file of chunks and where each document starts.
type toolFile struct {
	path   string
	starts []int
	blocks int
}

// writeChunks writes n chunks with the Append functions; finish gives the
// Segments known sizes.
func writeChunks(t *testing.T, n int, finish bool, tracks []TrackEntry, blocks func(doc int) []Block) toolFile {
	t.Helper()
	var b []byte
	f := toolFile{path: filepath.Join(t.TempDir(), "chunks.mkv")}
	for doc := range n {
		f.starts = append(f.starts, len(b))
		b = AppendEBMLHeader(b, "matroska")
		seg := len(b)
		b = AppendSegmentStart(b)
		b = AppendInfo(b, Info{MuxingApp: "sensorium", WritingApp: "mkv tools_test"})
		b = AppendTracks(b, tracks)
		b = AppendTags(b, fragmentTags(doc))
		bs := blocks(doc)
		f.blocks += len(bs)
		b = AppendCluster(b, uint64(1000*doc), bs)
		b = AppendTags(b, clusterTags(doc))
		if finish {
			if err := FinishSegment(b, seg); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(f.path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

var metadataTrack = []TrackEntry{{Number: 1, UID: 1, Type: TrackTypeMetadata, Name: "temperature",
	CodecID: "S_SENSORIUM/SCALAR", CodecPrivate: []byte(`{"unit":"degC","period_ns":100000000}`)}}

var pcmTrack = []TrackEntry{{Number: 1, UID: 1, Type: TrackTypeAudio, CodecID: "A_PCM/INT/LIT",
	Audio: &Audio{SamplingFrequency: 16000, Channels: 1, BitDepth: 16}}}

// scalarBlocks is ten float64 temperature readings, 100 ms apart.
func scalarBlocks(doc int) []Block {
	var bs []Block
	for i := range 10 {
		v := binary.LittleEndian.AppendUint64(nil, math.Float64bits(20+float64(doc)+float64(i)/10))
		bs = append(bs, Block{Track: 1, Timecode: int16(100 * i), Keyframe: true, Data: v})
	}
	return bs
}

// pcmBlocks is 20 ms blocks of a 440 Hz sine at 16 kHz, 16-bit mono.
func pcmBlocks(doc int) []Block {
	const rate, perBlock = 16000, 320
	var bs []Block
	for i := range 50 {
		data := make([]byte, 0, 2*perBlock)
		for s := range perBlock {
			n := (doc*50+i)*perBlock + s
			v := int16(8000 * math.Sin(2*math.Pi*440*float64(n)/rate))
			data = binary.LittleEndian.AppendUint16(data, uint16(v))
		}
		bs = append(bs, Block{Track: 1, Timecode: int16(20 * i), Keyframe: true, Data: data})
	}
	return bs
}

var toolCases = []struct {
	name   string
	tracks []TrackEntry
	blocks func(int) []Block
	stream []string // lines ffprobe must print for the stream
}{
	{"metadata", metadataTrack, scalarBlocks, []string{"index=0", "extradata_size=37", "TAG:title=temperature"}},
	{"pcm", pcmTrack, pcmBlocks, []string{"codec_name=pcm_s16le", "sample_rate=16000", "channels=1"}},
}

var ffmpegBoundary = regexp.MustCompile(`^\[matroska,webm @ 0x[0-9a-f]+\] Found unknown-length element with ID 0x18538067 at pos\. 0x([0-9a-f]+) for which no syntax for parsing is available\.$`)

// checkFFmpegStderr accepts only the document-boundary error, and only at
// the Segment of a document after the first.
func checkFFmpegStderr(t *testing.T, f toolFile, finished bool, stderr string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if line == "" {
			continue
		}
		m := ffmpegBoundary.FindStringSubmatch(line)
		if finished || m == nil {
			t.Errorf("ffprobe error: %s", line)
			continue
		}
		pos, _ := strconv.ParseInt(m[1], 16, 64)
		if !isSegmentOf(f, int(pos)) {
			t.Errorf("boundary error at 0x%x, which is not the Segment of a later document (%v)", pos, f.starts)
		}
	}
}

// isSegmentOf reports whether pos is where a later document's Segment starts.
func isSegmentOf(f toolFile, pos int) bool {
	hdrLen := len(AppendEBMLHeader(nil, "matroska"))
	for _, s := range f.starts[1:] {
		if pos == s+hdrLen || pos == s {
			return true
		}
	}
	return false
}

func TestFFprobeReadsWriterOutput(t *testing.T) {
	requireTool(t, "ffprobe")
	for _, tc := range toolCases {
		for _, finished := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/finished=%v", tc.name, finished), func(t *testing.T) {
				f := writeChunks(t, 2, finished, tc.tracks, tc.blocks)
				out, stderr, code := runTool(t, "ffprobe", "-v", "error", "-show_streams", "-show_format", f.path)
				t.Logf("ffprobe -v error -show_streams -show_format:\n%s%s", stderr, out)
				if code != 0 || !strings.Contains(out, "[STREAM]") {
					t.Fatalf("ffprobe exit %d, stream listed: %v", code, strings.Contains(out, "[STREAM]"))
				}
				for _, want := range tc.stream {
					if !strings.Contains(out, want) {
						t.Errorf("ffprobe output lacks %q", want)
					}
				}
				checkFFmpegStderr(t, f, finished, stderr)

				// Every frame of every document must come through.
				out, stderr, code = runTool(t, "ffprobe", "-v", "error", "-show_packets", f.path)
				if n := strings.Count(out, "[PACKET]"); code != 0 || n != f.blocks {
					t.Errorf("ffprobe -show_packets: exit %d, %d packets, want %d", code, n, f.blocks)
				}
				checkFFmpegStderr(t, f, finished, stderr)
			})
		}
	}
}

var mkvinfoResync = regexp.MustCompile(`^Warning: .*: Error in the Matroska file structure at position (\d+)\. Resyncing to the next level 1 element\.$|^Warning: Resyncing successful at position \d+\.$`)

func TestMkvinfoReadsWriterOutput(t *testing.T) {
	requireTool(t, "mkvinfo")
	for _, tc := range toolCases {
		for _, finished := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/finished=%v", tc.name, finished), func(t *testing.T) {
				f := writeChunks(t, 2, finished, tc.tracks, tc.blocks)
				out, stderr, code := runTool(t, "mkvinfo", f.path)
				if code != 0 || !strings.Contains(out, tc.tracks[0].CodecID) {
					t.Fatalf("mkvinfo: exit %d\n%s%s", code, stderr, out)
				}
				// -v walks every cluster of every document.
				out, stderr, code = runTool(t, "mkvinfo", "-v", f.path)
				if n := strings.Count(out, "+ Simple block:"); n != f.blocks {
					t.Errorf("mkvinfo -v lists %d blocks, want %d", n, f.blocks)
				}
				warned := false
				for _, line := range strings.Split(out+stderr, "\n") {
					if !strings.HasPrefix(line, "Warning") && !strings.HasPrefix(line, "Error") {
						continue
					}
					warned = true
					m := mkvinfoResync.FindStringSubmatch(line)
					if finished || m == nil {
						t.Errorf("mkvinfo -v: %s", line)
					} else if pos, _ := strconv.Atoi(m[1]); m[1] != "" && !isDocStart(f, pos) {
						t.Errorf("mkvinfo resync at %d, not at a document boundary %v", pos, f.starts)
					}
				}
				if wantCode := map[bool]int{true: 1, false: 0}[warned]; code != wantCode {
					t.Errorf("mkvinfo -v exit %d (warnings: %v)", code, warned)
				}
			})
		}
	}
}

func isDocStart(f toolFile, pos int) bool {
	for _, s := range f.starts[1:] {
		if pos == s {
			return true
		}
	}
	return false
}
