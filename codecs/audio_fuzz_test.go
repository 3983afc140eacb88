package codecs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
)

// audioFuzzSeeds are frames of every PCM type and the golden frames.
func audioFuzzSeeds(f *testing.F) [][]byte {
	var out [][]byte
	for _, pt := range pcmTypes {
		for _, ch := range []int{1, 2, 3} {
			fr, err := EncodeAudioFrame(nil, pcmBytes(pt, testTone(ch, 300, 1)), PCMFormat{Type: pt, Channels: ch})
			if err != nil {
				f.Fatal(err)
			}
			out = append(out, fr)
		}
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "audio_*.hex"))
	for _, file := range files {
		if fr, err := readHex(file); err == nil {
			out = append(out, fr)
		}
	}
	return out
}

// FuzzDecodeAudioFrame: any bytes decode or fail with ErrCorrupt, and what
// decodes encodes again to a frame that gives back the same PCM.
func FuzzDecodeAudioFrame(f *testing.F) {
	for _, fr := range audioFuzzSeeds(f) {
		f.Add(fr)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		pcm, pf, err := DecodeAudioFrame(nil, frame)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not wrapping ErrCorrupt: %v", err)
			}
			return
		}
		again, err := EncodeAudioFrame(nil, pcm, pf)
		if err != nil {
			t.Fatal(err)
		}
		back, _, err := DecodeAudioFrame(nil, again)
		if err != nil || !bytes.Equal(back, pcm) {
			t.Fatalf("re-encoded frame: %v", err)
		}
	})
}

// FuzzAudioRoundTrip: any PCM of any type and channel count comes back bit
// for bit (floats included: NaN payloads, -0, subnormals).
func FuzzAudioRoundTrip(f *testing.F) {
	speech, err := os.ReadFile(filepath.Join("testdata", "audio", "front_center_48k_mono.s16"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(speech[40000:42000], uint8(PCMInt16), uint8(1))
	f.Add(speech[40000:42400], uint8(PCMInt24), uint8(2))
	f.Add(speech[40000:42000], uint8(PCMFloat32), uint8(1))
	f.Add(speech[40000:42048], uint8(PCMFloat64), uint8(2))
	f.Add(speech[40000:42000], uint8(PCMInt32), uint8(5))
	f.Fuzz(func(t *testing.T, pcm []byte, typ, channels uint8) {
		pf := PCMFormat{Type: PCMType(typ%5 + 1), Channels: int(channels%4) + 1}
		pcm = pcm[:len(pcm)/(pf.Type.Size()*pf.Channels)*(pf.Type.Size()*pf.Channels)]
		for _, effort := range []AudioEffort{AudioBest, AudioFast} {
			frame, err := EncodeAudioFrameEffort(nil, pcm, pf, effort)
			if err != nil {
				t.Fatal(err)
			}
			got, gf, err := DecodeAudioFrame(nil, frame)
			if err != nil {
				t.Fatal(err)
			}
			if gf != pf || !bytes.Equal(got, pcm) {
				t.Fatalf("%+v, effort %d: decoded PCM differs", pf, effort)
			}
		}
	})
}

// FuzzFLAC decodes a FLAC stream (its STREAMINFO header, then frames): any
// input is decoded or refused with an error wrapping ErrCorrupt, never a
// panic, and a frame that decodes gives its block of samples.
func FuzzFLAC(f *testing.F) {
	for _, name := range []string{"speech-stereo.flac", "speech-mono-24.flac"} {
		file, err := os.ReadFile(filepath.Join("testdata", "audio", name))
		if err != nil {
			f.Fatal(err)
		}
		_, off, err := ParseFLACHeader(file)
		if err != nil {
			f.Fatal(err)
		}
		// The seed: STREAMINFO alone (the files' padding and tags are
		// nothing to mutate), then the frames.
		seed := append([]byte("fLaC"), file[4:4+4+34]...)
		seed[4] |= 0x80
		f.Add(append(seed, file[off:]...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, off, err := ParseFLACHeader(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("header refused without ErrCorrupt: %v", err)
			}
			return
		}
		d := NewFLACDecoder(info)
		var pcm []byte
		for off < len(data) {
			n, err := d.Decode(data[off:])
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("frame refused without ErrCorrupt: %v", err)
				}
				return
			}
			if n <= 0 || n > len(data)-off {
				t.Fatalf("frame of %d bytes at %d of %d", n, off, len(data))
			}
			off += n
			before := len(pcm)
			pcm = d.AppendInterleaved(pcm)
			if got, want := len(pcm)-before, d.Samples()*info.Channels*info.SampleType().Size(); got != want || d.Samples() < 1 || d.Samples() > 65536 {
				t.Fatalf("a frame of %d samples gave %d bytes, want %d", d.Samples(), got, want)
			}
		}
	})
}

// matroskaAudios are the tracks of producers that write no Sensorium
// description, one per layout the query reads.
func matroskaAudios(f *testing.F) []*signals.MatroskaAudio {
	file, err := os.ReadFile(filepath.Join("testdata", "audio", "speech-stereo.flac"))
	if err != nil {
		f.Fatal(err)
	}
	var out []*signals.MatroskaAudio
	for _, d := range []struct {
		codec         string
		channels, bit uint64
	}{
		{signals.CodecIDPCMInt, 1, 8}, {signals.CodecIDPCMInt, 2, 24}, {signals.CodecIDPCMIntBig, 2, 16},
		{signals.CodecIDPCMIntBig, 1, 24}, {signals.CodecIDPCMFloat, 2, 64}, {signals.CodecIDFLAC, 0, 0},
	} {
		m, err := DescribeMatroskaAudio(d.codec, file, 44100, d.channels, d.bit)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// FuzzMatroskaAudioArrow decodes any frame as each Matroska audio layout:
// rows or an error wrapping ErrCorrupt, never a panic.
func FuzzMatroskaAudioArrow(f *testing.F) {
	descs := matroskaAudios(f)
	file, err := os.ReadFile(filepath.Join("testdata", "audio", "speech-stereo.flac"))
	if err != nil {
		f.Fatal(err)
	}
	_, off, err := ParseFLACHeader(file)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(file[off:min(len(file), off+2000)], int64(1_000_000_000), int64(0), int64(0), true)
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, int64(0), int64(1), int64(1_000_000), false)
	f.Fuzz(func(t *testing.T, frame []byte, frameTime, start, end int64, all bool) {
		in := arrowFuzzInput{frameTime, start, end, all, 0}
		for _, d := range descs {
			dec, err := NewArrowDecoder(d, ArrowOptions{})
			if err != nil {
				t.Fatal(err)
			}
			fuzzArrowAppend(t, "matroska "+d.Codec, dec, frame, in)
		}
	})
}

// FuzzFLACWithoutCRCs is FuzzFLAC with the CRC checks off: a mutated frame
// otherwise rarely gets past its CRC-8 and CRC-16, and the subframe decoder
// behind them must hold on its own (an attacker can compute CRCs).
func FuzzFLACWithoutCRCs(f *testing.F) {
	flacSkipCRC = true
	f.Cleanup(func() { flacSkipCRC = false })
	FuzzFLAC(f)
}
