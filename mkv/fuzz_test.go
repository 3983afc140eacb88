package mkv

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// FuzzReader reads arbitrary bytes to the end. The Reader must not panic,
// must return only its documented errors, must consume everything at a clean
// end, must allocate in proportion to its input, and must give the same
// items when the input arrives one byte at a time.
func FuzzReader(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		before := heapAllocs()
		items, off, err := fuzzRead(bytes.NewReader(data))
		allocated := heapAllocs() - before
		if err != nil && !isReadError(err) {
			t.Fatalf("undocumented error %T: %v", err, err)
		}
		if err == nil && off != int64(len(data)) {
			t.Fatalf("clean end at offset %d of %d", off, len(data))
		}
		// A bounded constant (buffers, track tables) plus a multiple of the
		// input: decoded tags and tracks are larger than their encoding.
		if limit := uint64(64*len(data)) + 2<<20; allocated > limit {
			t.Fatalf("allocated %d bytes for %d bytes of input", allocated, len(data))
		}
		slow, slowOff, slowErr := fuzzRead(iotest.OneByteReader(bytes.NewReader(data)))
		if fmt.Sprint(err) != fmt.Sprint(slowErr) || off != slowOff || !reflect.DeepEqual(items, slow) {
			t.Fatalf("one byte at a time differs: %v at %d vs %v at %d", err, off, slowErr, slowOff)
		}
		mem, memOff, memErr := fuzzReadWith(NewBytesReader(data, MaxElementSize(1<<20)))
		if fmt.Sprint(err) != fmt.Sprint(memErr) || off != memOff || !reflect.DeepEqual(items, mem) {
			t.Fatalf("NewBytesReader differs: %v at %d vs %v at %d", err, off, memErr, memOff)
		}
	})
}

// fuzzRead reads r with a 1 MiB element limit and returns the items, the
// final offset and the error (nil at a clean end).
func fuzzRead(r io.Reader) ([]Item, int64, error) {
	return fuzzReadWith(NewReader(r, MaxElementSize(1<<20)))
}

func fuzzReadWith(rd *Reader) ([]Item, int64, error) {
	var items []Item
	for {
		it, err := rd.Next()
		if err == io.EOF {
			return items, rd.Offset(), nil
		}
		if err != nil {
			return items, rd.Offset(), err
		}
		if it.Kind == ItemBlock && it.Offset+it.Size > rd.Offset() {
			return nil, 0, errors.New("block reported past the bytes read")
		}
		if len(items) < 1<<12 { // enough to compare, bounded for huge laced inputs
			items = append(items, snapshot(it))
		}
	}
}

var allocMetric = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

// heapAllocs is the cumulative bytes allocated, read without stopping the
// world (unlike runtime.ReadMemStats), so the fuzzer stays fast.
func heapAllocs() uint64 {
	metrics.Read(allocMetric)
	return allocMetric[0].Value.Uint64()
}

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus in testdata/fuzz/FuzzReader")

// TestSeedCorpus writes the seed corpus (with -update-corpus) and checks that
// the committed seeds still hold the documents they were made from.
func TestSeedCorpus(t *testing.T) {
	seeds := fuzzSeeds()
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	for name, data := range seeds {
		path := filepath.Join(dir, "seed-"+name)
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if *updateCorpus {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("%s is missing or stale: run go test ./mkv/ -run TestSeedCorpus -update-corpus", path)
		}
	}
}

func fuzzSeeds() map[string][]byte {
	small := []Block{{Track: 1, Keyframe: true, Data: []byte{1, 2}}, {Track: 2, Timecode: 3, Duration: 4, Data: []byte{3}}}
	doc := cat(hdr, unk(IDSegment, AppendInfo(nil, Info{}), AppendTracks(nil, testTracks[1:]),
		AppendTags(nil, fragmentTags(0)), AppendCluster(nil, 9, small), AppendTags(nil, clusterTags(0))))
	finished := slices.Clone(doc)
	_ = FinishSegment(finished, len(hdr))
	seeds := map[string][]byte{
		"chunk":         chunk(0, 1),
		"small-doc":     doc,
		"getmedia-2":    cat(doc, doc),
		"finished-2":    cat(finished, finished),
		"known-size":    knownSizeDoc(),
		"unknown-sizes": unknownSizeStream(),
		"laced":         lacedDoc(),
		"garbage":       []byte("\x1a\x45\xdf\xa3\x88garbage!\x18\x53\x80\x67\xff"),
		"nested-tags":   cat(hdr, unk(IDSegment, el(IDTags, el(IDTag, el(IDSimpleTag, el(IDTagName, []byte("a")), el(IDSimpleTag, el(IDTagString, []byte("b")))))))),
	}
	for _, cut := range []int{3, 20, 45, 60, len(doc) / 2, len(doc) - 3} {
		seeds[fmt.Sprintf("cut-%d", cut)] = doc[:cut]
	}
	return seeds
}

// FuzzWriterRoundTrip writes a chunk from fuzzed values and reads it back:
// whatever the writer accepts, the reader must return unchanged.
func FuzzWriterRoundTrip(f *testing.F) {
	f.Add(uint64(1), int16(-3), true, false, uint64(0), []byte("frame"), "name", "value", []byte{1, 2})
	f.Add(uint64(1<<40), int16(32767), false, true, uint64(7), []byte{}, "", "", []byte(nil))
	f.Fuzz(func(t *testing.T, track uint64, tc int16, key, discard bool, duration uint64, data []byte, name, value string, private []byte) {
		track %= 1<<56 - 1 // the largest track number a VINT holds
		// EBML strings end at the first zero byte.
		name, value = strings.ReplaceAll(name, "\x00", ""), strings.ReplaceAll(value, "\x00", "")
		blocks := []Block{
			{Track: track, Timecode: tc, Keyframe: key, Discardable: discard && duration == 0, Duration: duration, Data: data},
			{Track: track, Timecode: ^tc, Keyframe: !key, Duration: duration / 2, Data: private},
		}
		tracks := []TrackEntry{{Number: track, UID: duration, Type: uint64(tc) & 0xFF, Name: name, CodecID: value, CodecPrivate: private}}
		tags := []SimpleTag{{Name: name, Value: value}}
		b := AppendEBMLHeader(nil, "matroska")
		b = AppendSegmentStart(b)
		b = AppendTracks(b, tracks)
		b = AppendTags(b, tags)
		b = AppendCluster(b, duration, blocks)
		items, err := readAll(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		got := blocksOf(items)
		if len(got) != 2 || !blockEqual(got[0], blocks[0]) || !blockEqual(got[1], blocks[1]) {
			t.Fatalf("blocks\n got %+v\nwant %+v", got, blocks)
		}
		if len(private) == 0 {
			tracks[0].CodecPrivate = nil
		}
		if !reflect.DeepEqual(items[2].Tracks, tracks) || !slices.Equal(items[3].Tags, tags) {
			t.Fatalf("tracks %+v, tags %+v", items[2].Tracks, items[3].Tags)
		}
	})
}
