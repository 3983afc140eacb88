package signals

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
)

// vib3 is a typical description: three vibration axes.
func vib3() *Scalar {
	return &Scalar{SampleRate: 25600, SampleType: Float32, Channels: []Channel{{"x", "g"}, {"y", "g"}, {"z", "g"}}}
}

func manyChannels(n int) []Channel {
	chs := make([]Channel, n)
	for i := range chs {
		chs[i] = Channel{Name: fmt.Sprintf("ch%04d", i), Unit: "V"}
	}
	return chs
}

func TestScalarRoundTrip(t *testing.T) {
	unicode := []Channel{{"Beschleunigung_ä", "m/s²"}, {"温度", "°C"}, {"давление", "кПа"}, {"🛠", ""}}
	longName := []Channel{{strings.Repeat("n", MaxNameLen), strings.Repeat("u", MaxUnitLen)}}
	var tests []struct {
		name string
		d    *Scalar
	}
	add := func(name string, d *Scalar) {
		tests = append(tests, struct {
			name string
			d    *Scalar
		}{name, d})
	}
	for _, st := range SampleTypes() {
		add(st.String()+"/1ch", &Scalar{SampleRate: 1000, SampleType: st, Channels: []Channel{{"temp", "°C"}}})
		add(st.String()+"/unicode", &Scalar{SampleRate: 44100, SampleType: st, Channels: unicode})
		add(st.String()+"/1024ch", &Scalar{SampleRate: 0.1, SampleType: st, Channels: manyChannels(MaxChannels)})
	}
	add("longest", &Scalar{SampleRate: MaxSampleRate, SampleType: Int16, Channels: longName})
	add("slowest", &Scalar{SampleRate: MinSampleRate, SampleType: Float64, Channels: []Channel{{"a", ""}}})
	add("odd rate", &Scalar{SampleRate: 1.0 / 3, SampleType: Int32, Channels: []Channel{{"a", ""}, {"b", ""}}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.d.Validate(); err != nil {
				t.Fatal(err)
			}
			b, err := tt.d.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseScalar(b)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.d) {
				t.Fatalf("round trip changed the description:\n got %+v\nwant %+v", got, tt.d)
			}
			if k, err := DescriptionKind(b); err != nil || k != KindScalar {
				t.Errorf("DescriptionKind = %v, %v", k, err)
			}
			// AppendBinary appends and leaves the prefix alone.
			prefix := []byte("prefix")
			app, err := tt.d.AppendBinary(bytes.Clone(prefix))
			if err != nil || !bytes.Equal(app[:len(prefix)], prefix) || !bytes.Equal(app[len(prefix):], b) {
				t.Errorf("AppendBinary differs from MarshalBinary (err %v)", err)
			}
			var u Scalar
			if err := u.UnmarshalBinary(b); err != nil || !u.Equal(tt.d) {
				t.Errorf("UnmarshalBinary = %+v, %v", u, err)
			}
		})
	}
}

func TestScalarValidate(t *testing.T) {
	valid := func(edit func(d *Scalar)) *Scalar {
		d := vib3()
		edit(d)
		return d
	}
	tests := []struct {
		name string
		d    *Scalar
		msg  string // part of the error message
	}{
		{"nil", nil, "nil description"},
		{"rate 0", valid(func(d *Scalar) { d.SampleRate = 0 }), "sample rate 0 Hz"},
		{"rate -0", valid(func(d *Scalar) { d.SampleRate = math.Copysign(0, -1) }), "sample rate"},
		{"rate NaN", valid(func(d *Scalar) { d.SampleRate = math.NaN() }), "sample rate NaN"},
		{"rate +Inf", valid(func(d *Scalar) { d.SampleRate = math.Inf(1) }), "sample rate +Inf"},
		{"rate -Inf", valid(func(d *Scalar) { d.SampleRate = math.Inf(-1) }), "sample rate -Inf"},
		{"rate negative", valid(func(d *Scalar) { d.SampleRate = -25600 }), "sample rate -25600"},
		{"rate too slow", valid(func(d *Scalar) { d.SampleRate = MinSampleRate / 2 }), "sample rate"},
		{"rate subnormal", valid(func(d *Scalar) { d.SampleRate = math.SmallestNonzeroFloat64 }), "sample rate"},
		{"rate too fast", valid(func(d *Scalar) { d.SampleRate = math.Nextafter(MaxSampleRate, math.Inf(1)) }), "sample rate"},
		{"type 0", valid(func(d *Scalar) { d.SampleType = 0 }), "unknown sample type 0"},
		{"type 5", valid(func(d *Scalar) { d.SampleType = 5 }), "unknown sample type 5"},
		{"no channels", valid(func(d *Scalar) { d.Channels = nil }), "0 channels"},
		{"too many channels", valid(func(d *Scalar) { d.Channels = manyChannels(MaxChannels + 1) }), "1025 channels"},
		{"empty name", valid(func(d *Scalar) { d.Channels[1].Name = "" }), "channel 1: empty name"},
		{"name too long", valid(func(d *Scalar) { d.Channels[0].Name = strings.Repeat("é", 128) }), "name of 256 bytes"},
		{"name not utf-8", valid(func(d *Scalar) { d.Channels[0].Name = "\xff" }), "not UTF-8"},
		{"name reserved", valid(func(d *Scalar) { d.Channels[2].Name = TimeField }), "reserved"},
		{"unit too long", valid(func(d *Scalar) { d.Channels[0].Unit = strings.Repeat("u", MaxUnitLen+1) }), "unit of 256 bytes"},
		{"unit not utf-8", valid(func(d *Scalar) { d.Channels[0].Unit = "m\xc3" }), "not UTF-8"},
		{"duplicate names", valid(func(d *Scalar) { d.Channels[2].Name = "x" }), `channels 0 and 2 are both named "x"`},
		{"duplicate names, many channels", valid(func(d *Scalar) {
			d.Channels = manyChannels(100)
			d.Channels[99].Name = d.Channels[42].Name
		}), "channels 42 and 99"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.d.Validate()
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate() = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "signals: scalar: ") {
				t.Errorf("Validate() = %q, want it to contain %q", err, tt.msg)
			}
			if _, err := tt.d.MarshalBinary(); !errors.Is(err, ErrInvalid) {
				t.Errorf("MarshalBinary() = %v, want ErrInvalid", err)
			}
			if _, _, err := tt.d.ArrowSchema(nil); !errors.Is(err, ErrInvalid) {
				t.Errorf("ArrowSchema() = %v, want ErrInvalid", err)
			}
		})
	}
}

// rawScalar builds description bytes by hand, so tests can write what
// MarshalBinary refuses to.
func rawScalar(version, kind, st, reserved byte, rate float64, count uint16, entries ...string) []byte {
	b := []byte("SNSR")
	b = append(b, version, kind, st, reserved)
	b = appendU64(b, math.Float64bits(rate))
	b = append(b, byte(count), byte(count>>8))
	for _, e := range entries {
		b = append(b, byte(len(e)))
		b = append(b, e...)
	}
	return b
}

func appendU64(b []byte, v uint64) []byte {
	for i := range 8 {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

func TestParseScalarErrors(t *testing.T) {
	good := rawScalar(1, 1, 3, 0, 25600, 2, "x", "g", "temp", "°C")
	if _, err := ParseScalar(good); err != nil {
		t.Fatalf("the base case must parse: %v", err)
	}
	tests := []struct {
		name string
		b    []byte
		msg  string
	}{
		{"nil", nil, "preamble"},
		{"garbage", []byte("hello, world, this is not it"), "magic"},
		{"wrong magic", append([]byte("SNSX"), good[4:]...), "magic"},
		{"unknown version", rawScalar(2, 1, 3, 0, 25600, 1, "x", ""), "unsupported version 2"},
		{"version 0", rawScalar(0, 1, 3, 0, 25600, 1, "x", ""), "unsupported version 0"},
		{"other kind", rawScalar(1, 2, 3, 0, 25600, 1, "x", ""), "kind imu"},
		{"reserved set", rawScalar(1, 1, 3, 1, 25600, 1, "x", ""), "reserved byte"},
		{"unknown type", rawScalar(1, 1, 9, 0, 25600, 1, "x", ""), "unknown sample type 9"},
		{"rate NaN", rawScalar(1, 1, 3, 0, math.NaN(), 1, "x", ""), "sample rate NaN"},
		{"rate 0", rawScalar(1, 1, 3, 0, 0, 1, "x", ""), "sample rate 0"},
		{"zero channels", rawScalar(1, 1, 3, 0, 25600, 0), "0 channels"},
		{"too many channels", rawScalar(1, 1, 3, 0, 25600, MaxChannels+1), "1025 channels"},
		{"count beyond input", rawScalar(1, 1, 3, 0, 25600, MaxChannels, "x", ""), "truncated"},
		{"trailing bytes", append(bytes.Clone(good), 0), "1 trailing bytes"},
		{"missing unit", rawScalar(1, 1, 3, 0, 25600, 3, "x", "", "y", "", "z"), "channel 2 unit"},
		{"name past the end", append(rawScalar(1, 1, 3, 0, 25600, 1), 9, 'a'), "channel 0 name"},
		{"duplicate", rawScalar(1, 1, 3, 0, 25600, 2, "x", "", "x", ""), "both named"},
		{"empty name", rawScalar(1, 1, 3, 0, 25600, 1, "", ""), "empty name"},
		{"bad utf-8", rawScalar(1, 1, 3, 0, 25600, 1, "\xc3\x28", ""), "not UTF-8"},
	}
	for n := range good {
		tests = append(tests, struct {
			name string
			b    []byte
			msg  string
		}{fmt.Sprintf("truncated to %d", n), good[:n], ""})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseScalar(tt.b)
			if d != nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseScalar = %v, %v; want nil, ErrInvalid", d, err)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "signals: parse scalar: ") {
				t.Errorf("error %q, want it to contain %q", err, tt.msg)
			}
			before := vib3()
			u := vib3()
			if err := u.UnmarshalBinary(tt.b); err == nil || !u.Equal(before) {
				t.Errorf("UnmarshalBinary changed its receiver on error %v", err)
			}
		})
	}
}

// A description that claims many channels but holds few must be refused before
// the channel slice is allocated.
func TestParseScalarDoesNotOverAllocate(t *testing.T) {
	b := rawScalar(1, 1, 3, 0, 25600, MaxChannels, "x")
	// 1024 channels would take 32 KiB; the error chain takes a few hundred bytes.
	if n := allocatedBytes(func() { _, _ = ParseScalar(b) }); n > 2048 {
		t.Errorf("%d bytes allocated for a truncated description", n)
	}
}

// allocatedBytes returns the bytes f allocates, averaged over a few runs.
func allocatedBytes(f func()) uint64 {
	const runs = 16
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / runs
}

func TestDescriptionKind(t *testing.T) {
	for _, tt := range []struct {
		b    []byte
		want Kind
		ok   bool
	}{
		{[]byte("SNSR\x01\x01"), KindScalar, true},
		{[]byte("SNSR\x07\x09rest"), 9, true}, // kinds this build does not know still peek
		{[]byte("SNSR\x01"), 0, false},
		{[]byte("snsr\x01\x01"), 0, false},
	} {
		k, err := DescriptionKind(tt.b)
		if (err == nil) != tt.ok || k != tt.want {
			t.Errorf("DescriptionKind(%q) = %v, %v", tt.b, k, err)
		}
	}
	if KindScalar.String() != "scalar" || Kind(9).String() != "kind(9)" {
		t.Errorf("Kind.String: %v %v", KindScalar, Kind(9))
	}
}

func TestChannelIndexAndEqual(t *testing.T) {
	d := vib3()
	for name, want := range map[string]int{"x": 0, "y": 1, "z": 2, "w": -1, "": -1, "X": -1} {
		if got := d.ChannelIndex(name); got != want {
			t.Errorf("ChannelIndex(%q) = %d, want %d", name, got, want)
		}
	}
	other := vib3()
	if !d.Equal(other) {
		t.Error("equal descriptions differ")
	}
	for _, edit := range []func(*Scalar){
		func(o *Scalar) { o.SampleRate = 25601 },
		func(o *Scalar) { o.SampleType = Float64 },
		func(o *Scalar) { o.Channels = o.Channels[:2] },
		func(o *Scalar) { o.Channels[2].Unit = "m/s²" },
	} {
		o := vib3()
		edit(o)
		if d.Equal(o) {
			t.Errorf("Equal missed a difference: %+v", o)
		}
	}
	var nilD *Scalar
	if !nilD.Equal(nil) || d.Equal(nil) || nilD.Equal(d) {
		t.Error("Equal with nil")
	}
}
