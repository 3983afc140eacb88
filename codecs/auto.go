package codecs

import (
	"fmt"
	"sync"

	"github.com/sensorium-io/sensorium/signals"
)

// Auto is not a codec but an instruction to AppendScalarFrame (and to the
// SDK's SampleWriter, whose default it is): encode each frame with whichever
// codec makes it smallest. It is never written on the wire — the frame names
// the codec that was picked — so its value can never collide with a real
// codec's; Register refuses it.
const Auto ID = 255

// autoGoodEnough: when the numeric codec brings a frame below this share of
// its plain size, the byte codecs are not tried. They beat it only on data
// without numeric structure, where the numeric codec does poorly, so the
// cut keeps encoding fast without losing a byte on sensor data.
const autoGoodEnough = 0.7

var autoScratch = sync.Pool{New: func() any { return new([]byte) }}

// appendAuto appends the smallest encoding of s among the numeric codec,
// shuffle+zstd and plain, and returns the ID it used.
func appendAuto(dst []byte, s *signals.Samples, hints []mappingHint) ([]byte, ID, error) {
	start := len(dst)
	raw := s.Len() * s.Type.Size()
	out, err := appendNumeric(dst, s, hints)
	if err != nil {
		return dst, 0, fmt.Errorf("codecs: auto: %w", err)
	}
	best := Numeric
	if float64(len(out)-start) > autoGoodEnough*float64(raw) {
		bp := autoScratch.Get().(*[]byte)
		defer autoScratch.Put(bp)
		alt, err := Lookup(ShuffleZstd)
		if err == nil {
			if *bp, err = alt.AppendEncoded((*bp)[:0], s); err == nil && len(*bp) < len(out)-start {
				out, best = append(out[:start], *bp...), ShuffleZstd
			}
		}
	}
	if len(out)-start >= raw {
		return appendLEBody(out[:start], s), Plain, nil
	}
	return out, best, nil
}

// appendLEBody appends the plain body of s (its lengths already checked).
func appendLEBody(dst []byte, s *signals.Samples) []byte {
	out, _ := plain{}.AppendEncoded(dst, s)
	return out
}
