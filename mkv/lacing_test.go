package mkv

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// signedVint encodes v as an n-byte signed VINT of EBML lacing.
func signedVint(v int64, n int) []byte {
	b := make([]byte, n)
	putVint(b, uint64(v+(1<<(7*n-1)-1)))
	return b
}

var (
	f300 = strings.Repeat("x", 300)
	f500 = strings.Repeat("y", 500)
)

// lacedDoc holds hand-built laced blocks of all three kinds.
func lacedDoc() []byte {
	xiph := cat([]byte{0x02, 0xFF, 0x2D, 0x02}, []byte(f300+"ab"+"cdef"))
	fixed := []byte("\x0311223344")
	ebml := cat([]byte{0x02, 0x41, 0xF4}, signedVint(10-500, 2), []byte(f500+"0123456789"+"xyz"))
	return cat(hdr, unk(IDSegment,
		AppendTracks(nil, []TrackEntry{{Number: 1, Type: 1}, {Number: 2, Type: 2}}),
		unk(IDCluster, uel(IDTimecode, 100),
			el(IDSimpleBlock, blockBody(1, 3, flagKeyframe|lacingXiph, xiph)),
			el(IDSimpleBlock, blockBody(2, -4, flagDiscardable|lacingFixed, fixed)),
			el(IDBlockGroup, el(IDBlock, blockBody(1, 7, lacingEBML, ebml)), uel(IDBlockDuration, 9), appendIntElem(nil, IDReferenceBlock, -4)),
			el(IDSimpleBlock, blockBody(2, 8, flagKeyframe|lacingEBML, []byte("\x00solo"))),
		)))
}

func TestLacedBlocks(t *testing.T) {
	items := mustReadAll(t, lacedDoc())
	type frame struct {
		track    uint64
		tc       int16
		key, dis bool
		dur      uint64
		data     string
	}
	want := []frame{
		{1, 3, true, false, 0, f300}, {1, 3, true, false, 0, "ab"}, {1, 3, true, false, 0, "cdef"},
		{2, -4, false, true, 0, "11"}, {2, -4, false, true, 0, "22"}, {2, -4, false, true, 0, "33"}, {2, -4, false, true, 0, "44"},
		{1, 7, false, false, 9, f500}, {1, 7, false, false, 9, "0123456789"}, {1, 7, false, false, 9, "xyz"},
		{2, 8, true, false, 0, "solo"},
	}
	var got []frame
	sizeOf := map[int64]int64{}
	for _, it := range items {
		if it.Kind != ItemBlock {
			continue
		}
		b := it.Block
		got = append(got, frame{b.Track, b.Timecode, b.Keyframe, b.Discardable, b.Duration, string(b.Data)})
		if it.Time != (100+int64(b.Timecode))*DefaultTimecodeScale {
			t.Errorf("frame %q: Time %d", b.Data, it.Time)
		}
		if s, ok := sizeOf[it.Offset]; ok && s != it.Size {
			t.Errorf("frames of one block report different sizes")
		}
		sizeOf[it.Offset] = it.Size
	}
	if !slices.Equal(got, want) {
		t.Errorf("frames\n got %v\nwant %v", got, want)
	}
	if len(sizeOf) != 4 {
		t.Errorf("%d distinct block offsets, want 4", len(sizeOf))
	}
}

func TestSplitLaces(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lacing byte
		in     []byte
		want   []string
		err    string
	}{
		{"none", lacingNone, []byte("abc"), []string{"abc"}, ""},
		{"none empty", lacingNone, nil, []string{""}, ""},
		{"xiph one frame", lacingXiph, []byte("\x00abc"), []string{"abc"}, ""},
		{"xiph 255 exactly", lacingXiph, cat([]byte{1, 0xFF, 0x00}, bytes.Repeat([]byte("a"), 255), []byte("b")), []string{strings.Repeat("a", 255), "b"}, ""},
		{"xiph zero-size frame", lacingXiph, []byte("\x01\x00ab"), []string{"", "ab"}, ""},
		{"xiph sizes cut", lacingXiph, []byte("\x02\x01"), nil, "run past"},
		{"xiph last frame negative", lacingXiph, []byte("\x01\x05ab"), nil, "exceed"},
		{"fixed", lacingFixed, []byte("\x02aabbcc"), []string{"aa", "bb", "cc"}, ""},
		{"fixed 256 frames", lacingFixed, cat([]byte{0xFF}, bytes.Repeat([]byte("z"), 256)), slices.Repeat([]string{"z"}, 256), ""},
		{"ebml", lacingEBML, cat([]byte{0x02, 0x82}, signedVint(1, 1), []byte("aabbbc")), []string{"aa", "bbb", "c"}, ""},
		{"ebml 8-byte diff", lacingEBML, cat([]byte{0x02, 0x81}, signedVint(0, 8), []byte("abz")), []string{"a", "b", "z"}, ""},
		{"ebml bad first", lacingEBML, []byte{0x01, 0x00}, nil, "invalid first"},
		{"ebml first too big", lacingEBML, []byte{0x01, 0x90, 'a'}, nil, "exceed"},
		{"ebml diff cut", lacingEBML, []byte{0x02, 0x81, 0x40}, nil, "difference"},
		{"ebml sum too big", lacingEBML, cat([]byte{0x02, 0x82}, signedVint(5, 1), []byte("ab")), nil, "out of range"},
		{"no count", lacingFixed, nil, nil, "frame count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frames, payload, msg := splitLaces(nil, tc.in, tc.lacing)
			if tc.err != "" {
				if !strings.Contains(msg, tc.err) {
					t.Errorf("error %q, want %q", msg, tc.err)
				}
				return
			}
			if msg != "" {
				t.Fatal(msg)
			}
			var got []string
			for _, f := range frames {
				got = append(got, string(payload[f.start:f.end]))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("frames %q, want %q", got, tc.want)
			}
		})
	}
}
