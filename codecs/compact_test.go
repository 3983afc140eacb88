package codecs

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
)

// slowSamples is ten values of a slow sensor, starting on a whole second.
func slowSamples(t signals.SampleType, channels int) *signals.Samples {
	s := &signals.Samples{Start: 1_700_000_000_000_000_000}
	s.Reset(t, channels, 10)
	for i := range 10 {
		for c := range channels {
			v := 21.5 + 0.01*float64((i*7+c*3)%5) + float64(c)
			switch t {
			case signals.Int16:
				s.I16[i*channels+c] = int16(v * 100)
			case signals.Int32:
				s.I32[i*channels+c] = int32(v * 1000)
			case signals.Float32:
				s.F32[i*channels+c] = float32(math.Round(v*10) / 10)
			case signals.Float64:
				s.F64[i*channels+c] = math.Round(v*100) / 100
			}
		}
	}
	return s
}

// A compact frame of a slow signal is a fraction of the usual one, decodes
// with its block time (also through the Arrow path), and is refused without.
func TestCompactFrame(t *testing.T) {
	for _, st := range signals.SampleTypes() {
		t.Run(st.String(), func(t *testing.T) {
			desc := testDesc(st, 2)
			in := slowSamples(st, 2)
			enc, err := NewScalarEncoder(desc, Auto)
			if err != nil {
				t.Fatal(err)
			}
			regular, err := enc.AppendFrame(nil, in)
			if err != nil {
				t.Fatal(err)
			}
			frame, err := enc.AppendCompactFrame([]byte("pre"), in)
			if err != nil {
				t.Fatal(err)
			}
			frame = frame[3:]
			if ID(frame[0]) != Compact2 || 10*len(frame) > 6*len(regular) {
				t.Errorf("compact frame of %d bytes (codec %d), the usual one %d", len(frame), frame[0], len(regular))
			}
			out := &signals.Samples{}
			if err := DecodeScalarFrameAt(frame, floorMillisecond(in.Start), desc, out); err != nil {
				t.Fatal(err)
			}
			sameSamples(t, out, in)
			if err := DecodeScalarFrame(frame, desc, out); !errors.Is(err, ErrNeedsBlockTime) {
				t.Fatalf("without the block time: %v", err)
			}
			for cut := range frame {
				if err := DecodeScalarFrameAt(frame[:cut], 0, desc, out); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("cut to %d of %d bytes: %v", cut, len(frame), err)
				}
			}
		})
	}
}

// The golden compact frame pins the format.
func TestCompactGolden(t *testing.T) {
	desc := testDesc(signals.Float64, 2)
	in := slowSamples(signals.Float64, 2)
	in.Start += 250_000 // not on a millisecond: the start's distance is coded
	got, err := AppendScalarFrame(nil, desc, in, Compact)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "golden", "compact_float64_slow.hex")
	if *update {
		if err := os.WriteFile(path, []byte("# a compact frame (FORMAT.md, \"Compact frame\"): two channels of ten float64 at 0.01\n"+
			"# regenerate with: go test ./codecs -run CompactGolden -update\n"+hexLines(got)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := readHex(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the compact encoder no longer writes the golden bytes:\n got %x\nwant %x", got, want)
	}
	out := &signals.Samples{}
	if err := DecodeScalarFrameAt(want, floorMillisecond(in.Start), desc, out); err != nil {
		t.Fatal(err)
	}
	sameSamples(t, out, in)
}

func hexLines(b []byte) string {
	var s string
	for at := 0; at < len(b); at += 32 {
		s += hexString(b[at:min(at+32, len(b))]) + "\n"
	}
	return s
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// FuzzCompactFrame: any bytes decode or fail with ErrCorrupt, for every
// sample type, in both versions of the compact frame (codecs 7 and 8).
// Seeds live in testdata/fuzz/FuzzCompactFrame too.
func FuzzCompactFrame(f *testing.F) {
	for _, st := range signals.SampleTypes() {
		for _, id := range []ID{Compact, Compact2} {
			if fr, err := AppendScalarFrame(nil, testDesc(st, 2), slowSamples(st, 2), id); err == nil {
				f.Add(fr, uint8(st))
			}
			if fr, err := AppendScalarFrame(nil, testDesc(st, 1), familySamples("specials", st, 1, 40), id); err == nil {
				f.Add(fr, uint8(st))
			}
		}
	}
	f.Fuzz(func(t *testing.T, frame []byte, st uint8) {
		typ := signals.SampleTypes()[int(st)%4]
		out := &signals.Samples{}
		if err := DecodeScalarFrameAt(frame, 0, testDesc(typ, 2), out); err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownCodec) {
			t.Fatal(err)
		}
	})
}
