package codecs

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
)

func TestPlainRoundTrip(t *testing.T) {
	c, err := Lookup(Plain)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range signals.SampleTypes() {
		for _, channels := range []int{1, 3, 7, signals.MaxChannels} {
			for _, n := range []int{0, 1, 5, 2560} {
				if channels == signals.MaxChannels && n > 5 {
					continue
				}
				t.Run(fmt.Sprintf("%s/%dch/%d", st, channels, n), func(t *testing.T) {
					in := testSamples(st, channels, n, uint64(n+channels))
					body, err := c.AppendEncoded(nil, in)
					if err != nil {
						t.Fatal(err)
					}
					if want := refPlain(t, in); !bytes.Equal(body, want) {
						t.Fatalf("plain body differs from encoding/binary little endian")
					}
					out := &signals.Samples{Start: in.Start}
					if err := c.Decode(body, testDesc(st, channels), n, out); err != nil {
						t.Fatal(err)
					}
					sameSamples(t, out, in)
				})
			}
		}
	}
}

// The memmove path and the portable loops must agree bit for bit, whichever
// the host runs.
func TestPlainPortableMatchesNative(t *testing.T) {
	for _, st := range signals.SampleTypes() {
		s := testSamples(st, 3, 257, 11)
		var native, portable []byte
		out := &signals.Samples{}
		out.Reset(st, 3, 257)
		switch st {
		case signals.Int16:
			native, portable = appendLE([]byte{9}, s.I16), appendLEPortable([]byte{9}, s.I16)
			decodeLEPortable(out.I16, native[1:])
		case signals.Int32:
			native, portable = appendLE([]byte{9}, s.I32), appendLEPortable([]byte{9}, s.I32)
			decodeLEPortable(out.I32, native[1:])
		case signals.Float32:
			native, portable = appendLE([]byte{9}, s.F32), appendLEPortable([]byte{9}, s.F32)
			decodeLEPortable(out.F32, native[1:])
		case signals.Float64:
			native, portable = appendLE([]byte{9}, s.F64), appendLEPortable([]byte{9}, s.F64)
			decodeLEPortable(out.F64, native[1:])
		}
		if !bytes.Equal(native, portable) || !bytes.Equal(native[1:], refPlain(t, s)) {
			t.Fatalf("%s: native and portable encodings differ", st)
		}
		out.Start = s.Start
		sameSamples(t, out, s)
	}
}

func TestPlainDecodeErrors(t *testing.T) {
	c, _ := Lookup(Plain)
	d := testDesc(signals.Float32, 3)
	body := make([]byte, 4*3*10)
	tests := []struct {
		name string
		body []byte
		desc *signals.Scalar
		n    int
		want error
	}{
		{"short by one byte", body[:len(body)-1], d, 10, ErrCorrupt},
		{"long by one byte", append(body[:len(body):len(body)], 0), d, 10, ErrCorrupt},
		{"n one too many", body, d, 11, ErrCorrupt},
		{"n one too few", body, d, 9, ErrCorrupt},
		{"n negative", body, d, -1, ErrCorrupt},
		{"n huge", body, d, math.MaxInt, ErrCorrupt},
		{"empty body, n 1", nil, d, 1, ErrCorrupt},
		{"body for n 0", body[:12], d, 0, ErrCorrupt},
		{"nil description", body, nil, 10, signals.ErrInvalid},
		{"unknown type", body, &signals.Scalar{SampleType: 9, Channels: d.Channels}, 10, signals.ErrInvalid},
		{"no channels", body, &signals.Scalar{SampleType: signals.Float32}, 10, signals.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &signals.Samples{}
			err := c.Decode(tt.body, tt.desc, tt.n, s)
			if !errors.Is(err, tt.want) || !strings.HasPrefix(err.Error(), "codecs: plain: decode: ") {
				t.Fatalf("Decode = %v, want %v", err, tt.want)
			}
			if cap(s.F32) != 0 {
				t.Errorf("a failed decode allocated %d samples", cap(s.F32))
			}
		})
	}
}

func TestPlainEncodeErrors(t *testing.T) {
	c, _ := Lookup(Plain)
	bad := testSamples(signals.Int32, 2, 4, 1)
	bad.N = 5
	dst := []byte("keep")
	got, err := c.AppendEncoded(dst, bad)
	if !errors.Is(err, signals.ErrInvalid) || string(got) != "keep" {
		t.Fatalf("AppendEncoded = %q, %v", got, err)
	}
}

// TestPlainPortablePath runs the codec contract through the loops a big-endian
// host uses, so that path is exercised on little-endian machines too.
func TestPlainPortablePath(t *testing.T) {
	saved := hostLittleEndian
	hostLittleEndian = false
	defer func() { hostLittleEndian = saved }()
	c, err := Lookup(Plain)
	if err != nil {
		t.Fatal(err)
	}
	testCodecContract(t, c)
}
