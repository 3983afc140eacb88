package mkv_test

import (
	"errors"
	"fmt"
	"io"

	"github.com/sensorium-io/sensorium/mkv"
)

// A fragment in memory — one document, one Cluster — written with the
// Append functions and read back item by item. NewBytesReader hands out
// large frames as slices of the fragment instead of copies.
func ExampleNewBytesReader() {
	doc := mkv.AppendEBMLHeader(nil, "matroska")
	doc = mkv.AppendSegmentStart(doc)
	doc = mkv.AppendInfo(doc, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale})
	doc = mkv.AppendTracks(doc, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeVideo, CodecID: "V_MPEG4/ISO/AVC"}})
	doc = mkv.AppendCluster(doc, 1_765_000_000_000, []mkv.Block{
		{Track: 1, Keyframe: true, Data: make([]byte, 200<<10)}, // larger than the read buffer: not copied
		{Track: 1, Timecode: 40, Data: []byte("a small frame")},
	})
	rd := mkv.NewBytesReader(doc)
	for {
		it, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		switch it.Kind {
		case mkv.ItemClusterStart:
			fmt.Println("cluster at", it.Timecode, "ms")
		case mkv.ItemBlock:
			fmt.Printf("track %d +%d ms key %v: %d bytes\n", it.Block.Track, it.Block.Timecode, it.Block.Keyframe, len(it.Block.Data))
		}
	}
	// Output:
	// cluster at 1765000000000 ms
	// track 1 +0 ms key true: 204800 bytes
	// track 1 +40 ms key false: 13 bytes
}
