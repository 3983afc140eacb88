package signals

import (
	"fmt"
	"math"
	"unicode/utf8"
)

// CodecIDScalar is the MKV CodecID of a track that carries Scalar frames.
const CodecIDScalar = "S_SENSORIUM/SCALAR"

// Limits of a Scalar description. They are part of the description format
// (FORMAT.md): the lengths are what the format's length fields can hold, the
// rates keep every sample time an exact, distinct nanosecond count.
const (
	MaxChannels = 1024
	MaxNameLen  = 255 // bytes of UTF-8
	MaxUnitLen  = 255 // bytes of UTF-8

	// MaxSampleRate is 1 GHz: sample times are whole nanoseconds, so a faster
	// rate would give two samples the same time.
	MaxSampleRate = 1e9
	// MinSampleRate is one sample every ~31.7 years; anything slower does not
	// fit two samples in the int64 nanosecond range and is not a sampled signal.
	MinSampleRate = 1e-9
)

// TimeField is the name of the time column of query results. No channel may take
// it, so a result schema never has two fields of one name.
const TimeField = "time"

// Channel is one series of a Scalar signal.
type Channel struct {
	Name string // unique within the signal, 1..MaxNameLen bytes of UTF-8, not TimeField
	Unit string // free text such as "m/s²" or "°C"; may be empty; ≤ MaxUnitLen bytes of UTF-8
}

// Scalar describes N channels sampled together at one rate (vibration axes,
// temperature, pressure, current). It is the CodecPrivate of a track whose
// CodecID is CodecIDScalar (see MarshalBinary and ParseScalar).
type Scalar struct {
	SampleRate float64 // Hz, finite, in [MinSampleRate, MaxSampleRate]
	SampleType SampleType
	Channels   []Channel // 1..MaxChannels, unique non-empty names
}

// Validate reports the first reason d is not a usable description. The error
// wraps ErrInvalid.
func (d *Scalar) Validate() error {
	if err := d.validate(); err != nil {
		return fmt.Errorf("signals: scalar: %w", err)
	}
	return nil
}

// validate returns errors without a package prefix so that Validate and
// ParseScalar can each put their own operation in front.
func (d *Scalar) validate() error {
	if d == nil {
		return fmt.Errorf("%w: nil description", ErrInvalid)
	}
	// The range test is written so that NaN fails it too.
	if r := d.SampleRate; math.IsInf(r, 0) || math.IsNaN(r) || !(r >= MinSampleRate && r <= MaxSampleRate) {
		return fmt.Errorf("%w: sample rate %v Hz: want a finite rate in [%g, %g] Hz", ErrInvalid, r, MinSampleRate, MaxSampleRate)
	}
	if !d.SampleType.Valid() {
		return fmt.Errorf("%w: unknown sample type %d", ErrInvalid, uint8(d.SampleType))
	}
	if n := len(d.Channels); n < 1 || n > MaxChannels {
		return fmt.Errorf("%w: %d channels: want 1 to %d", ErrInvalid, n, MaxChannels)
	}
	for i, c := range d.Channels {
		switch {
		case c.Name == "":
			return fmt.Errorf("%w: channel %d: empty name", ErrInvalid, i)
		case len(c.Name) > MaxNameLen:
			return fmt.Errorf("%w: channel %d: name of %d bytes: want at most %d", ErrInvalid, i, len(c.Name), MaxNameLen)
		case !utf8.ValidString(c.Name):
			return fmt.Errorf("%w: channel %d: name %q is not UTF-8", ErrInvalid, i, c.Name)
		case c.Name == TimeField:
			return fmt.Errorf("%w: channel %d: name %q is reserved for the time column", ErrInvalid, i, c.Name)
		case len(c.Unit) > MaxUnitLen:
			return fmt.Errorf("%w: channel %q: unit of %d bytes: want at most %d", ErrInvalid, c.Name, len(c.Unit), MaxUnitLen)
		case !utf8.ValidString(c.Unit):
			return fmt.Errorf("%w: channel %q: unit %q is not UTF-8", ErrInvalid, c.Name, c.Unit)
		}
	}
	if i, j := duplicateName(d.Channels); i >= 0 {
		return fmt.Errorf("%w: channels %d and %d are both named %q", ErrInvalid, i, j, d.Channels[j].Name)
	}
	return nil
}

// duplicateName returns the indexes of the first two channels that share a name,
// or -1, -1. A few channels are compared pairwise, which does not allocate.
func duplicateName(chs []Channel) (int, int) {
	if len(chs) <= 16 {
		for j := 1; j < len(chs); j++ {
			for i := 0; i < j; i++ {
				if chs[i].Name == chs[j].Name {
					return i, j
				}
			}
		}
		return -1, -1
	}
	seen := make(map[string]int, len(chs))
	for j, c := range chs {
		if i, ok := seen[c.Name]; ok {
			return i, j
		}
		seen[c.Name] = j
	}
	return -1, -1
}

// ChannelIndex returns the index of the channel called name, or -1.
func (d *Scalar) ChannelIndex(name string) int {
	for i := range d.Channels {
		if d.Channels[i].Name == name {
			return i
		}
	}
	return -1
}

// Equal reports whether d and o describe the same signal: same rate (compared
// bit for bit, as it is stored), type, and channels in the same order. Producers
// use it to decide whether a track's CodecPrivate changed.
func (d *Scalar) Equal(o *Scalar) bool {
	if d == nil || o == nil {
		return d == o
	}
	if math.Float64bits(d.SampleRate) != math.Float64bits(o.SampleRate) ||
		d.SampleType != o.SampleType || len(d.Channels) != len(o.Channels) {
		return false
	}
	for i := range d.Channels {
		if d.Channels[i] != o.Channels[i] {
			return false
		}
	}
	return true
}
