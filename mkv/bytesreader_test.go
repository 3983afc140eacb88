package mkv

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
)

// NewBytesReader reads what NewReader reads — items, offsets, errors —
// for documents whose blocks are larger than the read buffer (handed out
// as slices of the input), laced or not, whole or cut inside a large block
// or just after one; and the slices it hands out stay valid after the next
// Next, as its doc says.
func TestBytesReaderReadsAsNewReader(t *testing.T) {
	big := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7) ^ seed
		}
		return b
	}
	blocks := []Block{
		{Track: 1, Keyframe: true, Data: big(100<<10, 1)},
		{Track: 2, Timecode: 5, Data: big(3, 2)},
		{Track: 1, Timecode: 10, Duration: 10, Data: big(1<<20+3, 3)}, // a BlockGroup
		{Track: 1, Timecode: 20, Keyframe: true, Data: big(64<<10, 4)},
		{Track: 1, Timecode: 30, Keyframe: true, Data: big(64<<10+1, 5)},
	}
	doc := cat(hdr, unk(IDSegment, AppendInfo(nil, Info{}), AppendTracks(nil, testTracks[1:]),
		AppendCluster(nil, 9, blocks), AppendCluster(nil, 99, blocks[2:]), AppendTags(nil, clusterTags(0))))
	inputs := map[string][]byte{"whole": doc, "two documents": cat(doc, doc), "laced": lacedDoc()}
	for _, cut := range []int{len(doc) / 3, len(doc) / 2, len(doc) - 70<<10, len(doc) - 1} {
		inputs[fmt.Sprintf("cut at %d", cut)] = doc[:cut]
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			want, wantOff, wantErr := fuzzReadWith(NewReader(bytes.NewReader(in), MaxElementSize(4<<20)))
			got, gotOff, gotErr := fuzzReadWith(NewBytesReader(in, MaxElementSize(4<<20)))
			if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) || wantOff != gotOff || !reflect.DeepEqual(want, got) {
				t.Fatalf("NewBytesReader: %d items, %v at %d; NewReader: %d items, %v at %d", len(got), gotErr, gotOff, len(want), wantErr, wantOff)
			}
		})
	}
	// Frames, small and large, are the input's bytes, kept past the next Next.
	rd := NewBytesReader(doc)
	var kept [][]byte
	for {
		it, err := rd.Next()
		if err != nil {
			break
		}
		if it.Kind == ItemBlock {
			kept = append(kept, it.Block.Data)
		}
	}
	if len(kept) != 8 || !bytes.Equal(kept[0], blocks[0].Data) || !bytes.Equal(kept[1], blocks[1].Data) || !bytes.Equal(kept[2], blocks[2].Data) || !bytes.Equal(kept[5], blocks[2].Data) {
		t.Fatalf("%d frames kept, or a large one changed after the next Next", len(kept))
	}
}

// BenchmarkBytesReader reads a fragment of eight 5.6 MiB frames (a 4K
// camera's 45 MiB fragment) with NewReader, which copies each frame out of
// the input, and with NewBytesReader, which does not.
func BenchmarkBytesReader(b *testing.B) {
	var blocks []Block
	for i := range 8 {
		blocks = append(blocks, Block{Track: 1, Timecode: int16(i * 10), Keyframe: true, Data: make([]byte, 45<<20/8)})
	}
	doc := cat(hdr, unk(IDSegment, AppendInfo(nil, Info{}), AppendTracks(nil, testTracks[1:]), AppendCluster(nil, 9, blocks)))
	for _, tc := range []struct {
		name string
		open func() *Reader
	}{
		{"NewReader", func() *Reader { return NewReader(bytes.NewReader(doc), MaxElementSize(64<<20)) }},
		{"NewBytesReader", func() *Reader { return NewBytesReader(doc, MaxElementSize(64<<20)) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				rd := tc.open()
				for {
					if _, err := rd.Next(); err != nil {
						break
					}
				}
			}
		})
	}
}
