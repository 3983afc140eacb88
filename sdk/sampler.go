package sdk

import (
	"context"
	"fmt"
	"time"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/signals"
)

// SampleWriterOptions configure a SampleWriter.
type SampleWriterOptions struct {
	Origin       int64     // ns since the Unix epoch: the time of sample 0
	FrameSamples int       // samples per channel per frame; default DefaultFrameSamples(SampleRate)
	Codec        codecs.ID // default codecs.Auto: per frame, the codec that makes it smallest
}

// SampleWriter turns a continuous run of multichannel samples into frames of
// a scalar track: sample k (counted from 0 over the writer's life) has time
// desc.SampleTime(Origin, k), so frames are contiguous and a reader recovers
// every sample's exact time. Every frame is a key frame.
type SampleWriter struct {
	p     *Producer
	track uint64
	desc  *signals.Scalar
	opts  SampleWriterOptions
	n     int64 // samples per channel written into frames so far
	buf   signals.Samples
	fill  int // samples per channel in buf
	frame []byte
	enc   *codecs.ScalarEncoder // remembers each channel's mapping across frames
}

// DefaultFrameSamples is the frame length a SampleWriter uses unless told:
// 100 ms of samples, but at least 100 samples and at most 10 s. Fast signals
// reach readers of the live subject within 100 ms; slow ones (a temperature
// at 10 Hz) get frames long enough for the codecs to find their structure,
// since a frame's header and each channel's tables cost the same whatever
// its length.
func DefaultFrameSamples(rate float64) int {
	n := max(int(rate/10), min(100, int(rate*10)))
	return max(1, n)
}

// NewSampleWriter returns a writer of track's samples; the track must be a
// scalar track of the producer. desc may be nil; otherwise it must equal the
// track's description (its CodecPrivate), which the frames are encoded with.
func NewSampleWriter(p *Producer, track uint64, desc *signals.Scalar, o SampleWriterOptions) (*SampleWriter, error) {
	return newSampleWriter(p, track, desc, signals.CodecIDScalar, o)
}

// newSampleWriter is NewSampleWriter for any kind whose frames are scalar
// frames (scalar, IMU), on a track of that kind's codecID.
func newSampleWriter(p *Producer, track uint64, desc *signals.Scalar, codecID string, o SampleWriterOptions) (*SampleWriter, error) {
	desc, err := p.trackScalar("sample writer", track, desc, codecID)
	if err != nil {
		return nil, err
	}
	if o.FrameSamples <= 0 {
		o.FrameSamples = DefaultFrameSamples(desc.SampleRate)
	}
	if o.Codec == 0 {
		o.Codec = codecs.Auto
	}
	enc, err := codecs.NewScalarEncoder(desc, o.Codec)
	if err != nil {
		return nil, fmt.Errorf("sdk: sample writer: %w", err)
	}
	w := &SampleWriter{p: p, track: track, desc: desc, opts: o, enc: enc}
	w.buf.Reset(desc.SampleType, len(desc.Channels), o.FrameSamples)
	return w, nil
}

// WriteFloat32 writes interleaved float32 samples (a multiple of the channel count).
func (w *SampleWriter) WriteFloat32(ctx context.Context, v []float32) error {
	return writeSamples(ctx, w, signals.Float32, v, func(s *signals.Samples) []float32 { return s.F32 })
}

// WriteFloat64 writes interleaved float64 samples.
func (w *SampleWriter) WriteFloat64(ctx context.Context, v []float64) error {
	return writeSamples(ctx, w, signals.Float64, v, func(s *signals.Samples) []float64 { return s.F64 })
}

// WriteInt16 writes interleaved int16 samples.
func (w *SampleWriter) WriteInt16(ctx context.Context, v []int16) error {
	return writeSamples(ctx, w, signals.Int16, v, func(s *signals.Samples) []int16 { return s.I16 })
}

// WriteInt32 writes interleaved int32 samples.
func (w *SampleWriter) WriteInt32(ctx context.Context, v []int32) error {
	return writeSamples(ctx, w, signals.Int32, v, func(s *signals.Samples) []int32 { return s.I32 })
}

func writeSamples[T any](ctx context.Context, w *SampleWriter, typ signals.SampleType, v []T, slice func(*signals.Samples) []T) error {
	ch := len(w.desc.Channels)
	if typ != w.desc.SampleType {
		return fmt.Errorf("sdk: write samples: the track holds %s, not %s", w.desc.SampleType, typ)
	}
	if len(v)%ch != 0 {
		return fmt.Errorf("sdk: write samples: %d values are not a whole number of %d-channel samples", len(v), ch)
	}
	for len(v) > 0 {
		dst := slice(&w.buf)
		n := copy(dst[w.fill*ch:], v)
		w.fill += n / ch
		v = v[n:]
		if w.fill == w.opts.FrameSamples {
			if err := w.emit(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// emit encodes the buffered samples as one frame and puts it.
func (w *SampleWriter) emit(ctx context.Context) error {
	if w.fill == 0 {
		return nil
	}
	s := w.buf
	s.N = w.fill
	ch := len(w.desc.Channels)
	s.I16, s.I32, s.F32, s.F64 = s.I16[:min(len(s.I16), w.fill*ch)], s.I32[:min(len(s.I32), w.fill*ch)], s.F32[:min(len(s.F32), w.fill*ch)], s.F64[:min(len(s.F64), w.fill*ch)]
	s.Start = w.desc.SampleTime(w.opts.Origin, int(w.n))
	end := w.desc.SampleTime(w.opts.Origin, int(w.n)+w.fill)
	var err error
	w.frame, err = appendScalarFrame(w.enc, w.opts.Codec, w.desc.SampleRate, w.frame[:0], &s)
	if err != nil {
		return fmt.Errorf("sdk: encode frame: %w", err)
	}
	if err := w.p.PutFrame(ctx, Frame{Track: w.track, Timestamp: s.Start, Duration: end - s.Start, Key: true, Data: w.frame}); err != nil {
		return err
	}
	w.n += int64(w.fill)
	w.fill = 0
	return nil
}

// compactFrameSamples and compactMaxRate bound the frames the SDK also
// encodes as compact frames (codecs.Compact2): a slow sensor's short ones —
// ten values a frame at 1 Hz, DefaultFrameSamples' choice — whose numeric
// frame's 16-byte header and per-channel fields cost more than its values
// (make bench's codec table: 1 Hz int16 counts in frames of ten, 7.7 times
// zstd of the whole stream as numeric frames, 2.1 as compact ones). A fast
// track's frames stay numeric: a 1 kHz IMU's frames of 100 came out 12 %
// smaller compact, but decoded at 161–175 MB/s instead of 506–528 and
// encoded at a fifth of the speed, which its volume makes matter; at 100 Hz
// and below a day is a few million samples a channel.
const (
	compactFrameSamples = 128
	compactMaxRate      = 100 // Hz
)

// appendScalarFrame encodes s, a frame of a track of rate Hz, with enc, as a
// frame of codec (Auto picks). A short frame of a slow track under Auto is
// the smaller of a compact and a numeric frame when it starts on a whole
// millisecond. A compact frame counts its start from its block time, which a
// reader takes from the frame's container: the MKV block's time, whole
// milliseconds, or the live message's timestamp, the frame's exact ns. On a
// whole millisecond the two agree; off it they would not, and a live reader
// would misplace the frame, so such frames stay numeric (start a slow
// sensor's clock on a millisecond to have them compact).
func appendScalarFrame(enc *codecs.ScalarEncoder, codec codecs.ID, rate float64, dst []byte, s *signals.Samples) ([]byte, error) {
	if codec == codecs.Auto && s.N <= compactFrameSamples && rate <= compactMaxRate && s.Start%int64(time.Millisecond) == 0 {
		return enc.AppendCompactFrame(dst, s)
	}
	return enc.AppendFrame(dst, s)
}

// Flush emits the samples of a partial frame.
func (w *SampleWriter) Flush(ctx context.Context) error { return w.emit(ctx) }

// Written is the number of samples per channel handed to the producer so far.
func (w *SampleWriter) Written() int64 { return w.n }
