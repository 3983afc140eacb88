package api

import (
	"fmt"
	"html"
	"net/http"
	"strings"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
)

// GetDASHStreamingSessionURL (POST /getDASHStreamingSessionURL): the same
// sessions as HLS (hls.go: the token, the modes, the timelines), described
// by an MPEG-DASH manifest instead of playlists. DASH players want one
// track per representation, so a DASH segment is one track of a stored
// fragment (TrackNumber=1 the video, 2 the audio): an AdaptationSet per
// track, each a SegmentList of the session's fragments with their times in
// a SegmentTimeline (milliseconds; a segment's earliest presentation time is
// its fragment's producer timestamp, which is its tfdt's clock).

const (
	dashPath     = "/dash/v1/"
	dashManifest = "getDASHManifest.mpd"
)

// getDASHInput is GetDASHStreamingSessionURL's request.
type getDASHInput struct {
	httpwire.StreamRef
	PlaybackMode             string
	DisplayFragmentTimestamp string
	DisplayFragmentNumber    string
	Expires                  *int64
	MaxResults               *int64 `json:"MaxManifestFragmentResults"`
	DASHFragmentSelector     *struct {
		FragmentSelectorType string
		TimestampRange       *struct {
			StartTimestamp httpwire.Timestamp
			EndTimestamp   httpwire.Timestamp
		}
	}
}

// mountDASH adds DASH's routes (mediaout.go's mount calls it).
func (m *mediaOut) mountDASH(mux *http.ServeMux) {
	a := m.a
	h := a.authorized(actionGetDASHStreamingSessionURL, bodyStream, a.routed(streamOfBody, m.getDASHStreamingSessionURL))
	mux.HandleFunc("POST /getDASHStreamingSessionURL", h)
	mux.HandleFunc("/getDASHStreamingSessionURL", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "/getDASHStreamingSessionURL takes POST, not %s", r.Method))
	})
	mux.HandleFunc("GET "+dashPath+dashManifest, m.hlsGet(m.dashManifest))
	mux.HandleFunc("GET "+dashPath+hlsInit, m.hlsGet(m.initSegment))
	mux.HandleFunc("GET "+dashPath+hlsSegment, m.hlsGet(m.mediaSegment))
}

func (m *mediaOut) getDASHStreamingSessionURL(w http.ResponseWriter, r *http.Request) {
	var in getDASHInput
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	switch in.DisplayFragmentNumber {
	case "", "ALWAYS", "NEVER": // fragment numbers are in every segment's URL anyway
	default:
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "DisplayFragmentNumber must be ALWAYS or NEVER, not %q", in.DisplayFragmentNumber))
		return
	}
	// A DASH timeline has no discontinuity markers: a gap is a gap.
	hin := getHLSInput{StreamRef: in.StreamRef, PlaybackMode: in.PlaybackMode, DisplayFragmentTime: in.DisplayFragmentTimestamp,
		Expires: in.Expires, MaxResults: in.MaxResults, DiscontinuityMode: "NEVER"}
	if sel := in.DASHFragmentSelector; sel != nil {
		hin.HLSFragmentSelector = &struct {
			FragmentSelectorType string
			TimestampRange       *struct {
				StartTimestamp httpwire.Timestamp
				EndTimestamp   httpwire.Timestamp
			}
		}{sel.FragmentSelectorType, sel.TimestampRange}
	}
	if s := m.startSession(w, r, &hin, protoDASH); s != nil {
		writeJSON(w, struct {
			DASHStreamingSessionURL string
		}{sessionBase(r) + dashPath + dashManifest + "?SessionToken=" + s.encode(m.key)})
	}
}

// dashManifest writes the session's MPD: static for ON_DEMAND (and a
// LIVE_REPLAY past its end), dynamic otherwise, updated every second, its
// segments available from their producer time on the wall clock.
func (m *mediaOut) dashManifest(w http.ResponseWriter, r *http.Request, s *hlsSession) {
	var (
		segs  []segment
		ended bool
		err   error
		now   = time.Now()
	)
	if s.Mode == modeOnDemand {
		segs, err = m.onDemand(s)
		ended = true
	} else {
		segs, _, _, ended, err = m.timeline(s, now)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if len(segs) == 0 {
		writeError(w, httpwire.Errorf(httpwire.ResourceNotFound, "the session's fragments are no longer stored"))
		return
	}
	token := html.EscapeString(r.URL.Query().Get("SessionToken"))
	ms := func(ns int64) int64 { return ns / int64(time.Millisecond) }
	first := ms(segs[0].ProducerTime)
	last := &segs[len(segs)-1]
	span := time.Duration(last.ProducerEnd() - segs[0].ProducerTime)
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" minBufferTime="PT2S"`)
	pto := first
	if ended {
		fmt.Fprintf(&b, ` type="static" mediaPresentationDuration="%s">`+"\n", isoDuration(span))
	} else {
		// Times on the Unix epoch: a segment is available once the wall
		// clock has passed its end, as the producer's clock says.
		pto = 0
		fmt.Fprintf(&b, ` type="dynamic" availabilityStartTime="1970-01-01T00:00:00Z" publishTime="%s" minimumUpdatePeriod="PT1S" timeShiftBufferDepth="%s" suggestedPresentationDelay="PT%dS">`+"\n",
			now.UTC().Format("2006-01-02T15:04:05Z"), isoDuration(span), 3*max(s.TargetDuration, 1))
	}
	b.WriteString(`<Period id="0" start="PT0S">` + "\n")
	for i, codec := range strings.Split(s.Codecs, ",") {
		track := i + 1
		kind, mime := "audio", "audio/mp4"
		if strings.HasPrefix(codec, "avc1") {
			kind, mime = "video", "video/mp4"
		}
		fmt.Fprintf(&b, `<AdaptationSet id="%d" contentType="%s" mimeType="%s" segmentAlignment="true" startWithSAP="1">`+"\n", track, kind, mime)
		fmt.Fprintf(&b, `<Representation id="%d" codecs="%s" bandwidth="%d"`, track, codec, s.Bandwidth)
		if kind == "video" && s.Width > 0 {
			fmt.Fprintf(&b, ` width="%d" height="%d"`, s.Width, s.Height)
		}
		b.WriteString(">\n")
		fmt.Fprintf(&b, `<SegmentList timescale="1000" presentationTimeOffset="%d">`+"\n", pto)
		fmt.Fprintf(&b, `<Initialization sourceURL="%s?TrackNumber=%d&amp;SessionToken=%s"/>`+"\n", hlsInit, track, token)
		b.WriteString("<SegmentTimeline>\n")
		for j := range segs {
			fmt.Fprintf(&b, `<S t="%d" d="%d"/>`+"\n", ms(segs[j].ProducerTime), max(ms(segs[j].Duration), 1))
		}
		b.WriteString("</SegmentTimeline>\n")
		for j := range segs {
			fmt.Fprintf(&b, `<SegmentURL media="%s?FragmentNumber=%d&amp;TrackNumber=%d&amp;SessionToken=%s"/>`+"\n", hlsSegment, segs[j].Number, track, token)
		}
		b.WriteString("</SegmentList>\n</Representation>\n</AdaptationSet>\n")
	}
	b.WriteString("</Period>\n</MPD>\n")
	w.Header().Set("Content-Type", "application/dash+xml")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write([]byte(b.String()))
}

// isoDuration writes d as an ISO 8601 duration in seconds (PT12.345S).
func isoDuration(d time.Duration) string { return fmt.Sprintf("PT%.3fS", d.Seconds()) }
