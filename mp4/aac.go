package mp4

import "fmt"

// AACConfig is what an AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1, the
// CodecPrivate of Matroska's A_AAC) says: the audio object type, the core
// sample rate and channel configuration, and the samples per frame.
type AACConfig struct {
	ObjectType           int // 2: AAC LC; 5: SBR (HE-AAC); 29: PS (HE-AAC v2) …
	SampleRate           int // Hz, of the core coder: an AAC frame's duration is FrameLength at this rate
	Channels             int // from channelConfiguration; 0 when a program config element says it
	ChannelConfiguration int
	FrameLength          int // samples per frame: 1024 or 960 (512 or 480 for AAC LD)
}

// sampleRates are the samplingFrequencyIndex values 0–12.
var sampleRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// channelCounts are the channels of each channelConfiguration (ISO/IEC
// 14496-3 table 1.19; 8 to 10 are reserved).
var channelCounts = [...]int{0, 1, 2, 3, 4, 5, 6, 8, 0, 0, 0, 7, 8, 24, 8}

// ParseAudioSpecificConfig parses an AudioSpecificConfig.
func ParseAudioSpecificConfig(b []byte) (*AACConfig, error) {
	if len(b) < 2 {
		return nil, invalidConfig("AudioSpecificConfig of %d bytes; it has at least 2", len(b))
	}
	r := &bits{b: b}
	objectType := func() int {
		t := int(r.u(5))
		if t == 31 {
			t = 32 + int(r.u(6))
		}
		return t
	}
	rate := func() int {
		i := r.u(4)
		switch {
		case i == 15:
			return int(r.u(24))
		case int(i) < len(sampleRates):
			return sampleRates[i]
		}
		return -1
	}
	c := &AACConfig{ObjectType: objectType(), FrameLength: 1024}
	c.SampleRate = rate()
	c.ChannelConfiguration = int(r.u(4))
	if c.ChannelConfiguration < len(channelCounts) {
		c.Channels = channelCounts[c.ChannelConfiguration]
	}
	core := c.ObjectType
	if core == 5 || core == 29 {
		// Explicit hierarchical SBR/PS signalling: the extension's rate,
		// then the core's object type; the track's timing is the core's.
		rate()
		core = objectType()
	}
	switch core {
	case 1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22:
		if r.u(1) == 1 { // GASpecificConfig frameLengthFlag
			c.FrameLength = 960
		}
	case 23: // ER AAC LD
		c.FrameLength = 512
		if r.u(1) == 1 {
			c.FrameLength = 480
		}
	}
	switch {
	case r.err != nil:
		return nil, invalidConfig("AudioSpecificConfig ends early")
	case c.ObjectType == 0:
		return nil, invalidConfig("AudioSpecificConfig audio object type 0 (null)")
	case c.SampleRate <= 0:
		return nil, invalidConfig("AudioSpecificConfig has a reserved sampling frequency index")
	case c.ChannelConfiguration > 7 && c.ChannelConfiguration < 11 || c.ChannelConfiguration == 15:
		return nil, invalidConfig("AudioSpecificConfig has reserved channel configuration %d", c.ChannelConfiguration)
	}
	return c, nil
}

// Codec is the RFC 6381 codecs parameter: mp4a.40.<object type>.
func (c *AACConfig) Codec() string { return fmt.Sprintf("mp4a.40.%d", c.ObjectType) }
