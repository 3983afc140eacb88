package codecs

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
)

// FuzzDecodeScalarFrame feeds arbitrary frames, of a track of any sample type
// byte and channel count, to DecodeScalarFrame: every registered codec's
// decoder is reached through the codec byte. It must never panic, fail only
// with the package's sentinel errors, and whatever it accepts must be a valid
// block. A plain frame must re-encode to exactly the input; the other codecs
// are not canonical (many bodies decode to the same samples: a writer's
// choices of mode, order and Huffman table are not the only valid ones), so
// for them re-encoding and decoding again must give the same samples. Seeds
// live in testdata/fuzz/FuzzDecodeScalarFrame.
func FuzzDecodeScalarFrame(f *testing.F) {
	for _, g := range goldenFrames() {
		for _, id := range []ID{Plain, Zstd, S2, ShuffleZstd, Numeric} {
			frame, err := AppendScalarFrame(nil, g.desc, g.s, id)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(frame, byte(g.s.Type), uint16(g.s.Channels))
		}
	}
	for _, in := range numericInputs() {
		if in.s.N <= 200 {
			frame, err := AppendScalarFrame(nil, testDesc(in.s.Type, in.s.Channels), in.s, Numeric)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(frame, byte(in.s.Type), uint16(in.s.Channels))
		}
	}
	s, s2 := &signals.Samples{}, &signals.Samples{} // reused, as a reader does
	f.Fuzz(func(t *testing.T, frame []byte, st byte, channels uint16) {
		desc := &signals.Scalar{
			SampleRate: 1000,
			SampleType: signals.SampleType(st),
			Channels:   allChannels[:int(channels)%signals.MaxChannels+1],
		}
		cols, colErr := decodeColumnsOf(frame, desc)
		err := DecodeScalarFrame(frame, desc, s)
		if (err == nil) != (colErr == nil) {
			t.Fatalf("DecodeScalarFrame says %v, DecodeScalarColumns says %v", err, colErr)
		}
		if err == nil && !sameAsColumns(s, cols) {
			t.Fatalf("DecodeScalarColumns decodes other samples than DecodeScalarFrame")
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownCodec) && !errors.Is(err, signals.ErrInvalid) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		h, err := ParseScalarHeader(frame)
		if err != nil {
			t.Fatalf("decoded a frame whose header does not parse: %v", err)
		}
		if err := s.Validate(desc); err != nil || s.N != h.N || s.Start != h.Start {
			t.Fatalf("decoded an inconsistent block (n %d, header %+v): %v", s.N, h, err)
		}
		again, err := AppendScalarFrame(nil, desc, s, h.Codec)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		if h.Codec == Plain && !bytes.Equal(again, frame) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", frame, again)
		}
		if err := DecodeScalarFrame(again, desc, s2); err != nil {
			t.Fatalf("decoding the re-encoded frame: %v", err)
		}
		if !sameBits(s, s2) {
			t.Fatalf("re-encoded frame decodes to other samples")
		}
	})
}

// sameBits reports whether two blocks hold the same samples, floats by bits.
func sameBits(a, b *signals.Samples) bool {
	if a.N != b.N || a.Channels != b.Channels || a.Type != b.Type || a.Start != b.Start {
		return false
	}
	switch a.Type {
	case signals.Int16:
		return slices.Equal(a.I16, b.I16)
	case signals.Int32:
		return slices.Equal(a.I32, b.I32)
	case signals.Float32:
		for i := range a.F32 {
			if math.Float32bits(a.F32[i]) != math.Float32bits(b.F32[i]) {
				return false
			}
		}
	case signals.Float64:
		for i := range a.F64 {
			if math.Float64bits(a.F64[i]) != math.Float64bits(b.F64[i]) {
				return false
			}
		}
	}
	return true
}

func decodeColumnsOf(frame []byte, desc *signals.Scalar) ([]Column, error) {
	var scratch signals.Samples
	_, cols, err := DecodeScalarColumns(frame, desc, nil, &scratch)
	return cols, err
}

// sameAsColumns reports whether cols holds s channel by channel, bit for bit.
func sameAsColumns(s *signals.Samples, cols []Column) bool {
	split := splitChannels(s, nil)
	if len(split) != len(cols) {
		return false
	}
	for c := range cols {
		a, b := &split[c], &cols[c]
		if !slices.Equal(a.I16, b.I16) || !slices.Equal(a.I32, b.I32) || len(a.F32) != len(b.F32) || len(a.F64) != len(b.F64) {
			return false
		}
		for i := range a.F32 {
			if math.Float32bits(a.F32[i]) != math.Float32bits(b.F32[i]) {
				return false
			}
		}
		for i := range a.F64 {
			if math.Float64bits(a.F64[i]) != math.Float64bits(b.F64[i]) {
				return false
			}
		}
	}
	return true
}
