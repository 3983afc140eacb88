package mkv

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
	"testing/iotest"
)

func blockEqual(a, b Block) bool {
	return a.Track == b.Track && a.Timecode == b.Timecode && a.Keyframe == b.Keyframe &&
		a.Discardable == b.Discardable && a.Duration == b.Duration && bytes.Equal(a.Data, b.Data)
}

// wantBlocks is what reading testBlocks back gives: a BlockGroup cannot
// carry the discardable flag.
func wantBlocks(seed byte) []Block {
	bs := testBlocks(seed)
	for i := range bs {
		if bs[i].Duration > 0 {
			bs[i].Discardable = false
		}
	}
	return bs
}

func chunkKinds() []ItemKind {
	k := []ItemKind{ItemEBMLHeader, ItemSegmentStart, ItemInfo, ItemTracks, ItemTags, ItemClusterStart}
	for range testBlocks(0) {
		k = append(k, ItemBlock)
	}
	return append(k, ItemClusterEnd, ItemTags, ItemSegmentEnd)
}

// checkChunk checks the items of one chunk written by chunk(n, timecode).
func checkChunk(t *testing.T, items []Item, n int, timecode uint64, segment int) {
	t.Helper()
	if got, want := kinds(items), chunkKinds(); !slices.Equal(got, want) {
		t.Fatalf("kinds\n got %v\nwant %v", got, want)
	}
	for _, it := range items {
		if it.Segment != segment {
			t.Errorf("%v at %d: Segment %d, want %d", it.Kind, it.Offset, it.Segment, segment)
		}
	}
	if h := items[0].Header; h == nil || *h != (EBMLHeader{DocType: "matroska", DocTypeVersion: 4, DocTypeReadVersion: 2}) {
		t.Errorf("header %+v", h)
	}
	if items[1].Size != UnknownSize {
		t.Errorf("segment size %d, want UnknownSize", items[1].Size)
	}
	if *items[2].Info != testInfo {
		t.Errorf("info %+v, want %+v", *items[2].Info, testInfo)
	}
	if !reflect.DeepEqual(items[3].Tracks, testTracks) {
		t.Errorf("tracks\n got %+v\nwant %+v", items[3].Tracks, testTracks)
	}
	if !slices.Equal(items[4].Tags, fragmentTags(n)) {
		t.Errorf("tags %v", items[4].Tags)
	}
	for i, want := range map[int][]byte{2: AppendInfo(nil, testInfo), 3: AppendTracks(nil, testTracks), 4: AppendTags(nil, fragmentTags(n))} {
		if !bytes.Equal(items[i].Raw, want) || int64(len(want)) != items[i].Size {
			t.Errorf("%v: Raw/Size do not match the element written", items[i].Kind)
		}
	}
	if items[5].Timecode != timecode {
		t.Errorf("cluster timecode %d, want %d", items[5].Timecode, timecode)
	}
	for i, want := range wantBlocks(byte(n)) {
		it := items[6+i]
		if !blockEqual(*it.Block, want) {
			t.Errorf("block %d\n got %+v\nwant %+v", i, *it.Block, want)
		}
		if wantTime := (int64(timecode) + int64(want.Timecode)) * DefaultTimecodeScale; it.Time != wantTime {
			t.Errorf("block %d: Time %d, want %d", i, it.Time, wantTime)
		}
	}
	if tags := items[len(items)-2].Tags; !slices.Equal(tags, clusterTags(n)) {
		t.Errorf("cluster tags %v", tags)
	}
}

func TestRoundTrip(t *testing.T) {
	one := chunk(0, 1_700_000_000_000)
	items := mustReadAll(t, one)
	checkChunk(t, items, 0, 1_700_000_000_000, 0)
	end := items[len(items)-1]
	if end.Offset != int64(len(one)) {
		t.Errorf("SegmentEnd offset %d, want %d", end.Offset, len(one))
	}
}

// TestGetMediaStream reads several chunks back to back, as a GetMedia
// response carries them, as one stream.
func TestGetMediaStream(t *testing.T) {
	var stream []byte
	var starts []int
	for n := range 4 {
		starts = append(starts, len(stream))
		stream = append(stream, chunk(n, uint64(2000*n))...)
	}
	for _, tc := range []struct {
		name string
		wrap func([]byte) *bytes.Reader
		oneB bool
	}{{name: "whole"}, {name: "one byte at a time", oneB: true}} {
		t.Run(tc.name, func(t *testing.T) {
			var items []Item
			var err error
			if tc.oneB {
				items, err = readAll(iotest.OneByteReader(bytes.NewReader(stream)))
			} else {
				items, err = readAll(bytes.NewReader(stream))
			}
			if err != nil {
				t.Fatal(err)
			}
			per := len(chunkKinds())
			if len(items) != 4*per {
				t.Fatalf("%d items, want %d", len(items), 4*per)
			}
			for n := range 4 {
				doc := items[n*per : (n+1)*per]
				checkChunk(t, doc, n, uint64(2000*n), n)
				if doc[0].Offset != int64(starts[n]) {
					t.Errorf("doc %d starts at %d, want %d", n, doc[0].Offset, starts[n])
				}
			}
		})
	}
}

// TestOneByteReader checks that a reader returning one byte per Read gives
// the same items as one returning everything at once.
func TestOneByteReader(t *testing.T) {
	for name, b := range map[string][]byte{
		"getmedia": cat(chunk(1, 10), chunk(2, 20)),
		"unknown":  unknownSizeStream(),
		"laced":    lacedDoc(),
	} {
		t.Run(name, func(t *testing.T) {
			whole := mustReadAll(t, b)
			slow, err := readAll(iotest.OneByteReader(bytes.NewReader(b)))
			if err != nil {
				t.Fatal(err)
			}
			half, err := readAll(iotest.HalfReader(bytes.NewReader(b)))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(whole, slow) || !reflect.DeepEqual(whole, half) {
				t.Errorf("items differ between readers")
			}
		})
	}
}

// TestKnownSizeSegment reads a document whose Segment has a known size,
// followed by a second document.
func TestKnownSizeSegment(t *testing.T) {
	body := AppendInfo(nil, Info{})
	body = AppendTracks(body, testTracks[:1])
	body = AppendCluster(body, 7, []Block{{Track: 1, Keyframe: true, Data: []byte("x")}})
	doc := cat(AppendEBMLHeader(nil, "webm"), el(IDSegment, body))
	items := mustReadAll(t, cat(doc, doc))
	want := []ItemKind{ItemEBMLHeader, ItemSegmentStart, ItemInfo, ItemTracks, ItemClusterStart, ItemBlock, ItemClusterEnd, ItemSegmentEnd}
	if got := kinds(items); !slices.Equal(got, append(slices.Clone(want), want...)) {
		t.Fatalf("kinds %v", got)
	}
	seg := items[1]
	if seg.Size != int64(len(doc))-seg.Offset || items[7].Offset != int64(len(doc)) {
		t.Errorf("segment size %d / end %d, doc length %d", seg.Size, items[7].Offset, len(doc))
	}
	if items[2].Info.TimecodeScale != DefaultTimecodeScale {
		t.Errorf("TimecodeScale %d: the writer must always write it", items[2].Info.TimecodeScale)
	}
	if items[8].Segment != 1 || items[8].Header.DocType != "webm" {
		t.Errorf("second document: %+v", items[8])
	}
}

func TestWriterMatchesAppend(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.WriteHeader("matroska")
	w.StartSegment()
	w.WriteInfo(testInfo)
	w.WriteTracks(testTracks)
	w.WriteTags(fragmentTags(3))
	w.WriteCluster(99, testBlocks(3))
	w.WriteTags(clusterTags(3))
	w.WriteRaw(nil)
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), chunk(3, 99)) {
		t.Errorf("Writer output differs from the Append functions")
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(b []byte) (int, error) {
	if f.n == 0 {
		return 0, bytes.ErrTooLarge
	}
	f.n--
	return len(b), nil
}

func TestWriterStickyError(t *testing.T) {
	fw := &failWriter{n: 1}
	w := NewWriter(fw)
	if err := w.WriteHeader("matroska"); err != nil {
		t.Fatal(err)
	}
	err := w.StartSegment()
	if err == nil {
		t.Fatal("want an error from the second write")
	}
	fw.n = 10 // the writer must not try again
	if err2 := w.WriteCluster(1, testBlocks(1)); err2 != err || w.WriteRaw([]byte{1}) != err || w.Err() != err {
		t.Errorf("error not sticky: %v / %v", err2, w.Err())
	}
	if fw.n != 10 {
		t.Errorf("writer wrote after an error")
	}
}

// TestAppendGolden pins the exact bytes of small elements, so the writer is
// not only checked against its own reader.
func TestAppendGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"segment start", AppendSegmentStart(nil), "\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff"},
		{"ebml header", AppendEBMLHeader(nil, "webm"),
			"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08" +
				"\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02"},
		{"info", AppendInfo(nil, Info{}), "\x15\x49\xa9\x66\x87\x2a\xd7\xb1\x83\x0f\x42\x40"},
		{"cluster", AppendCluster(nil, 300, []Block{{Track: 1, Timecode: -2, Keyframe: true, Data: []byte{0xAA}}}),
			"\x1f\x43\xb6\x75\x8b\xe7\x82\x01\x2c\xa3\x85\x81\xff\xfe\x80\xaa"},
		{"block group", AppendCluster(nil, 0, []Block{{Track: 2, Duration: 5, Data: []byte{1}}}),
			"\x1f\x43\xb6\x75\x92\xe7\x81\x00\xa0\x8d\xa1\x85\x82\x00\x00\x00\x01\x9b\x81\x05\xfb\x81\xff"},
		{"empty tags", AppendTags(nil, nil), ""},
		{"element 127 bytes", AppendElement(nil, IDVoid, make([]byte, 127))[:3], "\xec\x40\x7f"},
		{"track 127", appendBlockPayload(nil, &Block{Track: 127}, 0), "\x40\x7f\x00\x00\x00"},
	} {
		if string(tc.got) != tc.want {
			t.Errorf("%s:\n got % x\nwant % x", tc.name, tc.got, tc.want)
		}
	}
}

func TestFinishSegment(t *testing.T) {
	var stream []byte
	for n := range 3 {
		start := len(stream)
		stream = append(stream, chunk(n, uint64(n))...)
		if err := FinishSegment(stream, start+len(hdr)); err != nil {
			t.Fatal(err)
		}
	}
	finished := mustReadAll(t, stream)
	unfinished := mustReadAll(t, cat(chunk(0, 0), chunk(1, 1), chunk(2, 2)))
	if len(finished) != len(unfinished) {
		t.Fatalf("%d items, want %d", len(finished), len(unfinished))
	}
	for i := range finished {
		f, u := finished[i], unfinished[i]
		if f.Kind == ItemSegmentStart {
			if want := int64(len(stream)/3) - int64(len(hdr)); f.Size != want || u.Size != UnknownSize {
				t.Errorf("segment size %d, want %d", f.Size, want)
			}
			f.Size = u.Size
		}
		if !reflect.DeepEqual(f, u) {
			t.Errorf("item %d: %+v, want %+v", i, f, u)
		}
	}
	for _, start := range []int{-1, 0, len(stream) - 5, len(stream) + 1} {
		if err := FinishSegment(stream, start); err == nil {
			t.Errorf("FinishSegment at %d: no error", start)
		}
	}
}
