package codecs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/sensorium-io/sensorium/signals"
)

// byteCodecFrame wraps body in a scalar frame header of codec id holding n
// samples per channel.
func byteCodecFrame(id ID, n uint32, body []byte) []byte {
	f := []byte{byte(id), ScalarFrameVersion, 0, 0}
	f = binary.LittleEndian.AppendUint32(f, n)
	f = binary.LittleEndian.AppendUint64(f, goldenStart)
	return append(f, body...)
}

// zstdRLEBomb returns a zstd frame of about size bytes with no content size
// and a 128 KiB window, made of RLE blocks of 128 KiB: 4 bytes each, so the
// frame decodes to 32768 times its size.
func zstdRLEBomb(size int) []byte {
	f := []byte{0x28, 0xb5, 0x2f, 0xfd, // magic
		0x00, // frame header descriptor: no content size, not single segment, no checksum, no dictionary
		0x38, // window descriptor: 2^(10+7) = 128 KiB
	}
	block := func(last uint32) []byte {
		h := last | 1<<1 | (128<<10)<<3 // last flag, block type RLE, block size 128 KiB
		return []byte{byte(h), byte(h >> 8), byte(h >> 16), 0xaa}
	}
	for len(f)+8 <= size {
		f = append(f, block(0)...)
	}
	return append(f, block(1)...)
}

// zstdStreamed returns data compressed by a streaming encoder, which does
// not know the size and so writes no content size: a frame of compressed
// blocks that a reader cannot size before decoding it.
func zstdStreamed(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var h zstd.Header
	if err := h.Decode(buf.Bytes()); err != nil || h.HasFCS || !h.FirstBlock.Compressed {
		t.Fatalf("the streamed frame is not what the test needs: %+v, %v", h, err)
	}
	return buf.Bytes()
}

// onceAllocated returns the bytes one call of f allocates, after a first
// call has filled the codecs' pools.
func onceAllocated(f func()) uint64 {
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A byte-codec body that decodes to more than its header promises is
// corrupt, and is found so without decoding (or allocating) what it would
// decode to: a frame whose header declares one sample must not make a reader
// allocate more than a small multiple of that, whatever its body expands to.
func TestByteCodecsBoundedDecode(t *testing.T) {
	one := make([]byte, 4) // the plain body of one float32 sample
	binary.LittleEndian.PutUint32(one, math.Float32bits(1.5))
	good := zstdEnc.EncodeAll(one, nil)
	pattern := make([]byte, 1000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range pattern {
		pattern[i] = byte(rng.Uint32())
	}
	streamed := zstdStreamed(t, bytes.Repeat(pattern, 4<<10)) // 4 MB in compressed blocks
	skippable := []byte{0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4}
	empty := zstdEnc.EncodeAll(nil, nil)

	cases := []struct {
		name string
		body []byte
	}{
		{"rle blocks without content size", zstdRLEBomb(32 << 10)},
		{"good frame then rle blocks", append(append([]byte(nil), good...), zstdRLEBomb(1024-len(good))...)},
		{"compressed blocks without content size", streamed},
		{"good frame then compressed blocks", append(append([]byte(nil), good...), streamed...)},
		{"good frame then an empty frame", append(append([]byte(nil), good...), empty...)},
		{"good frame then a skippable frame", append(append([]byte(nil), good...), skippable...)},
		{"good frame then a stray byte", append(append([]byte(nil), good...), 0)},
		{"a skippable frame", skippable},
	}
	desc := testDesc(signals.Float32, 1)
	const declared = 4 // bytes: one float32 sample
	for _, id := range []ID{Zstd, ShuffleZstd} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%s", id, tc.name), func(t *testing.T) {
				frame := byteCodecFrame(id, 1, tc.body)
				s := &signals.Samples{}
				var err error
				n := onceAllocated(func() { err = DecodeScalarFrame(frame, desc, s) })
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("DecodeScalarFrame = %v, want ErrCorrupt", err)
				}
				if limit := uint64(4*declared + 1<<20); n > limit {
					t.Errorf("rejecting a %d-byte body declaring %d bytes allocated %d bytes, want at most %d", len(tc.body), declared, n, limit)
				}
			})
		}
	}
	// The good frame alone decodes: the cases above fail for what follows it.
	s := &signals.Samples{}
	if err := DecodeScalarFrame(byteCodecFrame(Zstd, 1, good), desc, s); err != nil || math.Float32bits(s.F32[0]) != math.Float32bits(1.5) {
		t.Fatalf("the good frame: %v, %v", s.F32, err)
	}
}

// Every codec decodes the frames it writes, however well they compress: a
// constant signal of the largest frame a writer makes compresses by a
// factor of thousands (zstd) to millions (s2), and a reader that bounded the
// ratio refused such frames.
func TestByteCodecsDecodeWhatTheyWrite(t *testing.T) {
	ids := []ID{Auto}
	for _, c := range Registered() {
		ids = append(ids, c.ID())
	}
	for _, tc := range []struct {
		name        string
		t           signals.SampleType
		channels, n int
	}{
		{"float32 zeros, 32 MiB", signals.Float32, 1, MaxScalarFrameBytes / 4},
		{"int16 constant, 1 MiB", signals.Int16, 2, 1 << 18},
		{"float64 constant, 80 KB", signals.Float64, 1, 10000},
	} {
		if raceEnabled {
			tc.n /= 8 // still far past any frame a writer makes
		}
		in := &signals.Samples{Start: goldenStart}
		in.Reset(tc.t, tc.channels, tc.n)
		for i := range in.I16 {
			in.I16[i] = -1234
		}
		for i := range in.F64 {
			in.F64[i] = 3.25
		}
		desc := testDesc(tc.t, tc.channels)
		for _, id := range ids {
			t.Run(fmt.Sprintf("%s/%s", tc.name, id), func(t *testing.T) {
				frame, err := AppendScalarFrame(nil, desc, in, id)
				if err != nil {
					t.Fatal(err)
				}
				out := &signals.Samples{}
				if err := DecodeScalarFrameAt(frame, floorMillisecond(in.Start), desc, out); err != nil {
					t.Fatalf("a %d-byte frame of %d bytes of samples: %v", len(frame), in.Len()*tc.t.Size(), err)
				}
				sameSamples(t, out, in)
			})
		}
	}
}

// s2 states its decoded length up front: a body whose length differs from
// the header's is refused before the samples are allocated. One that states
// the declared length is decoded into a buffer of that length — s2 writes
// 32 MiB of a constant in 18 bytes, so a short body may hold that much — but
// never into more.
func TestS2BoundedDecode(t *testing.T) {
	desc := testDesc(signals.Float32, 1)
	big := s2.Encode(nil, bytes.Repeat([]byte{7}, 1<<20))
	long := binary.AppendUvarint(nil, 1<<24) // claims 16 MiB, holds nothing
	for _, tc := range []struct {
		name string
		n    uint32
		body []byte
	}{
		{"1 MiB body, one sample declared", 1, big},
		{"16 MiB claimed, one sample declared", 1, long},
		{"16 MiB claimed and declared, nothing there", 4 << 20, long},
		{"one sample, a stray byte after", 1, append(s2.Encode(nil, make([]byte, 4)), 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := byteCodecFrame(S2, tc.n, tc.body)
			s := &signals.Samples{}
			var err error
			n := onceAllocated(func() { err = DecodeScalarFrame(frame, desc, s) })
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeScalarFrame = %v, want ErrCorrupt", err)
			}
			if limit := 4*uint64(tc.n)*4 + 1<<20; n > limit {
				t.Errorf("rejecting the body allocated %d bytes, want at most %d", n, limit)
			}
		})
	}
}

// vibrationSamples returns about 1 MB of 3-axis float32 vibration: two
// harmonics of a 29.5 Hz shaft and noise, at 25.6 kHz, as a 16-bit ADC of
// ±2 g reports them (multiples of 1/16384 g, in m/s²).
func vibrationSamples() *signals.Samples {
	const channels, n = 3, 87381
	rng := rand.New(rand.NewPCG(3, 4))
	s := &signals.Samples{Start: goldenStart}
	s.Reset(signals.Float32, channels, n)
	for i := range n {
		tm := float64(i) / 25600
		for c := range channels {
			g := 0.4*math.Sin(2*math.Pi*29.5*tm+float64(c)) + 0.1*math.Sin(2*math.Pi*59*tm) + 0.02*rng.NormFloat64()
			s.F32[i*channels+c] = float32(math.Round(g*16384)) * float32(9.80665/16384)
		}
	}
	return s
}

// BenchmarkByteCodecDecode reports MB/s of samples decoded from 1 MB frames
// of vibration by the byte codecs, and the frame size beside it.
func BenchmarkByteCodecDecode(b *testing.B) {
	in := vibrationSamples()
	desc := testDesc(signals.Float32, in.Channels)
	for _, id := range []ID{Zstd, ShuffleZstd, S2} {
		frame, err := AppendScalarFrame(nil, desc, in, id)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(id.String(), func(b *testing.B) {
			s := &signals.Samples{}
			b.SetBytes(int64(in.Len() * 4))
			b.ReportAllocs()
			for b.Loop() {
				if err := DecodeScalarFrame(frame, desc, s); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(frame)), "bytes/frame")
		})
	}
}
