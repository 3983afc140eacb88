package codecs

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
)

// FuzzDecodeScalarFrame feeds arbitrary frames, of a track of any sample type
// byte and channel count, to DecodeScalarFrame. It must never panic, fail only
// with the package's sentinel errors, and whatever it accepts must be a valid
// block that re-encodes to exactly the input (every codec so far is canonical;
// a codec that is not must weaken this check for its ID, saying why). Seeds
// live in testdata/fuzz/FuzzDecodeScalarFrame.
func FuzzDecodeScalarFrame(f *testing.F) {
	for _, g := range goldenFrames() {
		frame, err := AppendScalarFrame(nil, g.desc, g.s, Plain)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame, byte(g.s.Type), uint16(g.s.Channels))
	}
	s := &signals.Samples{} // reused, as a reader does
	f.Fuzz(func(t *testing.T, frame []byte, st byte, channels uint16) {
		desc := &signals.Scalar{
			SampleRate: 1000,
			SampleType: signals.SampleType(st),
			Channels:   allChannels[:int(channels)%signals.MaxChannels+1],
		}
		err := DecodeScalarFrame(frame, desc, s)
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
		if err != nil || !bytes.Equal(again, frame) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x (%v)", frame, again, err)
		}
	})
}
