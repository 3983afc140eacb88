package remux_test

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/mp4"
	"github.com/sensorium-io/sensorium/mp4/remux"
)

// seedFragment is a small stored fragment: H.264 (a real avcC) with
// B-frame times, AAC and PCM tracks, blocks of any bytes.
func seedFragment(pcmOnly bool) []byte {
	avcC, _ := hex.DecodeString("0164000dffe100196764000dacd94141fb011000000300100000030320f142996001000468ef8fcbfdf8f800")
	tracks := []mkv.TrackEntry{
		{Number: 1, UID: 1, Type: mkv.TrackTypeVideo, CodecID: remux.CodecH264, CodecPrivate: avcC},
		{Number: 2, UID: 2, Type: mkv.TrackTypeAudio, CodecID: remux.CodecAAC, CodecPrivate: []byte{0x11, 0x90}, Audio: &mkv.Audio{SamplingFrequency: 48000, Channels: 2}},
	}
	if pcmOnly {
		tracks = []mkv.TrackEntry{{Number: 3, UID: 3, Type: mkv.TrackTypeAudio, CodecID: remux.CodecPCMLit, Audio: &mkv.Audio{SamplingFrequency: 8000, Channels: 1, BitDepth: 16}}}
	}
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale})
	b = mkv.AppendTracks(b, tracks)
	blocks := []mkv.Block{
		{Track: 1, Timecode: 0, Keyframe: true, Data: []byte{0, 0, 0, 2, 0x65, 1}},
		{Track: 1, Timecode: 120, Data: []byte{0, 0, 0, 2, 0x41, 2}},
		{Track: 2, Timecode: 0, Keyframe: true, Data: []byte{0x21, 0x10}},
		{Track: 1, Timecode: 40, Duration: 40, Data: []byte{0, 0, 0, 2, 0x01, 3}},
		{Track: 2, Timecode: 21, Keyframe: true, Data: []byte{0x21, 0x11}},
		{Track: 3, Timecode: 0, Keyframe: true, Data: make([]byte, 160)},
		{Track: 3, Timecode: 10, Keyframe: true, Data: make([]byte, 160)},
	}
	return mkv.AppendCluster(b, 1_780_000_000_000, blocks)
}

// Stored fragments are read back by remux for every clip and segment: a
// damaged one (the store checks its CRC, but a producer's odd Matroska is
// stored as sent) must be an error, never a panic, and what remux makes of
// it must be a fragment the mp4 writer takes.
func FuzzRemux(f *testing.F) {
	f.Add(seedFragment(false), false)
	f.Add(seedFragment(true), true)
	f.Fuzz(func(t *testing.T, b []byte, relative bool) {
		r, err := remux.New(b, remux.Options{PCM: true, Relative: relative, DecodeDelay: -1})
		if err != nil {
			return
		}
		for range 2 { // the second time through, as the next fragment
			mf, err := r.Fragment(b)
			if err != nil {
				return
			}
			if len(mf.Runs) == 0 {
				continue
			}
			var out bytes.Buffer
			if _, err := mf.WriteTo(&out); err != nil {
				t.Fatalf("remux made a fragment the writer refuses: %v", err)
			}
		}
		if _, err := mp4.AppendInit(nil, r.Movie()); err != nil {
			t.Fatalf("remux made a movie the writer refuses: %v", err)
		}
	})
}
