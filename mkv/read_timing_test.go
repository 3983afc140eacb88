package mkv

import (
	"bytes"
	"io"
	"testing"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/mkvcore"
	"github.com/at-wat/ebml-go/webm"
)

// Benchmarks: a 64 MiB cluster of 4 KiB SimpleBlocks, read by our Reader and
// by ebml-go (the peer the design names: its Unmarshal and its streaming
// block reader), with a plain copy of the same bytes as the ceiling.

const (
	benchClusterSize = 64 << 20
	benchBlockSize   = 4 << 10
)

func benchBlocks() []Block {
	data := bytes.Repeat([]byte{0xA5}, benchBlockSize)
	n := benchClusterSize / (benchBlockSize + 8)
	blocks := make([]Block, n)
	for i := range blocks {
		blocks[i] = Block{Track: 1, Timecode: int16(i % 30000), Keyframe: true, Data: data}
	}
	return blocks
}

func benchDoc() ([]byte, int) {
	blocks := benchBlocks()
	doc := AppendEBMLHeader(nil, "matroska")
	doc = AppendSegmentStart(doc)
	doc = AppendInfo(doc, Info{})
	doc = AppendTracks(doc, []TrackEntry{{Number: 1, UID: 1, Type: TrackTypeMetadata, CodecID: "S_SENSORIUM/SCALAR"}})
	return AppendCluster(doc, 0, blocks), len(blocks)
}

func BenchmarkReadCluster(b *testing.B) {
	doc, nBlocks := benchDoc()
	b.Run("mkv.Reader", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for b.Loop() {
			r := NewReader(bytes.NewReader(doc))
			n := 0
			for {
				it, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				if it.Kind == ItemBlock {
					n++
				}
			}
			if n != nBlocks {
				b.Fatalf("%d blocks", n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*nBlocks), "ns/block")
	})
	b.Run("ebml-go.Unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for b.Loop() {
			var v struct {
				Segment struct {
					Cluster []webm.Cluster `ebml:"Cluster"`
				} `ebml:"Segment"`
			}
			if err := ebml.Unmarshal(bytes.NewReader(doc), &v); err != nil {
				b.Fatal(err)
			}
			if n := len(v.Segment.Cluster[0].SimpleBlock); n != nBlocks {
				b.Fatalf("%d blocks", n)
			}
		}
	})
	b.Run("ebml-go.SimpleBlockReader", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for b.Loop() {
			rs, err := mkvcore.NewSimpleBlockReader(bytes.NewReader(doc))
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for {
				if _, _, _, err := rs[0].Read(); err != nil {
					break
				}
				n++
			}
			if n != nBlocks {
				b.Fatalf("%d blocks", n)
			}
		}
	})
	b.Run("copy", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		dst := make([]byte, len(doc))
		for b.Loop() {
			copy(dst, doc)
		}
	})
}

func BenchmarkAppendCluster(b *testing.B) {
	blocks := benchBlocks()
	dst := AppendCluster(nil, 0, blocks)
	b.SetBytes(int64(len(dst)))
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendCluster(dst[:0], 0, blocks)
	}
}
