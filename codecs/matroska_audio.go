package codecs

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/sensorium-io/sensorium/signals"
)

// DescribeMatroskaAudio describes an audio track from what Matroska says of
// it — for the tracks of producers that write no Sensorium description
// (ffmpeg, GStreamer, cameras). rate, channels and bitDepth are the track's
// Audio element; for FLAC the STREAMINFO in private says them and wins.
func DescribeMatroskaAudio(codecID string, private []byte, rate float64, channels, bitDepth uint64) (*signals.MatroskaAudio, error) {
	d := &signals.MatroskaAudio{Codec: codecID, SampleRate: rate, Private: private}
	if codecID == signals.CodecIDFLAC {
		info, _, err := ParseFLACHeader(private)
		if err != nil {
			return nil, fmt.Errorf("codecs: A_FLAC track: CodecPrivate: %w", err)
		}
		d.SampleRate, channels, bitDepth = float64(info.SampleRate), uint64(info.Channels), uint64(info.BitsPerSample)
	}
	if channels > 255 || bitDepth > 64 {
		return nil, fmt.Errorf("codecs: %s track: %w: %d channels of %d bits", codecID, signals.ErrInvalid, channels, bitDepth)
	}
	d.Channels, d.BitDepth = int(channels), int(bitDepth)
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// matroskaPCM turns the frames of a MatroskaAudio track into the
// little-endian samples of its columns' type, which the PCM path decodes,
// and gives each frame its time.
type matroskaPCM struct {
	desc   *signals.MatroskaAudio
	flac   *FLACDecoder
	stride int // bytes of one sample of every channel, as the frames hold them
	buf    []byte
	clock  audioClock
}

func newMatroskaPCM(d *signals.MatroskaAudio) (*matroskaPCM, error) {
	m := &matroskaPCM{desc: d, stride: (d.BitDepth + 7) / 8 * d.Channels, clock: audioClock{rate: d.SampleRate}}
	if d.Codec == signals.CodecIDFLAC {
		info, _, err := ParseFLACHeader(d.Private)
		if err != nil {
			return nil, err
		}
		m.flac = NewFLACDecoder(info)
	}
	return m, nil
}

// frame returns f's samples as the columns' type lays them and the time of
// its first sample.
func (m *matroskaPCM) frame(f Frame, columnStride int) ([]byte, int64, error) {
	data, err := m.convert(f.Data)
	if err != nil {
		return nil, 0, err
	}
	if len(data)%columnStride != 0 {
		return nil, 0, fmt.Errorf("codecs: %s frame: %w: %d bytes are not whole samples of %d bytes", m.desc.Codec, ErrCorrupt, len(data), columnStride)
	}
	return data, m.clock.start(f, len(data)/columnStride), nil
}

func (m *matroskaPCM) convert(in []byte) ([]byte, error) {
	d := m.desc
	if m.flac != nil {
		// A block holds one FLAC frame or more, whole. A frame of a few
		// bytes can say 65,535 constant samples: what a block decodes to is
		// bounded as a frame of samples is.
		out := m.buf[:0]
		info := m.flac.info
		for off := 0; off < len(in); {
			n, err := m.flac.Decode(in[off:])
			if err != nil {
				return nil, err
			}
			off += n
			if len(out)+m.flac.Samples()*info.Channels*info.SampleType().Size() > MaxScalarFrameBytes {
				return nil, fmt.Errorf("codecs: A_FLAC block: %w: it decodes to more than %d bytes of samples", ErrCorrupt, MaxScalarFrameBytes)
			}
			out = m.flac.AppendInterleaved(out)
		}
		m.buf = out
		return out, nil
	}
	if len(in)%m.stride != 0 {
		return nil, fmt.Errorf("codecs: %s frame: %w: %d bytes are not whole samples of %d bytes", d.Codec, ErrCorrupt, len(in), m.stride)
	}
	bigEndian := d.Codec == signals.CodecIDPCMIntBig
	switch {
	case d.BitDepth == 8: // unsigned, to int16 centred on 0
		out := m.buf[:0]
		for _, b := range in {
			out = binary.LittleEndian.AppendUint16(out, uint16(int16(b)-128))
		}
		m.buf = out
		return out, nil
	case d.BitDepth == 24: // to int32
		out := m.buf[:0]
		for i := 0; i < len(in); i += 3 {
			var v uint32
			if bigEndian {
				v = uint32(in[i])<<24 | uint32(in[i+1])<<16 | uint32(in[i+2])<<8
			} else {
				v = uint32(in[i+2])<<24 | uint32(in[i+1])<<16 | uint32(in[i])<<8
			}
			out = binary.LittleEndian.AppendUint32(out, uint32(int32(v)>>8))
		}
		m.buf = out
		return out, nil
	case bigEndian:
		out := append(m.buf[:0], in...)
		size := d.BitDepth / 8
		for i := 0; i < len(out); i += size {
			for a, b := i, i+size-1; a < b; a, b = a+1, b-1 {
				out[a], out[b] = out[b], out[a]
			}
		}
		m.buf = out
		return out, nil
	}
	return in, nil // already the columns' little-endian layout
}

// maxOverlap is how far before the end of the run a block may start and
// still continue it: ffmpeg's Vorbis decoder overlaps its own packets by up
// to 9 ms. A block further back (a producer's clock reset) starts a new run
// at its own time.
const maxOverlap = 20 * int64(time.Millisecond)

// audioClock times the frames of a track whose blocks do not start on whole
// milliseconds of samples: ffmpeg cuts 44.1 kHz audio into frames of 1,024
// samples (23.22 ms) whose Matroska times are rounded to the millisecond, so
// timing each frame from its block time would make sample times jitter and
// even step back. A frame that starts less than 1 ms after where the frame
// before it ended (in the same fragment) — or before it, when the producer's
// clock overlapped its own samples by less than 20 ms — continues its run:
// its samples are timed by their count since the run began, as a player
// plays them. A gap of a millisecond or more, a block 20 ms or more before
// the run's end (a clock reset), or a new fragment starts a new run at the
// block time. Runs never cross
// fragments, so a query's result does not depend on which worker decoded
// which fragment; the first sample of a fragment is at its block time, which
// Matroska rounds to the millisecond. A frame without a fragment (a caller
// decoding frames one by one) is timed by its block time alone.
type audioClock struct {
	rate     float64
	started  bool
	frag     *FragmentContext
	runStart int64 // ns
	runN     int64 // samples since runStart
}

func (c *audioClock) start(f Frame, n int) int64 {
	if d := f.Time - c.at(c.runN); !c.started || f.Fragment == nil || c.frag != f.Fragment || d >= int64(time.Millisecond) || d <= -maxOverlap {
		c.started, c.frag, c.runStart, c.runN = true, f.Fragment, f.Time, 0
	}
	start := c.at(c.runN)
	c.runN += int64(n)
	return start
}

// at is the time of sample i of the run.
func (c *audioClock) at(i int64) int64 {
	return c.runStart + int64(math.Round(float64(i)*1e9/c.rate))
}
