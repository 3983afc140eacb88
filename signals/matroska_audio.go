package signals

import "fmt"

// The Matroska audio codecs a query reads without a Sensorium description.
const (
	CodecIDPCMIntBig = "A_PCM/INT/BIG" // big-endian signed integers
	CodecIDFLAC      = "A_FLAC"        // CodecPrivate is "fLaC" and the metadata blocks
)

// MatroskaAudio describes an audio track that carries no Sensorium
// description — what ffmpeg, GStreamer or a camera writes — from what
// Matroska itself says of it: the CodecID, the track's Audio element
// (SamplingFrequency, Channels, BitDepth) and, for FLAC, the STREAMINFO in
// CodecPrivate. A query reads its samples as it reads the SDK's PCM: a time
// column and one column per channel (Columns). It is never written: a track
// keeps the CodecPrivate its producer gave it.
type MatroskaAudio struct {
	Codec      string  // A_PCM/INT/LIT, A_PCM/INT/BIG, A_PCM/FLOAT/IEEE or A_FLAC
	SampleRate float64 // Hz
	Channels   int     // 1 to 255 (FLAC: 1 to 8)
	BitDepth   int     // bits per sample as the frames hold them
	Private    []byte  // the track's CodecPrivate
}

func (d *MatroskaAudio) Kind() Kind      { return KindAudio }
func (d *MatroskaAudio) CodecID() string { return d.Codec }

// AppendBinary appends the track's own CodecPrivate.
func (d *MatroskaAudio) AppendBinary(dst []byte) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return dst, err
	}
	return append(dst, d.Private...), nil
}

// Validate checks that the codec, bit depth and channel count are ones a
// query can read.
func (d *MatroskaAudio) Validate() error {
	ok := false
	switch d.Codec {
	case CodecIDPCMInt:
		ok = d.BitDepth == 8 || d.BitDepth == 16 || d.BitDepth == 24 || d.BitDepth == 32
	case CodecIDPCMIntBig:
		ok = d.BitDepth == 16 || d.BitDepth == 24 || d.BitDepth == 32
	case CodecIDPCMFloat:
		ok = d.BitDepth == 32 || d.BitDepth == 64
	case CodecIDFLAC:
		ok = d.BitDepth >= 4 && d.BitDepth <= 32 && d.Channels <= 8
	default:
		return fmt.Errorf("signals: matroska audio: %w: codec %q is not PCM or FLAC", ErrInvalid, d.Codec)
	}
	if !ok {
		return fmt.Errorf("signals: matroska audio: %w: %d-bit %s is not read (PCM: 8, 16, 24 or 32-bit integers, 32 or 64-bit floats; FLAC: 4 to 32 bits, 8 channels)", ErrInvalid, d.BitDepth, d.Codec)
	}
	return d.Columns().Validate()
}

// Columns is the equivalent SDK audio description: the columns a query
// returns. Integers of up to 16 bits are int16 columns and wider ones int32,
// each sample keeping its value (a 24-bit sample is in −2²³ … 2²³−1; 8-bit
// PCM, unsigned in Matroska, is centred on 0 as −128 … 127); floats keep
// their width. Channels are named "mono"; "left", "right"; or "channel_1" …
// "channel_N": Matroska does not name them.
func (d *MatroskaAudio) Columns() *Audio {
	a := &Audio{SampleRate: d.SampleRate, SampleType: Int32}
	switch {
	case d.Codec == CodecIDPCMFloat && d.BitDepth == 32:
		a.SampleType = Float32
	case d.Codec == CodecIDPCMFloat:
		a.SampleType = Float64
	case d.BitDepth <= 16:
		a.SampleType = Int16
	}
	switch d.Channels {
	case 1:
		a.Channels = []string{"mono"}
	case 2:
		a.Channels = []string{"left", "right"}
	default:
		for i := range d.Channels {
			a.Channels = append(a.Channels, fmt.Sprintf("channel_%d", i+1))
		}
	}
	return a
}
