package api

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/store"
)

func testSession() *hlsSession {
	return &hlsSession{ID: [sessionIDLen]byte{1, 2, 3, 4, 5, 6, 7, 8}, Mode: modeLiveReplay,
		Range:         timeRange{basis: store.ProducerTime, start: 1_780_000_000_123_456_789, end: maxTime},
		Discontinuity: discontinuityOn, Display: true, Max: 7, Expires: time.Now().Add(time.Hour).Unix(), Created: 1_780_000_000_000_000_001,
		StreamCreated: 1_770_000_000_000, Anchor: 1 << 40, Origin: 1_780_000_000_100_000_000, DecodeDelay: 40_000_000,
		AudioAnchor: 1_780_000_000_101_000_000, Width: 1920, Height: 1080, Bandwidth: 4_000_000, TargetDuration: 2,
		TracksHash: [tracksHashLen]byte{9, 8, 7}, Proto: protoDASH, Stream: "cam.front-1", Codecs: "avc1.64001f,mp4a.40.2"}
}

func TestSessionTokenRoundTrip(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	s := testSession()
	got, err := decodeSession(s.encode(key), key, true)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *s {
		t.Fatalf("decoded %+v\nwant    %+v", got, s)
	}
}

// A session's GET is refused, as the service refuses it, when its token
// is missing, forged (any byte changed, another server's key, cut short)
// or expired — before anything of the stream is looked at.
func TestSessionTokenRefusals(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	m := &mediaOut{a: &api{}, key: key}
	good := testSession().encode(key)
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x20
		return base64.RawURLEncoding.EncodeToString(b)
	}
	expired := testSession()
	expired.Expires = time.Now().Add(-time.Second).Unix()
	cases := []struct {
		name, token, errType string
		status               int
	}{
		{"missing", "", httpwire.MissingAuthenticationToken, 403},
		{"a byte of the stream name changed", flip(len(raw) - tokenMACLen - 5), httpwire.NotAuthorized, 403},
		{"the expiry moved", flip(33), httpwire.NotAuthorized, 403},
		{"a byte of the MAC changed", flip(len(raw) - 1), httpwire.NotAuthorized, 403},
		{"another server's key", testSession().encode([]byte("another key, another server.....")), httpwire.NotAuthorized, 403},
		{"cut short", good[:len(good)/2], httpwire.NotAuthorized, 403},
		{"not base64", "!!!" + good, httpwire.NotAuthorized, 403},
		{"expired", expired.encode(key), httpwire.NotAuthorized, 403},
	}
	h := m.hlsGet(func(w http.ResponseWriter, r *http.Request, s *hlsSession) {
		t.Errorf("served a session from a bad token")
	})
	for _, c := range cases {
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest("GET", hlsPath+hlsMasterPlaylist+"?SessionToken="+c.token, nil))
		if rec.Code != c.status || rec.Header().Get("x-amzn-ErrorType") != c.errType {
			t.Errorf("%s: %d %s (%s), want %d %s", c.name, rec.Code, rec.Header().Get("x-amzn-ErrorType"), rec.Body, c.status, c.errType)
		}
		if c.name == "expired" && !strings.Contains(rec.Body.String(), "expired") {
			t.Errorf("expired: the message does not say so: %s", rec.Body)
		}
	}
}

func TestNewSessionChecks(t *testing.T) {
	now := time.Now()
	at := func(d time.Duration) httpwire.Timestamp { return httpwire.At(now.Add(d).UnixNano()) }
	i64 := func(v int64) *int64 { return &v }
	type sel = struct {
		FragmentSelectorType string
		TimestampRange       *struct {
			StartTimestamp httpwire.Timestamp
			EndTimestamp   httpwire.Timestamp
		}
	}
	rng := func(typ string, start, end httpwire.Timestamp) *sel {
		return &sel{FragmentSelectorType: typ, TimestampRange: &struct {
			StartTimestamp httpwire.Timestamp
			EndTimestamp   httpwire.Timestamp
		}{start, end}}
	}
	bad := []struct {
		name string
		in   getHLSInput
	}{
		{"unknown mode", getHLSInput{PlaybackMode: "REPLAY"}},
		{"MPEG_TS", getHLSInput{ContainerFormat: "MPEG_TS"}},
		{"expires 299", getHLSInput{Expires: i64(299)}},
		{"expires 43201", getHLSInput{Expires: i64(43201)}},
		{"max 0", getHLSInput{MaxResults: i64(0)}},
		{"max 5001", getHLSInput{MaxResults: i64(5001)}},
		{"LIVE with a range", getHLSInput{HLSFragmentSelector: rng("SERVER_TIMESTAMP", at(-time.Hour), at(-time.Minute))}},
		{"ON_DEMAND without a range", getHLSInput{PlaybackMode: "ON_DEMAND"}},
		{"ON_DEMAND without an end", getHLSInput{PlaybackMode: "ON_DEMAND", HLSFragmentSelector: rng("SERVER_TIMESTAMP", at(-time.Hour), httpwire.Timestamp{})}},
		{"ON_DEMAND over 24 h", getHLSInput{PlaybackMode: "ON_DEMAND", HLSFragmentSelector: rng("PRODUCER_TIMESTAMP", at(-25*time.Hour), at(0))}},
		{"server end in the future", getHLSInput{PlaybackMode: "ON_DEMAND", HLSFragmentSelector: rng("SERVER_TIMESTAMP", at(-time.Hour), at(time.Hour))}},
		{"bad discontinuity mode", getHLSInput{DiscontinuityMode: "SOMETIMES"}},
		{"bad display", getHLSInput{DisplayFragmentTime: "YES"}},
		{"bad selector type", getHLSInput{HLSFragmentSelector: &sel{FragmentSelectorType: "ARRIVAL"}}},
	}
	for _, c := range bad {
		if _, err := newSession(&c.in, now); ErrorOf(err).Name != httpwire.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgumentException", c.name, err)
		}
	}
	s, err := newSession(&getHLSInput{}, now)
	if err != nil || s.Mode != modeLive || s.Max != 5 || s.Discontinuity != discontinuityAlways || s.Range.basis != store.ServerTime ||
		s.Expires != now.Unix()+300 {
		t.Errorf("LIVE defaults: %+v %v", s, err)
	}
	s, err = newSession(&getHLSInput{PlaybackMode: "ON_DEMAND", HLSFragmentSelector: rng("PRODUCER_TIMESTAMP", at(-time.Hour), at(time.Hour))}, now)
	if err != nil || s.Max != 1000 || s.Discontinuity != discontinuityNever || s.Range.basis != store.ProducerTime {
		t.Errorf("ON_DEMAND on producer time: %+v %v", s, err)
	}
	s, err = newSession(&getHLSInput{PlaybackMode: "LIVE_REPLAY", HLSFragmentSelector: rng("SERVER_TIMESTAMP", at(-time.Hour), httpwire.Timestamp{})}, now)
	if err != nil || s.Range.end != maxTime || s.Max != 5 {
		t.Errorf("LIVE_REPLAY without an end: %+v %v", s, err)
	}
}

// A session token comes from a URL anyone can send: whatever it holds, it
// decodes to a session or an error, never a panic, and a session it holds
// encodes back to a token that verifies to the same session.
func FuzzDecodeSession(f *testing.F) {
	key := []byte("0123456789abcdef0123456789abcdef")
	f.Add(testSession().encode(key))
	short := testSession()
	short.Stream, short.Codecs = "a", ""
	f.Add(short.encode(key))
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, token string) {
		s, err := decodeSession(token, key, false)
		if err != nil {
			return
		}
		back, err := decodeSession(s.encode(key), key, true)
		if err != nil || *back != *s {
			t.Fatalf("%q: decoded %+v, re-encoded %+v (%v)", token, s, back, err)
		}
	})
}
