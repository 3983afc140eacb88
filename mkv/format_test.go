package mkv

import (
	"bufio"
	"bytes"
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"
)

// allIDs names every exported ID constant as Matroska names the element.
var allIDs = map[string]uint32{
	"EBML": IDEBML, "EBMLVersion": IDEBMLVersion, "EBMLReadVersion": IDEBMLReadVersion,
	"EBMLMaxIDLength": IDEBMLMaxIDLength, "EBMLMaxSizeLength": IDEBMLMaxSizeLength, "DocType": IDDocType,
	"DocTypeVersion": IDDocTypeVersion, "DocTypeReadVersion": IDDocTypeReadVersion,
	"Segment": IDSegment, "SeekHead": IDSeekHead, "Info": IDInfo, "TimecodeScale": IDTimecodeScale,
	"Duration": IDDuration, "MuxingApp": IDMuxingApp, "WritingApp": IDWritingApp, "Title": IDTitle,
	"SegmentUID": IDSegmentUID, "Tracks": IDTracks, "TrackEntry": IDTrackEntry, "TrackNumber": IDTrackNumber,
	"TrackUID": IDTrackUID, "TrackType": IDTrackType, "Name": IDName, "CodecID": IDCodecID,
	"CodecPrivate": IDCodecPrivate, "DefaultDuration": IDDefaultDuration, "Video": IDVideo,
	"PixelWidth": IDPixelWidth, "PixelHeight": IDPixelHeight, "Audio": IDAudio,
	"SamplingFrequency": IDSamplingFrequency, "Channels": IDChannels, "BitDepth": IDBitDepth,
	"FlagLacing": IDFlagLacing, "Language": IDLanguage, "Cluster": IDCluster, "Timecode": IDTimecode,
	"SimpleBlock": IDSimpleBlock, "BlockGroup": IDBlockGroup, "Block": IDBlock,
	"BlockDuration": IDBlockDuration, "ReferenceBlock": IDReferenceBlock, "Position": IDPosition,
	"PrevSize": IDPrevSize, "Tags": IDTags, "Tag": IDTag, "Targets": IDTargets,
	"TargetTypeValue": IDTargetTypeValue, "SimpleTag": IDSimpleTag, "TagName": IDTagName,
	"TagString": IDTagString, "TagBinary": IDTagBinary, "Cues": IDCues, "Chapters": IDChapters,
	"Attachments": IDAttachments, "Void": IDVoid, "CRC32": IDCRC32,
	"SilentTracks": idSilentTracks, "EncryptedBlock": idEncryptedBlock,
}

// TestIDsMatchEbmlGo checks our constants against ebml-go's element table,
// an independent transcription of the Matroska specification.
func TestIDsMatchEbmlGo(t *testing.T) {
	rename := map[string]string{"DocType": "EBMLDocType", "DocTypeVersion": "EBMLDocTypeVersion",
		"DocTypeReadVersion": "EBMLDocTypeReadVersion"}
	for name, id := range allIDs {
		if name == "EncryptedBlock" {
			continue // deprecated in Matroska (0xAF); not in ebml-go's table
		}
		theirs := name
		if r, ok := rename[name]; ok {
			theirs = r
		}
		et, err := ebml.ElementTypeFromString(theirs)
		if err != nil {
			t.Errorf("%s: not in ebml-go: %v", name, err)
			continue
		}
		if got := appendID(nil, id); !bytes.Equal(got, et.Bytes()) {
			t.Errorf("%s: ours % X, ebml-go % X", name, got, et.Bytes())
		}
	}
}

var formatRow = regexp.MustCompile(`^\| (\w+) \| 0x([0-9A-F]+) \|`)

// documentedIDs reads the element table of FORMAT.md.
func documentedIDs(t *testing.T) map[string]uint32 {
	f, err := os.Open("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc := map[string]uint32{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		m := formatRow.FindStringSubmatch(s.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseUint(m[2], 16, 32)
		if err != nil {
			t.Fatalf("FORMAT.md: %q: %v", s.Text(), err)
		}
		doc[m[1]] = uint32(v)
	}
	if len(doc) < 40 {
		t.Fatalf("FORMAT.md: found only %d element rows", len(doc))
	}
	return doc
}

// TestFormatDoc checks FORMAT.md against the constants and against what
// the writer actually emits: every documented ID is right, every element of
// a chunk is documented and every documented element is written.
func TestFormatDoc(t *testing.T) {
	doc := documentedIDs(t)
	for name, id := range doc {
		if want, ok := allIDs[name]; !ok || want != id {
			t.Errorf("FORMAT.md: %s = 0x%X, constant 0x%X (known: %v)", name, id, want, ok)
		}
	}
	written := map[uint32]bool{}
	walkIDs(t, chunk(1, 1), written)
	for id := range written {
		if !slices.Contains(mapsValues(doc), id) {
			t.Errorf("the writer emits 0x%X, which FORMAT.md does not list", id)
		}
	}
	for name, id := range doc {
		if !written[id] {
			t.Errorf("FORMAT.md lists %s, which the writer does not emit in the test chunk", name)
		}
	}
}

func mapsValues(m map[string]uint32) []uint32 {
	var v []uint32
	for _, id := range m {
		v = append(v, id)
	}
	return v
}

var masters = map[uint32]bool{IDEBML: true, IDInfo: true, IDTracks: true, IDTrackEntry: true,
	IDVideo: true, IDAudio: true, IDTags: true, IDTag: true, IDTargets: true, IDSimpleTag: true,
	IDCluster: true, IDBlockGroup: true}

// walkIDs collects the IDs of a chunk: the EBML header, the unknown-size
// Segment and everything inside.
func walkIDs(t *testing.T, b []byte, seen map[uint32]bool) {
	t.Helper()
	id, n := parseID(b)
	if id != IDEBML {
		t.Fatalf("chunk does not start with an EBML header")
	}
	size, m, _ := parseSize(b[n:])
	walkBody(t, b[:n+m+int(size)], seen)
	rest := b[n+m+int(size):]
	if !bytes.HasPrefix(rest, AppendSegmentStart(nil)) {
		t.Fatalf("no unknown-size Segment after the header")
	}
	seen[IDSegment] = true
	walkBody(t, rest[12:], seen)
}

func walkBody(t *testing.T, b []byte, seen map[uint32]bool) {
	it := elemIter{b: b}
	for {
		c, ok, err := it.next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return
		}
		seen[c.id] = true
		if masters[c.id] {
			walkBody(t, c.body, seen)
		}
	}
}

// TestEbmlGoReadsWriterOutput decodes a chunk with ebml-go, an independent
// EBML implementation, and compares with what was written.
func TestEbmlGoReadsWriterOutput(t *testing.T) {
	type simpleTag struct {
		TagName   string `ebml:"TagName"`
		TagString string `ebml:"TagString"`
	}
	type tags struct {
		Tag []struct {
			SimpleTag []simpleTag `ebml:"SimpleTag"`
		} `ebml:"Tag"`
	}
	var got struct {
		Header  webm.EBMLHeader `ebml:"EBML"`
		Segment struct {
			Info    webm.Info      `ebml:"Info"`
			Tracks  webm.Tracks    `ebml:"Tracks"`
			Tags    []tags         `ebml:"Tags"`
			Cluster []webm.Cluster `ebml:"Cluster"`
		} `ebml:"Segment"`
	}
	if err := ebml.Unmarshal(bytes.NewReader(chunk(2, 77)), &got); err != nil {
		t.Fatal(err)
	}
	h := got.Header
	if h.DocType != "matroska" || h.EBMLMaxIDLength != 4 || h.EBMLMaxSizeLength != 8 || h.DocTypeVersion != 4 || h.DocTypeReadVersion != 2 {
		t.Errorf("header %+v", h)
	}
	seg := got.Segment
	if seg.Info.TimecodeScale != testInfo.TimecodeScale || seg.Info.Duration != testInfo.Duration || seg.Info.MuxingApp != testInfo.MuxingApp {
		t.Errorf("info %+v", seg.Info)
	}
	if n := len(seg.Tracks.TrackEntry); n != len(testTracks) {
		t.Fatalf("%d tracks", n)
	}
	for i, te := range seg.Tracks.TrackEntry {
		want := testTracks[i]
		if te.TrackNumber != want.Number || te.TrackUID != want.UID || te.CodecID != want.CodecID ||
			!bytes.Equal(te.CodecPrivate, want.CodecPrivate) || te.TrackType != want.Type {
			t.Errorf("track %d: %+v", i, te)
		}
	}
	if len(seg.Tags) != 2 || len(seg.Tags[0].Tag) != 1 || len(seg.Tags[0].Tag[0].SimpleTag) != 3 ||
		seg.Tags[1].Tag[0].SimpleTag[1].TagString != clusterTags(2)[1].Value {
		t.Errorf("tags %+v", seg.Tags)
	}
	if len(seg.Cluster) != 1 || seg.Cluster[0].Timecode != 77 {
		t.Fatalf("clusters %+v", seg.Cluster)
	}
	c := seg.Cluster[0]
	var simple, groups []Block
	for _, b := range testBlocks(2) {
		if b.Duration == 0 {
			simple = append(simple, b)
		} else {
			groups = append(groups, b)
		}
	}
	if len(c.SimpleBlock) != len(simple) || len(c.BlockGroup) != len(groups) {
		t.Fatalf("%d simple blocks, %d groups", len(c.SimpleBlock), len(c.BlockGroup))
	}
	for i, sb := range c.SimpleBlock {
		w := simple[i]
		if sb.TrackNumber != w.Track || sb.Timecode != w.Timecode || sb.Keyframe != w.Keyframe ||
			sb.Discardable != w.Discardable || !bytes.Equal(bytes.Join(sb.Data, nil), w.Data) {
			t.Errorf("simple block %d: %+v, want %+v", i, sb, w)
		}
	}
	for i, g := range c.BlockGroup {
		w := groups[i]
		if g.Block.TrackNumber != w.Track || g.Block.Timecode != w.Timecode || g.BlockDuration != w.Duration ||
			(g.ReferenceBlock != 0) == w.Keyframe || !bytes.Equal(bytes.Join(g.Block.Data, nil), w.Data) {
			t.Errorf("block group %d: %+v, want %+v", i, g, w)
		}
	}
}
