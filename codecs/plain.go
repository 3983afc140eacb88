package codecs

import (
	"fmt"
	"slices"

	"github.com/sensorium-io/sensorium/signals"
)

// plain is the reference codec: the interleaved samples, little endian, nothing
// else (FORMAT.md, "Plain body"). It is the fallback a writer uses when no
// other codec saves enough, and the format a NATS subscriber without our code
// can read in a few lines of any language.
type plain struct{}

func init() {
	if err := Register(plain{}); err != nil {
		panic(err) // two built-in codecs share an ID or a name: a bug in this package
	}
}

func (plain) ID() ID       { return Plain }
func (plain) Name() string { return "plain" }

func (plain) AppendEncoded(dst []byte, s *signals.Samples) ([]byte, error) {
	if err := s.CheckLengths(); err != nil {
		return dst, fmt.Errorf("codecs: plain: encode: %w", err)
	}
	dst = slices.Grow(dst, s.Len()*s.Type.Size())
	switch s.Type {
	case signals.Int16:
		dst = appendLE(dst, s.I16)
	case signals.Int32:
		dst = appendLE(dst, s.I32)
	case signals.Float32:
		dst = appendLE(dst, s.F32)
	case signals.Float64:
		dst = appendLE(dst, s.F64)
	}
	return dst, nil
}

func (plain) Decode(src []byte, desc *signals.Scalar, n int, s *signals.Samples) error {
	t, channels, err := bodyShape(desc, n)
	if err != nil {
		return fmt.Errorf("codecs: plain: decode: %w", err)
	}
	// Checked before Reset allocates: the body must hold exactly n samples of
	// every channel. The division keeps a huge n from overflowing.
	stride := channels * t.Size()
	if len(src)%stride != 0 || len(src)/stride != n {
		return fmt.Errorf("codecs: plain: decode: %w: body of %d bytes, want %d samples × %d channels × %d bytes",
			ErrCorrupt, len(src), n, channels, t.Size())
	}
	s.Reset(t, channels, n)
	switch t {
	case signals.Int16:
		decodeLE(s.I16, src)
	case signals.Int32:
		decodeLE(s.I32, src)
	case signals.Float32:
		decodeLE(s.F32, src)
	case signals.Float64:
		decodeLE(s.F64, src)
	}
	return nil
}

// bodyShape returns what a codec needs from a description, checking only that
// (the rest of desc is trusted), and rejects a negative sample count. Every
// codec's Decode starts with it.
func bodyShape(desc *signals.Scalar, n int) (signals.SampleType, int, error) {
	switch {
	case desc == nil:
		return 0, 0, fmt.Errorf("%w: nil description", signals.ErrInvalid)
	case !desc.SampleType.Valid():
		return 0, 0, fmt.Errorf("%w: unknown sample type %d", signals.ErrInvalid, uint8(desc.SampleType))
	case len(desc.Channels) < 1 || len(desc.Channels) > signals.MaxChannels:
		return 0, 0, fmt.Errorf("%w: %d channels", signals.ErrInvalid, len(desc.Channels))
	case n < 0:
		return 0, 0, fmt.Errorf("%w: %d samples", ErrCorrupt, n)
	}
	return desc.SampleType, len(desc.Channels), nil
}

// AppendPlainBody appends the plain body of s — its samples interleaved,
// little endian — to dst: the bytes of a PCM audio frame.
func AppendPlainBody(dst []byte, s *signals.Samples) ([]byte, error) {
	return plain{}.AppendEncoded(dst, s)
}
