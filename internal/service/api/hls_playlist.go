package api

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sensorium-io/sensorium/store"
)

// The playlists (RFC 8216, protocol version 7 for fragmented MP4 with
// EXT-X-MAP). A session's timeline is the sequence of its fragments in
// fragment-number order, from its first (the token's anchor): ON_DEMAND's
// ends at its range's end or MaxMediaPlaylistFragmentResults; LIVE's grows
// with every fragment stored; LIVE_REPLAY's from its start time, a fragment
// appearing once as much time has passed since the session began as lies
// between it and the first, up to the range's end (or, without one, for
// as long as the session lasts). Live playlists show the newest Max of the
// timeline; a segment's media sequence number is its place in the timeline,
// so that a player polling the playlist sees each fragment once.

// masterPlaylist names the one media playlist, with its codecs, picture
// size and peak bandwidth.
func (m *mediaOut) masterPlaylist(w http.ResponseWriter, r *http.Request, s *hlsSession) {
	token := r.URL.Query().Get("SessionToken")
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,CODECS=\"%s\"", s.Bandwidth, s.Codecs)
	if s.Width > 0 {
		fmt.Fprintf(&b, ",RESOLUTION=%dx%d", s.Width, s.Height)
	}
	fmt.Fprintf(&b, "\n%s?SessionToken=%s\n", hlsMediaPlaylist, token)
	writePlaylist(w, b.String())
}

func writePlaylist(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write([]byte(body))
}

// segment is one entry of a media playlist.
type segment struct {
	store.FragmentInfo
	disc bool // a discontinuity precedes it
}

// liveTimeline is how far a live session's timeline has been walked: the
// newest Max of its fragments, the count before them, and where to go on.
type liveTimeline struct {
	mu       sync.Mutex // one walker at a time; guards the fields up to ended
	next     uint64     // the fragment number to walk on from
	count    uint64     // the timeline's fragments so far
	discs    uint64     // discontinuities before the window's first
	window   []segment  // the newest, at most Max
	lastEnd  int64      // producer end of the timeline's last fragment, for ON_DISCONTINUITY
	ended    bool       // LIVE_REPLAY reached its range's end
	expires  int64      // immutable
	lastUsed time.Time  // guarded by mediaOut.mu
}

// maxLiveTimelines bounds the timelines kept; one evicted is walked again
// from its session's anchor when its player comes back.
const maxLiveTimelines = 10000

// timeline returns the session's live timeline walked up to now.
func (m *mediaOut) timeline(s *hlsSession, now time.Time) (segs []segment, first uint64, discs uint64, ended bool, err error) {
	m.mu.Lock()
	tl := m.live[s.ID]
	if tl == nil {
		tl = &liveTimeline{next: s.Anchor, expires: s.Expires, lastEnd: -1}
		if len(m.live) >= maxLiveTimelines {
			m.evictLocked(now)
		}
		m.live[s.ID] = tl
	}
	tl.lastUsed = now // under m.mu, as evictLocked reads it
	m.mu.Unlock()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for !tl.ended {
		frags, err := m.a.st.Fragments(s.Stream, tl.next, 256)
		if err != nil {
			return nil, 0, 0, false, err
		}
		stop := false
		for i := range frags {
			f := &frags[i]
			if s.Mode == modeLiveReplay {
				t := basisTime(f, s.Range.basis)
				if t < s.Range.start {
					tl.next = f.Number + 1
					continue
				}
				if t > s.Range.end {
					tl.ended = true
					break
				}
				if time.Duration(t-s.Origin) > now.Sub(time.Unix(0, s.Created)) {
					stop = true // not yet due
					break
				}
			}
			seg := segment{FragmentInfo: *f, disc: tl.count > 0 && discontinuous(s.Discontinuity, tl.lastEnd, f.ProducerTime)}
			tl.window = append(tl.window, seg)
			if len(tl.window) > s.Max {
				if tl.window[0].disc {
					tl.discs++
				}
				tl.window = append(tl.window[:0], tl.window[1:]...)
			}
			tl.count++
			tl.lastEnd = f.ProducerEnd()
			tl.next = f.Number + 1
		}
		if stop || tl.ended || len(frags) < 256 {
			break
		}
	}
	discs = tl.discs
	if len(tl.window) > 0 && tl.window[0].disc {
		discs++ // the window's first is shown without its tag: the sequence counts it
	}
	return append([]segment(nil), tl.window...), tl.count - uint64(len(tl.window)), discs, tl.ended, nil
}

// evictLocked drops expired timelines, or else the least recently used.
func (m *mediaOut) evictLocked(now time.Time) {
	var oldest [sessionIDLen]byte
	var at time.Time
	for id, tl := range m.live {
		if tl.expires <= now.Unix() {
			delete(m.live, id)
			continue
		}
		if at.IsZero() || tl.lastUsed.Before(at) {
			oldest, at = id, tl.lastUsed
		}
	}
	if len(m.live) >= maxLiveTimelines {
		delete(m.live, oldest)
	}
}

// discontinuous says whether a discontinuity goes before a fragment that
// starts at start after one that ended at prevEnd.
func discontinuous(mode byte, prevEnd, start int64) bool {
	switch mode {
	case discontinuityAlways:
		return true
	case discontinuityOn:
		return prevEnd >= 0 && abs64(start-prevEnd) > int64(50*time.Millisecond)
	}
	return false
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// onDemand is an ON_DEMAND session's timeline: the range's first Max
// fragments, of equal producer timestamps only the newest (as the service
// dedupes a producer's re-sends on producer time).
func (m *mediaOut) onDemand(s *hlsSession) ([]segment, error) {
	frags, err := m.fragmentsIn(s.Stream, s.Range, s.Anchor, s.Max)
	if err != nil {
		return nil, err
	}
	var segs []segment
	prevEnd := int64(-1)
	for i := range frags {
		f := &frags[i]
		if s.Range.basis == store.ProducerTime && i+1 < len(frags) && frags[i+1].ProducerTime == f.ProducerTime {
			continue
		}
		segs = append(segs, segment{FragmentInfo: *f, disc: len(segs) > 0 && discontinuous(s.Discontinuity, prevEnd, f.ProducerTime)})
		prevEnd = f.ProducerEnd()
	}
	return segs, nil
}

// mediaPlaylist lists the session's segments.
func (m *mediaOut) mediaPlaylist(w http.ResponseWriter, r *http.Request, s *hlsSession) {
	var (
		segs   []segment
		first  uint64
		discs  uint64
		ended  bool
		err    error
		onDemd = s.Mode == modeOnDemand
	)
	if onDemd {
		segs, err = m.onDemand(s)
		ended = true
	} else {
		segs, first, discs, ended, err = m.timeline(s, time.Now())
	}
	if err != nil {
		writeError(w, err)
		return
	}
	token := r.URL.Query().Get("SessionToken")
	target := s.TargetDuration
	for i := range segs {
		target = max(target, int(math.Round(time.Duration(segs[i].Duration).Seconds())))
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:%d\n", max(target, 1), first)
	if discs > 0 {
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", discs)
	}
	if onDemd {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
	}
	fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s?SessionToken=%s\"\n", hlsInit, token)
	for i := range segs {
		seg := &segs[i]
		if seg.disc && i > 0 {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if s.Display {
			t := time.Unix(0, basisTime(&seg.FragmentInfo, s.Range.basis)).UTC()
			fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", t.Format("2006-01-02T15:04:05.000Z"))
		}
		fmt.Fprintf(&b, "#EXTINF:%.3f,\n%s?FragmentNumber=%d&SessionToken=%s\n",
			time.Duration(seg.Duration).Seconds(), hlsSegment, seg.Number, token)
	}
	if ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	writePlaylist(w, b.String())
}
