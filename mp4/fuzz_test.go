package mp4_test

import (
	"testing"

	"github.com/sensorium-io/sensorium/mp4"
)

// The parsers read codec private data a producer sent: they must refuse
// what is malformed with an error, never panic, and what they accept must
// make an initialization segment. Seeds: testdata/fuzz and the records of
// parse_test.go.

func FuzzParseAVCConfig(f *testing.F) {
	f.Add(unhex(f, avcC320x240High))
	f.Add([]byte{1, 66, 0xc0, 11, 0xff, 0xe1, 0, 23})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := mp4.ParseAVCConfig(b)
		if err != nil {
			return
		}
		if c.Width <= 0 || c.Height <= 0 || len(c.SPS) == 0 || len(c.PPS) == 0 {
			t.Fatalf("accepted %x as %+v", b, c)
		}
		avc, err := mp4.NewAVC(b, 0, 0)
		if err != nil {
			t.Fatalf("ParseAVCConfig accepts %x, NewAVC refuses it: %v", b, err)
		}
		if c.Width > 65535 || c.Height > 65535 {
			return // too large for avc1's fields: AppendInit refuses it
		}
		if _, err := mp4.AppendInit(nil, &mp4.Movie{Tracks: []mp4.Track{{ID: 1, Timescale: 90000, Entry: avc}}}); err != nil {
			t.Fatalf("init of %x: %v", b, err)
		}
	})
}

func FuzzSPSPictureSize(f *testing.F) {
	f.Add(unhex(f, sps1080Baseline))
	f.Add(unhex(f, sps176x144))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, h, err := mp4.SPSPictureSize(b)
		if err == nil && (w <= 0 || h <= 0) {
			t.Fatalf("%x: %d×%d", b, w, h)
		}
	})
}

func FuzzParseAudioSpecificConfig(f *testing.F) {
	for _, s := range []string{"1208", "1190", "2b1188", "17807d0000", "11b8"} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := mp4.ParseAudioSpecificConfig(b)
		if err != nil {
			return
		}
		if c.SampleRate <= 0 || c.FrameLength <= 0 {
			t.Fatalf("accepted %x as %+v", b, c)
		}
		aac, err := mp4.NewAAC(b, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mp4.AppendInit(nil, &mp4.Movie{Tracks: []mp4.Track{{ID: 1, Timescale: uint32(c.SampleRate), Entry: aac}}}); err != nil {
			t.Fatalf("init of %x: %v", b, err)
		}
	})
}
