package mkv

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
)

// Hand-built EBML for tests. The writer's AppendElement builds known sizes;
// unk builds the unknown-size form the writer only uses for Segments.

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func el(id uint32, parts ...[]byte) []byte { return AppendElement(nil, id, cat(parts...)) }

func unk(id uint32, parts ...[]byte) []byte {
	b := appendID(nil, id)
	b = append(b, unknownSizeVint...)
	return append(b, cat(parts...)...)
}

func uel(id uint32, v uint64) []byte { return appendUintElem(nil, id, v) }

// blockBody is a SimpleBlock/Block body: track VINT, timecode, flags, rest.
func blockBody(track uint64, tc int16, flags byte, rest ...[]byte) []byte {
	b := appendVint(nil, track)
	b = append(b, byte(uint16(tc)>>8), byte(tc), flags)
	return append(b, cat(rest...)...)
}

// item is an Item with its Block copied, so that it outlives Next.
func snapshot(it Item) Item {
	if it.Block != nil {
		b := *it.Block
		b.Data = slices.Clone(b.Data)
		it.Block = &b
	}
	return it
}

// readAll reads r to the end and returns the items and the final error
// (nil after a clean io.EOF).
func readAll(r io.Reader, opts ...Option) ([]Item, error) {
	rd := NewReader(r, opts...)
	var items []Item
	for {
		it, err := rd.Next()
		if err == io.EOF {
			return items, nil
		}
		if err != nil {
			return items, err
		}
		items = append(items, snapshot(it))
	}
}

func mustReadAll(t *testing.T, b []byte, opts ...Option) []Item {
	t.Helper()
	items, err := readAll(bytes.NewReader(b), opts...)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return items
}

func kinds(items []Item) []ItemKind {
	k := make([]ItemKind, len(items))
	for i, it := range items {
		k[i] = it.Kind
	}
	return k
}

func blocksOf(items []Item) []Block {
	var out []Block
	for _, it := range items {
		if it.Kind == ItemBlock {
			out = append(out, *it.Block)
		}
	}
	return out
}

// isReadError reports whether err is one of the errors the Reader promises
// for bad input.
func isReadError(err error) bool {
	var se *SyntaxError
	return errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrTooLarge)
}

// testTracks has a video track with CodecPrivate, an audio track and a
// Sensorium metadata track.
var testTracks = []TrackEntry{
	{Number: 1, UID: 1001, Type: TrackTypeVideo, Name: "cam", CodecID: "V_MPEG4/ISO/AVC",
		CodecPrivate: []byte{0x01, 0x64, 0x00, 0x1F, 0xFF, 0xE1}, DefaultDuration: 33_333_333,
		Video: &Video{PixelWidth: 1280, PixelHeight: 720}},
	{Number: 2, UID: 1002, Type: TrackTypeAudio, CodecID: "A_PCM/INT/LIT",
		Audio: &Audio{SamplingFrequency: 16000, Channels: 1, BitDepth: 16}},
	{Number: 3, UID: 1003, Type: TrackTypeMetadata, Name: "vibration", CodecID: "S_SENSORIUM/SCALAR",
		CodecPrivate: []byte(`{"unit":"m/s2","rate":25600}`)},
}

var testInfo = Info{TimecodeScale: DefaultTimecodeScale, Duration: 2000, MuxingApp: "sensorium", WritingApp: "mkv_test", Title: "pump 7"}

func testBlocks(seed byte) []Block {
	return []Block{
		{Track: 1, Timecode: 0, Keyframe: true, Data: []byte{seed, 1, 2, 3}},
		{Track: 2, Timecode: 0, Keyframe: true, Duration: 20, Data: []byte{seed, 4, 5}},
		{Track: 3, Timecode: 5, Keyframe: true, Discardable: true, Data: []byte{seed}},
		{Track: 1, Timecode: 33, Keyframe: false, Data: []byte{seed, 6}},
		{Track: 2, Timecode: 20, Keyframe: false, Duration: 20, Data: []byte{seed, 7}},
		{Track: 1, Timecode: -5, Keyframe: false, Duration: 1, Data: nil},
		{Track: 3, Timecode: 32767, Keyframe: true, Data: bytes.Repeat([]byte{seed}, 300)},
	}
}

func fragmentTags(n int) []SimpleTag {
	return []SimpleTag{
		{Name: TagFragmentNumber, Value: "9143" + string(rune('0'+n))},
		{Name: TagServerTimestamp, Value: "1700000000.123"},
		{Name: TagProducerTimestamp, Value: "1700000000.100"},
	}
}

func clusterTags(n int) []SimpleTag {
	return []SimpleTag{
		{Name: TagMillisBehindNow, Value: "42"},
		{Name: TagContinuationToken, Value: "9143" + string(rune('0'+n))},
	}
}

// chunk builds one GetMedia-style document with the Append functions.
func chunk(n int, timecode uint64) []byte {
	b := AppendEBMLHeader(nil, "matroska")
	b = AppendSegmentStart(b)
	b = AppendInfo(b, testInfo)
	b = AppendTracks(b, testTracks)
	b = AppendTags(b, fragmentTags(n))
	b = AppendCluster(b, timecode, testBlocks(byte(n)))
	return AppendTags(b, clusterTags(n))
}
