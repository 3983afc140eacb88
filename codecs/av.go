package codecs

import (
	"fmt"
	"slices"

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
//
// A track that a producer other than the SDK wrote (signals.MatroskaAudio:
// PCM of any Matroska layout, or FLAC) has its frames turned into the PCM of
// its columns first, and its frames timed by an audioClock.
type audioArrow struct {
	scalarArrow
	audio    *signals.Audio
	matroska *matroskaPCM // nil for the SDK's own audio
}

func newAudioArrow(d signals.Description, opts ArrowOptions) (ArrowDecoder, error) {
	var m *matroskaPCM
	a, ok := d.(*signals.Audio)
	if ma, isMatroska := d.(*signals.MatroskaAudio); isMatroska {
		var err error
		if m, err = newMatroskaPCM(ma); err != nil {
			return nil, err
		}
		a, ok = ma.Columns(), true
	}
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
	return &audioArrow{scalarArrow: scalarArrow{desc: desc, schema: schema, chans: chans}, audio: a, matroska: m}, nil
}

// pcm returns f's samples as little-endian PCM of the columns' type, and the
// time of the first.
func (a *audioArrow) pcm(f Frame) ([]byte, int64, error) {
	stride := a.desc.SampleType.Size() * len(a.desc.Channels)
	if a.matroska != nil {
		return a.matroska.frame(f, stride)
	}
	if len(f.Data)%stride != 0 {
		return nil, 0, fmt.Errorf("codecs: pcm frame: %w: %d bytes are not whole samples of %d bytes", ErrCorrupt, len(f.Data), stride)
	}
	return f.Data, f.Time, nil
}

func (a *audioArrow) Append(b *array.RecordBuilder, f Frame, r TimeRange) (int, error) {
	s := &a.s
	if f.Codec == LosslessAudio {
		h, body, err := a.audioFrame(f)
		if err != nil {
			return 0, err
		}
		if err := decodeScalarBody(body, a.desc, h, s); err != nil {
			return 0, err
		}
		a.cols = splitChannels(s, a.cols)
		return a.appendRange(b, f.Time, s.N, r)
	}
	data, start, err := a.pcm(f)
	if err != nil {
		return 0, err
	}
	n := len(data) / (a.desc.SampleType.Size() * len(a.desc.Channels))
	if err := (plain{}).Decode(data, a.desc, n, s); err != nil {
		return 0, err
	}
	a.cols = splitChannels(s, a.cols)
	return a.appendRange(b, start, s.N, r)
}

// AppendToBatch decodes a PCM frame into the batch: a plain body without a
// header, starting at the frame's block time (BatchDecoder).
func (a *audioArrow) AppendToBatch(f Frame, r TimeRange) (int, error) {
	if f.Codec == LosslessAudio {
		h, body, err := a.audioFrame(f)
		if err != nil {
			return 0, err
		}
		return a.appendToBatch(h, body, r)
	}
	data, start, err := a.pcm(f)
	if err != nil {
		return 0, err
	}
	n := len(data) / (a.desc.SampleType.Size() * len(a.desc.Channels))
	return a.appendToBatch(ScalarHeader{Codec: Plain, N: n, Start: start}, data, r)
}

// audioFrame reads the header of a compressed audio frame (Frame.Codec
// LosslessAudio), checks it against the track, and returns the header of
// the equivalent scalar frame and the body.
func (a *audioArrow) audioFrame(f Frame) (ScalarHeader, []byte, error) {
	pf, n, body, err := ParseAudioFrameHeader(f.Data)
	if err != nil {
		return ScalarHeader{}, nil, err
	}
	if want := PCMFormatOf(a.audio); pf != want {
		return ScalarHeader{}, nil, fmt.Errorf("codecs: audio frame: %w: %d channels of pcm type %d, the track has %d of %d", ErrCorrupt, pf.Channels, pf.Type, want.Channels, want.Type)
	}
	return ScalarHeader{Codec: LosslessAudio, N: n, Start: f.Time}, body, nil
}

// bytesArrow returns one row per frame: time, then the selected fields of
// key (the key-frame flag) and data (the frame's bytes: an access unit in AVC
// form, or an opaque payload, as they were sent); both, in that order, when
// none is named. As for every kind, time is always the first column.
type bytesArrow struct {
	schema *arrow.Schema
	cols   []int // per column after time: bytesKey or bytesData
}

// The fields of a bytes track, in their default order.
const (
	bytesKey = iota
	bytesData
)

var bytesFields = [...]string{bytesKey: "key", bytesData: "data"}

func newBytesArrow(d signals.Description, opts ArrowOptions) (ArrowDecoder, error) {
	// Either layout is a row per frame: a frame is the element.
	a := &bytesArrow{}
	if len(opts.Fields) == 0 {
		a.cols = []int{bytesKey, bytesData}
	}
	for _, name := range opts.Fields {
		i := slices.Index(bytesFields[:], name)
		if i < 0 {
			return nil, fmt.Errorf("codecs: %w: unknown field %q (the fields of a %s track are key, data; time is always the first column)", ErrBadOptions, name, d.Kind())
		}
		if slices.Contains(a.cols, i) {
			return nil, fmt.Errorf("codecs: %w: field %q selected twice (the fields of a %s track are key, data)", ErrBadOptions, name, d.Kind())
		}
		a.cols = append(a.cols, i)
	}
	md := arrow.Metadata{}
	if o, ok := d.(*signals.Opaque); ok {
		md = arrow.NewMetadata([]string{"sensorium.media_type"}, []string{o.MediaType})
	}
	fields := []arrow.Field{{Name: signals.TimeField, Type: arrow.FixedWidthTypes.Timestamp_ns}}
	for _, c := range a.cols {
		switch c {
		case bytesKey:
			fields = append(fields, arrow.Field{Name: "key", Type: arrow.FixedWidthTypes.Boolean})
		case bytesData:
			fields = append(fields, arrow.Field{Name: "data", Type: arrow.BinaryTypes.Binary, Metadata: md})
		}
	}
	a.schema = arrow.NewSchema(fields, nil)
	return a, nil
}

func (a *bytesArrow) Schema() *arrow.Schema { return a.schema }

func (a *bytesArrow) Append(b *array.RecordBuilder, f Frame, r TimeRange) (int, error) {
	if !r.Contains(f.Time) {
		return 0, nil
	}
	b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(f.Time))
	for i, c := range a.cols {
		switch c {
		case bytesKey:
			b.Field(1 + i).(*array.BooleanBuilder).Append(f.Key)
		case bytesData:
			b.Field(1 + i).(*array.BinaryBuilder).Append(f.Data)
		}
	}
	return 1, nil
}
