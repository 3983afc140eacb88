package mp4_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/mp4"
	"github.com/sensorium-io/sensorium/sdk"
)

const videoScale = 90000
const frameTicks = videoScale / 25

// videoRuns cuts access units (decode order, pts = (Order + delay) ×
// frame) into one run per group of pictures, with decode times the sorted
// presentation times less the stream's decode delay, as remux does; it
// returns the delay in frames.
func videoRuns(aus []sdk.AccessUnit, track uint32) ([]mp4.Run, int) {
	delay := 0
	for i, au := range aus {
		delay = max(delay, i-au.Order)
	}
	var runs []mp4.Run
	for start := 0; start < len(aus); {
		end := start + 1
		for end < len(aus) && !aus[end].Key {
			end++
		}
		r := mp4.Run{Track: track, DecodeTime: uint64(start * frameTicks)}
		for i := start; i < end; i++ {
			au := aus[i]
			r.Samples = append(r.Samples, mp4.Sample{Duration: frameTicks, Size: uint32(len(au.Data)), Sync: au.Key,
				CompositionOffset: int32((au.Order + delay - i) * frameTicks)})
			r.Data = append(r.Data, au.Data...)
		}
		runs = append(runs, r)
		start = end
	}
	return runs, delay
}

// audioRuns cuts AAC frames into runs of n frames.
func audioRuns(frames [][]byte, track uint32, n int) []mp4.Run {
	var runs []mp4.Run
	for start := 0; start < len(frames); start += n {
		r := mp4.Run{Track: track, DecodeTime: uint64(start * 1024)}
		for _, f := range frames[start:min(start+n, len(frames))] {
			r.Samples = append(r.Samples, mp4.Sample{Duration: 1024, Size: uint32(len(f)), Sync: true})
			r.Data = append(r.Data, f...)
		}
		runs = append(runs, r)
	}
	return runs
}

// A file of H.264 with B-frames and AAC, one fragment per group of
// pictures, read back by ffprobe: every packet's bytes as written, in
// decode order, with the presentation times given, key frames flagged, and
// ffmpeg decodes it without a complaint.
func TestWriterH264AAC(t *testing.T) {
	aus, avcC := encodeH264(t, 75, 25, 2)
	frames, asc := encodeAAC(t, 3, 48000, 2)
	avc, err := mp4.NewAVC(avcC, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	aac, err := mp4.NewAAC(asc, 0)
	if err != nil {
		t.Fatal(err)
	}
	movie := &mp4.Movie{Tracks: []mp4.Track{{ID: 1, Timescale: videoScale, Entry: avc}, {ID: 2, Timescale: 48000, Entry: aac}},
		Duration: 3 * time.Second}
	if got := movie.Codecs(); !strings.HasPrefix(got, "avc1.") || !strings.HasSuffix(got, ",mp4a.40.2") {
		t.Fatalf("Codecs() = %q", got)
	}
	vr, delay := videoRuns(aus, 1)
	ar := audioRuns(frames, 2, 47) // 47 frames ≈ 1.003 s
	if delay == 0 {
		t.Fatal("the clip has no B-frames")
	}
	if len(vr) != 3 {
		t.Fatalf("%d groups of pictures, want 3", len(vr))
	}
	path := filepath.Join(t.TempDir(), "out.mp4")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := mp4.NewWriter(f, movie)
	if err != nil {
		t.Fatal(err)
	}
	for i := range max(len(vr), len(ar)) {
		var frag mp4.Fragment
		if i < len(vr) {
			frag.Runs = append(frag.Runs, vr[i])
		}
		if i < len(ar) {
			frag.Runs = append(frag.Runs, ar[i])
		}
		if err := w.WriteFragment(&frag); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	streams := probeStreams(t, path)
	if len(streams) != 2 || streams[0]["codec_name"] != "h264" || streams[1]["codec_name"] != "aac" ||
		streams[0]["width"] != 160.0 || streams[0]["height"] != 120.0 || streams[1]["sample_rate"] != "48000" || streams[1]["channels"] != 2.0 {
		t.Fatalf("ffprobe streams: %v", streams)
	}
	var video, audio []packet
	for _, p := range probePackets(t, path) {
		if p.Stream == 0 {
			video = append(video, p)
		} else {
			audio = append(audio, p)
		}
	}
	if len(video) != len(aus) || len(audio) != len(frames) {
		t.Fatalf("ffprobe reads %d video and %d audio packets, want %d and %d", len(video), len(audio), len(aus), len(frames))
	}
	var dts []int64
	for i, p := range video {
		if p.Hash != md5Hex(aus[i].Data) {
			t.Fatalf("video packet %d: bytes differ from access unit %d", i, i)
		}
		if want := int64((aus[i].Order + delay) * frameTicks); p.PTS != want {
			t.Errorf("video packet %d: pts %d, want %d", i, p.PTS, want)
		}
		if strings.Contains(p.Flags, "K") != aus[i].Key {
			t.Errorf("video packet %d: flags %q, key %v", i, p.Flags, aus[i].Key)
		}
		dts = append(dts, p.DTS)
	}
	if !slices.IsSorted(dts) || dts[0] != 0 {
		t.Errorf("video dts %v: not rising from 0", dts)
	}
	for i, p := range audio {
		if p.Hash != md5Hex(frames[i]) || p.PTS != int64(i*1024) {
			t.Fatalf("audio packet %d: %+v, want pts %d and the frame's bytes", i, p, i*1024)
		}
	}
	var stderr bytes.Buffer
	dec := exec.Command("ffmpeg", "-v", "warning", "-i", path, "-f", "null", "-")
	dec.Stderr = &stderr
	if err := dec.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg decodes with %v: %s", err, stderr.Bytes())
	}
}

// PCM in lpcm: ffmpeg names the codec from the sound description's flags
// and decodes exactly the bytes written, for every sample format Matroska's
// PCM codecs carry.
func TestWriterPCM(t *testing.T) {
	needTools(t, "ffmpeg", "ffprobe")
	cases := []struct {
		pcm   mp4.PCM
		codec string // ffprobe's codec_name
		raw   string // ffmpeg's raw format of the same samples
	}{
		{mp4.PCM{SampleRate: 48000, Channels: 2, Bits: 16}, "pcm_s16le", "s16le"},
		{mp4.PCM{SampleRate: 16000, Channels: 1, Bits: 16, BigEndian: true}, "pcm_s16be", "s16be"},
		{mp4.PCM{SampleRate: 44100, Channels: 2, Bits: 24}, "pcm_s24le", "s24le"},
		{mp4.PCM{SampleRate: 8000, Channels: 3, Bits: 32}, "pcm_s32le", "s32le"},
		{mp4.PCM{SampleRate: 48000, Channels: 1, Bits: 32, Float: true}, "pcm_f32le", "f32le"},
		{mp4.PCM{SampleRate: 22050, Channels: 2, Bits: 64, Float: true}, "pcm_f64le", "f64le"},
		{mp4.PCM{SampleRate: 8000, Channels: 1, Bits: 8, Unsigned: true}, "pcm_u8", "u8"},
	}
	for _, c := range cases {
		t.Run(c.codec, func(t *testing.T) {
			frame := c.pcm.FrameSize()
			perSample := c.pcm.SampleRate / 50 // 20 ms a sample, as the SDK's PCM frames
			var all []byte
			path := filepath.Join(t.TempDir(), "pcm.mp4")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			w, err := mp4.NewWriter(f, &mp4.Movie{Tracks: []mp4.Track{{ID: 1, Timescale: uint32(c.pcm.SampleRate), Entry: &c.pcm}}})
			if err != nil {
				t.Fatal(err)
			}
			x := uint32(1)
			for frag := 0; frag < 3; frag++ {
				r := mp4.Run{Track: 1, DecodeTime: uint64(frag * 10 * perSample)}
				for s := 0; s < 10; s++ {
					n := perSample
					if frag == 2 && s == 9 {
						n = perSample / 3 // a shorter last sample
					}
					data := make([]byte, n*frame)
					for i := range data {
						x = x*1664525 + 1013904223
						data[i] = byte(x >> 24)
					}
					if c.pcm.Float { // keep every value a finite float: NaNs may not pass through unchanged
						for i := c.pcm.Bits/8 - 1; i < len(data); i += c.pcm.Bits / 8 {
							data[i] &= 0x3f
						}
					}
					r.Samples = append(r.Samples, mp4.Sample{Duration: uint32(n), Size: uint32(len(data)), Sync: true})
					r.Data = append(r.Data, data...)
				}
				all = append(all, r.Data...)
				if err := w.WriteFragment(&mp4.Fragment{Runs: []mp4.Run{r}}); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			f.Close()
			streams := probeStreams(t, path)
			if len(streams) != 1 || streams[0]["codec_name"] != c.codec || streams[0]["channels"] != float64(c.pcm.Channels) {
				t.Fatalf("ffprobe: %v", streams)
			}
			var stderr bytes.Buffer
			cmd := exec.Command("ffmpeg", "-v", "warning", "-i", path, "-f", c.raw, "-c:a", "pcm_"+c.raw, "-")
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			warns := strings.TrimSpace(stderr.String())
			if c.pcm.Channels > 2 && strings.HasPrefix(warns, "Guessed Channel Layout") && !strings.Contains(warns, "\n") {
				warns = "" // no layout is written for more than two channels
			}
			if err != nil || warns != "" {
				t.Fatalf("ffmpeg: %v: %s", err, stderr.Bytes())
			}
			if !bytes.Equal(out, all) {
				t.Fatalf("ffmpeg decodes %d bytes, %d were written; equal: %v", len(out), len(all), bytes.Equal(out, all))
			}
		})
	}
}
