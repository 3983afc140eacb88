package mkv

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

var hdr = AppendEBMLHeader(nil, "matroska")

func sblock(track uint64, tc int16, flags byte, data string) []byte {
	return el(IDSimpleBlock, blockBody(track, tc, flags, []byte(data)))
}

// unknownSizeStream is two documents with unknown-size Segments and
// Clusters, ended by another Cluster, by Tags, by the next EBML header and
// by the end of the stream, with elements the reader must skip.
func unknownSizeStream() []byte {
	doc1 := cat(hdr, unk(IDSegment,
		el(IDSeekHead, []byte{0xEC, 0x80}),
		AppendInfo(nil, Info{TimecodeScale: 1000}),
		AppendTracks(nil, testTracks[2:]),
		unk(IDCluster, uel(IDTimecode, 10), sblock(3, 0, 0x80, "a"), el(IDVoid, []byte{0, 0}), sblock(3, 1, 0, "b")),
		unk(IDCluster, el(IDVoid), uel(IDPosition, 5), uel(IDTimecode, 20), sblock(3, -1, 0x80, "c")),
		AppendTags(nil, clusterTags(1)),
		el(IDCues, []byte("ignored")),
		el(IDCluster, uel(IDTimecode, 30), sblock(3, 0, 0x80, "d")),
		unk(IDCluster, uel(IDTimecode, 40), sblock(3, 0, 0x80, "e")),
	))
	doc2 := cat(hdr, unk(IDSegment,
		unk(IDCluster, uel(IDTimecode, 50), sblock(3, 2, 0x80, "f")),
	))
	return cat(doc1, doc2)
}

func TestUnknownSizes(t *testing.T) {
	items := mustReadAll(t, unknownSizeStream())
	want := []ItemKind{
		ItemEBMLHeader, ItemSegmentStart, ItemInfo, ItemTracks,
		ItemClusterStart, ItemBlock, ItemBlock, ItemClusterEnd, // ended by a Cluster
		ItemClusterStart, ItemBlock, ItemClusterEnd, // ended by Tags
		ItemTags,
		ItemClusterStart, ItemBlock, ItemClusterEnd, // known size
		ItemClusterStart, ItemBlock, ItemClusterEnd, // ended by the next EBML header
		ItemSegmentEnd,
		ItemEBMLHeader, ItemSegmentStart,
		ItemClusterStart, ItemBlock, ItemClusterEnd, // ended by the end of the stream
		ItemSegmentEnd,
	}
	if got := kinds(items); !slices.Equal(got, want) {
		t.Fatalf("kinds\n got %v\nwant %v", got, want)
	}
	var data string
	var times []int64
	for _, b := range items {
		if b.Kind == ItemBlock {
			data += string(b.Block.Data)
			times = append(times, b.Time)
		}
	}
	// doc 1 has TimecodeScale 1000; doc 2 none, so the default applies.
	wantTimes := []int64{10_000, 11_000, 19_000, 30_000, 40_000, 52 * DefaultTimecodeScale}
	if data != "abcdef" || !slices.Equal(times, wantTimes) {
		t.Errorf("blocks %q at %v, want abcdef at %v", data, times, wantTimes)
	}
	if items[19].Segment != 1 || items[18].Segment != 0 {
		t.Errorf("segment index: %d then %d", items[18].Segment, items[19].Segment)
	}
	for _, i := range []int{7, 10} {
		next := items[i+1]
		if items[i].Offset != next.Offset {
			t.Errorf("ClusterEnd at %d, next element at %d", items[i].Offset, next.Offset)
		}
	}
}

// TestReaderState checks Track, Tracks, Info and Offset as a stream goes by.
func TestReaderState(t *testing.T) {
	stream := cat(chunk(1, 5), hdr, unk(IDSegment))
	r := NewReader(bytes.NewReader(stream))
	for {
		it, err := r.Next()
		if err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			break
		}
		switch {
		case it.Kind == ItemBlock:
			if tr := r.Track(it.Block.Track); tr == nil || tr.Number != it.Block.Track {
				t.Errorf("Track(%d) = %v", it.Block.Track, tr)
			}
			if r.Info() != testInfo || len(r.Tracks()) != 3 {
				t.Errorf("state during blocks: %+v, %d tracks", r.Info(), len(r.Tracks()))
			}
		case it.Kind == ItemEBMLHeader && it.Segment == 1:
			if r.Info() != (Info{}) || r.Tracks() != nil || r.Track(1) != nil {
				t.Errorf("a new document must reset Info and Tracks")
			}
		}
	}
	if r.Offset() != int64(len(stream)) {
		t.Errorf("Offset %d, want %d", r.Offset(), len(stream))
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("Next after EOF: %v", err)
	}
}

func TestSkipsUnknownElements(t *testing.T) {
	big := make([]byte, 3<<20)
	doc := cat(el(IDVoid), hdr, el(IDCRC32, []byte{1, 2, 3, 4}), unk(IDSegment,
		el(0x4DBB, big), // unknown to us, larger than MaxElementSize below
		el(IDChapters, big),
		el(IDAttachments, []byte("x")),
		AppendTracks(nil, []TrackEntry{{Number: 1, Type: 1}}),
		el(IDCluster, el(IDPrevSize, []byte{1}), uel(IDTimecode, 1), el(0x5854, big), sblock(1, 0, 0x80, "z")),
	))
	items := mustReadAll(t, doc, MaxElementSize(1<<20))
	want := []ItemKind{ItemEBMLHeader, ItemSegmentStart, ItemTracks, ItemClusterStart, ItemBlock, ItemClusterEnd, ItemSegmentEnd}
	if got := kinds(items); !slices.Equal(got, want) {
		t.Fatalf("kinds %v", got)
	}
}

func TestNestedTagsAndBinary(t *testing.T) {
	tags := el(IDTags,
		el(IDTag, el(IDTargets, uel(IDTargetTypeValue, 50)),
			el(IDSimpleTag, el(IDTagName, []byte("A")), el(IDTagString, []byte("1\x00pad")),
				el(IDSimpleTag, el(IDTagName, []byte("A.B")), el(IDTagBinary, []byte{9}))),
		),
		el(IDTag, el(IDSimpleTag, el(IDTagName, []byte("C")), el(IDTagString, []byte("3")))),
	)
	items := mustReadAll(t, cat(hdr, unk(IDSegment, tags)))
	want := []SimpleTag{{"A", "1"}, {"A.B", ""}, {"C", "3"}}
	if got := items[2].Tags; !slices.Equal(got, want) {
		t.Errorf("tags %v, want %v", got, want)
	}
}

// knownSizeDoc is a chunk whose Segment has a known size: every proper
// prefix of it is truncated data.
func knownSizeDoc() []byte {
	body := cat(AppendInfo(nil, testInfo), AppendTracks(nil, testTracks), AppendTags(nil, fragmentTags(1)),
		AppendCluster(nil, 100, testBlocks(1)), AppendTags(nil, clusterTags(1)))
	return cat(hdr, el(IDSegment, body))
}

// TestTruncation cuts valid streams at every offset. Known-size documents
// must fail with a truncation error that says where the data ended, except
// at a document boundary. Unknown-size Segments and Clusters may legitimately
// end at any element boundary; elsewhere the cut must be an error.
func TestTruncation(t *testing.T) {
	known := knownSizeDoc()
	two := cat(known, known)
	for cut := 0; cut <= len(two); cut++ {
		_, err := readAll(bytes.NewReader(two[:cut]))
		if cut == 0 || cut == len(known) || cut == len(two) {
			if err != nil {
				t.Errorf("cut %d at a document boundary: %v", cut, err)
			}
			continue
		}
		var te *TruncatedError
		if !errors.As(err, &te) || !errors.Is(err, io.ErrUnexpectedEOF) || te.Offset != int64(cut) {
			t.Fatalf("cut %d of %d: want a truncation at %d, got %v", cut, len(two), cut, err)
		}
	}

	stream := cat(chunk(1, 1), unknownSizeStream(), lacedDoc())
	full := mustReadAll(t, stream)
	boundaries := map[int64]bool{}
	for _, it := range full {
		boundaries[it.Offset] = true
		if it.Size > 0 {
			boundaries[it.Offset+it.Size] = true
		}
		if it.Kind == ItemSegmentStart && it.Size == UnknownSize {
			boundaries[it.Offset+12] = true // an empty Segment: 4-byte ID, 8-byte size
		}
	}
	for cut := 0; cut <= len(stream); cut++ {
		items, err := readAll(bytes.NewReader(stream[:cut]))
		switch {
		case err == nil && !boundaries[int64(cut)]:
			t.Fatalf("cut %d inside an element read as a clean end (%d items)", cut, len(items))
		case err != nil && !isReadError(err):
			t.Fatalf("cut %d: unexpected error type %T: %v", cut, err, err)
		}
		var te *TruncatedError
		if errors.As(err, &te) && te.Offset != int64(cut) {
			t.Fatalf("cut %d: truncation reported at %d", cut, te.Offset)
		}
	}
}

func TestBadInput(t *testing.T) {
	trackEntries := bytes.Repeat([]byte{0xAE, 0x80}, maxTracks+1)
	deepTag := el(IDTagName, []byte("x"))
	for range maxTagDepth + 1 {
		deepTag = el(IDSimpleTag, deepTag)
	}
	seg := func(children ...[]byte) []byte { return cat(hdr, unk(IDSegment, children...)) }
	cluster := func(children ...[]byte) []byte { return seg(el(IDCluster, children...)) }
	for _, tc := range []struct {
		name string
		in   []byte
		want string // "syntax", "truncated" or "too large"
		msg  string // part of the message
		opts []Option
	}{
		{"garbage", []byte("hello, world"), "syntax", "expected an EBML header", nil},
		{"zero byte", []byte{0}, "syntax", "invalid element ID", nil},
		{"5-byte ID", []byte{0x08, 1, 2, 3, 4, 0x81, 0}, "syntax", "invalid element ID", nil},
		{"reserved ID", []byte{0xFF, 0x80}, "syntax", "invalid element ID", nil},
		{"invalid size VINT", []byte{0x1A, 0x45, 0xDF, 0xA3, 0x00}, "syntax", "invalid size", nil},
		{"truncated header", hdr[:10], "truncated", "", nil},
		{"header only", hdr, "truncated", "", nil},
		{"oversize Info", seg(el(IDInfo, make([]byte, 200))), "too large", "", []Option{MaxElementSize(100)}},
		{"oversize block", cluster(uel(IDTimecode, 0), sblock(1, 0, 0, strings.Repeat("x", 200))), "too large", "", []Option{MaxElementSize(100)}},
		{"child larger than parent", cat(hdr, []byte{0x18, 0x53, 0x80, 0x67, 0x85}, AppendInfo(nil, testInfo)), "syntax", "runs past its parent", nil},
		{"child larger than cluster", seg([]byte{0x1F, 0x43, 0xB6, 0x75, 0x86}, uel(IDTimecode, 0), sblock(1, 0, 0, "ab")), "syntax", "runs past its parent", nil},
		{"child larger than parent in memory", seg(el(IDTracks, []byte{0xAE, 0x85, 0xD7, 0x81, 1})), "syntax", "runs past its parent", nil},
		{"block before timecode", cluster(sblock(1, 0, 0, "a"), uel(IDTimecode, 0)), "syntax", "before the Cluster Timecode", nil},
		{"cluster without timecode", cluster(el(IDVoid)), "syntax", "without a Timecode", nil},
		{"second timecode", cluster(uel(IDTimecode, 0), uel(IDTimecode, 1)), "syntax", "second Timecode", nil},
		{"unknown-size Info", seg(unk(IDInfo)), "syntax", "unknown size", nil},
		{"unknown-size block", cluster(uel(IDTimecode, 0), unk(IDSimpleBlock)), "syntax", "unknown size", nil},
		{"nested Segment", seg(el(IDSegment)), "syntax", "inside a Segment", nil},
		{"nested unknown-size Segment", seg(unk(IDSegment)), "syntax", "unknown size", nil},
		{"EBML in known Segment", cat(hdr, el(IDSegment, hdr)), "syntax", "inside a Segment", nil},
		{"no Segment", cat(hdr, AppendInfo(nil, Info{})), "syntax", "expected a Segment", nil},
		{"garbage after document", cat(knownSizeDoc(), []byte{0x81, 0x80}), "syntax", "expected an EBML header", nil},
		{"EBMLMaxIDLength 8", cat(el(IDEBML, uel(IDEBMLMaxIDLength, 8)), unk(IDSegment)), "syntax", "EBMLMaxIDLength", nil},
		{"EBMLReadVersion 2", el(IDEBML, uel(IDEBMLReadVersion, 2)), "syntax", "EBMLReadVersion", nil},
		{"3-byte float", seg(el(IDInfo, el(IDDuration, []byte{1, 2, 3}))), "syntax", "float", nil},
		{"9-byte uint", seg(el(IDInfo, el(IDTimecodeScale, make([]byte, 9)))), "syntax", "8-byte integer", nil},
		{"9-byte cluster timecode", cluster(el(IDTimecode, make([]byte, 9))), "syntax", "8-byte integer", nil},
		{"too many tracks", seg(el(IDTracks, trackEntries)), "too large", "", nil},
		{"deep SimpleTags", seg(el(IDTags, el(IDTag, deepTag))), "syntax", "nested", nil},
		{"BlockGroup without Block", cluster(uel(IDTimecode, 0), el(IDBlockGroup, uel(IDBlockDuration, 1))), "syntax", "without a Block", nil},
		{"two Blocks", cluster(uel(IDTimecode, 0), el(IDBlockGroup, el(IDBlock, blockBody(1, 0, 0)), el(IDBlock, blockBody(1, 0, 0)))), "syntax", "second Block", nil},
		{"short block", cluster(uel(IDTimecode, 0), el(IDSimpleBlock, []byte{0x81, 0})), "syntax", "shorter than its header", nil},
		{"bad block track VINT", cluster(uel(IDTimecode, 0), el(IDSimpleBlock, []byte{0, 0, 0, 0})), "syntax", "track number", nil},
		{"Xiph sizes too big", cluster(uel(IDTimecode, 0), sblock(1, 0, lacingXiph, "\x01\xff\xff\x10ab")), "syntax", "Xiph", nil},
		{"fixed lacing not divisible", cluster(uel(IDTimecode, 0), sblock(1, 0, lacingFixed, "\x01abc")), "syntax", "divisible", nil},
		{"EBML lacing negative size", cluster(uel(IDTimecode, 0), sblock(1, 0, lacingEBML, "\x02\x81\x80ab")), "syntax", "out of range", nil},
		{"lacing without count", cluster(uel(IDTimecode, 0), sblock(1, 0, lacingXiph, "")), "syntax", "frame count", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(bytes.NewReader(tc.in), tc.opts...)
			var se *SyntaxError
			ok := false
			switch tc.want {
			case "syntax":
				ok = errors.As(err, &se)
			case "truncated":
				ok = errors.Is(err, io.ErrUnexpectedEOF)
			case "too large":
				ok = errors.Is(err, ErrTooLarge)
			}
			if !ok || !strings.Contains(fmtErr(err), tc.msg) || !strings.Contains(fmtErr(err), "offset") {
				t.Errorf("got %v, want a %s error containing %q and the offset", err, tc.want, tc.msg)
			}
		})
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestErrorSticks checks that Next keeps returning the first error.
func TestErrorSticks(t *testing.T) {
	r := NewReader(bytes.NewReader([]byte("garbage")))
	_, err1 := r.Next()
	_, err2 := r.Next()
	if err1 == nil || err1 != err2 {
		t.Errorf("errors %v then %v", err1, err2)
	}
}

type errReader struct{ data []byte }

var errBroken = errors.New("connection reset")

func (e *errReader) Read(p []byte) (int, error) {
	if len(e.data) == 0 {
		return 0, errBroken
	}
	n := copy(p, e.data)
	e.data = e.data[n:]
	return n, nil
}

func TestReadErrorCarriesOffset(t *testing.T) {
	doc := knownSizeDoc()
	_, err := readAll(&errReader{data: doc[:100]})
	var re *ReadError
	if !errors.As(err, &re) || !errors.Is(err, errBroken) || re.Offset > 100 {
		t.Errorf("got %v, want a ReadError wrapping the I/O error", err)
	}
}
