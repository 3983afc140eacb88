package remux_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/mp4"
	"github.com/sensorium-io/sensorium/mp4/remux"
	"github.com/sensorium-io/sensorium/sdk"
)

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

// source is a test stream: x264 pictures with B-frames (decode order,
// presentation times) and AAC frames, as a producer would put them.
type source struct {
	aus     []sdk.AccessUnit
	avcC    []byte
	aac     [][]byte
	asc     []byte
	originM int64 // ms since the Unix epoch of picture 0
}

const fps = 25

func encode(t *testing.T, frames, gop int) *source {
	t.Helper()
	needTools(t, "ffmpeg", "ffprobe")
	dir := t.TempDir()
	v, a := filepath.Join(dir, "v.h264"), filepath.Join(dir, "a.aac")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25",
		"-frames:v", strconv.Itoa(frames), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0", "-bf", "2", "-f", "h264", v).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	secs := strconv.FormatFloat(float64(frames)/fps, 'f', -1, 64)
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", secs,
		"-ac", "2", "-c:a", "aac", "-f", "adts", a).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	s := &source{originM: 1_780_000_000_000}
	b, _ := os.ReadFile(v)
	var err error
	if s.aus, s.avcC, err = sdk.SplitAnnexB(b); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(a)
	for len(b) > 7 {
		size := int(b[3]&3)<<11 | int(b[4])<<3 | int(b[5])>>5
		hdr := 7
		if b[1]&1 == 0 {
			hdr = 9
		}
		if s.asc == nil {
			aot, freq, ch := b[2]>>6+1, b[2]>>2&0xf, (b[2]&1)<<2|b[3]>>6
			s.asc = []byte{aot<<3 | freq>>1, freq<<7 | ch<<3}
		}
		s.aac = append(s.aac, b[hdr:size])
		b = b[size:]
	}
	return s
}

// audioMS is AAC frame i's time, to the millisecond as Matroska keeps it.
func (s *source) audioMS(i int) int64 { return s.originM + (int64(i)*1024*1000+24000)/48000 }

// fragments cuts the source into Matroska fragments at its key frames,
// each with the AAC frames of its time span, as the SDK would store them.
func (s *source) fragments(t *testing.T, audio bool) [][]byte {
	t.Helper()
	tracks := []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeVideo, CodecID: remux.CodecH264, CodecPrivate: s.avcC,
		Video: &mkv.Video{PixelWidth: 160, PixelHeight: 120}}}
	if audio {
		tracks = append(tracks, mkv.TrackEntry{Number: 2, UID: 2, Type: mkv.TrackTypeAudio, CodecID: remux.CodecAAC, CodecPrivate: s.asc,
			Audio: &mkv.Audio{SamplingFrequency: 48000, Channels: 2}})
	}
	var out [][]byte
	a := 0
	for start := 0; start < len(s.aus); {
		end := start + 1
		for end < len(s.aus) && !s.aus[end].Key {
			end++
		}
		cluster := s.originM + int64(start)*1000/fps
		var blocks []mkv.Block
		for i := start; i < end; i++ {
			au := s.aus[i]
			blocks = append(blocks, mkv.Block{Track: 1, Timecode: int16(s.originM + int64(au.Order)*1000/fps - cluster), Keyframe: au.Key, Data: au.Data})
		}
		for audio && a < len(s.aac) && (end == len(s.aus) || s.audioMS(a) < s.originM+int64(end)*1000/fps) {
			blocks = append(blocks, mkv.Block{Track: 2, Timecode: int16(s.audioMS(a) - cluster), Keyframe: true, Data: s.aac[a]})
			a++
		}
		b := mkv.AppendEBMLHeader(nil, "matroska")
		b = mkv.AppendSegmentStart(b)
		b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale})
		b = mkv.AppendTracks(b, tracks)
		b = mkv.AppendCluster(b, uint64(cluster), blocks)
		out = append(out, b)
		start = end
	}
	return out
}

type packet struct {
	Stream int    `json:"stream_index"`
	PTS    int64  `json:"pts"`
	DTS    int64  `json:"dts"`
	Flags  string `json:"flags"`
	Hash   string `json:"data_hash"`
}

func probe(t *testing.T, path string) (video, audio []packet) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("ffprobe", "-v", "warning", "-show_packets", "-show_data_hash", "md5", "-of", "json", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe %s: %v: %s", path, err, stderr.Bytes())
	}
	var doc struct{ Packets []packet }
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range doc.Packets {
		if p.Stream == 0 {
			video = append(video, p)
		} else {
			audio = append(audio, p)
		}
	}
	return video, audio
}

func md5Hex(b []byte) string {
	s := md5.Sum(b)
	return "MD5:" + hex.EncodeToString(s[:])
}

// A clip (relative times, one Writer) of H.264 with B-frames and AAC read
// back by ffprobe: every picture and AAC frame as put, pictures at their
// presentation times from 0 plus the decode delay, AAC frames on an exact
// 1024-sample grid although their Matroska times are rounded to the ms;
// decode times rise.
func TestClipH264AAC(t *testing.T) {
	s := encode(t, 75, 25)
	frags := s.fragments(t, true)
	r, err := remux.New(frags[0], remux.Options{Relative: true, DecodeDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "clip.mp4")
	f, _ := os.Create(path)
	w, err := mp4.NewWriter(f, r.Movie())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range frags {
		mf, err := r.Fragment(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteFragment(mf); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	delay := r.DecodeDelay()
	if delay != 40_000_000 {
		t.Errorf("decode delay %d ns, want one frame (40 ms) for x264's two B-frames", delay)
	}
	video, audio := probe(t, path)
	if len(video) != len(s.aus) || len(audio) != len(s.aac) {
		t.Fatalf("%d video and %d audio packets, want %d and %d", len(video), len(audio), len(s.aus), len(s.aac))
	}
	d := delay / 1e6 * 90
	for i, p := range video {
		want := int64(s.aus[i].Order)*3600 + d
		if p.Hash != md5Hex(s.aus[i].Data) || p.PTS != want || (p.Flags[0] == 'K') != s.aus[i].Key {
			t.Fatalf("video packet %d: %+v, want pts %d, key %v and the access unit's bytes", i, p, want, s.aus[i].Key)
		}
		if i > 0 && p.DTS <= video[i-1].DTS {
			t.Fatalf("video dts do not rise at packet %d: %d after %d", i, p.DTS, video[i-1].DTS)
		}
	}
	for i, p := range audio {
		// Media time 0 is the first decode time: the first picture less the delay.
		want := int64(i)*1024 + delay*48000/1e9
		if p.Hash != md5Hex(s.aac[i]) || p.PTS != want {
			t.Fatalf("audio packet %d: %+v, want pts %d and the frame's bytes", i, p, want)
		}
	}
}

// HLS remuxes each segment on its own, with the session's decode delay and
// audio anchor: the segments are then byte for byte the fragments of one
// continuous remux (but for their sequence numbers), so a player sees no
// gap or overlap between them.
func TestSegmentsAgreeWithContinuous(t *testing.T) {
	s := encode(t, 75, 25)
	frags := s.fragments(t, true)
	whole, err := remux.New(frags[0], remux.Options{DecodeDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	for _, p := range frags {
		mf, err := whole.Fragment(p)
		if err != nil {
			t.Fatal(err)
		}
		mf.Sequence = 1
		var b bytes.Buffer
		if _, err := mf.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		want = append(want, b.Bytes())
	}
	for i, p := range frags {
		seg, err := remux.New(p, remux.Options{DecodeDelay: whole.DecodeDelay(), AudioAnchor: whole.AudioAnchor()})
		if err != nil {
			t.Fatal(err)
		}
		mf, err := seg.Fragment(p)
		if err != nil {
			t.Fatal(err)
		}
		mf.Sequence = 1
		var b bytes.Buffer
		if _, err := mf.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.Bytes(), want[i]) {
			t.Fatalf("segment %d remuxed alone differs from the continuous remux", i)
		}
	}
}

// PCM, for clips: blocks back to back whatever their millisecond times.
func TestClipPCM(t *testing.T) {
	needTools(t, "ffmpeg", "ffprobe")
	const rate = 44100
	var frags [][]byte
	var all []byte
	x := uint32(7)
	tracks := []mkv.TrackEntry{{Number: 3, UID: 3, Type: mkv.TrackTypeAudio, CodecID: remux.CodecPCMLit,
		Audio: &mkv.Audio{SamplingFrequency: rate, Channels: 2, BitDepth: 16}}}
	sample := int64(0)
	for f := 0; f < 3; f++ {
		clusterMS := 1_780_000_000_000 + sample*1000/rate
		var blocks []mkv.Block
		for k := 0; k < 50; k++ {
			n := 441 + k%3 // blocks of uneven length: ms times are rounded
			data := make([]byte, n*4)
			for i := range data {
				x = x*1103515245 + 12345
				data[i] = byte(x >> 16)
			}
			all = append(all, data...)
			blocks = append(blocks, mkv.Block{Track: 3, Timecode: int16(1_780_000_000_000 + sample*1000/rate - clusterMS), Keyframe: true, Data: data})
			sample += int64(n)
		}
		b := mkv.AppendEBMLHeader(nil, "matroska")
		b = mkv.AppendSegmentStart(b)
		b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale})
		b = mkv.AppendTracks(b, tracks)
		frags = append(frags, mkv.AppendCluster(b, uint64(clusterMS), blocks))
	}
	if _, err := remux.New(frags[0], remux.Options{Relative: true}); !errors.Is(err, remux.ErrUnsupported) {
		t.Fatalf("without Options.PCM: %v, want ErrUnsupported", err)
	}
	r, err := remux.New(frags[0], remux.Options{Relative: true, PCM: true, DecodeDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	w, err := mp4.NewWriter(&file, r.Movie())
	if err != nil {
		t.Fatal(err)
	}
	var last *mp4.Run
	for _, p := range frags {
		mf, err := r.Fragment(p)
		if err != nil {
			t.Fatal(err)
		}
		run := mf.Runs[0]
		if last != nil {
			end := last.DecodeTime
			for _, s := range last.Samples {
				end += uint64(s.Duration)
			}
			if run.DecodeTime != end {
				t.Errorf("fragment starts at %d, the previous ended at %d", run.DecodeTime, end)
			}
		}
		cp := run
		cp.Samples = append([]mp4.Sample(nil), run.Samples...)
		last = &cp
		if err := w.WriteFragment(mf); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pcm.mp4")
	if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "s16le", "-").Output()
	if err != nil || !bytes.Equal(out, all) {
		t.Fatalf("ffmpeg decodes %d bytes (%v), %d were put; equal %v", len(out), err, len(all), bytes.Equal(out, all))
	}
}

func TestErrors(t *testing.T) {
	avcC, _ := hex.DecodeString("0164000dffe100196764000dacd94141fb011000000300100000030320f142996001000468ef8fcbfdf8f800")
	fragment := func(tracks ...mkv.TrackEntry) []byte {
		b := mkv.AppendEBMLHeader(nil, "matroska")
		b = mkv.AppendSegmentStart(b)
		b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale})
		b = mkv.AppendTracks(b, tracks)
		return mkv.AppendCluster(b, 1_780_000_000_000, []mkv.Block{{Track: 1, Keyframe: true, Data: []byte{0, 0, 0, 1, 0x65}}})
	}
	h264 := mkv.TrackEntry{Number: 1, UID: 1, Type: mkv.TrackTypeVideo, CodecID: remux.CodecH264, CodecPrivate: avcC}
	cases := []struct {
		name   string
		tracks []mkv.TrackEntry
		want   error
	}{
		{"scalar only", []mkv.TrackEntry{{Number: 1, UID: 1, Type: 0x21, CodecID: "S_SENSORIUM/SCALAR"}}, remux.ErrUnsupported},
		{"H.265", []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeVideo, CodecID: "V_MPEGH/ISO/HEVC", CodecPrivate: []byte{1}}}, remux.ErrUnsupported},
		{"no avcC", []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeVideo, CodecID: remux.CodecH264}}, remux.ErrMissingCodecPrivate},
		{"bad avcC", []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeVideo, CodecID: remux.CodecH264, CodecPrivate: avcC[:9]}}, remux.ErrInvalidCodecPrivate},
		{"no ASC", []mkv.TrackEntry{h264, {Number: 2, UID: 2, Type: mkv.TrackTypeAudio, CodecID: remux.CodecAAC}}, remux.ErrMissingCodecPrivate},
		{"bad ASC", []mkv.TrackEntry{h264, {Number: 2, UID: 2, Type: mkv.TrackTypeAudio, CodecID: remux.CodecAAC, CodecPrivate: []byte{0, 0}}}, remux.ErrInvalidCodecPrivate},
	}
	for _, c := range cases {
		if _, err := remux.New(fragment(c.tracks...), remux.Options{PCM: true}); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := remux.New([]byte("not matroska"), remux.Options{}); !errors.Is(err, remux.ErrInvalidFrame) {
		t.Errorf("garbage: %v, want ErrInvalidFrame", err)
	}
	r, err := remux.New(fragment(h264), remux.Options{})
	if err != nil {
		t.Fatal(err)
	}
	other := h264
	other.CodecPrivate = append(append([]byte(nil), avcC[:len(avcC)-1]...), 1)
	if _, err := r.Fragment(fragment(other)); !errors.Is(err, remux.ErrTracksChanged) {
		t.Errorf("a fragment with another avcC: %v, want ErrTracksChanged", err)
	}
	if mf, err := r.Fragment(fragment(h264)); err != nil || len(mf.Runs) != 1 {
		t.Errorf("the stream's own track again: %v", err)
	}
}
