package mp4_test

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/sensorium-io/sensorium/mp4"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// x264's records and parameter sets, as ffmpeg wrote them.
const (
	avcC320x240High = "0164000dffe100196764000dacd94141fb011000000300100000030320f142996001000468ef8fcbfdf8f800"
	sps1080Baseline = "6742c028da01e0089f97011000000300100000030320f1832a"
	sps176x144      = "6742c00bda0b13b011000003000100000300320f142aa0"
)

func TestParseAVCConfig(t *testing.T) {
	c, err := mp4.ParseAVCConfig(unhex(t, avcC320x240High))
	if err != nil {
		t.Fatal(err)
	}
	if c.Profile != 100 || c.Level != 13 || c.LengthSize != 4 || len(c.SPS) != 1 || len(c.PPS) != 1 || c.Width != 320 || c.Height != 240 {
		t.Fatalf("%+v", c)
	}
	if got := c.Codec(); got != "avc1.64000d" {
		t.Errorf("Codec() = %q", got)
	}
	good := unhex(t, avcC320x240High)
	for _, bad := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"header only", good[:6]},
		{"version 2", append([]byte{2}, good[1:]...)},
		{"SPS cut", good[:20]},
		{"no PPS count", good[:5+1+2+0x19]},
		{"no PPS", append(append([]byte(nil), good[:5+1+2+0x19]...), 0)},
		{"PPS cut", good[:len(good)-6]},
		{"no SPS", []byte{1, 100, 0, 13, 0xff, 0xe0, 1, 0, 1, 0x68}},
		{"not an SPS", []byte{1, 100, 0, 13, 0xff, 0xe1, 0, 4, 0x68, 1, 2, 3, 1, 0, 1, 0x68}},
	} {
		if _, err := mp4.ParseAVCConfig(bad.b); !errors.Is(err, mp4.ErrInvalidConfig) {
			t.Errorf("%s: err %v, want ErrInvalidConfig", bad.name, err)
		}
	}
}

func TestSPSPictureSize(t *testing.T) {
	for _, c := range []struct {
		sps  string
		w, h int
	}{{sps1080Baseline, 1920, 1080}, {sps176x144, 176, 144}} {
		w, h, err := mp4.SPSPictureSize(unhex(t, c.sps))
		if err != nil || w != c.w || h != c.h {
			t.Errorf("%s: %d×%d %v, want %d×%d", c.sps, w, h, err, c.w, c.h)
		}
	}
}

func TestParseAudioSpecificConfig(t *testing.T) {
	for _, c := range []struct {
		name                 string
		asc                  string
		aot, rate, ch, frame int
		codec                string
	}{
		{"LC 44.1 kHz mono", "1208", 2, 44100, 1, 1024, "mp4a.40.2"},
		{"LC 48 kHz stereo", "1190", 2, 48000, 2, 1024, "mp4a.40.2"},
		{"LC 960-sample frames", "1194", 2, 48000, 2, 960, "mp4a.40.2"},
		{"HE-AAC explicit", "2b1188", 5, 24000, 2, 1024, "mp4a.40.5"},
		{"explicit 24-bit rate", "17807d0000", 2, 64000, 0, 1024, "mp4a.40.2"},
		{"7.1", "11b8", 2, 48000, 8, 1024, "mp4a.40.2"},
	} {
		got, err := mp4.ParseAudioSpecificConfig(unhex(t, c.asc))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got.ObjectType != c.aot || got.SampleRate != c.rate || got.Channels != c.ch || got.FrameLength != c.frame || got.Codec() != c.codec {
			t.Errorf("%s: %+v %s", c.name, got, got.Codec())
		}
	}
	for _, bad := range []string{"", "12", "1788", "1248", "11f8", "0008"} {
		if _, err := mp4.ParseAudioSpecificConfig(unhex(t, bad)); !errors.Is(err, mp4.ErrInvalidConfig) {
			t.Errorf("%q: err %v, want ErrInvalidConfig", bad, err)
		}
	}
}
