package server

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/store"
)

// Every malformed PutMedia session gets its own error — an HTTP error before
// the session starts, or an ERROR event with the service's code once it has —
// keeps what was PERSISTED before it, and leaves the stream taking a good
// session right afterwards.
func TestPutMediaMalformedSessions(t *testing.T) {
	srv := startServer(t, "")
	newStream(t, srv, "m", 1)
	info, err := srv.st.DescribeStream(store.StreamRef{Name: "m"})
	if err != nil {
		t.Fatal(err)
	}
	tc := uint64(time.Now().Add(-time.Hour).UnixMilli()) // moves forward with every session
	next := func() uint64 { tc += 1000; return tc }
	opaque := func(n uint64) mkv.TrackEntry {
		return mkv.TrackEntry{Number: n, UID: n, Type: mkv.TrackTypeMetadata, CodecID: "S_SENSORIUM/OPAQUE", CodecPrivate: []byte("x")}
	}
	head := func(scale uint64, tracks ...mkv.TrackEntry) []byte {
		if len(tracks) == 0 {
			tracks = []mkv.TrackEntry{opaque(1)}
		}
		b := mkv.AppendEBMLHeader(nil, "matroska")
		b = mkv.AppendSegmentStart(b)
		b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: scale})
		return mkv.AppendTracks(b, tracks)
	}
	frame := func(track uint64, at int16, data string) mkv.Block {
		return mkv.Block{Track: track, Timecode: at, Keyframe: true, Data: []byte(data)}
	}
	const ms = mkv.DefaultTimecodeScale
	std := map[string]string{"x-amzn-stream-name": "m"}
	cases := []struct {
		name      string
		headers   map[string]string
		body      func() []byte
		status    int            // HTTP status; 200 means an ERROR event is expected
		errorType string         // x-amzn-ErrorType when status is not 200
		code      wire.ErrorCode // the ERROR event's code when status is 200
		persisted int            // PERSISTED events before the ERROR
		atCluster bool           // the ERROR names the refused cluster's timecode
	}{
		{name: "no stream header", headers: map[string]string{}, body: func() []byte { return head(ms) }, status: 400, errorType: httpwire.InvalidArgument},
		{name: "both name and ARN", headers: map[string]string{"x-amzn-stream-name": "m", "x-amzn-stream-arn": info.ARN}, body: func() []byte { return head(ms) }, status: 400, errorType: httpwire.InvalidArgument},
		{name: "unknown stream", headers: map[string]string{"x-amzn-stream-name": "nope"}, body: func() []byte { return head(ms) }, status: 404, errorType: httpwire.ResourceNotFound},
		{name: "bad timecode type", headers: map[string]string{"x-amzn-stream-name": "m", "x-amzn-fragment-timecode-type": "SOMETIMES"}, body: func() []byte { return head(ms) }, status: 400, errorType: httpwire.InvalidArgument},
		{name: "RELATIVE without a start", headers: map[string]string{"x-amzn-stream-name": "m", "x-amzn-fragment-timecode-type": "RELATIVE"}, body: func() []byte { return head(ms) }, status: 400, errorType: httpwire.InvalidArgument},
		{name: "garbage", headers: std, body: func() []byte { return []byte("garbage, not matroska") }, status: 200, code: wire.ErrInvalidMKVData},
		{name: "truncated in a cluster", headers: std, body: func() []byte {
			b := mkv.AppendCluster(head(ms), next(), []mkv.Block{frame(1, 0, "one")})
			b = mkv.AppendCluster(b, next(), []mkv.Block{frame(1, 0, string(bytes.Repeat([]byte("two"), 100)))})
			return b[:len(b)-40]
		}, status: 200, code: wire.ErrInvalidMKVData, persisted: 1},
		{name: "timecode going back", headers: std, body: func() []byte {
			a, b := next(), next()
			d := mkv.AppendCluster(head(ms), b, []mkv.Block{frame(1, 0, "later")})
			return mkv.AppendCluster(d, a, []mkv.Block{frame(1, 0, "earlier")})
		}, status: 200, code: wire.ErrFragmentTimecodeLesser, persisted: 1},
		{name: "oversize fragment", headers: std, body: func() []byte {
			return mkv.AppendCluster(head(ms), next(), []mkv.Block{frame(1, 0, string(make([]byte, 51_000_000)))})
		}, status: 200, code: wire.ErrMaxFragmentSize},
		{name: "fragment longer than the limit", headers: std, body: func() []byte {
			return mkv.AppendCluster(head(ms), next(), []mkv.Block{frame(1, 0, "a"), frame(1, 30000, "b")})
		}, status: 200, code: wire.ErrMaxFragmentDuration, atCluster: true},
		{name: "four tracks", headers: std, body: func() []byte {
			return mkv.AppendCluster(head(ms, opaque(1), opaque(2), opaque(3), opaque(4)), next(), []mkv.Block{frame(1, 0, "a")})
		}, status: 200, code: wire.ErrMoreThanAllowedTracks, atCluster: true},
		{name: "a frame of an undeclared track", headers: std, body: func() []byte {
			return mkv.AppendCluster(head(ms), next(), []mkv.Block{frame(7, 0, "a")})
		}, status: 200, code: wire.ErrTrackNumberMismatch, atCluster: true},
		{name: "TimecodeScale not 1 ms", headers: std, body: func() []byte {
			return mkv.AppendCluster(head(1000), next(), []mkv.Block{frame(1, 0, "a")})
		}, status: 200, code: wire.ErrInvalidMKVData},
		{name: "eleven fragment tags", headers: std, body: func() []byte {
			var tags []mkv.SimpleTag
			for i := 0; i < 11; i++ {
				tags = append(tags, mkv.SimpleTag{Name: fmt.Sprintf("tag-%d", i), Value: "v"})
			}
			return mkv.AppendCluster(mkv.AppendTags(head(ms), tags), next(), []mkv.Block{frame(1, 0, "a")})
		}, status: 200, code: wire.ErrFragmentMetadataLimit, atCluster: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := c.body()
			status, errorType, evs := putMediaSession(t, srv, c.headers, body)
			persisted := 0
			for _, ev := range evs {
				if ev.EventType == wire.EventPersisted {
					persisted++
				}
			}
			if status != c.status || errorType != c.errorType {
				t.Fatalf("status %d %s, want %d %s (events %+v)", status, errorType, c.status, c.errorType, evs)
			}
			if c.status == http.StatusOK {
				last := evs[len(evs)-1]
				if last.EventType != wire.EventError || last.ErrorID != c.code || last.ErrorCode != c.code.String() || last.Message == "" {
					t.Fatalf("last event %+v, want ERROR %d %s with a message", last, c.code, c.code)
				}
				if c.atCluster && last.FragmentTimecode != int64(tc) {
					t.Fatalf("the ERROR's FragmentTimecode is %d, want the refused cluster's %d", last.FragmentTimecode, tc)
				}
				if persisted != c.persisted {
					t.Fatalf("%d PERSISTED before the ERROR, want %d: %+v", persisted, c.persisted, evs)
				}
			}
			good := mkv.AppendCluster(head(ms), next(), []mkv.Block{frame(1, 0, "good")})
			if _, _, evs := putMediaSession(t, srv, std, good); len(evs) == 0 || evs[len(evs)-1].EventType != wire.EventPersisted {
				t.Fatalf("a good session afterwards: %+v", evs)
			}
		})
	}
}

// putMediaSession posts one whole PutMedia body (postPutMedia).
func putMediaSession(t *testing.T, srv *Server, headers map[string]string, body []byte) (int, string, []wire.AckEvent) {
	t.Helper()
	return postPutMedia(t, srv, headers, bytes.NewReader(body))
}
