package signals

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// CodecIDs of the kinds whose frames players read as they are: PCM audio as
// Matroska's own PCM codecs, H.264 as AVC in Matroska, and opaque bytes.
const (
	CodecIDPCMInt   = "A_PCM/INT/LIT"    // little-endian signed integers
	CodecIDPCMFloat = "A_PCM/FLOAT/IEEE" // IEEE floats
	CodecIDH264     = "V_MPEG4/ISO/AVC"  // CodecPrivate is the avcC record
	CodecIDOpaque   = "S_SENSORIUM/OPAQUE"
)

// Audio describes PCM audio: frames are the interleaved little-endian
// samples and nothing else, so that ffmpeg, VLC and every Matroska player
// play a GetMedia output. The description travels in CodecPrivate, which
// players ignore for PCM (format_kinds.md); the track's Audio element says
// the same rate, channels and bit depth for them.
type Audio struct {
	SampleRate float64
	SampleType SampleType // int16 or int32 (A_PCM/INT/LIT), float32 or float64 (A_PCM/FLOAT/IEEE)
	Channels   []string   // names, one per channel ("left", "right"); 1 to 255
}

func (d *Audio) Kind() Kind { return KindAudio }

// CodecID is the Matroska PCM codec of the sample type.
func (d *Audio) CodecID() string {
	if d.SampleType == Float32 || d.SampleType == Float64 {
		return CodecIDPCMFloat
	}
	return CodecIDPCMInt
}

// BitDepth is the sample size in bits, for the track's Audio element.
func (d *Audio) BitDepth() int { return 8 * d.SampleType.Size() }

// Scalar is the equivalent scalar signal: what the query path decodes.
func (d *Audio) Scalar() *Scalar {
	s := &Scalar{SampleRate: d.SampleRate, SampleType: d.SampleType}
	for _, n := range d.Channels {
		s.Channels = append(s.Channels, Channel{Name: n})
	}
	return s
}

// Validate checks the rate, type and channel names.
func (d *Audio) Validate() error {
	if len(d.Channels) < 1 || len(d.Channels) > 255 {
		return fmt.Errorf("signals: audio: %w: %d channels, want 1 to 255", ErrInvalid, len(d.Channels))
	}
	if err := d.Scalar().validate(); err != nil {
		return fmt.Errorf("signals: audio: %w", err)
	}
	return nil
}

const audioVersion = 1

// AppendBinary writes the preamble, f64 rate, u8 sample type, u8 channel
// count and the channel names.
func (d *Audio) AppendBinary(dst []byte) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return dst, err
	}
	dst = appendPreamble(dst, KindAudio, audioVersion)
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(d.SampleRate))
	dst = append(dst, byte(d.SampleType), byte(len(d.Channels)))
	for _, n := range d.Channels {
		dst = appendString(dst, n)
	}
	return dst, nil
}

// ParseAudio parses what AppendBinary wrote; codecID must match its type.
func ParseAudio(codecID string, b []byte) (*Audio, error) {
	d, err := parseAudio(b)
	if err != nil {
		return nil, fmt.Errorf("signals: parse audio: %w", err)
	}
	if d.CodecID() != codecID {
		return nil, fmt.Errorf("signals: parse audio: %w: %s samples on a %s track", ErrInvalid, d.SampleType, codecID)
	}
	return d, nil
}

func parseAudio(b []byte) (*Audio, error) {
	if err := checkPreamble(b, KindAudio, audioVersion); err != nil {
		return nil, err
	}
	off := descPreambleSz
	if len(b)-off < 10 {
		return nil, fmt.Errorf("%w: truncated", ErrInvalid)
	}
	d := &Audio{SampleRate: math.Float64frombits(binary.LittleEndian.Uint64(b[off:])), SampleType: SampleType(b[off+8])}
	n := int(b[off+9])
	off += 10
	if n > len(b)-off {
		return nil, fmt.Errorf("%w: %d channels in %d bytes", ErrInvalid, n, len(b)-off)
	}
	s := string(b)
	for i := 0; i < n; i++ {
		name, next, err := readString(s, off)
		if err != nil {
			return nil, fmt.Errorf("%w: channel %d: %v", ErrInvalid, i, err)
		}
		d.Channels, off = append(d.Channels, name), next
	}
	if off != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrInvalid, len(b)-off)
	}
	return d, d.Validate()
}

// Video describes H.264 video: frames are access units in AVC (length-
// prefixed) form, passed through untouched; key frames are IDR access units.
// The description is the avcC record (AVCDecoderConfigurationRecord, ISO/IEC
// 14496-15), which is the track's CodecPrivate as Matroska defines it.
type Video struct {
	AVCC []byte
}

func (d *Video) Kind() Kind      { return KindVideo }
func (d *Video) CodecID() string { return CodecIDH264 }

// AppendBinary returns the avcC record.
func (d *Video) AppendBinary(dst []byte) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return dst, err
	}
	return append(dst, d.AVCC...), nil
}

// Validate checks the avcC record's structure: version 1, 4-byte NAL
// lengths or fewer, at least one SPS, and lengths that fit.
func (d *Video) Validate() error {
	b := d.AVCC
	if len(b) < 7 || b[0] != 1 {
		return fmt.Errorf("signals: video: %w: not an avcC record (version 1)", ErrInvalid)
	}
	off := 5
	for set := 0; set < 2; set++ {
		n := int(b[off])
		if set == 0 {
			n &= 0x1f
			if n == 0 {
				return fmt.Errorf("signals: video: %w: avcC without an SPS", ErrInvalid)
			}
		}
		off++
		for i := 0; i < n; i++ {
			if len(b)-off < 2 {
				return fmt.Errorf("signals: video: %w: avcC truncated", ErrInvalid)
			}
			l := int(binary.BigEndian.Uint16(b[off:]))
			if len(b)-off-2 < l {
				return fmt.Errorf("signals: video: %w: avcC parameter set truncated", ErrInvalid)
			}
			off += 2 + l
		}
		if set == 0 && off >= len(b) {
			return fmt.Errorf("signals: video: %w: avcC without a PPS count", ErrInvalid)
		}
	}
	return nil
}

// NALLengthSize is the size of the length prefix of each NAL unit (1, 2 or 4).
func (d *Video) NALLengthSize() int { return int(d.AVCC[4]&3) + 1 }

// Opaque describes bytes of a user media type, stored and returned as they
// are: anything no other kind covers.
type Opaque struct {
	MediaType string // e.g. "application/json", "image/jpeg"; 1 to 255 bytes
}

func (d *Opaque) Kind() Kind      { return KindOpaque }
func (d *Opaque) CodecID() string { return CodecIDOpaque }

func (d *Opaque) Validate() error {
	if d.MediaType == "" || len(d.MediaType) > 255 || !utf8.ValidString(d.MediaType) {
		return fmt.Errorf("signals: opaque: %w: media type %q is not 1 to 255 bytes of UTF-8", ErrInvalid, d.MediaType)
	}
	return nil
}

const opaqueVersion = 1

// AppendBinary writes the preamble and the media type.
func (d *Opaque) AppendBinary(dst []byte) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return dst, err
	}
	return appendString(appendPreamble(dst, KindOpaque, opaqueVersion), d.MediaType), nil
}

// ParseOpaque parses what AppendBinary wrote.
func ParseOpaque(b []byte) (*Opaque, error) {
	if err := checkPreamble(b, KindOpaque, opaqueVersion); err != nil {
		return nil, fmt.Errorf("signals: parse opaque: %w", err)
	}
	mt, off, err := readString(string(b), descPreambleSz)
	if err == nil && off != len(b) {
		err = fmt.Errorf("%d trailing bytes", len(b)-off)
	}
	if err != nil {
		return nil, fmt.Errorf("signals: parse opaque: %w: %v", ErrInvalid, err)
	}
	d := &Opaque{MediaType: mt}
	return d, d.Validate()
}

func init() {
	for _, id := range []string{CodecIDPCMInt, CodecIDPCMFloat} {
		RegisterCodecID(id, func(codecID string, b []byte) (Description, error) { return ParseAudio(codecID, b) })
	}
	RegisterCodecID(CodecIDH264, func(_ string, b []byte) (Description, error) {
		d := &Video{AVCC: append([]byte(nil), b...)}
		return d, d.Validate()
	})
	RegisterCodecID(CodecIDOpaque, func(_ string, b []byte) (Description, error) { return ParseOpaque(b) })
}
