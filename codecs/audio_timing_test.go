package codecs

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkAudioDecode decodes real speech (48 kHz mono) and a stereo tone
// in 20 ms and 1 s frames; MB/s is of PCM, bits/sample what the frames take.
func BenchmarkAudioDecode(b *testing.B) {
	speech, err := os.ReadFile(filepath.Join("testdata", "audio", "front_center_48k_mono.s16"))
	if err != nil {
		b.Fatal(err)
	}
	tone := pcmBytes(PCMInt16, testTone(2, 48000, 1))
	for _, tc := range []struct {
		name  string
		pcm   []byte
		ch    int
		frame int // bytes of PCM per frame
	}{
		{"speech-48k-mono/20ms", speech, 1, 1920},
		{"speech-48k-mono/1s", speech, 1, 96000},
		{"tone-48k-stereo/20ms", tone, 2, 3840},
		{"tone-48k-stereo/1s", tone, 2, 192000},
	} {
		var frames [][]byte
		size := 0
		for at := 0; at < len(tc.pcm); at += tc.frame {
			f, err := EncodeAudioFrame(nil, tc.pcm[at:min(at+tc.frame, len(tc.pcm))], PCMFormat{PCMInt16, tc.ch})
			if err != nil {
				b.Fatal(err)
			}
			frames = append(frames, f)
			size += len(f)
		}
		b.Run("decode/"+tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.pcm)))
			var out []byte
			for b.Loop() {
				out = out[:0]
				for _, f := range frames {
					if out, _, err = DecodeAudioFrame(out, f); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(size*8)/float64(len(tc.pcm)/2), "bits/sample")
		})
		b.Run("encode/"+tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.pcm)))
			var f []byte
			for b.Loop() {
				for at := 0; at < len(tc.pcm); at += tc.frame {
					if f, err = EncodeAudioFrame(f[:0], tc.pcm[at:min(at+tc.frame, len(tc.pcm))], PCMFormat{PCMInt16, tc.ch}); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
