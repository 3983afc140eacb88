package api

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/store"
)

// avcC320x240 is x264's avcC record of a 320×240 High profile stream, as
// ffmpeg wrote it (mp4/parse_test.go has the same).
const avcC320x240 = "0164000dffe100196764000dacd94141fb011000000300100000030320f142996001000468ef8fcbfdf8f800"

// h264Fragment is a fragment of one second of 25 H.264 pictures: what the
// session code reads of it is the avcC and the frames' times and sizes, so
// the pictures are a few bytes of one IDR slice NAL unit each.
func h264Fragment(t testing.TB, number uint64, start int64) *store.Fragment {
	t.Helper()
	avcc, err := hex.DecodeString(avcC320x240)
	if err != nil {
		t.Fatal(err)
	}
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, Duration: 1000})
	b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeVideo, CodecID: "V_MPEG4/ISO/AVC", CodecPrivate: avcc,
		DefaultDuration: uint64(40 * time.Millisecond), Video: &mkv.Video{PixelWidth: 320, PixelHeight: 240}}})
	clusterAt := len(b)
	var blocks []mkv.Block
	for i := range 25 {
		blocks = append(blocks, mkv.Block{Track: 1, Timecode: int16(i * 40), Keyframe: i == 0, Data: []byte{0, 0, 0, 4, 0x65, 0x88, 0x84, byte(i)}})
	}
	return &store.Fragment{
		Number: number, ServerTime: time.Now().UnixNano(), ProducerTime: start, Duration: int64(time.Second),
		ProducerID: "cam", ProducerSeq: number, ClusterOffset: uint32(clusterAt),
		Payload: mkv.AppendCluster(b, uint64(start/int64(time.Millisecond)), blocks),
	}
}

// mediaServer is a real server on loopback over a store in a temporary
// folder whose streams hold a few seconds of H.264 each, put a moment ago.
func mediaServer(t *testing.T, streams ...string) *httptest.Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(store.Options{Dir: t.TempDir(), Logger: log, RetentionInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	start := time.Now().Add(-5 * time.Second).Truncate(time.Millisecond).UnixNano()
	for _, name := range streams {
		if _, err := st.CreateStream(store.CreateStreamInput{Name: name, RetentionHours: 24, MediaType: "video/h264"}); err != nil {
			t.Fatal(err)
		}
		for n := uint64(1); n <= 3; n++ {
			if _, err := st.Append(name, h264Fragment(t, n, start+int64(n-1)*int64(time.Second))); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Sync(name); err != nil {
			t.Fatal(err)
		}
	}
	return unthrottledServer(t, st, nil)
}

// sessionProto is what differs between HLS and DASH sessions in these tests.
type sessionProto struct {
	name, op, field, urlField string
	play                      []string // the URLs a player fetches, relative to the session URL's folder, with T the token
}

var sessionProtos = []sessionProto{
	{"HLS", "/getHLSStreamingSessionURL", "MaxMediaPlaylistFragmentResults", "HLSStreamingSessionURL",
		[]string{hlsMasterPlaylist + "?SessionToken=T", hlsMediaPlaylist + "?SessionToken=T", hlsInit + "?SessionToken=T"}},
	{"DASH", "/getDASHStreamingSessionURL", "MaxManifestFragmentResults", "DASHStreamingSessionURL",
		[]string{dashManifest + "?SessionToken=T", hlsInit + "?TrackNumber=1&SessionToken=T"}},
}

// newSessionURL asks for a LIVE session of the stream and returns its URL.
func newSessionURL(t *testing.T, srv *httptest.Server, p sessionProto, stream string) string {
	t.Helper()
	body := fmt.Sprintf(`{"StreamName":%q,%q:3}`, stream, p.field)
	resp, err := http.Post(srv.URL+p.op, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s %s", p.op, resp.Status, b)
	}
	var out map[string]string
	if err := json.Unmarshal(b, &out); err != nil || out[p.urlField] == "" {
		t.Fatalf("%s: %s (%v)", p.op, b, err)
	}
	return out[p.urlField]
}

// playSession fetches what a player fetches of a session first; it returns
// nil when every answer is 200, else the first refusal's status and type.
func playSession(t *testing.T, p sessionProto, url string) error {
	t.Helper()
	base := url[:strings.LastIndex(url, "/")+1]
	token := url[strings.Index(url, "SessionToken=")+len("SessionToken="):]
	for _, rel := range p.play {
		resp, err := http.Get(base + strings.Replace(rel, "SessionToken=T", "SessionToken="+token, 1))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %d %s: %s", rel, resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), b)
		}
	}
	return nil
}

// The service's limit: ten active sessions per stream and protocol. The
// eleventh closes the first, whose playlists (manifest) and segments are
// then refused as an expired session's; the other ten play, and the other
// protocol's sessions and another stream's are not touched.
func TestSessionLimitClosesTheOldest(t *testing.T) {
	srv := mediaServer(t, "cam-a", "cam-b")
	for _, p := range sessionProtos {
		t.Run(p.name, func(t *testing.T) {
			urls := make([]string, maxActiveSessions+1)
			for i := range urls {
				urls[i] = newSessionURL(t, srv, p, "cam-a")
				if i < maxActiveSessions {
					// before the eleventh, the first plays like the others
					if err := playSession(t, p, urls[i]); err != nil {
						t.Fatalf("session %d of %d: %v", i+1, maxActiveSessions, err)
					}
				}
			}
			err := playSession(t, p, urls[0])
			if err == nil || !strings.Contains(err.Error(), "403 NotAuthorizedException") || !strings.Contains(err.Error(), "closed") {
				t.Errorf("the first session after the eleventh: %v, want 403 NotAuthorizedException saying it was closed", err)
			}
			for i, u := range urls[1:] {
				if err := playSession(t, p, u); err != nil {
					t.Errorf("session %d: %v", i+2, err)
				}
			}
		})
	}
	// Both protocols have their eleven on cam-a: each closed only its own
	// first. cam-b's session is alone on its stream.
	for _, p := range sessionProtos {
		if err := playSession(t, p, newSessionURL(t, srv, p, "cam-b")); err != nil {
			t.Errorf("%s on another stream: %v", p.name, err)
		}
	}
}

// A session's token plays on its own protocol's paths only: an HLS token
// at a DASH path would be counted among the DASH sessions, and the other
// way round.
func TestSessionTokenOnTheOtherProtocol(t *testing.T) {
	srv := mediaServer(t, "cam-a")
	for i, p := range sessionProtos {
		other := sessionProtos[1-i]
		url := newSessionURL(t, srv, p, "cam-a")
		token := url[strings.Index(url, "SessionToken=")+len("SessionToken="):]
		wrong := srv.URL + map[string]string{"HLS": hlsPath, "DASH": dashPath}[other.name] + "x?SessionToken=" + token
		err := playSession(t, other, wrong)
		if err == nil || !strings.Contains(err.Error(), "403 NotAuthorizedException") {
			t.Errorf("a %s token on %s's paths: %v, want 403 NotAuthorizedException", p.name, other.name, err)
		}
	}
}

// The table alone, on a clock the test moves: what it knows of a stream
// after a restart (sessions it meets at their first GET), what expiry
// frees, and that it forgets what can no longer matter.
func TestSessionTable(t *testing.T) {
	now := time.Unix(1_780_000_000, 0)
	session := func(i int, proto byte) *hlsSession {
		return &hlsSession{ID: [sessionIDLen]byte{byte(i)}, Created: now.Add(time.Duration(i) * time.Second).UnixNano(),
			Expires: now.Add(time.Hour).Unix(), Stream: "cam", StreamCreated: 1, Proto: proto}
	}
	type step struct {
		session int
		at      time.Duration // after now
		want    bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"eleven in order: the eleventh closes the first", []step{
			{1, 0, true}, {2, 0, true}, {3, 0, true}, {4, 0, true}, {5, 0, true}, {6, 0, true}, {7, 0, true}, {8, 0, true}, {9, 0, true}, {10, 0, true},
			{11, 0, true}, {1, 0, false}, {2, 0, true}, {11, 0, true},
		}},
		{"after a restart, the sessions come back in any order", []step{
			{12, 0, true}, {3, 0, true}, {11, 0, true}, {5, 0, true}, {4, 0, true}, {6, 0, true}, {10, 0, true}, {9, 0, true}, {8, 0, true}, {7, 0, true},
			// ten known (3 to 12): 2 is older than all of them, so it is the
			// one past the limit, and closing it closes 1 too
			{2, 0, false}, {1, 0, false}, {3, 0, true},
			// 13 closes 3, the oldest
			{13, 0, true}, {3, 0, false}, {4, 0, true},
		}},
		{"expired sessions free their places", []step{
			{1, 0, true}, {2, 0, true}, {3, 0, true}, {4, 0, true}, {5, 0, true}, {6, 0, true}, {7, 0, true}, {8, 0, true}, {9, 0, true}, {10, 0, true},
			// an hour on, all ten have expired: eleven more fit without
			// closing any of the first ten (their expiry refuses them anyway)
			{20, time.Hour, true}, {21, time.Hour, true}, {22, time.Hour, true}, {23, time.Hour, true}, {24, time.Hour, true},
			{25, time.Hour, true}, {26, time.Hour, true}, {27, time.Hour, true}, {28, time.Hour, true}, {29, time.Hour, true},
			{30, time.Hour, true}, {20, time.Hour, false}, {30, time.Hour, true},
		}},
	}
	for _, c := range cases {
		tab := newSessionTable()
		for i, s := range c.steps {
			sess := session(s.session, protoHLS)
			if s.at > 0 {
				sess.Created = now.Add(s.at + time.Duration(s.session)*time.Second).UnixNano()
				sess.Expires = now.Add(s.at + time.Hour).Unix()
			}
			if got := tab.admit(sess, now.Add(s.at)); got != s.want {
				t.Errorf("%s: step %d (session %d): admitted %v, want %v", c.name, i+1, s.session, got, s.want)
			}
		}
	}

	// HLS and DASH apart: ten of each, all active.
	tab := newSessionTable()
	for i := 1; i <= maxActiveSessions; i++ {
		for _, proto := range []byte{protoHLS, protoDASH} {
			if !tab.admit(session(i, proto), now) {
				t.Fatalf("session %d of protocol %d refused", i, proto)
			}
		}
	}
	if h, d := tab.active("cam", 1, protoHLS, now), tab.active("cam", 1, protoDASH, now); h != maxActiveSessions || d != maxActiveSessions {
		t.Errorf("active: %d HLS, %d DASH, want %d each", h, d, maxActiveSessions)
	}

	// The sweep forgets a stream once its sessions have expired and its
	// mark is older than the longest expiry; a token of then is refused
	// for its expiry before the table is asked.
	later := now.Add(maxSessionExpiry*time.Second + 2*time.Hour)
	late := &hlsSession{ID: [sessionIDLen]byte{99}, Created: later.UnixNano(), Expires: later.Add(time.Hour).Unix(), Stream: "other", StreamCreated: 1}
	if !tab.admit(late, later) {
		t.Fatal("a new stream's first session refused")
	}
	if n := len(tab.streams); n != 1 {
		t.Errorf("after the sweep the table remembers %d streams, want 1 (the new one)", n)
	}
}
