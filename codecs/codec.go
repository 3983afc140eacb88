package codecs

import (
	"errors"
	"strconv"

	"github.com/sensorium-io/sensorium/signals"
)

// Errors that callers branch on. Both are wrapped with the operation and what
// was wrong.
var (
	// ErrCorrupt means a frame or codec body does not hold what its header and
	// the track's description say it holds.
	ErrCorrupt = errors.New("corrupt frame")
	// ErrUnknownCodec means no codec of that ID is registered in this build.
	ErrUnknownCodec = errors.New("unknown codec")
)

// ID identifies a codec on the wire: it is byte 0 of every scalar frame. The
// values are listed in FORMAT.md and never reused; 0 is not a codec.
type ID uint8

// The built-in codecs.
const (
	Plain ID = 1 // raw little-endian interleaved samples
)

// String returns the name of the registered codec, or "codec(N)".
func (id ID) String() string {
	if c, err := Lookup(id); err == nil {
		return c.Name()
	}
	return "codec(" + strconv.Itoa(int(id)) + ")"
}

// Codec encodes and decodes the samples of a block of a Scalar signal: the body
// of a scalar frame, after its header. Implementations are stateless values,
// safe for concurrent use.
type Codec interface {
	// ID is the codec's wire ID.
	ID() ID
	// Name is a short lowercase name, unique among codecs, used in flags,
	// configuration and logs ("plain").
	Name() string
	// AppendEncoded appends the encoded body of s to dst. s must be internally
	// consistent (see signals.Samples.CheckLengths). On error dst is returned
	// unchanged.
	AppendEncoded(dst []byte, s *signals.Samples) ([]byte, error)
	// Decode decodes a body holding n samples per channel of desc into s (s.Reset
	// is called; buffers reused). It uses only desc's sample type and channel
	// count, trusting the rest (descriptions are validated once per track).
	// A corrupt or inconsistent body returns an error wrapping ErrCorrupt, never
	// a panic, never an allocation the input does not justify: a codec checks n
	// against len(src) before it calls s.Reset. s.Start is left alone.
	Decode(src []byte, desc *signals.Scalar, n int, s *signals.Samples) error
}
