package codecs

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"sync"

	"github.com/sensorium-io/sensorium/signals"
)

// LosslessAudio is the lossless audio codec (FORMAT.md, "Audio body"): per
// channel an integer LPC predictor of up to 32 taps fitted to the frame, a
// choice of stereo decorrelation (left/side, side/right, mid/side), wasted
// low bits removed, and the residuals coded by an adaptive binary range coder
// (audio_rangecoder.go). FLAC's ideas with a better entropy coder: on real
// recordings it stores audio at or below FLAC -8's size.
//
// It is a scalar codec like any other — a scalar track of integer samples
// may use it — and the body of the compressed PCM audio frames that
// EncodeAudioFrame makes. Every frame is self-contained: nothing is carried
// from one frame to the next, so any frame decodes alone.
const LosslessAudio ID = 6

type losslessAudio struct{}

func init() {
	if err := Register(losslessAudio{}); err != nil {
		panic(err)
	}
}

func (losslessAudio) ID() ID       { return LosslessAudio }
func (losslessAudio) Name() string { return "lossless-audio" }

// Kinds of audio body, its first byte.
const (
	audioVerbatim = 0 // the plain body
	audioLPC      = 1 // integers (or floats on a binary grid) by LPC and the range coder
	audioNumeric  = 2 // a numeric body: floats that are not on a binary grid
)

// Stereo modes of a two-channel LPC body.
const (
	stereoIndependent = 0
	stereoLeftSide    = 1
	stereoSideRight   = 2
	stereoMidSide     = 3
)

// samplesPerStreamByte bounds how many samples one byte of range-coded
// stream may hold: the writer pads a stream to at least n × channels / 1024
// bytes (only an all-silent frame needs it), so a reader can refuse a forged
// sample count before it allocates.
const samplesPerStreamByte = 1024

// maxFloatGridExp bounds e in the float mapping v = k / 2^e.
const maxFloatGridExp = 63

// audioScratch is one encode's or decode's working memory, pooled.
type audioScratch struct {
	x      [][]int64 // per channel, n samples; for stereo: left, right, mid, side
	y      []int64   // a block behind its history
	r      []uint64  // a block's residuals
	an     lpcAnalysis
	models []residualModel // per channel slot
	s      signals.Samples
}

var audioPool = sync.Pool{New: func() any { return new(audioScratch) }}

func (losslessAudio) AppendEncoded(dst []byte, s *signals.Samples) ([]byte, error) {
	if err := s.CheckLengths(); err != nil {
		return dst, fmt.Errorf("codecs: lossless audio: encode: %w", err)
	}
	return appendAudioSamples(dst, s, false), nil
}

// appendAudioSamples appends the audio body of s (its lengths checked),
// searching predictors less thoroughly when fast (AudioFast).
func appendAudioSamples(dst []byte, s *signals.Samples, fast bool) []byte {
	start := len(dst)
	raw := s.Len() * s.Type.Size()
	var out []byte
	switch s.Type {
	case signals.Int16:
		out = appendAudioInts(dst, s.Channels, s.N, 16, -1, fast, func(c int, x []int64) {
			for i := range x {
				x[i] = int64(s.I16[i*s.Channels+c])
			}
		})
	case signals.Int32:
		out = appendAudioInts(dst, s.Channels, s.N, 32, -1, fast, func(c int, x []int64) {
			for i := range x {
				x[i] = int64(s.I32[i*s.Channels+c])
			}
		})
	case signals.Float32, signals.Float64:
		if e, ok := floatGrid(s); ok {
			scale := math.Ldexp(1, e)
			out = appendAudioInts(dst, s.Channels, s.N, 32, e, fast, func(c int, x []int64) {
				for i := range x {
					if s.Type == signals.Float32 {
						x[i] = int64(float64(s.F32[i*s.Channels+c]) * scale)
					} else {
						x[i] = int64(s.F64[i*s.Channels+c] * scale)
					}
				}
			})
		} else {
			out, _ = appendNumeric(append(dst, audioNumeric), s, nil)
		}
	}
	if len(out)-start > raw {
		out = appendLEBody(append(out[:start], audioVerbatim), s)
	}
	return out
}

// floatGrid finds the smallest e such that every value of s is an integer
// k / 2^e with |k| < 2^31, bit for bit (no -0, NaN or infinity): floats
// converted from integer PCM.
func floatGrid(s *signals.Samples) (int, bool) {
	e := 0
	mant := 53
	if s.Type == signals.Float32 {
		mant = 24
	}
	maxAbs := 0.0
	check := func(v float64, neg0 bool) bool {
		if neg0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return false
		}
		if v == 0 {
			return true
		}
		m, x := math.Frexp(v) // v = m × 2^x, 0.5 ≤ |m| < 1
		k := int64(math.Ldexp(m, mant))
		need := mant - x - bits.TrailingZeros64(uint64(k))
		e = max(e, need)
		maxAbs = max(maxAbs, math.Abs(v))
		return true
	}
	for _, v := range s.F32 {
		if !check(float64(v), math.Float32bits(v) == 1<<31) {
			return 0, false
		}
	}
	for _, v := range s.F64 {
		if !check(v, math.Float64bits(v) == 1<<63) {
			return 0, false
		}
	}
	if e > maxFloatGridExp || math.Ldexp(maxAbs, e) >= 1<<31 {
		return 0, false
	}
	return e, true
}

func (losslessAudio) Decode(src []byte, desc *signals.Scalar, n int, s *signals.Samples) error {
	t, channels, err := bodyShape(desc, n)
	if err != nil {
		return fmt.Errorf("codecs: lossless audio: decode: %w", err)
	}
	if err := decodeAudioBody(src, t, channels, n, s); err != nil {
		return fmt.Errorf("codecs: lossless audio: decode: %w", err)
	}
	return nil
}

// decodeAudioBody decodes a body of n samples × channels of type t into s.
func decodeAudioBody(src []byte, t signals.SampleType, channels, n int, s *signals.Samples) error {
	if len(src) < 1 {
		return fmt.Errorf("%w: empty audio body", ErrCorrupt)
	}
	kind, body := src[0], src[1:]
	switch kind {
	case audioVerbatim:
		desc := signals.Scalar{SampleRate: 1, SampleType: t, Channels: make([]signals.Channel, channels)}
		return plain{}.Decode(body, &desc, n, s)
	case audioNumeric:
		if t != signals.Float32 && t != signals.Float64 {
			return fmt.Errorf("%w: a numeric audio body for %s samples", ErrCorrupt, t)
		}
		desc := signals.Scalar{SampleRate: 1, SampleType: t, Channels: make([]signals.Channel, channels)}
		return numeric{}.Decode(body, &desc, n, s)
	case audioLPC:
	default:
		return fmt.Errorf("%w: audio body kind %d", ErrCorrupt, kind)
	}
	bitsPer, floatExp := 16, -1
	switch t {
	case signals.Int32:
		bitsPer = 32
	case signals.Float32, signals.Float64:
		if len(body) < 1 || body[0] > maxFloatGridExp {
			return fmt.Errorf("%w: audio float grid", ErrCorrupt)
		}
		bitsPer, floatExp, body = 32, int(body[0]), body[1:]
	}
	sc := audioPool.Get().(*audioScratch)
	defer audioPool.Put(sc)
	x, err := decodeAudioInts(body, channels, n, bitsPer, sc)
	if err != nil {
		return err
	}
	s.Reset(t, channels, n)
	bad := false
	for c := range channels {
		xc := x[c]
		switch t {
		case signals.Int16:
			for i, v := range xc {
				bad = bad || v != int64(int16(v))
				s.I16[i*channels+c] = int16(v)
			}
		case signals.Int32:
			for i, v := range xc {
				bad = bad || v != int64(int32(v))
				s.I32[i*channels+c] = int32(v)
			}
		case signals.Float32:
			scale := math.Ldexp(1, -floatExp)
			for i, v := range xc {
				bad = bad || v != int64(int32(v))
				s.F32[i*channels+c] = float32(float64(v) * scale)
			}
		case signals.Float64:
			scale := math.Ldexp(1, -floatExp)
			for i, v := range xc {
				bad = bad || v != int64(int32(v))
				s.F64[i*channels+c] = float64(v) * scale
			}
		}
	}
	if bad {
		return fmt.Errorf("%w: a decoded audio sample is out of range", ErrCorrupt)
	}
	return nil
}

// PCMType is how the samples of a PCM frame lie in its bytes, little endian.
type PCMType uint8

// The PCM sample types; the values are part of the audio frame format.
const (
	PCMInt16   PCMType = 1
	PCMInt32   PCMType = 2
	PCMFloat32 PCMType = 3
	PCMFloat64 PCMType = 4
	PCMInt24   PCMType = 5 // three bytes, as Matroska's A_PCM/INT/LIT at BitDepth 24
)

// Size is the bytes of one sample, 0 for an unknown type.
func (t PCMType) Size() int {
	switch t {
	case PCMInt16:
		return 2
	case PCMInt24:
		return 3
	case PCMInt32, PCMFloat32:
		return 4
	case PCMFloat64:
		return 8
	}
	return 0
}

// PCMFormat is what EncodeAudioFrame needs to know of a track's PCM.
type PCMFormat struct {
	Type     PCMType
	Channels int // 1 to 255
}

// PCMFormatOf is the format of a PCM audio track's frames.
func PCMFormatOf(d *signals.Audio) PCMFormat {
	return PCMFormat{Type: PCMType(d.SampleType), Channels: len(d.Channels)}
}

func (f PCMFormat) check() error {
	if f.Type.Size() == 0 || f.Channels < 1 || f.Channels > 255 {
		return fmt.Errorf("pcm format: %w: type %d, %d channels", signals.ErrInvalid, f.Type, f.Channels)
	}
	return nil
}

// AudioFrameHeaderSize is the fixed part of an audio frame's header.
const AudioFrameHeaderSize = 3

// EncodeAudioFrame appends to dst the lossless audio frame of one PCM frame:
// pcm holds interleaved little-endian samples of f, as an A_PCM Matroska
// block does (a whole number of samples of every channel). The frame is
// self-contained — a codec byte (LosslessAudio), the PCM type, the channel
// count, the sample count and the body (FORMAT.md, "Audio frame") — and
// DecodeAudioFrame gives back exactly pcm. Frames of 20 ms already come
// close to FLAC's size; frames of 100 ms or more reach it (FORMAT.md says
// what each length achieves). On error dst is returned unchanged.
//
// A store that keeps a PCM track compressed encodes each block with it and
// marks the track so that readers call DecodeAudioFrame (or set
// Frame.Codec for the Arrow decoder): a PCM frame has no header, so its
// bytes alone cannot say that they are compressed.
func EncodeAudioFrame(dst, pcm []byte, f PCMFormat) ([]byte, error) {
	return EncodeAudioFrameEffort(dst, pcm, f, AudioBest)
}

// AudioEffort is how hard the audio encoder searches for each block's
// predictor. The format and the decoder are the same for both.
type AudioEffort uint8

const (
	// AudioBest tries three analysis windows and costs its finalists
	// exactly: at or below FLAC -8's size (FORMAT.md), at about 10× real
	// time per core for 48 kHz stereo.
	AudioBest AudioEffort = iota
	// AudioFast tries one window and keeps the best predictor by a quick
	// estimate: several times faster, for coding on a server's write path
	// (internal/platform/pcmpack), a little larger.
	AudioFast
)

// EncodeAudioFrameEffort is EncodeAudioFrame with the encoder's effort.
func EncodeAudioFrameEffort(dst, pcm []byte, f PCMFormat, effort AudioEffort) ([]byte, error) {
	if err := f.check(); err != nil {
		return dst, fmt.Errorf("codecs: encode audio frame: %w", err)
	}
	stride := f.Type.Size() * f.Channels
	if len(pcm)%stride != 0 {
		return dst, fmt.Errorf("codecs: encode audio frame: %d bytes are not whole samples of %d bytes", len(pcm), stride)
	}
	if len(pcm) > MaxScalarFrameBytes {
		return dst, fmt.Errorf("codecs: encode audio frame: %d bytes, a frame holds at most %d", len(pcm), MaxScalarFrameBytes)
	}
	n := len(pcm) / stride
	out := append(dst, byte(LosslessAudio), byte(f.Type), byte(f.Channels))
	out = binary.AppendUvarint(out, uint64(n))
	if f.Type == PCMInt24 {
		start := len(out)
		out = appendAudioInts(out, f.Channels, n, 24, -1, effort == AudioFast, func(c int, x []int64) {
			for i := range x {
				o := (i*f.Channels + c) * 3
				x[i] = int64(int32(uint32(pcm[o])<<8|uint32(pcm[o+1])<<16|uint32(pcm[o+2])<<24) >> 8)
			}
		})
		if len(out)-start > len(pcm) {
			out = append(append(out[:start], audioVerbatim), pcm...)
		}
		return out, nil
	}
	sc := audioPool.Get().(*audioScratch)
	defer audioPool.Put(sc)
	s := &sc.s
	s.Reset(signals.SampleType(f.Type), f.Channels, n)
	switch f.Type {
	case PCMInt16:
		decodeLE(s.I16, pcm)
	case PCMInt32:
		decodeLE(s.I32, pcm)
	case PCMFloat32:
		decodeLE(s.F32, pcm)
	case PCMFloat64:
		decodeLE(s.F64, pcm)
	}
	return appendAudioSamples(out, s, effort == AudioFast), nil
}

// ParseAudioFrameHeader reads an audio frame's format and sample count (per
// channel) and returns its body.
func ParseAudioFrameHeader(frame []byte) (PCMFormat, int, []byte, error) {
	if len(frame) < AudioFrameHeaderSize+1 {
		return PCMFormat{}, 0, nil, fmt.Errorf("codecs: audio frame: %w: %d bytes", ErrCorrupt, len(frame))
	}
	if ID(frame[0]) != LosslessAudio {
		return PCMFormat{}, 0, nil, fmt.Errorf("codecs: audio frame: %w: codec %d", ErrCorrupt, frame[0])
	}
	f := PCMFormat{Type: PCMType(frame[1]), Channels: int(frame[2])}
	if err := f.check(); err != nil {
		return f, 0, nil, fmt.Errorf("codecs: audio frame: %w: %v", ErrCorrupt, err)
	}
	n, k := binary.Uvarint(frame[AudioFrameHeaderSize:])
	if k <= 0 || n > uint64(MaxScalarFrameBytes/(f.Type.Size()*f.Channels)) {
		return f, 0, nil, fmt.Errorf("codecs: audio frame: %w: sample count", ErrCorrupt)
	}
	return f, int(n), frame[AudioFrameHeaderSize+k:], nil
}

// DecodeAudioFrame appends to dst the PCM bytes of an audio frame that
// EncodeAudioFrame made — exactly the bytes it was given — and returns the
// frame's format. Errors wrap ErrCorrupt: a frame is decoded as hostile
// input, and its claimed size is checked against its length before anything
// is allocated.
func DecodeAudioFrame(dst, frame []byte) ([]byte, PCMFormat, error) {
	f, n, body, err := ParseAudioFrameHeader(frame)
	if err != nil {
		return dst, f, err
	}
	sc := audioPool.Get().(*audioScratch)
	defer audioPool.Put(sc)
	if f.Type == PCMInt24 {
		out, err := decodeInt24Body(dst, body, f.Channels, n, sc)
		if err != nil {
			return dst, f, fmt.Errorf("codecs: audio frame: %w", err)
		}
		return out, f, nil
	}
	s := &sc.s
	if err := decodeAudioBody(body, signals.SampleType(f.Type), f.Channels, n, s); err != nil {
		return dst, f, fmt.Errorf("codecs: audio frame: %w", err)
	}
	switch f.Type {
	case PCMInt16:
		dst = appendLE(dst, s.I16)
	case PCMInt32:
		dst = appendLE(dst, s.I32)
	case PCMFloat32:
		dst = appendLE(dst, s.F32)
	case PCMFloat64:
		dst = appendLE(dst, s.F64)
	}
	return dst, f, nil
}

func decodeInt24Body(dst, body []byte, channels, n int, sc *audioScratch) ([]byte, error) {
	if len(body) < 1 {
		return nil, fmt.Errorf("%w: empty audio body", ErrCorrupt)
	}
	switch body[0] {
	case audioVerbatim:
		if len(body)-1 != n*channels*3 {
			return nil, fmt.Errorf("%w: verbatim body of %d bytes for %d samples", ErrCorrupt, len(body)-1, n*channels)
		}
		return append(dst, body[1:]...), nil
	case audioLPC:
	default:
		return nil, fmt.Errorf("%w: audio body kind %d for int24 samples", ErrCorrupt, body[0])
	}
	x, err := decodeAudioInts(body[1:], channels, n, 24, sc)
	if err != nil {
		return nil, err
	}
	for c := range channels {
		for _, v := range x[c] {
			if v < -1<<23 || v >= 1<<23 {
				return nil, fmt.Errorf("%w: int24 sample out of range", ErrCorrupt)
			}
		}
	}
	for i := range n {
		for c := range channels {
			v := uint32(x[c][i])
			dst = append(dst, byte(v), byte(v>>8), byte(v>>16))
		}
	}
	return dst, nil
}
