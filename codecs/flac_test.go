package codecs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sensorium-io/sensorium/internal/testkit/tools"
	"github.com/sensorium-io/sensorium/signals"
)

// decodeFLACFile decodes every frame of a .flac file into interleaved
// little-endian samples of the stream's column type.
func decodeFLACFile(t *testing.T, file []byte) (FLACInfo, []byte) {
	t.Helper()
	info, off, err := ParseFLACHeader(file)
	if err != nil {
		t.Fatal(err)
	}
	d := NewFLACDecoder(info)
	var pcm []byte
	for off < len(file) {
		n, err := d.Decode(file[off:])
		if err != nil {
			t.Fatalf("frame at byte %d: %v", off, err)
		}
		off += n
		pcm = d.AppendInterleaved(pcm)
	}
	return info, pcm
}

// TestFLACDecodesAsFFmpeg decodes FLAC that ffmpeg encoded with every kind
// of subframe and channel decorrelation and compares each sample with what
// ffmpeg's own decoder gives.
func TestFLACDecodesAsFFmpeg(t *testing.T) {
	cases := []struct {
		name string
		args []string // encoder options
		bits int
		in   []string // ffmpeg's input; default the recording
	}{
		{"16-bit stereo, default", []string{"-ac", "2", "-sample_fmt", "s16"}, 16, nil},
		{"16-bit mono, fixed predictors only", []string{"-ac", "1", "-sample_fmt", "s16", "-compression_level", "0"}, 16, nil},
		{"16-bit stereo, best, exact rice", []string{"-ac", "2", "-sample_fmt", "s16", "-compression_level", "12", "-exact_rice_parameters", "1"}, 16, nil},
		{"16-bit stereo, left/side", []string{"-ac", "2", "-sample_fmt", "s16", "-ch_mode", "left_side"}, 16, nil},
		{"16-bit stereo, side/right", []string{"-ac", "2", "-sample_fmt", "s16", "-ch_mode", "right_side"}, 16, nil},
		{"16-bit stereo, mid/side", []string{"-ac", "2", "-sample_fmt", "s16", "-ch_mode", "mid_side"}, 16, nil},
		{"16-bit stereo, independent, odd blocks", []string{"-ac", "2", "-sample_fmt", "s16", "-ch_mode", "indep", "-frame_size", "1000"}, 16, nil},
		{"16-bit 3 channels, tiny blocks", []string{"-ac", "3", "-sample_fmt", "s16", "-frame_size", "100"}, 16, nil},
		{"24-bit stereo", []string{"-ac", "2", "-sample_fmt", "s32", "-bits_per_raw_sample", "24"}, 24, nil},
		{"24-bit holding 16-bit samples (wasted bits)", []string{"-af", "aformat=sample_fmts=s16", "-ac", "2", "-sample_fmt", "s32", "-bits_per_raw_sample", "24"}, 24, nil},
		{"24-bit mono, best", []string{"-ac", "1", "-sample_fmt", "s32", "-bits_per_raw_sample", "24", "-compression_level", "12"}, 24, nil},
		// Full-scale white noise cannot be predicted: verbatim subframes
		// and escaped residual partitions.
		{"white noise", []string{"-ac", "2", "-sample_fmt", "s16"}, 16, []string{"-f", "lavfi", "-i", "anoisesrc=d=2:c=white:a=1:r=44100"}},
		{"white noise, fixed predictors", []string{"-ac", "1", "-sample_fmt", "s16", "-compression_level", "0"}, 16, []string{"-f", "lavfi", "-i", "anoisesrc=d=2:c=white:a=1:r=44100"}},
		// A smooth low tone: the high fixed-predictor orders.
		{"low tone, fixed predictors", []string{"-ac", "1", "-sample_fmt", "s16", "-compression_level", "0"}, 16, []string{"-f", "lavfi", "-i", "sine=f=30:d=2:r=44100"}},
		{"brown noise, fixed predictors", []string{"-ac", "1", "-sample_fmt", "s16", "-compression_level", "1"}, 16, []string{"-f", "lavfi", "-i", "anoisesrc=d=2:c=brown:a=0.5:r=44100"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // ffmpeg's start-up is most of each case
			dir := t.TempDir()
			flac, raw := filepath.Join(dir, "a.flac"), filepath.Join(dir, "a.raw")
			in := c.in
			if in == nil {
				in = tools.AudioInput()
			}
			tools.FFmpeg(t, append(append(in, "-t", "2", "-c:a", "flac"), append(c.args, flac)...)...)
			pcmFormat := "s16le"
			if c.bits > 16 {
				pcmFormat = "s32le"
			}
			tools.FFmpeg(t, "-i", flac, "-f", pcmFormat, raw)
			file, err := os.ReadFile(flac)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(raw)
			if err != nil {
				t.Fatal(err)
			}
			info, got := decodeFLACFile(t, file)
			if info.BitsPerSample != c.bits {
				t.Fatalf("STREAMINFO says %d bits, want %d", info.BitsPerSample, c.bits)
			}
			if c.bits == 24 {
				// ffmpeg gives 24-bit samples in the top bits of an int32;
				// the column keeps their 24-bit values.
				if info.SampleType() != signals.Int32 {
					t.Fatalf("24-bit samples go to %v", info.SampleType())
				}
				for i := 0; i+4 <= len(want); i += 4 {
					binary.LittleEndian.PutUint32(want[i:], uint32(int32(binary.LittleEndian.Uint32(want[i:]))>>8))
				}
			}
			if len(want) == 0 || !bytes.Equal(got, want) {
				t.Fatalf("decoded %d bytes, ffmpeg %d; first difference at byte %d", len(got), len(want), firstDifference(got, want))
			}
			if info.TotalSamples != 0 && int(info.TotalSamples)*info.Channels*info.SampleType().Size() != len(got) {
				t.Fatalf("%d bytes decoded; STREAMINFO says %d samples of %d channels", len(got), info.TotalSamples, info.Channels)
			}
		})
	}
}

func firstDifference(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestFLACRefusesCorruptFrames flips bytes and cuts frames: each is an error
// wrapping ErrCorrupt, never wrong samples and never a panic.
func TestFLACRefusesCorruptFrames(t *testing.T) {
	dir := t.TempDir()
	flac := filepath.Join(dir, "a.flac")
	tools.FFmpeg(t, append(append(tools.AudioInput(), "-t", "1", "-c:a", "flac", "-ac", "2", "-sample_fmt", "s16"), flac)...)
	file, err := os.ReadFile(flac)
	if err != nil {
		t.Fatal(err)
	}
	info, off, err := ParseFLACHeader(file)
	if err != nil {
		t.Fatal(err)
	}
	d := NewFLACDecoder(info)
	n, err := d.Decode(file[off:])
	if err != nil {
		t.Fatal(err)
	}
	frame := file[off : off+n]
	for i := range frame {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(frame)
			bad[i] ^= bit
			if _, err := d.Decode(bad); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("bit %02x of byte %d flipped: %v, want ErrCorrupt", bit, i, err)
			}
		}
	}
	for _, cut := range []int{0, 1, 5, n / 2, n - 1} {
		if _, err := d.Decode(frame[:cut]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("frame cut to %d of %d bytes: %v, want ErrCorrupt", cut, n, err)
		}
	}
	for _, hdr := range [][]byte{nil, []byte("fLaC"), []byte("OggS\x00\x00\x00\x00"), append([]byte("fLaC\x80\x00\x00\x22"), make([]byte, 34)...)} {
		if _, _, err := ParseFLACHeader(hdr); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("header %q: %v, want ErrCorrupt", hdr, err)
		}
	}
}

// TestFLACFixedPredictors checks each fixed predictor against RFC 9639's
// polynomials: residuals made with them restore the signal (ffmpeg does not
// choose every order on short inputs).
func TestFLACFixedPredictors(t *testing.T) {
	pred := [][]int64{{}, {1}, {2, -1}, {3, -3, 1}, {4, -6, 4, -1}} // coefficients of s[i-1], s[i-2], …
	signal := make([]int64, 64)
	for i := range signal {
		signal[i] = int64((i*i*7919)%65536) - 32768
	}
	for order, coef := range pred {
		r := make([]int64, len(signal))
		copy(r, signal[:order])
		for i := order; i < len(signal); i++ {
			var p int64
			for j, c := range coef {
				p += c * signal[i-1-j]
			}
			r[i] = signal[i] - p
		}
		restoreFixed(r, order)
		for i := range r {
			if r[i] != signal[i] {
				t.Fatalf("order %d: sample %d restored as %d, was %d", order, i, r[i], signal[i])
			}
		}
	}
}
