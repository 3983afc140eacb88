package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/internal/testkit/tools"
	"github.com/sensorium-io/sensorium/sdk"
)

// TestAudioFromFFmpegIsQueryable puts audio that ffmpeg made — PCM of every
// Matroska layout, and FLAC — over PutMedia, as a user's recording would
// come, and queries it as Arrow: the tracks carry no Sensorium description,
// so their rate, channels and sample format come from the Matroska Audio
// element (FLAC: its STREAMINFO). Every sample must equal what ffmpeg itself
// decodes from the same file, and sample times must run on at the sample
// rate across ffmpeg's frames (whose Matroska times are rounded to the
// millisecond).
func TestAudioFromFFmpegIsQueryable(t *testing.T) {
	needTools(t, "ffmpeg")
	srv := startServer(t, "")
	ctx := context.Background()
	cases := []struct {
		name   string
		encode []string // ffmpeg output options
		ref    string   // ffmpeg's raw format for the reference samples
		rate   float64
		chans  []string
		typ    arrow.DataType
		toCol  func(raw []byte) []float64 // reference bytes to column values
	}{
		{"pcm_s16le stereo 44.1 kHz", []string{"-c:a", "pcm_s16le", "-ac", "2", "-ar", "44100"}, "s16le", 44100, []string{"left", "right"}, arrow.PrimitiveTypes.Int16, ints16},
		{"pcm_s24le mono 48 kHz", []string{"-c:a", "pcm_s24le", "-ac", "1", "-ar", "48000"}, "s32le", 48000, []string{"mono"}, arrow.PrimitiveTypes.Int32, ints32shift8},
		{"pcm_s32le stereo 22.05 kHz", []string{"-c:a", "pcm_s32le", "-ac", "2", "-ar", "22050"}, "s32le", 22050, []string{"left", "right"}, arrow.PrimitiveTypes.Int32, ints32},
		{"pcm_f32le 3 channels 16 kHz", []string{"-c:a", "pcm_f32le", "-ac", "3", "-ar", "16000"}, "f32le", 16000, []string{"channel_1", "channel_2", "channel_3"}, arrow.PrimitiveTypes.Float32, floats32},
		{"pcm_u8 mono 8 kHz", []string{"-c:a", "pcm_u8", "-ac", "1", "-ar", "8000"}, "u8", 8000, []string{"mono"}, arrow.PrimitiveTypes.Int16, unsigned8},
		{"flac 16-bit stereo 44.1 kHz", []string{"-c:a", "flac", "-ac", "2", "-ar", "44100", "-sample_fmt", "s16"}, "s16le", 44100, []string{"left", "right"}, arrow.PrimitiveTypes.Int16, ints16},
		{"flac 24-bit mono 96 kHz", []string{"-c:a", "flac", "-ac", "1", "-ar", "96000", "-sample_fmt", "s32", "-bits_per_raw_sample", "24"}, "s32le", 96000, []string{"mono"}, arrow.PrimitiveTypes.Int32, ints32shift8},
	}
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			mkvPath, rawPath := filepath.Join(dir, "a.mkv"), filepath.Join(dir, "a.raw")
			// The recording goes through WAV first: ffmpeg's Vorbis decoder
			// gives packet times that overlap their own samples by up to
			// 9 ms (the clock's unit test covers that case). Clusters of at
			// most 1 s: PutMedia makes each a fragment.
			wav := filepath.Join(dir, "a.wav")
			tools.FFmpeg(t, append(tools.AudioInput(), "-t", "2.5", wav)...)
			tools.FFmpeg(t, append([]string{"-i", wav}, append(c.encode, "-cluster_time_limit", "1000", mkvPath)...)...)
			tools.FFmpeg(t, "-i", mkvPath, "-f", c.ref, rawPath)
			mkv, err := os.ReadFile(mkvPath)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(rawPath)
			if err != nil {
				t.Fatal(err)
			}
			want := c.toCol(raw)
			stream := fmt.Sprintf("recording-%d", i)
			client, _ := newStream(t, srv, stream, 1)
			persisted := 0
			err = client.PutMedia(ctx, sdk.PutMediaInput{Stream: sdk.StreamRef{StreamName: stream}, Body: bytes.NewReader(mkv), Relative: true, ProducerStart: start},
				func(ev sdk.AckEvent) {
					switch ev.EventType {
					case "PERSISTED":
						persisted++
					case "ERROR":
						t.Errorf("PutMedia: %+v", ev)
					}
				})
			if err != nil || persisted < 2 {
				t.Fatalf("PutMedia: %v, %d fragments PERSISTED (want 2 or more)", err, persisted)
			}

			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			res, err := client.Query(ctx, sdk.QueryInput{Stream: stream, Start: start.Add(-time.Second), End: start.Add(time.Minute)}, mem)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Close()
			fields := res.Schema().Fields()
			if len(fields) != 1+len(c.chans) {
				t.Fatalf("schema %v, want time and %v", res.Schema(), c.chans)
			}
			for k, name := range c.chans {
				if f := fields[1+k]; f.Name != name || !arrow.TypeEqual(f.Type, c.typ) {
					t.Fatalf("column %d is %s %s, want %s %s", 1+k, f.Name, f.Type, name, c.typ)
				}
			}
			naive := blockTimes(t, mkvPath, c.rate) // per sample: its block's time plus its offset in the block
			row, back := 0, 0
			var prev int64
			for res.Next() {
				rec := res.RecordBatch()
				times := rec.Column(0).(*array.Timestamp)
				for r := 0; r < int(rec.NumRows()); r++ {
					for k := range c.chans {
						if got, w := columnValue(rec.Column(1+k), r), want[row*len(c.chans)+k]; got != w {
							t.Fatalf("sample %d channel %s = %v, ffmpeg decodes %v", row, c.chans[k], got, w)
						}
					}
					// Each sample is within the millisecond that Matroska
					// rounds block times to of where its block puts it.
					at := int64(times.Value(r)) - start.UnixNano()
					if row >= len(naive) || math.Abs(float64(at)-naive[row]) > 1e6 {
						t.Fatalf("sample %d at %d ns; its block puts it at %.0f ± 1 ms", row, at, naive[min(row, len(naive)-1)])
					}
					// Times rise within a fragment; at a fragment's start
					// the run begins again at its block time, which may be
					// up to 1 ms before the last sample of the fragment
					// before it (docs/QUERY.md).
					if row > 0 && at <= prev {
						if back++; prev-at >= int64(time.Millisecond) || back > persisted-1 {
							t.Fatalf("sample %d at %d ns, after %d ns (step back %d of at most %d, at fragment starts)", row, at, prev, back, persisted-1)
						}
					}
					prev = at
					row++
				}
			}
			if err := res.Err(); err != nil {
				t.Fatal(err)
			}
			if row*len(c.chans) != len(want) {
				t.Fatalf("query returned %d samples per channel, ffmpeg decodes %d", row, len(want)/len(c.chans))
			}
		})
	}
	// A recording of another rate put after the first in its stream: its
	// track has no CodecPrivate either, and a query over both must say the
	// description changed rather than read 16 kHz mono as 44.1 kHz stereo.
	t.Run("another rate after it", func(t *testing.T) {
		dir := t.TempDir()
		mkvPath := filepath.Join(dir, "b.mkv")
		tools.FFmpeg(t, append(tools.AudioInput(), "-t", "1", "-c:a", "pcm_s16le", "-ac", "1", "-ar", "16000", mkvPath)...)
		mkv, err := os.ReadFile(mkvPath)
		if err != nil {
			t.Fatal(err)
		}
		client := sdk.NewClient(srv.HTTPURL(), nil)
		later := start.Add(10 * time.Second)
		if err := client.PutMedia(ctx, sdk.PutMediaInput{Stream: sdk.StreamRef{StreamName: "recording-0"}, Body: bytes.NewReader(mkv), Relative: true, ProducerStart: later}, func(sdk.AckEvent) {}); err != nil {
			t.Fatal(err)
		}
		res, err := client.Query(ctx, sdk.QueryInput{Stream: "recording-0", Start: start, End: later.Add(time.Minute)}, memory.NewGoAllocator())
		if err == nil {
			for res.Next() {
			}
			err = res.Err()
			res.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "changed") {
			t.Fatalf("a query across two rates: %v, want the description-changed refusal", err)
		}
		// Each part alone reads.
		res, err = client.Query(ctx, sdk.QueryInput{Stream: "recording-0", Start: later, End: later.Add(time.Minute)}, memory.NewGoAllocator())
		if err != nil {
			t.Fatal(err)
		}
		defer res.Close()
		if f := res.Schema().Field(1); f.Name != "mono" {
			t.Fatalf("the second recording reads as %v", res.Schema())
		}
	})
}

// blockTimes lists, per sample of a Matroska file's audio, the time its
// block says (ffprobe's frame pts, ms) plus its offset in the block at rate.
func blockTimes(t *testing.T, path string, rate float64) []float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "frame=pts_time,nb_samples", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var times []float64
	for _, line := range strings.Fields(string(out)) {
		var pts float64
		var n int
		if _, err := fmt.Sscanf(line, "%f,%d", &pts, &n); err != nil {
			t.Fatalf("ffprobe line %q: %v", line, err)
		}
		for j := range n {
			times = append(times, math.Round(pts*1000)*1e6+float64(j)*1e9/rate)
		}
	}
	return times
}

func columnValue(col arrow.Array, r int) float64 {
	switch c := col.(type) {
	case *array.Int16:
		return float64(c.Value(r))
	case *array.Int32:
		return float64(c.Value(r))
	case *array.Float32:
		return float64(c.Value(r))
	case *array.Float64:
		return c.Value(r)
	}
	panic(fmt.Sprintf("column of %T", col))
}

func ints16(raw []byte) []float64 {
	out := make([]float64, len(raw)/2)
	for i := range out {
		out[i] = float64(int16(binary.LittleEndian.Uint16(raw[2*i:])))
	}
	return out
}

func ints32(raw []byte) []float64 {
	out := make([]float64, len(raw)/4)
	for i := range out {
		out[i] = float64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
	}
	return out
}

// ints32shift8: ffmpeg gives 24-bit samples in the top bits of an int32; the
// column keeps their 24-bit values.
func ints32shift8(raw []byte) []float64 {
	out := ints32(raw)
	for i := range out {
		out[i] /= 256
	}
	return out
}

func floats32(raw []byte) []float64 {
	out := make([]float64, len(raw)/4)
	for i := range out {
		out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
	}
	return out
}

// unsigned8: 8-bit PCM is unsigned in Matroska; the column centres it on 0.
func unsigned8(raw []byte) []float64 {
	out := make([]float64, len(raw))
	for i, b := range raw {
		out[i] = float64(int(b) - 128)
	}
	return out
}
