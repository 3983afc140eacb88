package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
)

// A PutMedia session that brings nothing for a while gets IDLE keep-alives;
// one that outlasts its maximum duration ends at its next cluster with
// MAX_CONNECTION_DURATION_REACHED, after everything before it is PERSISTED,
// and the connection closes cleanly; a new session then goes on.
func TestPutMediaIdleAndMaxDuration(t *testing.T) {
	srv, err := Start(context.Background(), Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		Logger: testLogger(t), MaxPutMediaDuration: 1500 * time.Millisecond, PutMediaIdle: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	newStream(t, srv, "cam", 1)

	now := uint64(time.Now().Add(-time.Minute).UnixMilli())
	head := opaqueMKV()
	cluster := func(tc uint64) []byte { return opaqueMKV(tc)[len(head):] }

	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, srv.HTTPURL()+"/putMedia", pr)
	req.Header.Set("x-amzn-stream-name", "cam")
	events := make(chan wire.AckEvent, 100)
	go func() {
		defer close(events)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var ev wire.AckEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				events <- ev
			}
		}
	}()
	// Two clusters: the first is complete once the second starts.
	_, _ = pw.Write(append(append(append([]byte(nil), head...), cluster(now)...), cluster(now+1000)...))
	var seen []wire.EventType
	idle, persisted := 0, 0
	wait := time.After(10 * time.Second)
	for idle < 2 || persisted < 1 {
		select {
		case ev := <-events:
			seen = append(seen, ev.EventType)
			switch ev.EventType {
			case wire.EventIdle:
				idle++
			case wire.EventPersisted:
				persisted++
			}
		case <-wait:
			t.Fatalf("no IDLE while the body is silent, or no PERSISTED: %v", seen)
		}
	}
	time.Sleep(1500 * time.Millisecond) // past the session's duration
	_, _ = pw.Write(cluster(now + 2000))
	var last wire.AckEvent
	for ev := range events { // ends when the server closes the response
		if ev.EventType != wire.EventIdle {
			last = ev
		}
		seen = append(seen, ev.EventType)
	}
	_ = pw.Close()
	if last.EventType != wire.EventError || last.ErrorID != wire.ErrMaxConnectionDuration || last.ErrorCode != "MAX_CONNECTION_DURATION_REACHED" {
		t.Fatalf("last event %+v, want ERROR 4003 MAX_CONNECTION_DURATION_REACHED (events %v)", last, seen)
	}
	persisted = 0
	for _, e := range seen {
		if e == wire.EventPersisted {
			persisted++
		}
	}
	if persisted != 2 {
		t.Fatalf("%d PERSISTED before the end, want the 2 clusters sent in time (events %v)", persisted, seen)
	}
	// The cluster refused at the limit goes through in the next session.
	_, evs := putMedia(t, srv, map[string]string{"x-amzn-stream-name": "cam"}, func() (interface{ Read([]byte) (int, error) }, func() error) {
		return &sliceReader{b: append(append([]byte(nil), head...), cluster(now+2000)...)}, nil
	})
	if len(evs) == 0 || evs[len(evs)-1].EventType != wire.EventPersisted {
		t.Fatalf("the next session: %+v", evs)
	}
}

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// With x-sensorium-acks: none (for ffmpeg's HTTP output, which never reads
// the response) the session writes no events, its fragments are stored all
// the same, and a bad value is refused before the session starts.
func TestPutMediaWithoutAcks(t *testing.T) {
	srv := startServer(t, "")
	client, _ := newStream(t, srv, "quiet", 1)
	now := uint64(time.Now().Add(-time.Minute).UnixMilli())
	b := opaqueMKV(now, now+1000, now+2000)
	status, typ, evs := putMediaSession(t, srv, map[string]string{"x-amzn-stream-name": "quiet", "x-sensorium-acks": "none"}, b)
	if status != http.StatusOK || typ != "" || len(evs) != 0 {
		t.Fatalf("quiet session: %d %s, events %+v", status, typ, evs)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		frags, _, err := client.ListFragments(context.Background(), sdk.ListFragmentsInput{Stream: sdk.ByName("quiet")})
		if err != nil {
			t.Fatal(err)
		}
		if len(frags) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d fragments stored, want 3", len(frags))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status, typ, _ := putMediaSession(t, srv, map[string]string{"x-amzn-stream-name": "quiet", "x-sensorium-acks": "some"}, b); status != http.StatusBadRequest || typ != httpwire.InvalidArgument {
		t.Fatalf("a bad x-sensorium-acks: %d %s", status, typ)
	}
}

// Sessions whose fragments the store refuses (ABSOLUTE timecodes from 0, as
// ffmpeg writes when it copies a file): each ends with an ERROR, and the
// store's refusals of the clusters still on their way, which come back on
// the NATS callback as the session ends, never reach the finished response
// (they did, and the server panicked in FlushError).
func TestPutMediaRefusedByTheStore(t *testing.T) {
	srv := startServer(t, "")
	newStream(t, srv, "refused", 1)
	b := opaqueMKV(make([]uint64, 30)...) // 30 clusters at timecode 0
	for i := 0; i < 20; i++ {
		status, _, evs := putMediaSession(t, srv, map[string]string{"x-amzn-stream-name": "refused"}, b)
		if status != http.StatusOK || len(evs) == 0 || evs[len(evs)-1].EventType != wire.EventError || evs[len(evs)-1].ErrorID != wire.ErrInvalidProducerTimestamp {
			t.Fatalf("session %d: %d %+v", i, status, evs)
		}
	}
	time.Sleep(200 * time.Millisecond) // the last refusals come back
}

// opaqueMKV is a PutMedia body: one opaque track, and a cluster of one frame
// at each timecode (ms).
func opaqueMKV(clusters ...uint64) []byte {
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale})
	b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: "S_SENSORIUM/OPAQUE", CodecPrivate: []byte("x")}})
	for _, c := range clusters {
		b = mkv.AppendCluster(b, c, []mkv.Block{{Track: 1, Keyframe: true, Data: []byte("frame")}})
	}
	return b
}

// A session that names a producer id and a first sequence
// (x-sensorium-producer-id, x-sensorium-producer-sequence) publishes its
// clusters under that dedupe key: a second session re-sending some of them
// under the same key is answered PERSISTED, Duplicate, for those and stores
// only the new ones — how `sensorium import FILE.mkv --http` resumes
// exactly once. Bad values are refused before the session starts.
func TestPutMediaProducerKey(t *testing.T) {
	srv := startServer(t, "")
	client, _ := newStream(t, srv, "keyed", 1)
	t0 := uint64(time.Now().Add(-time.Hour).UnixMilli())
	at := func(i int) uint64 { return t0 + uint64(i)*1000 }
	persisted := func(evs []wire.AckEvent) (seqs []uint64, dups []bool) {
		for _, ev := range evs {
			if ev.EventType == wire.EventPersisted {
				seqs, dups = append(seqs, ev.ProducerSequence), append(dups, ev.Duplicate)
			}
			if (ev.EventType == wire.EventPersisted || ev.EventType == wire.EventReceived) && ev.ProducerID != "import-mkv-abc" {
				t.Errorf("an event names producer %q, not the one given", ev.ProducerID)
			}
		}
		return seqs, dups
	}
	status, _, evs := putMediaSession(t, srv, map[string]string{"x-amzn-stream-name": "keyed", "x-sensorium-producer-id": "import-mkv-abc", "x-sensorium-producer-sequence": "1"},
		opaqueMKV(at(1), at(2), at(3), at(4), at(5)))
	seqs, dups := persisted(evs)
	if status != http.StatusOK || !slices.Equal(seqs, []uint64{1, 2, 3, 4, 5}) || slices.Contains(dups, true) {
		t.Fatalf("first session: %d, PERSISTED sequences %v, duplicates %v (events %+v)", status, seqs, dups, evs)
	}
	status, _, evs = putMediaSession(t, srv, map[string]string{"x-amzn-stream-name": "keyed", "x-sensorium-producer-id": "import-mkv-abc", "x-sensorium-producer-sequence": "3"},
		opaqueMKV(at(3), at(4), at(5), at(6), at(7)))
	seqs, dups = persisted(evs)
	if status != http.StatusOK || !slices.Equal(seqs, []uint64{3, 4, 5, 6, 7}) || !slices.Equal(dups, []bool{true, true, true, false, false}) {
		t.Fatalf("second session: %d, PERSISTED sequences %v, duplicates %v (events %+v)", status, seqs, dups, evs)
	}
	frags, _, err := client.ListFragments(context.Background(), sdk.ListFragmentsInput{Stream: sdk.ByName("keyed")})
	if err != nil || len(frags) != 7 {
		t.Fatalf("the stream holds %d fragments (%v), want 7", len(frags), err)
	}
	for _, bad := range []map[string]string{
		{"x-sensorium-producer-sequence": "3"},                                                      // a sequence without an id
		{"x-sensorium-producer-id": "imp"},                                                          // an id without a sequence
		{"x-sensorium-producer-id": "putmedia-1234", "x-sensorium-producer-sequence": "1"},          // the server's own ids
		{"x-sensorium-producer-id": "a b", "x-sensorium-producer-sequence": "1"},                    // a space
		{"x-sensorium-producer-id": strings.Repeat("a", 129), "x-sensorium-producer-sequence": "1"}, // too long
		{"x-sensorium-producer-id": "imp", "x-sensorium-producer-sequence": "0"},                    // sequences are from 1
		{"x-sensorium-producer-id": "imp", "x-sensorium-producer-sequence": "-1"},                   // not a number
		{"x-sensorium-producer-id": "imp", "x-sensorium-producer-sequence": "99999999999999999999"}, // out of range
	} {
		bad["x-amzn-stream-name"] = "keyed"
		if status, typ, _ := putMediaSession(t, srv, bad, opaqueMKV(at(8))); status != http.StatusBadRequest || typ != httpwire.InvalidArgument {
			t.Errorf("headers %v: %d %s, want 400 %s", bad, status, typ, httpwire.InvalidArgument)
		}
	}
}

// With x-sensorium-documents: fragments (each EBML document one fragment,
// as GetMedia writes them), a document's Info is kept whole: its Duration is
// the fragment's length, as it was where the document came from. Without
// it, a recording's Duration (its whole length) is dropped from each
// fragment, and the length comes from the frames. A document with a second
// Cluster is refused; so is another value of the header.
func TestPutMediaFragmentDocuments(t *testing.T) {
	srv := startServer(t, "")
	client, _ := newStream(t, srv, "docs", 1)
	t0 := uint64(time.Now().Add(-time.Hour).UnixMilli())
	// doc is one document of Duration durationMS with a Cluster at each
	// timecode, of two frames 10 ms apart.
	doc := func(durationMS float64, clusters ...uint64) []byte {
		b := mkv.AppendEBMLHeader(nil, "matroska")
		b = mkv.AppendSegmentStart(b)
		b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, Duration: durationMS, MuxingApp: "edge", Title: "t"})
		b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: "S_SENSORIUM/OPAQUE", CodecPrivate: []byte("x")}})
		for _, tc := range clusters {
			b = mkv.AppendCluster(b, tc, []mkv.Block{{Track: 1, Keyframe: true, Data: []byte("frame")}, {Track: 1, Timecode: 10, Keyframe: true, Data: []byte("frame")}})
		}
		return b
	}
	lengths := func() []int64 {
		t.Helper()
		frags, _, err := client.ListFragments(context.Background(), sdk.ListFragmentsInput{Stream: sdk.ByName("docs")})
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(frags, func(a, b sdk.Fragment) int { return a.ProducerTimestamp.Time.Compare(b.ProducerTimestamp.Time) })
		var ms []int64
		for _, f := range frags {
			ms = append(ms, f.FragmentLengthInMilliseconds)
		}
		return ms
	}
	body := append(doc(1000, t0), doc(750, t0+1000)...)
	status, _, evs := putMediaSession(t, srv, map[string]string{"x-amzn-stream-name": "docs", "x-sensorium-documents": "fragments"}, body)
	if status != http.StatusOK || len(evs) == 0 || evs[len(evs)-1].EventType != wire.EventPersisted {
		t.Fatalf("session: %d %+v", status, evs)
	}
	if got := lengths(); !slices.Equal(got, []int64{1000, 750}) {
		t.Errorf("fragment lengths %v ms, want the documents' Durations [1000 750]", got)
	}
	// The same documents as one recording's would be: without the header
	// the Durations are dropped, and each fragment is as long as its frames.
	body = append(doc(60000, t0+2000), doc(60000, t0+3000)...)
	if status, _, evs = putMediaSession(t, srv, map[string]string{"x-amzn-stream-name": "docs"}, body); status != http.StatusOK || evs[len(evs)-1].EventType != wire.EventPersisted {
		t.Fatalf("session without the header: %d %+v", status, evs)
	}
	if got := lengths(); len(got) != 4 || got[2] >= 1000 || got[3] >= 1000 {
		t.Errorf("fragment lengths %v ms; want the last two from their frames, not the recording's 60 s", got)
	}
	// A document with two Clusters.
	status, _, evs = putMediaSession(t, srv, map[string]string{"x-amzn-stream-name": "docs", "x-sensorium-documents": "fragments"}, doc(100, t0+4000, t0+5000))
	if status != http.StatusOK || len(evs) == 0 || evs[len(evs)-1].EventType != wire.EventError || evs[len(evs)-1].ErrorID != wire.ErrInvalidMKVData {
		t.Fatalf("a document of two clusters: %d %+v", status, evs)
	}
	if status, typ, _ := putMediaSession(t, srv, map[string]string{"x-amzn-stream-name": "docs", "x-sensorium-documents": "recording"}, doc(100, t0+6000)); status != http.StatusBadRequest || typ != httpwire.InvalidArgument {
		t.Errorf("x-sensorium-documents: recording: %d %s, want 400 %s", status, typ, httpwire.InvalidArgument)
	}
}
