package mp4

import (
	"errors"
	"fmt"
	"math"
)

// SampleEntry is a track's codec: its sample entry box in stsd, its handler
// and its RFC 6381 codecs parameter. The implementations are *AVC, *AAC and
// *PCM.
type SampleEntry interface {
	// Codec is the codecs parameter (avc1.64001f, mp4a.40.2, lpcm), as
	// HLS's CODECS attribute and MSE's addSourceBuffer take it.
	Codec() string
	handler() string // "vide" or "soun"
	appendEntry(dst []byte) []byte
	validate() error
}

// AVC is an H.264 track: an avc1 sample entry with the avcC record the
// samples need (the samples are AVC: NAL units with length prefixes of the
// record's size, no start codes).
type AVC struct {
	Config        []byte // the AVCDecoderConfigurationRecord, as Matroska's CodecPrivate holds it
	Width, Height int    // display size in pixels; 0 takes the SPS's
	parsed        *AVCConfig
}

// NewAVC parses an avcC record into an AVC entry; width and height (0:
// the SPS's) are the picture's size.
func NewAVC(config []byte, width, height int) (*AVC, error) {
	c, err := ParseAVCConfig(config)
	if err != nil {
		return nil, err
	}
	if width <= 0 || height <= 0 {
		width, height = c.Width, c.Height
	}
	return &AVC{Config: config, Width: width, Height: height, parsed: c}, nil
}

func (a *AVC) validate() error {
	if a.parsed == nil {
		c, err := ParseAVCConfig(a.Config)
		if err != nil {
			return err
		}
		a.parsed = c
	}
	if a.Width <= 0 || a.Height <= 0 {
		a.Width, a.Height = a.parsed.Width, a.parsed.Height
	}
	if a.Width > math.MaxUint16 || a.Height > math.MaxUint16 {
		return fmt.Errorf("mp4: avc1 picture %d×%d is larger than 65535", a.Width, a.Height)
	}
	return nil
}

// Codec is avc1.PPCCLL from the avcC record.
func (a *AVC) Codec() string {
	if a.validate() != nil {
		return "avc1"
	}
	return a.parsed.Codec()
}

func (a *AVC) handler() string { return "vide" }

// appendEntry writes avc1 (ISO/IEC 14496-12 VisualSampleEntry, 14496-15
// AVCSampleEntry) with its avcC.
func (a *AVC) appendEntry(dst []byte) []byte {
	dst, at := startBox(dst, "avc1")
	dst = zeros(dst, 6)
	dst = u16(dst, 1)                // data_reference_index
	dst = zeros(dst, 16)             // pre_defined, reserved, pre_defined[3]
	dst = u16(dst, uint16(a.Width))  // width
	dst = u16(dst, uint16(a.Height)) // height
	dst = u32(dst, 0x00480000)       // horizresolution 72 dpi
	dst = u32(dst, 0x00480000)       // vertresolution
	dst = u32(dst, 0)                // reserved
	dst = u16(dst, 1)                // frame_count
	dst = zeros(dst, 32)             // compressorname
	dst = u16(dst, 0x0018)           // depth
	dst = u16(dst, 0xffff)           // pre_defined = -1
	dst, c := startBox(dst, "avcC")
	dst = append(dst, a.Config...)
	dst = endBox(dst, c)
	return endBox(dst, at)
}

// AAC is an AAC track: mp4a with an esds that carries the
// AudioSpecificConfig. Samples are raw AAC frames (no ADTS headers), as
// Matroska's A_AAC blocks are.
type AAC struct {
	Config []byte // the AudioSpecificConfig
	// Channels overrides the configuration's channel count when that is 0
	// (a program config element gives it); 0 then means 2.
	Channels int
	parsed   *AACConfig
}

// NewAAC parses an AudioSpecificConfig into an AAC entry.
func NewAAC(config []byte, channels int) (*AAC, error) {
	a := &AAC{Config: config, Channels: channels}
	return a, a.validate()
}

func (a *AAC) validate() error {
	if a.parsed != nil {
		return nil
	}
	c, err := ParseAudioSpecificConfig(a.Config)
	if err != nil {
		return err
	}
	if c.Channels == 0 {
		c.Channels = a.Channels
		if c.Channels <= 0 {
			c.Channels = 2
		}
	}
	a.parsed = c
	return nil
}

// Parsed is the parsed AudioSpecificConfig (nil before validation).
func (a *AAC) Parsed() *AACConfig {
	if a.validate() != nil {
		return nil
	}
	return a.parsed
}

// Codec is mp4a.40.<audio object type>.
func (a *AAC) Codec() string {
	if a.validate() != nil {
		return "mp4a.40"
	}
	return a.parsed.Codec()
}

func (a *AAC) handler() string { return "soun" }

// appendEntry writes mp4a (AudioSampleEntry) and its esds (ISO/IEC 14496-1
// ES_Descriptor with a DecoderConfigDescriptor for MPEG-4 Audio).
func (a *AAC) appendEntry(dst []byte) []byte {
	c := a.parsed
	dst, at := startBox(dst, "mp4a")
	dst = appendAudioEntryV0(dst, c.Channels, 16, c.SampleRate)
	dst, e := startFullBox(dst, "esds", 0, 0)
	dsi := descriptor(nil, 0x05, a.Config) // DecoderSpecificInfo
	dcd := []byte{0x40, 0x15}              // objectTypeIndication MPEG-4 Audio; streamType audio (5), upStream 0, reserved 1
	dcd = append(dcd, 0, 0, 0)             // bufferSizeDB
	dcd = u32(dcd, 0)                      // maxBitrate
	dcd = u32(dcd, 0)                      // avgBitrate
	dcd = append(dcd, dsi...)
	es := u16(nil, 0)                    // ES_ID
	es = append(es, 0)                   // no dependency, URL or OCR stream
	es = descriptor(es, 0x04, dcd)       // DecoderConfigDescriptor
	es = descriptor(es, 0x06, []byte{2}) // SLConfigDescriptor: predefined 2 (MP4)
	dst = descriptor(dst, 0x03, es)      // ES_Descriptor
	dst = endBox(dst, e)
	return endBox(dst, at)
}

// descriptor appends an MPEG-4 descriptor: tag, size in the expandable
// 7-bits-a-byte form, body.
func descriptor(dst []byte, tag byte, body []byte) []byte {
	dst = append(dst, tag)
	n := len(body)
	var size [4]byte
	i := len(size) - 1
	size[i] = byte(n & 0x7f)
	for n >>= 7; n > 0 && i > 0; n >>= 7 {
		i--
		size[i] = byte(n&0x7f) | 0x80
	}
	dst = append(dst, size[i:]...)
	return append(dst, body...)
}

// appendAudioEntryV0 writes the fields of an AudioSampleEntry (version 0)
// after its box header.
func appendAudioEntryV0(dst []byte, channels, sampleSize, rate int) []byte {
	dst = zeros(dst, 6)
	dst = u16(dst, 1)                  // data_reference_index
	dst = zeros(dst, 8)                // reserved
	dst = u16(dst, uint16(channels))   // channelcount
	dst = u16(dst, uint16(sampleSize)) // samplesize
	dst = zeros(dst, 4)                // pre_defined, reserved
	if rate > math.MaxUint16 {
		rate = 0 // 16.16 cannot hold it; the decoder configuration says it
	}
	return u32(dst, uint32(rate)<<16) // samplerate, 16.16
}

// PCM is uncompressed audio in QuickTime's lpcm sample entry (a sound
// description of version 2, whose flags say integer or float, endianness
// and sample size). A sample is any whole number of PCM frames (one value
// per channel, interleaved); its duration is its frame count at SampleRate.
type PCM struct {
	SampleRate int  // Hz, whole
	Channels   int  // 1–255
	Bits       int  // 8, 16, 24 or 32 (integers); 32 or 64 (floats)
	Float      bool // IEEE floats
	BigEndian  bool
	Unsigned   bool // 8-bit PCM in Matroska is unsigned
}

// FrameSize is the bytes of one PCM frame: one sample of every channel.
func (p *PCM) FrameSize() int { return p.Channels * p.Bits / 8 }

func (p *PCM) validate() error {
	switch {
	case p.SampleRate <= 0:
		return errors.New("mp4: PCM needs a sample rate")
	case p.Channels < 1 || p.Channels > 255:
		return fmt.Errorf("mp4: PCM with %d channels (1–255)", p.Channels)
	case p.Float && p.Bits != 32 && p.Bits != 64:
		return fmt.Errorf("mp4: %d-bit float PCM (32 or 64)", p.Bits)
	case !p.Float && p.Bits != 8 && p.Bits != 16 && p.Bits != 24 && p.Bits != 32:
		return fmt.Errorf("mp4: %d-bit integer PCM (8, 16, 24 or 32)", p.Bits)
	}
	return nil
}

// Codec is "lpcm": RFC 6381 names no PCM, and no browser plays it in MP4.
func (p *PCM) Codec() string { return "lpcm" }

func (p *PCM) handler() string { return "soun" }

// lpcm format flags (QuickTime's kAudioFormatFlag* of a sound description
// version 2).
const (
	lpcmFloat     = 1 << 0
	lpcmBigEndian = 1 << 1
	lpcmSigned    = 1 << 2
	lpcmPacked    = 1 << 3
)

// appendEntry writes lpcm as a QuickTime SoundDescriptionV2: the version 0
// fields hold fixed values (3, 16, -2, 0, 65536) and the real ones follow.
func (p *PCM) appendEntry(dst []byte) []byte {
	dst, at := startBox(dst, "lpcm")
	dst = zeros(dst, 6)
	dst = u16(dst, 1)          // data_reference_index
	dst = u16(dst, 2)          // version
	dst = u16(dst, 0)          // revision level
	dst = u32(dst, 0)          // vendor
	dst = u16(dst, 3)          // always 3
	dst = u16(dst, 16)         // always 16
	dst = u16(dst, 0xfffe)     // always -2
	dst = u16(dst, 0)          // always 0
	dst = u32(dst, 0x00010000) // always 65536
	dst = u32(dst, 72)         // sizeOfStructOnly
	dst = u64(dst, math.Float64bits(float64(p.SampleRate)))
	dst = u32(dst, uint32(p.Channels))
	dst = u32(dst, 0x7f000000) // always
	dst = u32(dst, uint32(p.Bits))
	flags := uint32(lpcmPacked)
	if p.Float {
		flags |= lpcmFloat
	} else if !p.Unsigned {
		flags |= lpcmSigned
	}
	if p.BigEndian {
		flags |= lpcmBigEndian
	}
	dst = u32(dst, flags)
	dst = u32(dst, uint32(p.FrameSize())) // constBytesPerAudioPacket
	dst = u32(dst, 1)                     // constLPCMFramesPerAudioPacket
	if p.Channels <= 2 {
		// QuickTime's channel layout, for the players that guess (and say
		// so) without one; wider layouts are not named by Matroska either.
		var c int
		dst, c = startFullBox(dst, "chan", 0, 0)
		dst = u32(dst, uint32(99+p.Channels)<<16|uint32(p.Channels)) // kAudioChannelLayoutTag_Mono (100<<16|1), _Stereo (101<<16|2)
		dst = u32(dst, 0)                                            // mChannelBitmap
		dst = u32(dst, 0)                                            // mNumberChannelDescriptions
		dst = endBox(dst, c)
	}
	return endBox(dst, at)
}
