package codecs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
)

func TestScalarFrameRoundTrip(t *testing.T) {
	for _, st := range signals.SampleTypes() {
		for _, n := range []int{0, 1, 2560} {
			desc := testDesc(st, 3)
			in := testSamples(st, 3, n, 5)
			in.Start = -42 // times before the epoch are valid too
			frame, err := AppendScalarFrame([]byte("head"), desc, in, Plain)
			if err != nil {
				t.Fatal(err)
			}
			if string(frame[:4]) != "head" {
				t.Fatal("AppendScalarFrame overwrote dst")
			}
			frame = frame[4:]
			if len(frame) != ScalarHeaderSize+n*3*st.Size() {
				t.Fatalf("%s n=%d: frame of %d bytes", st, n, len(frame))
			}
			h, err := ParseScalarHeader(frame)
			if err != nil || h != (ScalarHeader{Codec: Plain, N: n, Start: -42, Size: ScalarHeaderSize}) {
				t.Fatalf("ParseScalarHeader = %+v, %v", h, err)
			}
			out := &signals.Samples{}
			if err := DecodeScalarFrame(frame, desc, out); err != nil {
				t.Fatal(err)
			}
			sameSamples(t, out, in)
		}
	}
}

// Each case damages a good frame at a known offset.
func TestDecodeScalarFrameCorrupt(t *testing.T) {
	desc := testDesc(signals.Float32, 3)
	good, err := AppendScalarFrame(nil, desc, testSamples(signals.Float32, 3, 4, 1), Plain)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name  string
		frame []byte
		want  error
		msg   string
	}{
		{"empty", nil, ErrCorrupt, "0 bytes, the header needs 16"},
		{"short header", good[:ScalarHeaderSize-1], ErrCorrupt, "15 bytes"},
		{"version 0", edit(func(b []byte) []byte { b[offVersion] = 0; return b }), ErrCorrupt, "frame version 0"},
		{"version 2", edit(func(b []byte) []byte { b[offVersion] = 2; return b }), ErrCorrupt, "frame version 2"},
		{"flag set", edit(func(b []byte) []byte { b[offFlags+1] = 0x80; return b }), ErrCorrupt, "flags 0x8000"},
		{"codec 0", edit(func(b []byte) []byte { b[offCodec] = 0; return b }), ErrCorrupt, "codec id 0"},
		{"unknown codec", edit(func(b []byte) []byte { b[offCodec] = 250; return b }), ErrUnknownCodec, "id 250"},
		{"body short", good[:len(good)-1], ErrCorrupt, "body of 47 bytes"},
		{"body long", edit(func(b []byte) []byte { return append(b, 0) }), ErrCorrupt, "body of 49 bytes"},
		{"header only", good[:ScalarHeaderSize], ErrCorrupt, "body of 0 bytes"},
		{"n one more", edit(func(b []byte) []byte { b[offN] = 5; return b }), ErrCorrupt, "want 5 samples"},
		{"n zero with body", edit(func(b []byte) []byte { b[offN] = 0; return b }), ErrCorrupt, "want 0 samples"},
		{"n huge, tiny body", edit(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[offN:], math.MaxUint32)
			return b[:ScalarHeaderSize+4]
		}), ErrCorrupt, "4294967295 samples"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &signals.Samples{}
			err := DecodeScalarFrame(tt.frame, desc, s)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("DecodeScalarFrame = %v, want %v containing %q", err, tt.want, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "codecs: decode scalar frame: ") {
				t.Errorf("error %q lacks the operation", err)
			}
			if cap(s.F32) != 0 {
				t.Errorf("a failed decode allocated %d samples", cap(s.F32))
			}
			if n := allocatedBytes(func() { _ = DecodeScalarFrame(tt.frame, desc, s) }); n > 1024 {
				t.Errorf("%d bytes allocated to reject the frame", n)
			}
		})
	}
}

func TestParseScalarHeader(t *testing.T) {
	var frame [ScalarHeaderSize]byte
	frame[offCodec], frame[offVersion] = 77, ScalarFrameVersion // unknown codecs still peek
	binary.LittleEndian.PutUint32(frame[offN:], math.MaxUint32)
	binary.LittleEndian.PutUint64(frame[offStart:], 1<<63)
	h, err := ParseScalarHeader(frame[:])
	maxN := uint64(math.MaxUint32)
	switch {
	case maxN > math.MaxInt: // 32-bit int: the count cannot be represented
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("ParseScalarHeader = %+v, %v", h, err)
		}
	case err != nil || h != (ScalarHeader{Codec: 77, N: int(maxN), Start: math.MinInt64, Size: ScalarHeaderSize}):
		t.Fatalf("ParseScalarHeader = %+v, %v", h, err)
	}
	if _, err := ParseScalarHeader(frame[:5]); !errors.Is(err, ErrCorrupt) || !strings.HasPrefix(err.Error(), "codecs: parse scalar header: ") {
		t.Errorf("short header: %v", err)
	}
}

func TestAppendScalarFrameErrors(t *testing.T) {
	desc := testDesc(signals.Int16, 2)
	good := testSamples(signals.Int16, 2, 3, 1)
	tests := []struct {
		name string
		desc *signals.Scalar
		s    *signals.Samples
		id   ID
		want error
	}{
		{"unknown codec", desc, good, 250, ErrUnknownCodec},
		{"codec 0", desc, good, 0, ErrUnknownCodec},
		{"type mismatch", testDesc(signals.Int32, 2), good, Plain, signals.ErrInvalid},
		{"channel mismatch", testDesc(signals.Int16, 3), good, Plain, signals.ErrInvalid},
		{"inconsistent samples", desc, &signals.Samples{N: 4, Channels: 2, Type: signals.Int16, I16: make([]int16, 6)}, Plain, signals.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := AppendScalarFrame(dst, tt.desc, tt.s, tt.id)
			if !errors.Is(err, tt.want) || !bytes.Equal(got, []byte("keep")) {
				t.Fatalf("AppendScalarFrame = %q, %v; want dst unchanged and %v", got, err, tt.want)
			}
		})
	}
}

// A reader that reuses its Samples decodes without allocating.
func TestDecodeScalarFrameZeroAllocs(t *testing.T) {
	desc := testDesc(signals.Float32, 3)
	frame, err := AppendScalarFrame(nil, desc, testSamples(signals.Float32, 3, 2560, 1), Plain)
	if err != nil {
		t.Fatal(err)
	}
	s := &signals.Samples{}
	if allocs := testing.AllocsPerRun(100, func() {
		if err := DecodeScalarFrame(frame, desc, s); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("%v allocations per decode", allocs)
	}
	buf := make([]byte, 0, len(frame))
	in := testSamples(signals.Float32, 3, 2560, 1)
	if allocs := testing.AllocsPerRun(100, func() { buf, _ = AppendScalarFrame(buf[:0], desc, in, Plain) }); allocs != 0 {
		t.Errorf("%v allocations per encode into a large enough buffer", allocs)
	}
}
