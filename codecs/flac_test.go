package codecs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
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

// flacBitWriter writes the bits of hand-made frames, most significant first.
type flacBitWriter struct {
	b []byte
	n uint
}

func (w *flacBitWriter) put(v uint64, k uint) {
	for i := int(k) - 1; i >= 0; i-- {
		if w.n%8 == 0 {
			w.b = append(w.b, 0)
		}
		if v>>uint(i)&1 != 0 {
			w.b[len(w.b)-1] |= 0x80 >> (w.n % 8)
		}
		w.n++
	}
}

// flacHeader is a STREAMINFO-only stream header.
func flacHeader(minBlock, maxBlock, rate, channels, bits int) []byte {
	s := make([]byte, 34)
	binary.BigEndian.PutUint16(s[0:], uint16(minBlock))
	binary.BigEndian.PutUint16(s[2:], uint16(maxBlock))
	binary.BigEndian.PutUint64(s[10:], uint64(rate)<<44|uint64(channels-1)<<41|uint64(bits-1)<<36)
	return append([]byte("fLaC\x80\x00\x00\x22"), s...)
}

// flacFrame makes a frame: header bytes 2 and 3 (block size and rate codes;
// channel assignment and sample size codes), frame number 0, the optional
// block size bytes, then the subframes sub writes, then both CRCs.
func flacFrame(b2, b3 byte, blockBytes []byte, sub func(w *flacBitWriter)) []byte {
	h := append([]byte{0xff, 0xf8, b2, b3, 0x00}, blockBytes...)
	h = append(h, crc8FLAC(h))
	w := &flacBitWriter{b: h, n: uint(len(h) * 8)}
	sub(w)
	return binary.BigEndian.AppendUint16(w.b, crc16FLAC(w.b))
}

// TestFLACHandMadeFrames covers what ffmpeg's encoder does not write —
// wasted bits, 32-bit samples with a 33-bit side channel — and frames that
// hold valid CRCs yet must be refused.
func TestFLACHandMadeFrames(t *testing.T) {
	decode := func(t *testing.T, header, frame []byte) (*FLACDecoder, error) {
		t.Helper()
		info, _, err := ParseFLACHeader(header)
		if err != nil {
			t.Fatal(err)
		}
		d := NewFLACDecoder(info)
		_, err = d.Decode(frame)
		return d, err
	}
	t.Run("wasted bits, left/side", func(t *testing.T) {
		// 16 samples: left is 256 (1 with 8 wasted bits), side runs
		// −32 … 28 in steps of 4 (verbatim, 2 wasted bits, 17 − 2 bits).
		frame := flacFrame(0x60, 0x88, []byte{15}, func(w *flacBitWriter) {
			w.put(1, 8)      // constant, wasted-bits flag
			w.put(1, 8)      // unary 0000000 1: 8 wasted bits
			w.put(1, 8)      // the value in 16 − 8 bits
			w.put(1<<1|1, 8) // verbatim, wasted-bits flag
			w.put(1, 2)      // unary 0 1: 2 wasted bits
			for i := range 16 {
				w.put(uint64(int64(i-8))&(1<<15-1), 15)
			}
		})
		d, err := decode(t, flacHeader(16, 16, 48000, 2, 16), frame)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 16 {
			if l, r := d.ch[0][i], d.ch[1][i]; l != 256 || r != 256-int64(i-8)*4 {
				t.Fatalf("sample %d: %d %d, want 256 %d", i, l, r, 256-int64(i-8)*4)
			}
		}
	})
	for _, assign := range []int{8, 9, 10} {
		t.Run(fmt.Sprintf("32-bit, 33-bit side channel, assignment %d", assign), func(t *testing.T) {
			left, right := int64(-1<<31), int64(1<<31-1)
			frame := flacFrame(0x60, byte(assign<<4|7<<1), []byte{15}, func(w *flacBitWriter) {
				a, b, abits, bbits := left, left-right, uint(32), uint(33)
				switch assign {
				case 9:
					a, b, abits, bbits = left-right, right, 33, 32
				case 10:
					a = (left + right) >> 1
				}
				w.put(1<<1, 8) // verbatim
				for range 16 {
					w.put(uint64(a)&(1<<abits-1), abits)
				}
				w.put(1<<1, 8)
				for range 16 {
					w.put(uint64(b)&(1<<bbits-1), bbits)
				}
			})
			d, err := decode(t, flacHeader(16, 16, 48000, 2, 32), frame)
			if err != nil {
				t.Fatal(err)
			}
			out := d.AppendInterleaved(nil)
			if l, r := int32(binary.LittleEndian.Uint32(out)), int32(binary.LittleEndian.Uint32(out[4:])); int64(l) != left || int64(r) != right {
				t.Fatalf("%d %d, want %d %d", l, r, left, right)
			}
		})
	}
	refused := []struct {
		name   string
		header []byte
		frame  []byte
	}{
		{"a sample outside its bit depth", flacHeader(16, 16, 48000, 1, 16), flacFrame(0x60, 0x08, []byte{15}, func(w *flacBitWriter) {
			w.put(8<<1, 8) // fixed, order 0
			w.put(0, 6)    // Rice, one partition
			w.put(15, 4)   // escaped: raw samples
			w.put(31, 5)   // of 31 bits
			for range 16 {
				w.put(1<<20, 31)
			}
		})},
		{"a block larger than STREAMINFO's largest", flacHeader(16, 4096, 48000, 1, 16), flacFrame(0x70, 0x08, []byte{0x1f, 0xff}, func(w *flacBitWriter) {
			w.put(0, 8)
			w.put(5, 16)
		})},
		{"a block of 65536", flacHeader(16, 65535, 48000, 1, 16), flacFrame(0x70, 0x08, []byte{0xff, 0xff}, func(w *flacBitWriter) {
			w.put(0, 8)
			w.put(5, 16)
		})},
		{"padding bits that are not zero", flacHeader(16, 16, 48000, 1, 16), flacFrame(0x60, 0x08, []byte{15}, func(w *flacBitWriter) {
			w.put(0, 8)
			w.put(5, 16)
			w.put(1, 3) // then the byte's padding
		})},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			if d, err := decode(t, c.header, c.frame); !errors.Is(err, ErrCorrupt) || d.Samples() != 0 {
				t.Fatalf("%v, %d samples; want ErrCorrupt and none", err, d.Samples())
			}
		})
	}
	t.Run("a failed frame leaves no samples", func(t *testing.T) {
		info, _, _ := ParseFLACHeader(flacHeader(16, 4096, 48000, 1, 16))
		d := NewFLACDecoder(info)
		if _, err := d.Decode(flacFrame(0xc0, 0x08, nil, func(w *flacBitWriter) { w.put(0, 8); w.put(5, 16) })); err != nil || d.Samples() != 4096 {
			t.Fatalf("%v, %d samples", err, d.Samples())
		}
		bad := flacFrame(0x10, 0x08, nil, func(w *flacBitWriter) { w.put(0, 8); w.put(5, 16) })
		bad[len(bad)-1] ^= 1
		if _, err := d.Decode(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatal(err)
		}
		if n := len(d.AppendInterleaved(nil)); d.Samples() != 0 || n != 0 {
			t.Fatalf("%d samples, %d bytes after a failed frame", d.Samples(), n)
		}
	})
	t.Run("a block that decodes past a frame of samples", func(t *testing.T) {
		header := flacHeader(4096, 65535, 48000, 8, 32)
		frame := flacFrame(0x70, 0x7e, []byte{0xff, 0xfe}, func(w *flacBitWriter) {
			for range 8 {
				w.put(0, 8)
				w.put(1, 32)
			}
		})
		d, err := DescribeMatroskaAudio(signals.CodecIDFLAC, header, 0, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		m, err := newMatroskaPCM(d)
		if err != nil {
			t.Fatal(err)
		}
		block := bytes.Repeat(frame, 200) // 10 KB saying 400 MB
		if _, err := m.convert(block); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%v, want ErrCorrupt", err)
		}
	})
}
