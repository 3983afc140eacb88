package codecs

import (
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/signals"
)

// TestAudioClock times frames as ffmpeg cuts 44.1 kHz audio: blocks of 1,024
// samples whose Matroska times are rounded to the millisecond.
func TestAudioClock(t *testing.T) {
	const ms = 1_000_000
	frag, other := &FragmentContext{Number: 1}, &FragmentContext{Number: 2}
	cases := []struct {
		name  string
		frame Frame
		n     int
		want  int64
	}{
		{"first frame: its block time", Frame{Time: 1000 * ms, Fragment: frag}, 1024, 1000 * ms},
		// 1024 samples are 23.2199… ms: the block says 1023 ms, the run
		// 1023.2199 ms.
		{"rounded block time: the run goes on", Frame{Time: 1023 * ms, Fragment: frag}, 1024, 1000*ms + 23_219_955},
		{"next", Frame{Time: 1046 * ms, Fragment: frag}, 1024, 1000*ms + 46_439_909},
		// The producer's clock overlapped its samples by 9 ms: the samples
		// follow on, times never step back in a fragment.
		{"overlap: the run goes on", Frame{Time: 1060 * ms, Fragment: frag}, 1024, 1000*ms + 69_659_864},
		{"a gap of 1 ms or more: a new run", Frame{Time: 1200 * ms, Fragment: frag}, 1024, 1200 * ms},
		{"the run goes on", Frame{Time: 1223 * ms, Fragment: frag}, 1024, 1200*ms + 23_219_955},
		// 20 ms or more back: the producer's clock was reset.
		{"far back: a new run", Frame{Time: 1226 * ms, Fragment: frag}, 1024, 1226 * ms},
		{"a new fragment: a new run", Frame{Time: 1249 * ms, Fragment: other}, 1024, 1249 * ms},
		{"no fragment: the block time", Frame{Time: 1272 * ms}, 1024, 1272 * ms},
		{"no fragment again: the block time", Frame{Time: 1295 * ms}, 1024, 1295 * ms},
	}
	c := audioClock{rate: 44100}
	for _, tc := range cases {
		if got := c.start(tc.frame, tc.n); got != tc.want {
			t.Fatalf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestMatroskaPCMLayouts decodes one frame of each PCM layout Matroska
// allows into the columns' values.
func TestMatroskaPCMLayouts(t *testing.T) {
	cases := []struct {
		codec string
		bits  uint64
		frame []byte
		want  []float64
	}{
		{signals.CodecIDPCMInt, 8, []byte{0, 128, 255}, []float64{-128, 0, 127}},
		{signals.CodecIDPCMInt, 16, []byte{0x01, 0x80, 0xff, 0x7f}, []float64{-32767, 32767}},
		{signals.CodecIDPCMInt, 24, []byte{0x00, 0x00, 0x80, 0xff, 0xff, 0x7f, 0x01, 0x00, 0x00}, []float64{-8388608, 8388607, 1}},
		{signals.CodecIDPCMIntBig, 16, []byte{0x80, 0x01, 0x7f, 0xff}, []float64{-32767, 32767}},
		{signals.CodecIDPCMIntBig, 24, []byte{0x80, 0x00, 0x00, 0x00, 0x00, 0x01}, []float64{-8388608, 1}},
		{signals.CodecIDPCMIntBig, 32, []byte{0x80, 0, 0, 0, 0, 0, 0, 2}, []float64{-2147483648, 2}},
		{signals.CodecIDPCMFloat, 32, []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}, []float64{1, -2}},
	}
	for _, c := range cases {
		d, err := DescribeMatroskaAudio(c.codec, nil, 8000, 1, c.bits)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := NewArrowDecoder(d, ArrowOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := decodeOneColumn(t, dec, c.frame)
		if len(got) != len(c.want) {
			t.Fatalf("%s %d-bit: %v, want %v", c.codec, c.bits, got, c.want)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Fatalf("%s %d-bit: %v, want %v", c.codec, c.bits, got, c.want)
			}
		}
	}
	// Layouts a query cannot read are refused when the track is described.
	for _, bad := range []struct {
		codec string
		bits  uint64
	}{{signals.CodecIDPCMInt, 12}, {signals.CodecIDPCMIntBig, 8}, {signals.CodecIDPCMFloat, 16}, {"A_AAC", 16}} {
		if _, err := DescribeMatroskaAudio(bad.codec, nil, 8000, 1, bad.bits); !errors.Is(err, signals.ErrInvalid) {
			t.Fatalf("%s %d-bit: %v, want ErrInvalid", bad.codec, bad.bits, err)
		}
	}
	if _, err := DescribeMatroskaAudio(signals.CodecIDFLAC, []byte("fLaC"), 0, 0, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("FLAC without STREAMINFO: %v, want ErrCorrupt", err)
	}
}

// decodeOneColumn decodes a frame of a one-channel track and returns its
// values.
func decodeOneColumn(t *testing.T, dec ArrowDecoder, frame []byte) []float64 {
	t.Helper()
	b := array.NewRecordBuilder(memory.NewGoAllocator(), dec.Schema())
	defer b.Release()
	if _, err := dec.Append(b, Frame{Data: frame}, TimeRange{All: true}); err != nil {
		t.Fatal(err)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var out []float64
	switch c := rec.Column(1).(type) {
	case *array.Int16:
		for _, v := range c.Int16Values() {
			out = append(out, float64(v))
		}
	case *array.Int32:
		for _, v := range c.Int32Values() {
			out = append(out, float64(v))
		}
	case *array.Float32:
		for _, v := range c.Float32Values() {
			out = append(out, float64(v))
		}
	default:
		t.Fatalf("column of %T", c)
	}
	return out
}
