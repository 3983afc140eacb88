package codecs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/sensorium-io/sensorium/signals"
)

// A scalar frame is a fixed header followed by the codec body (FORMAT.md,
// "Scalar frame"). The header carries what MKV cannot: the exact start time in
// ns (MKV block timecodes are ms) and the sample count, so that a frame decodes
// on its own, from a NATS live message as well as from a stored fragment.
//
// These constants are the format; a test checks them against FORMAT.md.
const (
	ScalarHeaderSize   = 16
	ScalarFrameVersion = 1

	offCodec   = 0 // u8 codec ID
	offVersion = 1 // u8 frame format version
	offFlags   = 2 // u16 flags, none defined: must be 0
	offN       = 4 // u32 samples per channel
	offStart   = 8 // i64 ns since the Unix epoch of sample 0
)

// MaxScalarFrameSamples is the largest sample count per channel a header can
// carry.
const MaxScalarFrameSamples = math.MaxUint32

// MaxScalarFrameBytes bounds the samples of one frame, n × channels × sample
// size: 32 MiB, four times the largest fragment. Writers refuse to make a
// larger frame and readers refuse one before decoding it, so that a forged or
// corrupt header cannot make a reader allocate without bound however well its
// codec compresses.
const MaxScalarFrameBytes = 32 << 20

// ScalarHeader is the decoded header of a scalar frame.
type ScalarHeader struct {
	Codec ID
	N     int   // samples per channel
	Start int64 // ns since the Unix epoch of sample 0 (see FromBlock)
	Size  int   // bytes of the header: the body follows
	// FromBlock is set for a compact frame before its block time is known:
	// Start is then the distance from the frame's block time
	// (ParseScalarHeaderAt adds it).
	FromBlock bool
}

// ParseScalarHeader reads the header of a scalar frame without decoding the
// body: a cheap peek for indexing and routing. It checks the version, the flags
// and that the codec ID is not 0; whether the codec exists and the body matches
// is left to DecodeScalarFrame.
func ParseScalarHeader(src []byte) (ScalarHeader, error) {
	h, err := parseScalarHeader(src)
	if err != nil {
		return ScalarHeader{}, fmt.Errorf("codecs: parse scalar header: %w", err)
	}
	return h, nil
}

// ParseScalarHeaderAt is ParseScalarHeader for a frame whose block time (ns,
// the MKV block's or the live message's) is known: a compact frame's start
// is counted from it.
func ParseScalarHeaderAt(src []byte, blockTime int64) (ScalarHeader, error) {
	h, err := ParseScalarHeader(src)
	if h.FromBlock {
		h.Start, h.FromBlock = blockTime+h.Start, false
	}
	return h, err
}

func parseScalarHeader(src []byte) (ScalarHeader, error) {
	if len(src) >= 3 && ID(src[offCodec]) == Compact {
		return parseCompactHeader(src)
	}
	if len(src) >= 2 && ID(src[offCodec]) == Compact2 {
		return parseCompact2Header(src)
	}
	if len(src) < ScalarHeaderSize {
		return ScalarHeader{}, fmt.Errorf("%w: %d bytes, the header needs %d", ErrCorrupt, len(src), ScalarHeaderSize)
	}
	if v := src[offVersion]; v != ScalarFrameVersion {
		return ScalarHeader{}, fmt.Errorf("%w: frame version %d at offset %d, want %d", ErrCorrupt, v, offVersion, ScalarFrameVersion)
	}
	// A flag this reader does not know may change how the body reads, so any
	// set flag is refused rather than ignored.
	if f := binary.LittleEndian.Uint16(src[offFlags:]); f != 0 {
		return ScalarHeader{}, fmt.Errorf("%w: flags %#04x at offset %d, none are defined", ErrCorrupt, f, offFlags)
	}
	id := ID(src[offCodec])
	if id == 0 {
		return ScalarHeader{}, fmt.Errorf("%w: codec id 0 at offset %d is reserved", ErrCorrupt, offCodec)
	}
	n := uint64(binary.LittleEndian.Uint32(src[offN:]))
	if n > math.MaxInt { // only where int is 32 bits
		return ScalarHeader{}, fmt.Errorf("%w: %d samples do not fit an int here", ErrCorrupt, n)
	}
	return ScalarHeader{Codec: id, N: int(n), Start: int64(binary.LittleEndian.Uint64(src[offStart:])), Size: ScalarHeaderSize}, nil
}

// AppendScalarFrame appends a scalar frame holding s, encoded with the codec id,
// to dst; id Auto picks, for this frame, the codec that makes it smallest. s
// must be a valid block of desc (signals.Samples.Validate) with at most
// MaxScalarFrameSamples samples. On error dst is returned unchanged.
func AppendScalarFrame(dst []byte, desc *signals.Scalar, s *signals.Samples, id ID) ([]byte, error) {
	return appendScalarFrame(dst, desc, s, id, nil)
}

func appendScalarFrame(dst []byte, desc *signals.Scalar, s *signals.Samples, id ID, hints []mappingHint) ([]byte, error) {
	var c Codec
	if id != Auto {
		var err error
		if c, err = Lookup(id); err != nil {
			return dst, fmt.Errorf("codecs: append scalar frame: %w", err)
		}
	}
	if err := s.Validate(desc); err != nil {
		return dst, fmt.Errorf("codecs: append scalar frame: %w", err)
	}
	if uint64(s.N) > MaxScalarFrameSamples {
		return dst, fmt.Errorf("codecs: append scalar frame: %d samples per channel, a frame holds at most %d", s.N, uint64(MaxScalarFrameSamples))
	}
	if size := s.Len() * s.Type.Size(); size > MaxScalarFrameBytes {
		return dst, fmt.Errorf("codecs: append scalar frame: %d bytes of samples, a frame holds at most %d: write shorter frames", size, MaxScalarFrameBytes)
	}
	switch id {
	case Compact:
		return appendCompactFrame(dst, s, hints), nil
	case Compact2:
		return appendCompact2Frame(dst, s, hints), nil
	}
	start := len(dst)
	out := append(dst, byte(id), ScalarFrameVersion, 0, 0)
	out = binary.LittleEndian.AppendUint32(out, uint32(s.N))
	out = binary.LittleEndian.AppendUint64(out, uint64(s.Start))
	var err error
	switch {
	case c == nil:
		out, id, err = appendAuto(out, s, hints)
		out[start+offCodec] = byte(id) // the frame names the codec that was picked
	case id == Numeric:
		out, err = appendNumeric(out, s, hints)
	default:
		out, err = c.AppendEncoded(out, s)
	}
	if err != nil {
		return dst, fmt.Errorf("codecs: append scalar frame: %w", err)
	}
	return out, nil
}

// DecodeScalarFrame decodes a scalar frame of the track described by desc into
// s, reusing its buffers: it parses the header, looks the codec up, decodes the
// body and sets s.Start to the header's start. Errors wrap ErrCorrupt or
// ErrUnknownCodec; on error the contents of s are unspecified. Once s has grown
// to the largest frame it does not allocate.
//
// A compact frame counts its start from its block time, which this function
// does not know: it refuses one (ErrNeedsBlockTime); DecodeScalarFrameAt
// decodes every frame.
func DecodeScalarFrame(src []byte, desc *signals.Scalar, s *signals.Samples) error {
	h, err := parseScalarHeader(src)
	if err != nil {
		return fmt.Errorf("codecs: decode scalar frame: %w", err)
	}
	if h.FromBlock {
		return fmt.Errorf("codecs: decode scalar frame: %w", ErrNeedsBlockTime)
	}
	return decodeScalarBody(src[h.Size:], desc, h, s)
}

// DecodeScalarFrameAt is DecodeScalarFrame for a frame whose block time (ns:
// the MKV block's time, or the live message's timestamp) is known, as every
// reader of a stored or live frame knows it; frames other than compact ones
// ignore it.
func DecodeScalarFrameAt(src []byte, blockTime int64, desc *signals.Scalar, s *signals.Samples) error {
	h, err := ParseScalarHeaderAt(src, blockTime)
	if err != nil {
		return fmt.Errorf("codecs: decode scalar frame: %w", err)
	}
	return decodeScalarBody(src[h.Size:], desc, h, s)
}

// ErrNeedsBlockTime means a compact frame was decoded without its block
// time, which its start is counted from.
var ErrNeedsBlockTime = errors.New("a compact frame needs its block time: use DecodeScalarFrameAt")

// decodeScalarBody decodes the body of a frame whose header is h.
func decodeScalarBody(body []byte, desc *signals.Scalar, h ScalarHeader, s *signals.Samples) error {
	c, err := Lookup(h.Codec)
	if err != nil {
		return fmt.Errorf("codecs: decode scalar frame: %w", err)
	}
	if desc != nil && desc.SampleType.Valid() {
		if size := uint64(h.N) * uint64(len(desc.Channels)) * uint64(desc.SampleType.Size()); size > MaxScalarFrameBytes {
			return fmt.Errorf("codecs: decode scalar frame: %w: %d samples × %d channels are %d bytes, a frame holds at most %d",
				ErrCorrupt, h.N, len(desc.Channels), size, MaxScalarFrameBytes)
		}
	}
	if err := c.Decode(body, desc, h.N, s); err != nil {
		return fmt.Errorf("codecs: decode scalar frame: %w", err)
	}
	s.Start = h.Start
	return nil
}
