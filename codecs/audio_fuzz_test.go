package codecs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
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
		frame, err := EncodeAudioFrame(nil, pcm, pf)
		if err != nil {
			t.Fatal(err)
		}
		got, gf, err := DecodeAudioFrame(nil, frame)
		if err != nil {
			t.Fatal(err)
		}
		if gf != pf || !bytes.Equal(got, pcm) {
			t.Fatalf("%+v: decoded PCM differs", pf)
		}
	})
}
