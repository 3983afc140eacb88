package mkv

import (
	"bytes"
	"io"
	"runtime"
	"testing"
)

// repeatReader yields one element n times without holding more than it.
type repeatReader struct {
	elem []byte
	n    int
	pos  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	total := 0
	for len(p) > 0 && r.n > 0 {
		k := copy(p, r.elem[r.pos:])
		p, total, r.pos = p[k:], total+k, r.pos+k
		if r.pos == len(r.elem) {
			r.pos, r.n = 0, r.n-1
		}
	}
	if total == 0 && r.n == 0 {
		return 0, io.EOF
	}
	return total, nil
}

// hugeClusterStream is a document whose single cluster holds n copies of a
// SimpleBlock of blockSize bytes, generated as it is read, followed by
// another document.
func hugeClusterStream(n, blockSize int, unknownCluster bool) io.Reader {
	block := AppendElement(nil, IDSimpleBlock, blockBody(1, 0, flagKeyframe, bytes.Repeat([]byte{0x5A}, blockSize)))
	tc := uel(IDTimecode, 0)
	var head []byte
	head = AppendEBMLHeader(head, "matroska")
	head = AppendSegmentStart(head)
	head = AppendTracks(head, []TrackEntry{{Number: 1, UID: 1, Type: TrackTypeMetadata, CodecID: "S_SENSORIUM/SCALAR"}})
	if unknownCluster {
		head = append(appendID(head, IDCluster), unknownSizeVint...)
	} else {
		head = appendID(head, IDCluster)
		head = appendVint(head, uint64(len(tc)+n*len(block)))
	}
	head = append(head, tc...)
	tail := cat(AppendTags(nil, clusterTags(0)), chunk(1, 1))
	return io.MultiReader(bytes.NewReader(head), &repeatReader{elem: block, n: n}, bytes.NewReader(tail))
}

// TestHugeClusterMemory streams a 200 MB cluster and checks that the heap
// stays small: clusters are never held in memory and blocks reuse a buffer.
func TestHugeClusterMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 400 MB")
	}
	const blockSize, n = 64 << 10, 3200 // 3200 × 64 KiB ≈ 210 MB
	for _, unknown := range []bool{false, true} {
		runtime.GC()
		var before, ms runtime.MemStats
		runtime.ReadMemStats(&before)
		r := NewReader(hugeClusterStream(n, blockSize, unknown))
		var blocks int
		var peak uint64
		for {
			it, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if it.Kind == ItemBlock && it.Segment == 0 {
				if len(it.Block.Data) != blockSize {
					t.Fatalf("block of %d bytes", len(it.Block.Data))
				}
				blocks++
				if blocks%100 == 0 {
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapAlloc)
				}
			}
		}
		runtime.ReadMemStats(&ms)
		allocated := ms.TotalAlloc - before.TotalAlloc
		t.Logf("unknown-size cluster %v: %d blocks, %d MB read, peak heap %.1f MB, %.2f MB allocated in total",
			unknown, blocks, r.Offset()>>20, float64(peak)/(1<<20), float64(allocated)/(1<<20))
		if blocks != n {
			t.Errorf("%d blocks, want %d", blocks, n)
		}
		if peak > 50<<20 || allocated > 50<<20 {
			t.Errorf("peak heap %d B, allocated %d B: want well under 50 MB", peak, allocated)
		}
	}
}

// TestZeroAllocsPerBlock checks the steady state: handing out a block,
// simple, grouped or laced, allocates nothing.
func TestZeroAllocsPerBlock(t *testing.T) {
	var blocks []Block
	for i := range 3000 {
		blocks = append(blocks, Block{Track: uint64(1 + i%2), Timecode: int16(i), Keyframe: i%3 == 0, Duration: uint64(i % 2), Data: make([]byte, 1+i%4096)})
	}
	laced := el(IDSimpleBlock, blockBody(1, 0, lacingEBML, []byte{0x02, 0x82}, signedVint(1, 1), []byte("aabbbc")))
	var body []byte
	body = append(body, uel(IDTimecode, 0)...)
	for range 1000 {
		body = append(body, laced...)
	}
	stream := cat(chunk(0, 0), hdr, unk(IDSegment, AppendCluster(nil, 5, blocks), el(IDCluster, body)))
	r := NewReader(bytes.NewReader(stream))
	// Warm up: the first blocks grow the reused buffer.
	for range 100 {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(5000, func() {
		it, err := r.Next()
		if err != nil || (it.Kind != ItemBlock && it.Kind != ItemClusterStart && it.Kind != ItemClusterEnd &&
			it.Kind != ItemEBMLHeader && it.Kind != ItemSegmentStart && it.Kind != ItemSegmentEnd && it.Kind != ItemTags) {
			t.Fatalf("item %v, %v", it.Kind, err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.3f allocations per Next in steady state, want 0", allocs)
	}
}

// TestLyingSizeAllocatesLittle: an element that claims a large body the
// stream does not have must cost memory in proportion to the bytes that
// arrive, not to the claim.
func TestLyingSizeAllocatesLittle(t *testing.T) {
	for _, id := range []uint32{IDTracks, IDSimpleBlock} {
		var claim []byte
		claim = appendID(claim, id)
		claim = appendVint(claim, 60<<20) // under the 64 MiB default limit
		var in []byte
		if id == IDSimpleBlock {
			in = cat(hdr, unk(IDSegment, unk(IDCluster, uel(IDTimecode, 0), claim, []byte("short"))))
		} else {
			in = cat(hdr, unk(IDSegment, claim, []byte("short")))
		}
		before := heapAllocs()
		_, err := readAll(bytes.NewReader(in))
		allocated := heapAllocs() - before
		if !isReadError(err) {
			t.Errorf("%s: got %v, want a truncation", elementName(id), err)
		}
		if allocated > 1<<20 {
			t.Errorf("%s: %d bytes allocated for a %d-byte stream", elementName(id), allocated, len(in))
		}
	}
}
