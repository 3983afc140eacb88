package sdk

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/signals"
)

// Producers of the passed-through kinds: PCM audio, H.264 video and opaque
// bytes. Their frames are what players and decoders read unchanged.

// AudioTrack describes a PCM audio track: Matroska's PCM codec of the sample
// type, with the Audio element players need and our description in
// CodecPrivate.
func AudioTrack(number uint64, name string, d *signals.Audio) (Track, error) {
	priv, err := d.AppendBinary(nil)
	if err != nil {
		return Track{}, fmt.Errorf("sdk: audio track: %w", err)
	}
	return Track{Number: number, Name: name, CodecID: d.CodecID(), CodecPrivate: priv, Type: mkv.TrackTypeAudio,
		Audio: &mkv.Audio{SamplingFrequency: d.SampleRate, Channels: uint64(len(d.Channels)), BitDepth: uint64(d.BitDepth())}}, nil
}

// PCMWriter turns a continuous run of interleaved samples into PCM frames.
// Frames start on whole milliseconds — the origin is cut to a millisecond and
// a frame lasts a whole number of milliseconds holding a whole number of
// samples — so that the millisecond block times of Matroska give every
// sample's exact time (sample i of a frame: block time + i/rate).
type PCMWriter struct {
	p            *Producer
	track        uint64
	desc         *signals.Audio
	origin       int64 // ns, a whole millisecond
	frameMS      int64
	frameSamples int
	buf          []byte // interleaved LE samples not yet put
	frames       int64  // frames put
}

// NewPCMWriter returns a writer of track's samples from origin (ns since the
// Unix epoch, cut to a millisecond), in frames of about frame (default
// 20 ms). The sample rate must be a whole number of Hz. d may be nil;
// otherwise it must equal the track's description (its CodecPrivate).
func NewPCMWriter(p *Producer, track uint64, d *signals.Audio, origin int64, frame time.Duration) (*PCMWriter, error) {
	d, err := trackDescription(p, "pcm writer", track, d, signals.CodecIDPCMInt, signals.CodecIDPCMFloat)
	if err != nil {
		return nil, err
	}
	if d.SampleRate != math.Trunc(d.SampleRate) || d.SampleRate < 1 {
		return nil, fmt.Errorf("sdk: pcm writer: a sample rate of %g Hz is not a whole number of Hz", d.SampleRate)
	}
	if frame <= 0 {
		frame = 20 * time.Millisecond
	}
	rate := int64(d.SampleRate)
	ms := max(1, frame.Milliseconds())
	for rate*ms%1000 != 0 { // ends at 1000 at the latest
		ms++
	}
	return &PCMWriter{p: p, track: track, desc: d, origin: origin - origin%int64(time.Millisecond), frameMS: ms,
		frameSamples: int(rate * ms / 1000)}, nil
}

// FrameDuration is the length of the writer's frames.
func (w *PCMWriter) FrameDuration() time.Duration { return time.Duration(w.frameMS) * time.Millisecond }

// WriteInt16 writes interleaved int16 samples (the track must hold int16).
func (w *PCMWriter) WriteInt16(ctx context.Context, v []int16) error {
	return writePCM(ctx, w, signals.Int16, codecs.Column{Type: signals.Int16, I16: v})
}

// WriteInt32 writes interleaved int32 samples.
func (w *PCMWriter) WriteInt32(ctx context.Context, v []int32) error {
	return writePCM(ctx, w, signals.Int32, codecs.Column{Type: signals.Int32, I32: v})
}

// WriteFloat32 writes interleaved float32 samples.
func (w *PCMWriter) WriteFloat32(ctx context.Context, v []float32) error {
	return writePCM(ctx, w, signals.Float32, codecs.Column{Type: signals.Float32, F32: v})
}

// WriteFloat64 writes interleaved float64 samples.
func (w *PCMWriter) WriteFloat64(ctx context.Context, v []float64) error {
	return writePCM(ctx, w, signals.Float64, codecs.Column{Type: signals.Float64, F64: v})
}

func writePCM(ctx context.Context, w *PCMWriter, t signals.SampleType, c codecs.Column) error {
	if t != w.desc.SampleType {
		return fmt.Errorf("sdk: pcm writer: the track holds %s, not %s", w.desc.SampleType, t)
	}
	ch := len(w.desc.Channels)
	if c.Len()%ch != 0 {
		return fmt.Errorf("sdk: pcm writer: %d values are not a whole number of %d-channel samples", c.Len(), ch)
	}
	s := signals.Samples{N: c.Len() / ch, Channels: ch, Type: t, I16: c.I16, I32: c.I32, F32: c.F32, F64: c.F64}
	var err error
	if w.buf, err = codecs.AppendPlainBody(w.buf, &s); err != nil {
		return fmt.Errorf("sdk: pcm writer: %w", err)
	}
	frameBytes := w.frameSamples * ch * t.Size()
	for len(w.buf) >= frameBytes {
		if err := w.put(ctx, w.buf[:frameBytes]); err != nil {
			return err
		}
		w.buf = w.buf[:copy(w.buf, w.buf[frameBytes:])]
	}
	return nil
}

func (w *PCMWriter) put(ctx context.Context, data []byte) error {
	ts := w.origin + w.frames*w.frameMS*int64(time.Millisecond)
	stride := len(w.desc.Channels) * w.desc.SampleType.Size()
	dur := int64(math.Round(float64(len(data)/stride) * 1e9 / w.desc.SampleRate))
	if err := w.p.PutFrame(ctx, Frame{Track: w.track, Timestamp: ts, Duration: dur, Key: true, Data: data}); err != nil {
		return err
	}
	w.frames++
	return nil
}

// Flush puts the samples held back (a last, shorter frame).
func (w *PCMWriter) Flush(ctx context.Context) error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.put(ctx, w.buf)
	w.buf = w.buf[:0]
	return err
}

// H264Track describes an H.264 video track from its avcC record (see
// SplitAnnexB) and its picture size.
func H264Track(number uint64, name string, avcC []byte, width, height int) (Track, error) {
	d := &signals.Video{AVCC: avcC}
	if err := d.Validate(); err != nil {
		return Track{}, fmt.Errorf("sdk: h264 track: %w", err)
	}
	return Track{Number: number, Name: name, CodecID: signals.CodecIDH264, CodecPrivate: avcC, Type: mkv.TrackTypeVideo,
		Video: &mkv.Video{PixelWidth: uint64(width), PixelHeight: uint64(height)}}, nil
}

// PutH264 puts one access unit in AVC form (length-prefixed NAL units, as
// SplitAnnexB makes them) presented at pts (ns) and lasting dur; key marks an
// IDR access unit, where fragments may start.
//
// Call it in decode order — the order of the bitstream — with each access
// unit's presentation time: Matroska block times are presentation times, and
// a player reorders by them. With B-frames these go back and forth (decode
// order I0 P3 B1 B2 …), which a video track allows within a group of
// pictures: an access unit may be earlier than the one before it, never
// earlier than the IDR that starts its group (see PutFrame). SplitAnnexB
// derives each access unit's place in presentation order (AccessUnit.Order)
// from the bitstream's picture order counts, so for a constant frame rate
// pts = origin + Order × frame duration; a container demuxer (MP4, MPEG-TS,
// RTP) gives the presentation time of each packet directly. Without
// B-frames presentation order is decode order.
func (p *Producer) PutH264(ctx context.Context, track uint64, pts, dur int64, au []byte, key bool) error {
	if err := p.checkTrack(track, signals.CodecIDH264); err != nil {
		return err
	}
	return p.PutFrame(ctx, Frame{Track: track, Timestamp: pts, Duration: dur, Key: key, Data: au})
}

// OpaqueTrack describes a track of opaque bytes of a media type.
func OpaqueTrack(number uint64, name, mediaType string) (Track, error) {
	return DescriptionTrack(number, name, &signals.Opaque{MediaType: mediaType})
}

// PutOpaque puts one opaque frame at ts (ns). Frames are timed to the
// millisecond, as every MKV block is: a query returns ts cut to the
// millisecond, so frames less than 1 ms apart share a time. A payload that
// needs finer timing carries it inside (the scalar kinds do: their frames
// hold the exact start in ns).
func (p *Producer) PutOpaque(ctx context.Context, track uint64, ts, dur int64, data []byte, key bool) error {
	if err := p.checkTrack(track, signals.CodecIDOpaque); err != nil {
		return err
	}
	return p.PutFrame(ctx, Frame{Track: track, Timestamp: ts, Duration: dur, Key: key, Data: data})
}
