package api

// Media out (issue 13): GetClip (clip.go), HLS sessions (hls*.go) and the
// same sessions as MPEG-DASH (dash.go) — the
// seed service's archived-media operations that hand a stream's H.264 and
// AAC (or PCM) to ordinary players as MP4, remuxed from the stored Matroska
// fragments by mp4/remux, never re-encoded. docs/MEDIA-OUT.md is the
// user's guide. This file holds what both share: their routes, the
// service's error names for media that cannot be remuxed, the selection of
// a time range's fragments, and the routing of a session's GETs in a
// cluster.

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"sync"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/mp4/remux"
	"github.com/sensorium-io/sensorium/store"
)

// The grants' actions of media out: the service's IAM actions
// kinesisvideo:GetClip, GetHLSStreamingSessionURL and
// GetDASHStreamingSessionURL. A session's playlists and segments are
// authorized by its token, which only a key granted the session's action
// could have been given.
const (
	actionGetClip                    = awsauth.ActionGetClip
	actionGetHLSStreamingSessionURL  = awsauth.ActionGetHLSStreamingSessionURL
	actionGetDASHStreamingSessionURL = awsauth.ActionGetDASHStreamingSessionURL
)

// Error names of the archived-media API that httpwire does not list, with
// the service's status (400, as every refusal of a request's media).
const (
	missingCodecPrivateData = "MissingCodecPrivateDataException"
	invalidCodecPrivateData = "InvalidCodecPrivateDataException"
	invalidMediaFrame       = "InvalidMediaFrameException"
)

// mediaOutStatus is the status of the errors media out answers that
// httpwire's table does not give (or gives otherwise: the service answers an
// expired or forged session token with NotAuthorizedException and 403).
var mediaOutStatus = map[string]int{
	missingCodecPrivateData: http.StatusBadRequest,
	invalidCodecPrivateData: http.StatusBadRequest,
	invalidMediaFrame:       http.StatusBadRequest,
	httpwire.NotAuthorized:  http.StatusForbidden,
}

// remuxError names a remux error as the service does.
func remuxError(err error) error {
	var name string
	switch {
	case errors.Is(err, remux.ErrUnsupported):
		name = httpwire.UnsupportedStreamMediaType
	case errors.Is(err, remux.ErrMissingCodecPrivate):
		name = missingCodecPrivateData
	case errors.Is(err, remux.ErrInvalidCodecPrivate), errors.Is(err, remux.ErrTracksChanged):
		name = invalidCodecPrivateData
	case errors.Is(err, remux.ErrInvalidFrame):
		name = invalidMediaFrame
	default:
		return err
	}
	return httpwire.Errorf(name, "%v", err)
}

// writeMediaError answers err as writeError does, with the statuses of
// mediaOutStatus for the names httpwire does not know.
func writeMediaError(w http.ResponseWriter, err error) {
	e := ErrorOf(err)
	status, ok := mediaOutStatus[e.Name]
	if !ok {
		writeError(w, e)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-ErrorType", e.Name)
	w.WriteHeader(status)
	b, _ := json.Marshal(httpwire.ErrorBody{Type: e.Name, Message: e.Message})
	_, _ = w.Write(b)
}

// mediaOut is media out's state on one API: the HLS sessions' key, the
// table of their streams' active sessions and the live sessions' timelines. It is made when the API mounts its routes.
type mediaOut struct {
	a        *api
	key      []byte        // HMAC key of session tokens (hls_token.go)
	sessions *sessionTable // the streams' active sessions (hls_sessions.go)

	mu   sync.Mutex
	live map[[sessionIDLen]byte]*liveTimeline // by session id (hls_playlist.go)
}

func init() {
	// A player fetches a session's playlists and segments with the
	// session's token in the URL, unsigned (hlsGet checks the token).
	selfAuthenticatedPaths = append(selfAuthenticatedPaths, hlsPath, dashPath)
	mount(func(a *api, mux *http.ServeMux) {
		m := &mediaOut{a: a, key: sessionKey(a.opts.Auth), sessions: newSessionTable(), live: map[[sessionIDLen]byte]*liveTimeline{}}
		post := map[string]http.HandlerFunc{
			"/getClip":                   a.authorized(actionGetClip, bodyStream, a.routed(streamOfBody, m.getClip)),
			"/getHLSStreamingSessionURL": a.authorized(actionGetHLSStreamingSessionURL, bodyStream, a.routed(streamOfBody, m.getHLSStreamingSessionURL)),
		}
		for path, h := range post {
			mux.HandleFunc("POST "+path, h)
			mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
				writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "%s takes POST, not %s", path, r.Method))
			})
		}
		mux.HandleFunc("GET "+hlsPath+hlsMasterPlaylist, m.hlsGet(m.masterPlaylist))
		mux.HandleFunc("GET "+hlsPath+hlsMediaPlaylist, m.hlsGet(m.mediaPlaylist))
		mux.HandleFunc("GET "+hlsPath+hlsInit, m.hlsGet(m.initSegment))
		mux.HandleFunc("GET "+hlsPath+hlsSegment, m.hlsGet(m.mediaSegment))
		m.mountDASH(mux)
	})
}

// timeRange selects fragments by the start time of the basis (producer or
// server timestamp), both ends inclusive as the service's TimestampRange:
// "only fragments that start exactly at or after StartTimestamp", and
// "EndTimestamp is compared to the (starting) timestamp of the fragment".
type timeRange struct {
	basis      store.TimeBasis
	start, end int64 // ns; end math.MaxInt64 for none
}

func basisTime(f *store.FragmentInfo, basis store.TimeBasis) int64 {
	if basis == store.ServerTime {
		return f.ServerTime
	}
	return f.ProducerTime
}

// contains reports whether the fragment starts in the range.
func (tr *timeRange) contains(f *store.FragmentInfo) bool {
	t := basisTime(f, tr.basis)
	return t >= tr.start && t <= tr.end
}

// fragmentsIn returns up to limit fragments numbered from `from` on that
// start in the range, in number order.
func (m *mediaOut) fragmentsIn(name string, tr timeRange, from uint64, limit int) ([]store.FragmentInfo, error) {
	end := tr.end
	if end < math.MaxInt64 {
		end++ // store.Range's end is exclusive
	}
	var out []store.FragmentInfo
	for len(out) < limit {
		want := limit - len(out)
		frags, err := m.a.st.Range(name, tr.basis, tr.start, end, from, want)
		if err != nil {
			return nil, err
		}
		for i := range frags {
			// On producer time Range also gives fragments that began
			// before the start and reach into the range.
			if tr.contains(&frags[i]) {
				out = append(out, frags[i])
			}
		}
		if len(frags) < want {
			break
		}
		from = frags[len(frags)-1].Number + 1
	}
	return out, nil
}

// routedGet passes a session's GET to a node that holds the stream when
// this one does not, as routed does for a signed read; it reports whether
// it answered (then the caller does nothing more).
func (m *mediaOut) routedGet(w http.ResponseWriter, r *http.Request, stream string) bool {
	a := m.a
	if a.cluster == nil {
		return false
	}
	streams := []string{stream}
	if r.Header.Get(ForwardedHeader) != "" {
		if _, local, err := a.cluster.Route(r.Context(), streams); err != nil || !local {
			w.Header().Set(notServedHeader, a.cluster.Self())
			writeError(w, httpwire.Errorf(httpwire.ServiceUnavailable, "node %s has no live copy of %s", a.cluster.Self(), stream))
			return true
		}
		return false
	}
	targets, local, err := a.cluster.Route(r.Context(), streams)
	if err != nil {
		writeError(w, routeError(streams, err))
		return true
	}
	if local {
		return false
	}
	a.forward(w, r, targets, nil)
	return true
}
