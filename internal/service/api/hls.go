package api

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/service/throttle"
	"github.com/sensorium-io/sensorium/internal/service/usage"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/mp4"
	"github.com/sensorium-io/sensorium/mp4/remux"
	"github.com/sensorium-io/sensorium/store"
)

// GetHLSStreamingSessionURL (POST /getHLSStreamingSessionURL) and the
// session's GETs, as the seed service serves them: a master playlist that
// names one media playlist, whose segments are fragmented MP4 — an init
// segment (ftyp, moov) and one media segment (moof, mdat) per stored
// fragment, holding both tracks (H.264 and AAC). The playlists are
// described in docs/MEDIA-OUT.md.

// The session's paths, under hlsPath (listed in selfAuthenticatedPaths).
const (
	hlsPath           = "/hls/v1/"
	hlsMasterPlaylist = "getHLSMasterPlaylist.m3u8"
	hlsMediaPlaylist  = "getHLSMediaPlaylist.m3u8"
	hlsInit           = "getMP4InitFragment.mp4"
	hlsSegment        = "getMP4MediaFragment.mp4"
)

// The service's bounds of a session's parameters.
const (
	minSessionExpiry     = 300   // s
	maxSessionExpiry     = 43200 // s
	defaultSessionExpiry = 300
	maxPlaylistFragments = 5000
	defaultLiveFragments = 5
	defaultOnDemandFrags = 1000
	// liveWindow: a LIVE session needs a fragment this recent ("no
	// fragments within the last 30 seconds" is ResourceNotFound).
	liveWindow = 30 * time.Second
)

// getHLSInput is GetHLSStreamingSessionURL's request.
type getHLSInput struct {
	httpwire.StreamRef
	PlaybackMode        string
	ContainerFormat     string
	DiscontinuityMode   string
	DisplayFragmentTime string `json:"DisplayFragmentTimestamp"`
	Expires             *int64
	MaxResults          *int64 `json:"MaxMediaPlaylistFragmentResults"`
	HLSFragmentSelector *struct {
		FragmentSelectorType string
		TimestampRange       *struct {
			StartTimestamp httpwire.Timestamp
			EndTimestamp   httpwire.Timestamp
		}
	}
}

func storeBasis(b byte) store.TimeBasis {
	if store.TimeBasis(b) == store.ProducerTime {
		return store.ProducerTime
	}
	return store.ServerTime
}

// newSession checks a request and returns the session it asks for, before
// the stream is looked at.
func newSession(in *getHLSInput, now time.Time) (*hlsSession, error) {
	s := &hlsSession{Created: now.UnixNano(), Range: timeRange{basis: store.ServerTime, end: maxTime}}
	switch in.PlaybackMode {
	case "LIVE", "":
		s.Mode, s.Max = modeLive, defaultLiveFragments
	case "LIVE_REPLAY":
		s.Mode, s.Max = modeLiveReplay, defaultLiveFragments
	case "ON_DEMAND":
		s.Mode, s.Max = modeOnDemand, defaultOnDemandFrags
	default:
		return nil, httpwire.Errorf(httpwire.InvalidArgument, "PlaybackMode must be LIVE, LIVE_REPLAY or ON_DEMAND, not %q", in.PlaybackMode)
	}
	switch in.ContainerFormat {
	case "FRAGMENTED_MP4", "":
	case "MPEG_TS":
		return nil, httpwire.Errorf(httpwire.InvalidArgument, "ContainerFormat MPEG_TS is not served by this server; FRAGMENTED_MP4 (the default) plays in the same players")
	default:
		return nil, httpwire.Errorf(httpwire.InvalidArgument, "ContainerFormat must be FRAGMENTED_MP4 or MPEG_TS, not %q", in.ContainerFormat)
	}
	expires := int64(defaultSessionExpiry)
	if in.Expires != nil {
		expires = *in.Expires
	}
	if expires < minSessionExpiry || expires > maxSessionExpiry {
		return nil, httpwire.Errorf(httpwire.InvalidArgument, "Expires must be %d to %d seconds, not %d", minSessionExpiry, maxSessionExpiry, expires)
	}
	s.Expires = now.Unix() + expires
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > maxPlaylistFragments {
			return nil, httpwire.Errorf(httpwire.InvalidArgument, "MaxMediaPlaylistFragmentResults must be 1 to %d", maxPlaylistFragments)
		}
		s.Max = int(*in.MaxResults)
	}
	switch in.DisplayFragmentTime {
	case "ALWAYS":
		s.Display = true
	case "NEVER", "":
	default:
		return nil, httpwire.Errorf(httpwire.InvalidArgument, "DisplayFragmentTimestamp must be ALWAYS or NEVER, not %q", in.DisplayFragmentTime)
	}
	sel := in.HLSFragmentSelector
	typ := ""
	if sel != nil {
		typ = sel.FragmentSelectorType
	}
	hasRange := sel != nil && sel.TimestampRange != nil
	switch {
	case s.Mode == modeLive && hasRange:
		return nil, httpwire.Errorf(httpwire.InvalidArgument, "a LIVE session takes no TimestampRange (LIVE_REPLAY starts at a time)")
	case s.Mode != modeLive && !hasRange:
		return nil, httpwire.Errorf(httpwire.InvalidArgument, "an ON_DEMAND or LIVE_REPLAY session needs HLSFragmentSelector.TimestampRange")
	case hasRange:
		tr, err := selectorRange(typ, sel.TimestampRange.StartTimestamp, sel.TimestampRange.EndTimestamp, s.Mode == modeOnDemand, now)
		if err != nil {
			return nil, err
		}
		s.Range = tr
	default:
		if _, err := selectorRange(typ, httpwire.At(0), httpwire.Timestamp{}, false, now); err != nil {
			return nil, err // a bad FragmentSelectorType
		}
		if typ == "PRODUCER_TIMESTAMP" {
			s.Range.basis = store.ProducerTime
		}
	}
	// The service's default: ALWAYS on server time (whose fragments'
	// producer timestamps may overlap or leave gaps), NEVER on producer time.
	switch in.DiscontinuityMode {
	case "":
		if s.Range.basis == store.ProducerTime {
			s.Discontinuity = discontinuityNever
		}
	case "ALWAYS":
	case "NEVER":
		s.Discontinuity = discontinuityNever
	case "ON_DISCONTINUITY":
		s.Discontinuity = discontinuityOn
	default:
		return nil, httpwire.Errorf(httpwire.InvalidArgument, "DiscontinuityMode must be ALWAYS, NEVER or ON_DISCONTINUITY, not %q", in.DiscontinuityMode)
	}
	_, _ = rand.Read(s.ID[:])
	return s, nil
}

func (m *mediaOut) getHLSStreamingSessionURL(w http.ResponseWriter, r *http.Request) {
	var in getHLSInput
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	if s := m.startSession(w, r, &in, protoHLS); s != nil {
		writeJSON(w, struct {
			HLSStreamingSessionURL string
		}{sessionBase(r) + hlsPath + hlsMasterPlaylist + "?SessionToken=" + s.encode(m.key)})
	}
}

// sessionBase is the URL of the node the caller reached: the data
// endpoint it was given. A cluster node that does not hold the stream
// passes the session's requests on.
func sessionBase(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// startSession checks a session request (HLS's, or DASH's in its terms),
// finds its first fragments and probes them, and counts the session among
// its stream's active ones of its protocol (hls_sessions.go: the oldest past
// ten is closed); it answers a refusal itself and returns nil then.
func (m *mediaOut) startSession(w http.ResponseWriter, r *http.Request, in *getHLSInput, proto byte) *hlsSession {
	a := m.a
	now := time.Now()
	s, err := newSession(in, now)
	if err != nil {
		writeError(w, err)
		return nil
	}
	s.Proto = proto
	info, err := a.q.ResolveStream(ref(in.StreamRef))
	if err != nil {
		writeError(w, err)
		return nil
	}
	if info.RetentionHours == 0 {
		writeError(w, httpwire.Errorf(httpwire.NoDataRetention, "stream %s keeps no data (DataRetentionInHours 0): HLS plays stored fragments", info.Name))
		return nil
	}
	s.Stream, s.StreamCreated = info.Name, info.CreationTime.UnixMilli()
	// The first fragment of the session: ON_DEMAND and LIVE_REPLAY start at
	// their range's first; LIVE at the first of the newest Max.
	var first []store.FragmentInfo
	if s.Mode == modeLive {
		recent := timeRange{basis: store.ServerTime, start: now.Add(-liveWindow).UnixNano(), end: maxTime}
		if first, err = m.fragmentsIn(info.Name, recent, 0, math.MaxInt32); err == nil && len(first) > s.Max {
			first = first[len(first)-s.Max:]
		}
	} else {
		first, err = m.fragmentsIn(info.Name, s.Range, 0, 1)
	}
	if err != nil {
		writeError(w, err)
		return nil
	}
	if len(first) == 0 {
		if s.Mode == modeLive {
			writeError(w, httpwire.Errorf(httpwire.ResourceNotFound, "stream %s has no fragments from the last %s: a LIVE session needs a stream being put", info.Name, liveWindow))
		} else {
			writeError(w, httpwire.Errorf(httpwire.ResourceNotFound, "stream %s has no fragments that start in the requested TimestampRange", info.Name))
		}
		return nil
	}
	if err := a.limits.Allow(throttle.GetMediaConnections, info.Name, info.Tags); err != nil {
		writeError(w, err)
		return nil
	}
	if err := m.probe(s, first); err != nil {
		writeMediaError(w, err)
		return nil
	}
	// A new session is the newest, so it is admitted; the one it pushes past
	// the limit is refused from its next GET on.
	m.sessions.admit(s, now)
	return s
}

// probe reads the session's first fragment: its tracks must be ones a
// player plays (H.264, AAC), and it gives the codecs, picture size, decode
// delay and audio anchor every segment of the session is made with.
func (m *mediaOut) probe(s *hlsSession, frags []store.FragmentInfo) error {
	rd, err := m.a.st.NewReader(s.Stream)
	if err != nil {
		return err
	}
	defer rd.Close()
	for i, info := range frags {
		f, err := rd.Read(info)
		if skippable(err) && i+1 < len(frags) {
			continue
		}
		if err != nil {
			return err
		}
		rx, err := remux.New(f.Payload, remux.Options{DecodeDelay: -1})
		if err != nil {
			return remuxError(err)
		}
		if _, err := rx.Fragment(f.Payload); err != nil {
			return remuxError(err)
		}
		s.Anchor, s.Origin = info.Number, basisTime(&info, s.Range.basis)
		s.DecodeDelay, s.AudioAnchor = max(rx.DecodeDelay(), 0), rx.AudioAnchor()
		s.Codecs = rx.Movie().Codecs()
		s.TracksHash = tracksHash(f.Payload, rx)
		for _, t := range rx.Movie().Tracks {
			if w, h := pictureSize(t.Entry); w > 0 {
				s.Width, s.Height = w, h
			}
		}
		// BANDWIDTH is the peak: the largest of the first fragments, with
		// room for a busier scene.
		for _, fi := range frags {
			if fi.Duration > 0 {
				s.Bandwidth = max(s.Bandwidth, int(min(float64(fi.Size)*8e9/float64(fi.Duration)*1.5, math.MaxInt32)))
			}
			s.TargetDuration = max(s.TargetDuration, int(math.Ceil(time.Duration(fi.Duration).Seconds())))
		}
		s.Bandwidth = max(s.Bandwidth, 1)
		s.TargetDuration = max(s.TargetDuration, 1)
		return nil
	}
	return httpwire.Errorf(httpwire.ResourceNotFound, "the first fragments of stream %s can no longer be read", s.Stream)
}

// tracksHash identifies the codec private data of the remuxed tracks: a
// segment of a fragment with other data would not play with the session's
// init segment.
func tracksHash(payload []byte, rx *remux.Remuxer) [tracksHashLen]byte {
	h := sha256.New()
	rd := mkv.NewReader(bytesReader(payload))
	for {
		it, err := rd.Next()
		if err != nil || it.Kind == mkv.ItemClusterStart {
			break
		}
		if it.Kind == mkv.ItemTracks {
			for _, n := range rx.TrackNumbers() {
				if te := rd.Track(n); te != nil {
					h.Write([]byte(te.CodecID))
					h.Write([]byte{0})
					h.Write(te.CodecPrivate)
				}
			}
			break
		}
	}
	var out [tracksHashLen]byte
	copy(out[:], h.Sum(nil))
	return out
}

// openSession reads and checks the session of a GET: its token, its expiry,
// its stream. It answers the refusal itself and returns nil then.
func (m *mediaOut) openSession(w http.ResponseWriter, r *http.Request) *hlsSession {
	w.Header().Set("Access-Control-Allow-Origin", "*") // players on other pages; the token is the credential
	token := r.URL.Query().Get("SessionToken")
	if token == "" {
		writeMediaError(w, httpwire.Errorf(httpwire.MissingAuthenticationToken, "SessionToken is required: use the URL GetHLSStreamingSessionURL returned"))
		return nil
	}
	// Without credentials every node has a key of its own; a request another
	// node verified and passed on is taken as it is (such a server gives a
	// session to anyone who asks anyway).
	verify := !(m.a.opts.Auth == nil && m.a.cluster != nil && r.Header.Get(ForwardedHeader) != "")
	s, err := decodeSession(token, m.key, verify)
	if err != nil {
		writeMediaError(w, httpwire.Errorf(httpwire.NotAuthorized, "the SessionToken is %v", err))
		return nil
	}
	if time.Now().Unix() >= s.Expires {
		writeMediaError(w, httpwire.Errorf(httpwire.NotAuthorized, "the session expired at %s", time.Unix(s.Expires, 0).UTC().Format(time.RFC3339)))
		return nil
	}
	if m.routedGet(w, r, s.Stream) {
		return nil
	}
	info, err := m.a.q.ResolveStream(store.StreamRef{Name: s.Stream})
	if err == nil && info.CreationTime.UnixMilli() != s.StreamCreated {
		err = httpwire.Errorf(httpwire.ResourceNotFound, "stream %s was deleted since the session began", s.Stream)
	}
	if err != nil {
		writeError(w, err)
		return nil
	}
	api, proto := usage.HLS, protoHLS // playlists and segments alike: what the session sends
	if strings.HasPrefix(r.URL.Path, dashPath) {
		api, proto = usage.DASH, protoDASH
	}
	if s.Proto != proto {
		writeMediaError(w, httpwire.Errorf(httpwire.NotAuthorized, "the SessionToken is a %s session's: use it at the URL its %s call returned",
			protoName(s.Proto), protoName(s.Proto)))
		return nil
	}
	// Checked here, on the node that serves the stream (after routedGet), so
	// that the node which counts the session's GETs is the one that made it.
	if !m.sessions.admit(s, time.Now()) {
		writeMediaError(w, httpwire.Errorf(httpwire.NotAuthorized, "the session was closed: stream %s has had %d newer %s sessions since, the most it keeps active (start a new session)",
			s.Stream, maxActiveSessions, protoName(s.Proto)))
		return nil
	}
	m.a.meterAs(r, s.Stream, api)
	return s
}

func protoName(p byte) string {
	if p == protoDASH {
		return "DASH"
	}
	return "HLS"
}

// hlsGet wraps a session GET's handler with the session's checks.
func (m *mediaOut) hlsGet(h func(w http.ResponseWriter, r *http.Request, s *hlsSession)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s := m.openSession(w, r); s != nil {
			h(w, r, s)
		}
	}
}

// initSegment serves the init segment, made from the session's first
// fragment (or, retention having removed it, the first one left).
func (m *mediaOut) initSegment(w http.ResponseWriter, r *http.Request, s *hlsSession) {
	rd, err := m.a.st.NewReader(s.Stream)
	if err != nil {
		writeError(w, err)
		return
	}
	defer rd.Close()
	frags, err := m.a.st.Fragments(s.Stream, s.Anchor, 8)
	if err != nil {
		writeError(w, err)
		return
	}
	for _, info := range frags {
		f, err := rd.Read(info)
		if skippable(err) {
			continue
		}
		if err != nil {
			writeError(w, err)
			return
		}
		rx, err := m.sessionRemuxer(s, f.Payload)
		if err != nil {
			writeMediaError(w, err)
			return
		}
		movie := *rx.Movie()
		if id, ok, err := trackParam(r, &movie); err != nil {
			writeError(w, err)
			return
		} else if ok {
			movie.Tracks = slices.DeleteFunc(slices.Clone(movie.Tracks), func(t mp4.Track) bool { return t.ID != id })
		}
		init, err := mp4.AppendInit(nil, &movie)
		if err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "video/mp4")
		w.Header().Set("Content-Length", strconv.Itoa(len(init)))
		_, _ = w.Write(init)
		return
	}
	writeError(w, httpwire.Errorf(httpwire.ResourceNotFound, "stream %s no longer holds the session's fragments", s.Stream))
}

// sessionRemuxer makes the Remuxer of one of the session's fragments, with
// the session's timing, and checks that its tracks are the session's.
func (m *mediaOut) sessionRemuxer(s *hlsSession, payload []byte) (*remux.Remuxer, error) {
	rx, err := remux.New(payload, remux.Options{DecodeDelay: s.DecodeDelay, AudioAnchor: s.AudioAnchor})
	if err != nil {
		return nil, remuxError(err)
	}
	if tracksHash(payload, rx) != s.TracksHash {
		return nil, httpwire.Errorf(invalidCodecPrivateData, "this fragment's tracks or codec private data differ from the session's first fragment; start a new session to play it")
	}
	return rx, nil
}

// mediaSegment serves one fragment as a media segment.
func (m *mediaOut) mediaSegment(w http.ResponseWriter, r *http.Request, s *hlsSession) {
	a := m.a
	n, err := strconv.ParseUint(r.URL.Query().Get("FragmentNumber"), 10, 64)
	if err != nil {
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "FragmentNumber must be a fragment number of the session's playlist"))
		return
	}
	info, err := a.st.Fragment(s.Stream, n)
	if err == nil && (n < s.Anchor || s.Mode != modeLive && !s.Range.contains(&info)) {
		err = httpwire.Errorf(httpwire.ResourceNotFound, "fragment %d is not in this session", n)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	sinfo, err := a.q.ResolveStream(store.StreamRef{Name: s.Stream})
	if err != nil {
		writeError(w, err)
		return
	}
	// A segment is a read of the stream's media: GetMedia's limits.
	if err := a.limits.Allow(throttle.GetMediaConnections, s.Stream, sinfo.Tags); err != nil {
		writeError(w, err)
		return
	}
	release, err := a.holdMediaConnection(s.Stream)
	if err != nil {
		writeError(w, err)
		return
	}
	defer release()
	rd, err := a.st.NewReader(s.Stream)
	if err != nil {
		writeError(w, err)
		return
	}
	defer rd.Close()
	f, err := rd.Read(info)
	if skippable(err) {
		err = httpwire.Errorf(httpwire.ResourceNotFound, "fragment %d can no longer be read (%v)", n, err)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	rx, err := m.sessionRemuxer(s, f.Payload)
	if err != nil {
		writeMediaError(w, err)
		return
	}
	mf, err := rx.Fragment(f.Payload)
	if err == nil && len(mf.Runs) == 0 {
		err = remux.ErrInvalidFrame
	}
	if err != nil {
		writeMediaError(w, remuxError(err))
		return
	}
	if id, ok, err := trackParam(r, rx.Movie()); err != nil {
		writeError(w, err)
		return
	} else if ok {
		mf.Runs = slices.DeleteFunc(mf.Runs, func(run mp4.Run) bool { return run.Track != id })
		if len(mf.Runs) == 0 {
			writeError(w, httpwire.Errorf(httpwire.ResourceNotFound, "fragment %d holds no frame of track %d", n, id))
			return
		}
	}
	mf.Sequence = uint32(n)
	header, err := mf.AppendHeader(nil)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "video/mp4")
	w.Header().Set("Content-Length", strconv.FormatInt(int64(len(header))+mf.DataSize(), 10))
	out := a.limits.Writer(r.Context(), throttle.GetMediaBytes, s.Stream, sinfo.Tags, w)
	if _, err := out.Write(header); err == nil {
		for _, run := range mf.Runs {
			if _, err := out.Write(run.Data); err != nil {
				break
			}
		}
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// pictureSize is a video entry's picture size; 0 for audio.
func pictureSize(e mp4.SampleEntry) (int, int) {
	if v, ok := e.(*mp4.AVC); ok {
		return v.Width, v.Height
	}
	return 0, 0
}

// trackParam reads the TrackNumber of a DASH segment's URL (an MP4 track
// ID of the session's movie: 1 the video, or the audio without video; 2
// the audio); ok is false without one (HLS: every track).
func trackParam(r *http.Request, movie *mp4.Movie) (uint32, bool, error) {
	v := r.URL.Query().Get("TrackNumber")
	if v == "" {
		return 0, false, nil
	}
	id, err := strconv.ParseUint(v, 10, 32)
	if err == nil {
		for _, t := range movie.Tracks {
			if t.ID == uint32(id) {
				return t.ID, true, nil
			}
		}
	}
	return 0, false, httpwire.Errorf(httpwire.InvalidArgument, "TrackNumber %q is not a track of the session", v)
}
