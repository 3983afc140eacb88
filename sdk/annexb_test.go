package sdk_test

import (
	"bytes"
	"encoding/hex"
	"os"
	"testing"

	"github.com/sensorium-io/sensorium/sdk"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The avcC record of a High profile stream carries chroma_format and the bit
// depths after its PPS (ISO/IEC 14496-15, 5.3.3.1), reserved bits all 1s.
// The SPS and PPS are libx264's; each want is the avcC ffmpeg writes for the
// same stream into MP4 (ffmpeg -i x.h264 -c copy x.mp4; ffprobe -show_data).
func TestSplitAnnexBAVCCHighProfiles(t *testing.T) {
	cases := []struct {
		name, sps, pps, ext string // ext: what follows the PPS
	}{
		{"High 4:2:0 8-bit (100)", "6764000aacd9447b011000000300100000030320f1225960", "68ebe3cb22c0", "fdf8f800"},
		{"High 4:2:2 10-bit (122)", "677a000ab6cd9447b011000003000100000300320f122596", "68ebe3cb22c0", "fefafa00"},
		{"High 4:4:4 Predictive (244)", "67f4000a919b288f6022000003000200000300641e244b2c", "68ebe3c44844", "fff8f800"},
		{"Constrained Baseline (66): none", "6742c00ad9047b011000000300100000030320f1226480", "68cb83cb20", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sps, pps := unhex(t, tc.sps), unhex(t, tc.pps)
			var stream []byte
			for _, nal := range [][]byte{sps, pps} {
				stream = append(append(stream, 0, 0, 0, 1), nal...)
			}
			_, avcC, err := sdk.SplitAnnexB(stream)
			if err != nil {
				t.Fatal(err)
			}
			want := []byte{1, sps[1], sps[2], sps[3], 0xff, 0xe1, 0, byte(len(sps))}
			want = append(append(want, sps...), 1, 0, byte(len(pps)))
			want = append(append(want, pps...), unhex(t, tc.ext)...)
			if !bytes.Equal(avcC, want) {
				t.Fatalf("avcC\n%x, want\n%x", avcC, want)
			}
		})
	}
}

// SplitAnnexB puts each access unit in presentation order from its picture
// order count. The clips are libx264's (testsrc, 25 fps); the orders are
// ffprobe's: `ffprobe -show_frames -show_entries frame=pkt_pos` lists the
// pictures in presentation order, and their packets' positions give their
// decode order.
func TestSplitAnnexBPresentationOrder(t *testing.T) {
	cases := []struct {
		file string // in testdata
		want []int  // Order of each access unit, in decode order
		keys []int
	}{
		// -bf 2 -g 6: picture order counts of type 0, two groups.
		{"h264-bframes.h264", []int{0, 3, 1, 2, 5, 4, 6, 9, 7, 8, 11, 10}, []int{0, 6}},
		// -profile:v baseline: no B-frames, order counts of type 2.
		{"h264-baseline.h264", []int{0, 1, 2, 3, 4}, []int{0}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			aus, _, err := sdk.SplitAnnexB(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(aus) != len(tc.want) {
				t.Fatalf("%d access units, want %d", len(aus), len(tc.want))
			}
			var keys []int
			for i, au := range aus {
				if au.Order != tc.want[i] {
					t.Errorf("access unit %d: Order %d, want %d", i, au.Order, tc.want[i])
				}
				if au.Key {
					keys = append(keys, i)
				}
			}
			if !equalInts(keys, tc.keys) {
				t.Errorf("key access units %v, want %v", keys, tc.keys)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
