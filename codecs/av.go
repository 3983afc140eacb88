package codecs

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sensorium-io/sensorium/signals"
)

// Arrow decoders of the kinds whose frames are passed through: PCM audio (a
// frame is raw interleaved samples), H.264 access units and opaque bytes.

func init() {
	RegisterArrowDecoder(signals.KindAudio, newAudioArrow)
	RegisterArrowDecoder(signals.KindVideo, newBytesArrow)
	RegisterArrowDecoder(signals.KindOpaque, newBytesArrow)
}

// audioArrow returns one row per sample: time and one column per channel.
// A PCM frame has no header, so a sample's time is the frame's block time
// plus its offset at the sample rate: exact when frames start on whole
// milliseconds, as the SDK's PCM writer makes them (format_media.md).
type audioArrow struct {
	scalarArrow
	audio *signals.Audio
}

func newAudioArrow(d signals.Description, opts ArrowOptions) (ArrowDecoder, error) {
	a, ok := d.(*signals.Audio)
	if !ok {
		return nil, fmt.Errorf("codecs: audio decoder for a %T", d)
	}
	if opts.Layout != LayoutRows {
		return nil, fmt.Errorf("codecs: %w: audio has one row per sample; there is no frames layout", ErrBadOptions)
	}
	desc := a.Scalar()
	schema, chans, err := desc.ArrowSchema(opts.Fields)
	if err != nil {
		return nil, fmt.Errorf("codecs: %w: %v", ErrBadOptions, err)
	}
	return &audioArrow{scalarArrow: scalarArrow{desc: desc, schema: schema, chans: chans}, audio: a}, nil
}

func (a *audioArrow) Append(b *array.RecordBuilder, f Frame, r TimeRange) (int, error) {
	s := &a.s
	stride := a.desc.SampleType.Size() * len(a.desc.Channels)
	if len(f.Data)%stride != 0 {
		return 0, fmt.Errorf("codecs: pcm frame: %w: %d bytes are not whole samples of %d bytes", ErrCorrupt, len(f.Data), stride)
	}
	if err := (plain{}).Decode(f.Data, a.desc, len(f.Data)/stride, s); err != nil {
		return 0, err
	}
	a.cols = splitChannels(s, a.cols)
	return a.appendRange(b, f.Time, s.N, r)
}

// bytesArrow returns one row per frame: time, key and the frame's bytes (an
// access unit in AVC form, or an opaque payload), as they were sent.
type bytesArrow struct{ schema *arrow.Schema }

func newBytesArrow(d signals.Description, opts ArrowOptions) (ArrowDecoder, error) {
	for _, f := range opts.Fields {
		if f != "data" && f != "key" {
			return nil, fmt.Errorf("codecs: %w: unknown field %q (a %s track has key and data)", ErrBadOptions, f, d.Kind())
		}
	}
	md := arrow.Metadata{}
	if o, ok := d.(*signals.Opaque); ok {
		md = arrow.NewMetadata([]string{"sensorium.media_type"}, []string{o.MediaType})
	}
	return &bytesArrow{schema: arrow.NewSchema([]arrow.Field{
		{Name: signals.TimeField, Type: arrow.FixedWidthTypes.Timestamp_ns},
		{Name: "key", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "data", Type: arrow.BinaryTypes.Binary, Metadata: md},
	}, nil)}, nil
}

func (a *bytesArrow) Schema() *arrow.Schema { return a.schema }

func (a *bytesArrow) Append(b *array.RecordBuilder, f Frame, r TimeRange) (int, error) {
	if !r.Contains(f.Time) {
		return 0, nil
	}
	b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(f.Time))
	b.Field(1).(*array.BooleanBuilder).Append(f.Key)
	b.Field(2).(*array.BinaryBuilder).Append(f.Data)
	return 1, nil
}
