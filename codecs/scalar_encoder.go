package codecs

import (
	"fmt"

	"github.com/sensorium-io/sensorium/signals"
)

// ScalarEncoder makes the frames of one scalar track: AppendScalarFrame with a
// memory. For each float channel the numeric codec searches for the scale (ADC
// counts times the chain's sensitivity) or decimal step its values sit on, and
// the search costs more than coding the frame; a sensor's scale does not change
// from one frame to the next, so the encoder tries the mapping the channel's
// previous frame used first and searches again only when it stops fitting.
//
// Frames stay self-contained: each carries its own mapping, so a reader needs
// nothing from earlier frames, and the bytes are those AppendScalarFrame could
// have chosen. A ScalarEncoder is not safe for concurrent use: one per track.
type ScalarEncoder struct {
	desc  *signals.Scalar
	id    ID
	hints []mappingHint // one per channel
}

// NewScalarEncoder returns an encoder for frames of desc with the codec id
// (Auto: the smallest per frame). It checks that id is a known codec.
func NewScalarEncoder(desc *signals.Scalar, id ID) (*ScalarEncoder, error) {
	if id != Auto {
		if _, err := Lookup(id); err != nil {
			return nil, fmt.Errorf("codecs: scalar encoder: %w", err)
		}
	}
	return &ScalarEncoder{desc: desc, id: id, hints: make([]mappingHint, len(desc.Channels))}, nil
}

// AppendFrame appends a scalar frame holding s to dst, as AppendScalarFrame
// does. On error dst is returned unchanged.
func (e *ScalarEncoder) AppendFrame(dst []byte, s *signals.Samples) ([]byte, error) {
	return appendScalarFrame(dst, e.desc, s, e.id, e.hints)
}

// AppendCompactFrame appends whichever is smaller of the frame AppendFrame
// makes and a compact frame (codec Compact2: a header of two or three
// bytes, a start counted from the block time, one bit stream for the
// channels). Writers of short frames — a slow sensor's ten values — use it:
// it is the same frame as AppendFrame's but for the header and per-channel
// fields, which dominate such frames. Readers decode it with the block time
// (DecodeScalarFrameAt; the Arrow decoders have it). On error dst is
// returned unchanged.
func (e *ScalarEncoder) AppendCompactFrame(dst []byte, s *signals.Samples) ([]byte, error) {
	start := len(dst)
	out, err := appendScalarFrame(dst, e.desc, s, e.id, e.hints)
	if err != nil {
		return dst, err
	}
	regular := len(out) - start
	out = appendCompact2Frame(out, s, e.hints)
	if c := len(out) - start - regular; c < regular {
		return append(out[:start], out[start+regular:]...), nil
	}
	return out[:start+regular], nil
}
