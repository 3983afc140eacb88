package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
)

// archiveFrame is a frame as a test compares it: time and bytes.
type archiveFrame struct {
	ns   int64
	data string
}

// archiveFragment is what a test expects of one fragment read back.
type archiveFragment struct {
	frames []archiveFrame
	tags   map[string]string // the producer tags GetMedia serves
}

func kvsSeconds(ms int64) string { return fmt.Sprintf("%d.%03d", ms/1000, ms%1000) }

// kvsArchive builds a download as the seed service's GetMedia writes it:
// per fragment an MKV document with the producer's tags, the server's tags
// before the Cluster and after it, and, after the second fragment, an
// error chunk; every AWS_KINESISVIDEO_* tag the service writes is in it. It
// returns the bytes and what each fragment must read back as.
func kvsArchive(start time.Time, fragments int) ([]byte, []archiveFragment) {
	var b []byte
	var want []archiveFragment
	tracks := []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: "S_SENSORIUM/OPAQUE", CodecPrivate: []byte("x")}}
	for k := 0; k < fragments; k++ {
		ms := start.UnixMilli() + int64(k)*1000
		number := fmt.Sprintf("91343852333181432%03d", 400+k)
		server := kvsSeconds(ms + 1234)
		b = mkv.AppendEBMLHeader(b, "matroska")
		b = mkv.AppendSegmentStart(b)
		b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, MuxingApp: "Kinesis Video SDK"})
		b = mkv.AppendTracks(b, tracks)
		b = mkv.AppendTags(b, []mkv.SimpleTag{{Name: "site", Value: fmt.Sprintf("A%d", k)}})
		b = mkv.AppendTags(b, []mkv.SimpleTag{
			{Name: mkv.TagFragmentNumber, Value: number},
			{Name: mkv.TagServerTimestamp, Value: server},
			{Name: mkv.TagProducerTimestamp, Value: kvsSeconds(ms)},
		})
		f := archiveFragment{tags: map[string]string{"site": fmt.Sprintf("A%d", k), mkv.TagOriginFragmentNumber: number, mkv.TagOriginServerTimestamp: server}}
		var blocks []mkv.Block
		for i := 0; i < 4; i++ {
			data := fmt.Sprintf("fragment %d frame %d", k, i)
			blocks = append(blocks, mkv.Block{Track: 1, Timecode: int16(i * 250), Keyframe: i == 0, Data: []byte(data)})
			f.frames = append(f.frames, archiveFrame{ns: (ms + int64(i)*250) * int64(time.Millisecond), data: data})
		}
		b = mkv.AppendCluster(b, uint64(ms), blocks)
		b = mkv.AppendTags(b, []mkv.SimpleTag{
			{Name: mkv.TagMillisBehindNow, Value: "86400000"},
			{Name: mkv.TagContinuationToken, Value: number},
		})
		want = append(want, f)
		if k == 1 {
			b = mkv.AppendEBMLHeader(b, "matroska")
			b = mkv.AppendSegmentStart(b)
			b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale})
			b = mkv.AppendTags(b, []mkv.SimpleTag{
				{Name: mkv.TagErrorCode, Value: "INTERNAL_ERROR"}, {Name: mkv.TagErrorID, Value: "5000"},
				{Name: mkv.TagFragmentNumber, Value: "91343852333181432999"},
			})
		}
	}
	return b, want
}

// readArchive reads a stream back with GetMedia, frame by frame, grouped by
// fragment, and the raw response.
func readArchive(t *testing.T, client *sdk.Client, stream string) ([]archiveFragment, []byte) {
	t.Helper()
	rc, err := client.GetMedia(context.Background(), sdk.ByName(stream), sdk.StartEarliest(), false)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	var got []archiveFragment
	var cur *sdk.FragmentMeta
	mr := sdk.NewMediaReader(bytes.NewReader(raw))
	for {
		fr, err := mr.Next()
		if errors.Is(err, io.EOF) {
			return got, raw
		}
		if err != nil {
			t.Fatalf("GetMedia %s: %v", stream, err)
		}
		if fr.Fragment != cur {
			cur = fr.Fragment
			got = append(got, archiveFragment{tags: cur.Tags})
		}
		f := &got[len(got)-1]
		f.frames = append(f.frames, archiveFrame{ns: fr.Timestamp, data: string(fr.Data)})
	}
}

func compareArchive(t *testing.T, what string, got, want []archiveFragment) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d fragments, want %d", what, len(got), len(want))
	}
	for k := range want {
		if fmt.Sprint(got[k].frames) != fmt.Sprint(want[k].frames) {
			t.Errorf("%s: fragment %d frames\n got %v\nwant %v", what, k, got[k].frames, want[k].frames)
		}
		if fmt.Sprint(got[k].tags) != fmt.Sprint(want[k].tags) {
			t.Errorf("%s: fragment %d tags %v, want %v", what, k, got[k].tags, want[k].tags)
		}
	}
}

// waitListed polls ListFragments until the stream lists n fragments.
func waitListed(t *testing.T, client *sdk.Client, stream string, n int) []sdk.Fragment {
	t.Helper()
	var frags []sdk.Fragment
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		var err error
		frags, _, err = client.ListFragments(context.Background(), sdk.ListFragmentsInput{Stream: sdk.ByName(stream)})
		if err == nil && len(frags) != n {
			err = fmt.Errorf("%s lists %d fragments, want %d", stream, len(frags), n)
		}
		return err
	})
	return frags
}

// putArchive sends body as one PutMedia session and wants n PERSISTED
// events and no ERROR.
func putArchive(t *testing.T, srv *Server, stream string, body []byte, n int) {
	t.Helper()
	status, _, evs := putMediaSession(t, srv, map[string]string{"x-amzn-stream-name": stream}, body)
	persisted := 0
	for _, ev := range evs {
		switch ev.EventType {
		case wire.EventPersisted:
			persisted++
		case wire.EventError:
			t.Fatalf("PutMedia %s: %+v", stream, ev)
		}
	}
	if status != 200 || persisted != n {
		t.Fatalf("PutMedia %s: status %d, %d PERSISTED, want %d", stream, status, persisted, n)
	}
}

// An archive downloaded from the seed service goes in with PutMedia as it
// is: the same frames at the same producer times come back, with the old
// fragment numbers and server timestamps as origin_ tags; Sensorium's own
// GetMedia output goes into a second stream the same way; and a reserved tag
// the producer set is refused with INVALID_MKV_DATA naming it.
func TestPutMediaArchive(t *testing.T) {
	srv := startServer(t, "")
	client, _ := newStream(t, srv, "kvs-import", 1)
	newStream(t, srv, "kvs-copy", 1)
	newStream(t, srv, "reserved", 1)
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Millisecond)
	archive, want := kvsArchive(start, 4)

	putArchive(t, srv, "kvs-import", archive, len(want))
	frags := waitListed(t, client, "kvs-import", len(want))
	for k, f := range frags {
		// The producer timestamps are the archive's (the tags:
		// TestListFragmentsShowsOrigin).
		if p := f.ProducerTimestamp.UnixMilli(); p != want[k].frames[0].ns/int64(time.Millisecond) {
			t.Errorf("fragment %d: producer timestamp %d, want %d", k, p, want[k].frames[0].ns/int64(time.Millisecond))
		}
	}
	got, raw := readArchive(t, client, "kvs-import")
	compareArchive(t, "import", got, want)
	for _, tag := range []string{mkv.TagFragmentNumber, mkv.TagServerTimestamp, mkv.TagProducerTimestamp, mkv.TagMillisBehindNow, mkv.TagContinuationToken} {
		if c := bytes.Count(raw, []byte(tag)); c != len(want) {
			t.Errorf("our GetMedia output has %s %d times, want once per chunk (%d)", tag, c, len(want))
		}
	}

	// Sensorium → Sensorium: our own output, with our tags and the origin_
	// ones, goes into a second stream; the origin stays the first server's.
	putArchive(t, srv, "kvs-copy", raw, len(want))
	waitListed(t, client, "kvs-copy", len(want))
	again, _ := readArchive(t, client, "kvs-copy")
	compareArchive(t, "copy", again, want)

	for _, tt := range []struct {
		name string
		tag  string
		code wire.ErrorCode
	}{
		{"reserved name", "AWS_KINESISVIDEO_CAMERA_ID", wire.ErrInvalidMKVData},
		{"the prefix alone", "AWS_KINESISVIDEO_", wire.ErrInvalidMKVData},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := mkv.AppendEBMLHeader(nil, "matroska")
			b = mkv.AppendSegmentStart(b)
			b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale})
			b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: "S_SENSORIUM/OPAQUE", CodecPrivate: []byte("x")}})
			b = mkv.AppendTags(b, []mkv.SimpleTag{{Name: tt.tag, Value: "7"}})
			b = mkv.AppendCluster(b, uint64(time.Now().Add(-time.Minute).UnixMilli()), []mkv.Block{{Track: 1, Keyframe: true, Data: []byte("a")}})
			_, _, evs := putMediaSession(t, srv, map[string]string{"x-amzn-stream-name": "reserved"}, b)
			var ev *wire.AckEvent
			for i := range evs {
				if evs[i].EventType == wire.EventError || evs[i].EventType == wire.EventPersisted {
					ev = &evs[i]
				}
			}
			if ev == nil || ev.EventType != wire.EventError || ev.ErrorID != tt.code || ev.ErrorCode != tt.code.String() ||
				!strings.Contains(ev.Message, `"`+tt.tag+`"`) {
				t.Fatalf("events %+v; want ERROR %d %s naming %q", evs, int(tt.code), tt.code, tt.tag)
			}
		})
	}
}

// The origin of an imported archive is reachable from a listing: with
// IncludeFragmentMetadata, ListFragments gives each fragment its tags — the
// producer's and the old server's fragment number and server timestamp as
// origin_ tags — through real HTTP; without it, the answer is the seed
// service's shape, with no field the AWS SDKs do not know.
func TestListFragmentsShowsOrigin(t *testing.T) {
	srv := startServer(t, "")
	client, _ := newStream(t, srv, "kvs-import", 1)
	archive, want := kvsArchive(time.Now().Add(-2*time.Hour).Truncate(time.Millisecond), 4)
	putArchive(t, srv, "kvs-import", archive, len(want))
	plain := waitListed(t, client, "kvs-import", len(want))

	// Two pages, so that the tags stay with their fragments across NextToken.
	in := sdk.ListFragmentsInput{Stream: sdk.ByName("kvs-import"), MaxResults: 3}
	var got []sdk.FragmentWithMetadata
	for {
		page, next, err := client.ListFragmentsWithMetadata(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
		if next == "" {
			break
		}
		in.NextToken = next
	}
	if len(got) != len(want) {
		t.Fatalf("listed %d fragments with metadata, want %d", len(got), len(want))
	}
	for k, f := range got {
		if fmt.Sprint(f.Metadata) != fmt.Sprint(want[k].tags) {
			t.Errorf("fragment %d metadata %v, want %v", k, f.Metadata, want[k].tags)
		}
		if f.FragmentNumber != plain[k].FragmentNumber {
			t.Errorf("fragment %d is %s with metadata, %s without", k, f.FragmentNumber, plain[k].FragmentNumber)
		}
	}

	// The wire: the field is FragmentMetadata, only when asked for.
	for _, tt := range []struct {
		body string
		has  bool
	}{
		{`{"StreamName":"kvs-import"}`, false},
		{`{"StreamName":"kvs-import","IncludeFragmentMetadata":true}`, true},
	} {
		resp, err := http.Post(srv.HTTPURL()+"/listFragments", "application/json", strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s %s", tt.body, resp.Status, raw)
		}
		var out struct{ Fragments []map[string]json.RawMessage }
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
		for _, f := range out.Fragments {
			_, has := f["FragmentMetadata"]
			if has != tt.has || len(f) != 5+map[bool]int{true: 1}[tt.has] {
				t.Fatalf("%s: a fragment has the fields %s; want the five of ListFragments and FragmentMetadata %v", tt.body, raw, tt.has)
			}
		}
	}
}
