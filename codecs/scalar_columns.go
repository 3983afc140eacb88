package codecs

import (
	"fmt"

	"github.com/sensorium-io/sensorium/signals"
)

// DecodeScalarColumns decodes a scalar frame into one contiguous slice per
// channel — the layout of Arrow columns — instead of interleaved samples.
// cols is resized to the channel count and its slices reused. The numeric
// codec, which stores channels one after the other, decodes each straight
// into its column; other codecs decode interleaved and are split after.
// It returns the frame's header. Errors are those of DecodeScalarFrame.
func DecodeScalarColumns(src []byte, desc *signals.Scalar, cols []Column, scratch *signals.Samples) (ScalarHeader, []Column, error) {
	h, err := parseScalarHeader(src)
	if err == nil && h.FromBlock {
		err = ErrNeedsBlockTime
	}
	if err != nil {
		return h, cols, fmt.Errorf("codecs: decode scalar columns: %w", err)
	}
	return decodeScalarColumns(src, h, desc, cols, scratch)
}

// DecodeScalarColumnsAt is DecodeScalarColumns for a frame whose block time
// is known (see DecodeScalarFrameAt).
func DecodeScalarColumnsAt(src []byte, blockTime int64, desc *signals.Scalar, cols []Column, scratch *signals.Samples) (ScalarHeader, []Column, error) {
	h, err := ParseScalarHeaderAt(src, blockTime)
	if err != nil {
		return h, cols, fmt.Errorf("codecs: decode scalar columns: %w", err)
	}
	return decodeScalarColumns(src, h, desc, cols, scratch)
}

func decodeScalarColumns(src []byte, h ScalarHeader, desc *signals.Scalar, cols []Column, scratch *signals.Samples) (ScalarHeader, []Column, error) {
	if h.Codec != Numeric {
		if err := decodeScalarBody(src[h.Size:], desc, h, scratch); err != nil {
			return h, cols, err
		}
		return h, splitChannels(scratch, cols), nil
	}
	t, channels, err := numericBodyShape(len(src)-h.Size, desc, h)
	if err != nil {
		return h, cols, fmt.Errorf("codecs: decode scalar columns: %w", err)
	}
	cols = resizeSlice(cols, channels)
	err = decodeNumericColumns(src[h.Size:], t, channels, h.N, func(c int) *Column {
		cols[c].Reset(t, h.N)
		return &cols[c]
	})
	if err != nil {
		return h, cols, fmt.Errorf("codecs: decode scalar columns: %w", err)
	}
	return h, cols, nil
}

// numericBodyShape checks, before anything is allocated, that a numeric
// frame's samples are within the frame limit and that its body can hold
// them; it returns the sample type and channel count.
func numericBodyShape(bodyLen int, desc *signals.Scalar, h ScalarHeader) (signals.SampleType, int, error) {
	t, channels, err := bodyShape(desc, h.N)
	if err != nil {
		return 0, 0, err
	}
	if size := uint64(h.N) * uint64(channels) * uint64(t.Size()); size > MaxScalarFrameBytes {
		return 0, 0, fmt.Errorf("%w: %d bytes of samples, a frame holds at most %d", ErrCorrupt, size, MaxScalarFrameBytes)
	}
	if min := channels * (1 + minResidualBytes(h.N)); bodyLen < min {
		return 0, 0, fmt.Errorf("%w: body of %d bytes cannot hold %d samples × %d channels", ErrCorrupt, bodyLen, h.N, channels)
	}
	return t, channels, nil
}

// decodeNumericColumns decodes a numeric body channel by channel, each into
// the column into(c) returns: n values of type t that the caller has sized
// (the numeric codec stores channels one after the other, so each goes
// straight where it belongs).
func decodeNumericColumns(body []byte, t signals.SampleType, channels, n int, into func(c int) *Column) error {
	sc := numericPool.Get().(*numericScratch)
	defer numericPool.Put(sc)
	var err error
	for c := range channels {
		col := into(c)
		view := signals.Samples{N: n, Channels: 1, Type: t, I16: col.I16, I32: col.I32, F32: col.F32, F64: col.F64}
		if body, err = decodeNumericChannel(body, &view, 0, sc); err != nil {
			return fmt.Errorf("channel %d: %w", c, err)
		}
	}
	if len(body) != 0 {
		return fmt.Errorf("%w: %d bytes after the last channel", ErrCorrupt, len(body))
	}
	return nil
}

// splitChannels copies interleaved samples into one slice per channel.
func splitChannels(s *signals.Samples, cols []Column) []Column {
	cols = resizeSlice(cols, s.Channels)
	for c := range cols {
		cols[c].Reset(s.Type, s.N)
		switch s.Type {
		case signals.Int16:
			gatherChannel(cols[c].I16, s.I16, s.Channels, c)
		case signals.Int32:
			gatherChannel(cols[c].I32, s.I32, s.Channels, c)
		case signals.Float32:
			gatherChannel(cols[c].F32, s.F32, s.Channels, c)
		case signals.Float64:
			gatherChannel(cols[c].F64, s.F64, s.Channels, c)
		}
	}
	return cols
}

func gatherChannel[T any](dst, src []T, channels, c int) {
	for i := range dst {
		dst[i] = src[i*channels+c]
	}
}
