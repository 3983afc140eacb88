package api

import (
	"bufio"
	"errors"
	"net/http"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/service/throttle"
	"github.com/sensorium-io/sensorium/internal/service/usage"
	"github.com/sensorium-io/sensorium/mp4"
	"github.com/sensorium-io/sensorium/mp4/remux"
	"github.com/sensorium-io/sensorium/store"
)

// GetClip (POST /getClip): an MP4 of a time range, as the seed service's
// archived-media API cuts it. The clip is a fragmented MP4 (moov first,
// then a movie fragment per stored fragment, then an mfra), written as the
// fragments are read: the memory a clip takes is one fragment's, whatever
// its length. Its media times start at 0.

// The service's limits: "the first 100 MB or the first 200 fragments from
// the specified start timestamp". Bytes are the fragments' as stored (their
// Matroska, as ListFragments' FragmentSizeInBytes counts them), so that the
// clip's fragments are known before its first byte goes out.
const (
	maxClipFragments = 200
	maxClipBytes     = 100_000_000
	maxClipSpan      = 24 * time.Hour // EndTimestamp "must be within 24 hours of the specified StartTimestamp"
)

// getClipInput is GetClip's request.
type getClipInput struct {
	httpwire.StreamRef
	ClipFragmentSelector *struct {
		FragmentSelectorType string
		TimestampRange       *struct {
			StartTimestamp httpwire.Timestamp
			EndTimestamp   httpwire.Timestamp
		}
	}
}

// selectorRange checks a FragmentSelectorType and TimestampRange as GetClip
// and ON_DEMAND sessions take them: both ends, end after start, within 24
// hours, and on server time not in the future.
func selectorRange(typ string, start, end httpwire.Timestamp, endRequired bool, now time.Time) (timeRange, error) {
	tr := timeRange{end: maxTime}
	switch typ {
	case "PRODUCER_TIMESTAMP":
		tr.basis = store.ProducerTime
	case "SERVER_TIMESTAMP", "":
		tr.basis = store.ServerTime
	default:
		return tr, httpwire.Errorf(httpwire.InvalidArgument, "FragmentSelectorType must be PRODUCER_TIMESTAMP or SERVER_TIMESTAMP, not %q", typ)
	}
	if !start.Set {
		return tr, httpwire.Errorf(httpwire.InvalidArgument, "TimestampRange.StartTimestamp is required")
	}
	tr.start = start.NS
	if !end.Set {
		if endRequired {
			return tr, httpwire.Errorf(httpwire.InvalidArgument, "TimestampRange.EndTimestamp is required")
		}
		return tr, nil
	}
	tr.end = end.NS
	switch {
	case tr.end <= tr.start:
		return tr, httpwire.Errorf(httpwire.InvalidArgument, "TimestampRange.EndTimestamp must be later than StartTimestamp")
	case time.Duration(tr.end-tr.start) > maxClipSpan:
		return tr, httpwire.Errorf(httpwire.InvalidArgument, "TimestampRange spans %s; EndTimestamp must be within 24 hours of StartTimestamp",
			time.Duration(tr.end-tr.start).Round(time.Second))
	case tr.basis == store.ServerTime && tr.end > now.UnixNano():
		return tr, httpwire.Errorf(httpwire.InvalidArgument, "with SERVER_TIMESTAMP, TimestampRange.EndTimestamp must be in the past")
	}
	return tr, nil
}

// maxTime is an open end.
const maxTime = int64(^uint64(0) >> 1)

// clipFragments cuts a range's fragments to the service's limits: at most
// maxCount, and no more than maxBytes of them — but always the first.
func clipFragments(frags []store.FragmentInfo, maxCount int, maxBytes int64) []store.FragmentInfo {
	var total int64
	for i := range frags {
		total += int64(frags[i].Size)
		if i >= maxCount || (i > 0 && total > maxBytes) {
			return frags[:i]
		}
	}
	return frags
}

func (m *mediaOut) getClip(w http.ResponseWriter, r *http.Request) {
	a := m.a
	var in getClipInput
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	sel := in.ClipFragmentSelector
	if sel == nil || sel.TimestampRange == nil {
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "ClipFragmentSelector with a FragmentSelectorType and a TimestampRange is required"))
		return
	}
	if sel.FragmentSelectorType == "" {
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "ClipFragmentSelector.FragmentSelectorType is required"))
		return
	}
	tr, err := selectorRange(sel.FragmentSelectorType, sel.TimestampRange.StartTimestamp, sel.TimestampRange.EndTimestamp, true, time.Now())
	if err != nil {
		writeError(w, err)
		return
	}
	info, err := a.q.ResolveStream(ref(in.StreamRef))
	if err != nil {
		writeError(w, err)
		return
	}
	if info.RetentionHours == 0 {
		writeError(w, httpwire.Errorf(httpwire.NoDataRetention, "stream %s keeps no data (DataRetentionInHours 0): there is nothing to cut a clip from", info.Name))
		return
	}
	frags, err := m.fragmentsIn(info.Name, tr, 0, maxClipFragments)
	if err != nil {
		writeError(w, err)
		return
	}
	if len(frags) == 0 {
		writeError(w, httpwire.Errorf(httpwire.ResourceNotFound, "stream %s has no fragments that start in the requested TimestampRange", info.Name))
		return
	}
	frags = clipFragments(frags, maxClipFragments, maxClipBytes)
	// GetMedia's limits: calls per second per stream and responses open at
	// once, then its bytes per second.
	if err := a.limits.Allow(throttle.GetMediaConnections, info.Name, info.Tags); err != nil {
		writeError(w, err)
		return
	}
	release, err := a.holdMediaConnection(info.Name)
	if err != nil {
		writeError(w, err)
		return
	}
	defer release()

	rd, err := a.st.NewReader(info.Name)
	if err != nil {
		writeError(w, err)
		return
	}
	defer rd.Close()
	// The first fragment that can be read says the tracks; the errors of a
	// stream a player cannot play go out before the response starts.
	var rx *remux.Remuxer
	for len(frags) > 0 && rx == nil {
		f, err := rd.Read(frags[0])
		if err != nil {
			if !skippable(err) {
				writeError(w, err)
				return
			}
			a.log.Warn("api: GetClip skips a fragment it cannot read", "stream", info.Name, "fragment", frags[0].Number, "err", err)
			frags = frags[1:]
			continue
		}
		if rx, err = remux.New(f.Payload, remux.Options{Relative: true, PCM: true, DecodeDelay: -1}); err != nil {
			writeMediaError(w, remuxError(err))
			return
		}
	}
	if rx == nil {
		writeError(w, httpwire.Errorf(httpwire.ResourceNotFound, "the fragments of stream %s in the requested TimestampRange can no longer be read (retention removed them)", info.Name))
		return
	}
	movie := rx.Movie()
	last := frags[len(frags)-1]
	movie.Duration = time.Duration(last.ProducerEnd() - frags[0].ProducerTime)

	a.meterAs(r, info.Name, usage.GetClip)
	w.Header().Set("Content-Type", "video/mp4")
	w.WriteHeader(http.StatusOK)
	out := bufio.NewWriterSize(a.limits.Writer(r.Context(), throttle.GetMediaBytes, info.Name, info.Tags, w), 64<<10)
	if err := m.writeClip(out, rd, rx, frags, info.Name); err != nil && r.Context().Err() == nil {
		a.log.Warn("api: GetClip ended with an error", "stream", info.Name, "err", err)
	}
}

// skippable says whether a fragment that cannot be read is left out of a
// clip or a session (damaged, or removed by retention since it was listed),
// rather than ending it.
func skippable(err error) bool {
	var ce *store.CorruptionError
	return errors.As(err, &ce) || errors.Is(err, store.ErrFragmentGone)
}

// writeClip writes the clip: the init segment, a movie fragment per stored
// fragment, the mfra. The first fragment whose tracks differ from the
// first's ends it: the service refuses a range whose codec private data
// changes, but a response that has begun cannot become an error.
func (m *mediaOut) writeClip(out *bufio.Writer, rd *store.Reader, rx *remux.Remuxer, frags []store.FragmentInfo, stream string) error {
	mw, err := mp4.NewWriter(out, rx.Movie())
	if err != nil {
		return err
	}
	for _, info := range frags {
		f, err := rd.Read(info)
		if err != nil {
			if skippable(err) {
				m.a.log.Warn("api: GetClip skips a fragment it cannot read", "stream", stream, "fragment", info.Number, "err", err)
				continue
			}
			return err
		}
		mf, err := rx.Fragment(f.Payload)
		if errors.Is(err, remux.ErrTracksChanged) {
			m.a.log.Warn("api: GetClip ends before a fragment whose tracks changed", "stream", stream, "fragment", info.Number, "err", err)
			break
		}
		if err != nil {
			m.a.log.Warn("api: GetClip skips a fragment it cannot remux", "stream", stream, "fragment", info.Number, "err", err)
			continue
		}
		if len(mf.Runs) == 0 {
			continue
		}
		if err := mw.WriteFragment(mf); err != nil {
			return err
		}
	}
	if err := mw.Close(); err != nil {
		return err
	}
	return out.Flush()
}
