package ingest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/mkv"
)

// kvsTime writes ms as the seed service writes timestamps in tags.
func kvsTime(ms uint64) string { return fmt.Sprintf("%d.%03d", ms/1000, ms%1000) }

// serverTags are the tags a GetMedia chunk carries before its Cluster (pre)
// and after it (post), for fragment number n stored at serverMS.
func serverTags(n int, serverMS, producerMS uint64) (pre, post []mkv.SimpleTag) {
	pre = []mkv.SimpleTag{
		{Name: mkv.TagFragmentNumber, Value: fmt.Sprintf("9134385233318150%03d", n)},
		{Name: mkv.TagServerTimestamp, Value: kvsTime(serverMS)},
		{Name: mkv.TagProducerTimestamp, Value: kvsTime(producerMS)},
	}
	post = []mkv.SimpleTag{
		{Name: mkv.TagMillisBehindNow, Value: "1234"},
		{Name: mkv.TagContinuationToken, Value: fmt.Sprintf("9134385233318150%03d", n)},
	}
	return pre, post
}

// chunkBytes builds a chunk laid out as GetMedia serves it: the producer's
// Tags, then pre before the Cluster and post after it.
func chunkBytes(ms uint64, frames int, user, pre, post []mkv.SimpleTag) []byte {
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, Duration: float64(frames * 100)})
	b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: "S_SENSORIUM/SCALAR", CodecPrivate: []byte{1, 2, 3}}})
	b = mkv.AppendTags(b, user)
	b = mkv.AppendTags(b, pre)
	var blocks []mkv.Block
	for i := 0; i < frames; i++ {
		blocks = append(blocks, mkv.Block{Track: 1, Timecode: int16(i * 100), Keyframe: true, Data: []byte{byte(i), 1, 2, 3}})
	}
	b = mkv.AppendCluster(b, ms, blocks)
	return mkv.AppendTags(b, post)
}

// payloadTags reads the tags of a stored payload back, as GetMedia's reader
// will find them.
func payloadTags(t *testing.T, payload []byte) []mkv.SimpleTag {
	t.Helper()
	r := mkv.NewReader(bytes.NewReader(payload))
	var tags []mkv.SimpleTag
	for {
		it, err := r.Next()
		if err == io.EOF {
			return tags
		}
		if err != nil {
			t.Fatalf("stored payload: %v", err)
		}
		if it.Kind == mkv.ItemTags {
			tags = append(tags, it.Tags...)
		}
	}
}

// An archive's server tags are mapped, not refused; a reserved name that no
// server writes is refused as INVALID_MKV_DATA naming the tag; the count
// limit applies to the producer's own tags only.
func TestParseFragmentArchiveTags(t *testing.T) {
	now := time.Now()
	ms := uint64(now.Add(-time.Hour).UnixMilli())
	pre, post := serverTags(7, ms+1500, ms)
	site := mkv.SimpleTag{Name: "site", Value: "A"}
	origin := func(n int, serverMS uint64) []mkv.SimpleTag {
		return []mkv.SimpleTag{
			{Name: mkv.TagOriginFragmentNumber, Value: fmt.Sprintf("9134385233318150%03d", n)},
			{Name: mkv.TagOriginServerTimestamp, Value: kvsTime(serverMS)},
		}
	}
	ten := make([]mkv.SimpleTag, 10)
	for i := range ten {
		ten[i] = mkv.SimpleTag{Name: fmt.Sprintf("t%d", i), Value: "v"}
	}
	for _, tt := range []struct {
		name string
		data []byte
		want []mkv.SimpleTag // the stored tags, in order
		code wire.ErrorCode  // a refusal's code; 0 when accepted
		msg  string          // a refusal's message contains it
	}{
		{name: "GetMedia chunk", data: chunkBytes(ms, 3, []mkv.SimpleTag{site}, pre, post),
			want: append([]mkv.SimpleTag{site}, origin(7, ms+1500)...)},
		{name: "chunk without producer tags", data: chunkBytes(ms, 2, nil, pre, post), want: origin(7, ms+1500)},
		{name: "producer timestamp not the cluster's", data: chunkBytes(ms, 2, nil, []mkv.SimpleTag{
			{Name: mkv.TagProducerTimestamp, Value: kvsTime(ms - 60000)},
		}, nil), want: []mkv.SimpleTag{{Name: mkv.TagOriginProducerTimestamp, Value: kvsTime(ms - 60000)}}},
		{name: "producer timestamp unreadable", data: chunkBytes(ms, 2, nil, []mkv.SimpleTag{
			{Name: mkv.TagProducerTimestamp, Value: "soon"},
		}, nil), want: []mkv.SimpleTag{{Name: mkv.TagOriginProducerTimestamp, Value: "soon"}}},
		{name: "error tags of the old read", data: chunkBytes(ms, 2, []mkv.SimpleTag{site}, []mkv.SimpleTag{
			{Name: mkv.TagErrorCode, Value: "INTERNAL_ERROR"}, {Name: mkv.TagErrorID, Value: "5000"},
		}, nil), want: []mkv.SimpleTag{site}},
		{name: "imported before: the first origin stays", data: chunkBytes(ms, 2, origin(3, ms+10), pre, post),
			want: origin(3, ms+10)},
		{name: "ten own tags and the origin ones", data: chunkBytes(ms, 2, ten, pre, post),
			want: append(slices.Clone(ten), origin(7, ms+1500)...)},
		{name: "eleven own tags", data: chunkBytes(ms, 2, append(slices.Clone(ten), site), pre, post),
			code: wire.ErrFragmentMetadataLimit, msg: "11 metadata tags"},
		{name: "reserved name set by the producer", data: chunkBytes(ms, 2, []mkv.SimpleTag{{Name: "AWS_KINESISVIDEO_CAMERA", Value: "1"}}, pre, post),
			code: wire.ErrInvalidMKVData, msg: `"AWS_KINESISVIDEO_CAMERA"`},
		{name: "reserved name alone", data: fragmentBytes(ms, 2, []mkv.SimpleTag{{Name: "AWS_KINESISVIDEO_", Value: "1"}}),
			code: wire.ErrInvalidMKVData, msg: `"AWS_KINESISVIDEO_"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			frag, ferr := ParseFragment(tt.data, DefaultLimits(), now)
			if tt.code != 0 {
				if ferr == nil || ferr.Code != tt.code || !strings.Contains(ferr.Msg, tt.msg) {
					t.Fatalf("ParseFragment = %v, want code %d (%s) with %q", ferr, int(tt.code), tt.code, tt.msg)
				}
				return
			}
			if ferr != nil {
				t.Fatal(ferr)
			}
			if frag.ProducerTime != int64(ms)*int64(time.Millisecond) || frag.Frames == 0 {
				t.Fatalf("producer time %d, frames %d", frag.ProducerTime, frag.Frames)
			}
			if !slices.Equal(frag.Tags, tt.want) {
				t.Fatalf("Tags = %v, want %v", frag.Tags, tt.want)
			}
			if got := payloadTags(t, frag.Payload); !slices.Equal(got, tt.want) {
				t.Fatalf("stored payload's tags = %v, want %v", got, tt.want)
			}
			// The canonical form parses to itself: a re-put of the chunk is stable.
			again, ferr := ParseFragment(frag.Payload, DefaultLimits(), now)
			if ferr != nil || !bytes.Equal(again.Payload, frag.Payload) {
				t.Fatalf("canonical form: %v", ferr)
			}
		})
	}
}

// A fragment without server tags keeps its producer's Tags elements byte for
// byte, as before archives were taken.
func TestParseFragmentKeepsOwnTagsRaw(t *testing.T) {
	now := time.Now()
	ms := uint64(now.Add(-time.Hour).UnixMilli())
	tags := mkv.AppendTags(nil, []mkv.SimpleTag{{Name: "site", Value: "A"}, {Name: "origin_fragment_number", Value: "x"}})
	frag, ferr := ParseFragment(fragmentBytes(ms, 2, []mkv.SimpleTag{{Name: "site", Value: "A"}, {Name: "origin_fragment_number", Value: "x"}}), DefaultLimits(), now)
	if ferr != nil {
		t.Fatal(ferr)
	}
	if !bytes.Contains(frag.Payload, tags) {
		t.Fatal("the producer's Tags element was rewritten")
	}
}

func TestParseKVSTimestamp(t *testing.T) {
	for _, tt := range []struct {
		in string
		ns int64
		ok bool
	}{
		{"1764966896.123", 1764966896123000000, true},
		{"1764966896", 1764966896000000000, true},
		{"1764966896.5", 1764966896500000000, true},
		{"1764966896.000000001", 1764966896000000001, true},
		{"-1.5", -1500000000, true},
		{"1764966896.1234567891", 0, false},
		{"1764966896.-1", 0, false},
		{"x", 0, false},
		{"", 0, false},
		{"99999999999999999.0", 0, false},
	} {
		ns, ok := parseKVSTimestamp(tt.in)
		if ns != tt.ns || ok != tt.ok {
			t.Errorf("parseKVSTimestamp(%q) = %d, %v; want %d, %v", tt.in, ns, ok, tt.ns, tt.ok)
		}
	}
}

// TestArchiveDocMatchesCode keeps the mapping in docs/NATS.md in step with
// the names the code uses.
func TestArchiveDocMatchesCode(t *testing.T) {
	b, err := os.ReadFile("../docs/NATS.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for name := range archiveTags {
		if !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("docs/NATS.md does not mention `%s`", name)
		}
	}
	for _, name := range originName {
		if !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("docs/NATS.md does not mention `%s`", name)
		}
	}
}
