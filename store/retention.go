package store

import (
	"errors"
	"io/fs"
	"time"
)

// Retention deletes whole segments: a segment goes when its newest fragment's
// server timestamp is older than the stream's retention. So a fragment lives at
// least its retention and at most one segment's span longer (SegmentMaxAge),
// which is the seed service's promise ("at least"). A stream with retention 0
// keeps nothing: whatever it stored before its retention was lowered goes at
// the next run.

func (s *Store) retentionLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			s.EnforceRetention()
		}
	}
}

// EnforceRetention runs one retention pass over every stream now; the timer
// calls it, and tests call it with an injected clock. It returns how many
// segments it deleted.
func (s *Store) EnforceRetention() int {
	s.mu.RLock()
	streams := make([]*stream, 0, len(s.streams))
	for _, st := range s.streams {
		streams = append(streams, st)
	}
	s.mu.RUnlock()
	n := 0
	now := s.now().UnixNano()
	for _, st := range streams {
		n += st.enforceRetention(now, s.opts.DedupeHorizon)
	}
	return n
}

func (st *stream) enforceRetention(now int64, dedupeHorizon time.Duration) int {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	st.mu.RLock()
	cutoff := now - int64(st.info.Retention())
	deleted := st.deleted
	st.mu.RUnlock()
	if deleted {
		return 0
	}
	st.dedupe.prune(now - int64(dedupeHorizon))
	st.expireLive()
	removed := 0
	for {
		st.mu.RLock()
		if len(st.segments) == 0 {
			st.mu.RUnlock()
			break
		}
		seg := st.segments[0]
		sum, sealed := seg.sum, seg.sealed
		st.mu.RUnlock()
		if sum.lastServer >= cutoff {
			break
		}
		if !sealed && st.w != nil && st.w.path == seg.path {
			// The active segment has expired whole: seal it (which closes its
			// writer) so that it can go.
			if err := st.sealLocked(); err != nil {
				st.log.Error("store: retention: seal expired segment", "segment", seg.path, "err", err)
				break
			}
		}
		// An unsealed segment that no writer holds (the newest one found at
		// start-up, when its seal failed) has nothing to close: it just goes. The
		// active segment, if any, is another one and is left alone.
		st.idxMu.Lock() // no index rebuild writes this segment's index from now on
		st.mu.Lock()
		st.segments = st.segments[1:]
		st.mu.Unlock()
		st.s.cache.drop(seg.idxPath)
		// The index goes first: a segment without an index is rebuilt at start-up,
		// an index without its segment would describe data that is not there.
		if err := st.s.fs.Remove(seg.idxPath); err != nil && !errors.Is(err, fs.ErrNotExist) { // an unsealed segment has none
			st.log.Error("store: retention: remove index", "index", seg.idxPath, "err", err)
		}
		if err := st.s.fs.Remove(seg.path); err != nil {
			st.log.Error("store: retention: remove segment", "segment", seg.path, "err", err)
		}
		st.idxMu.Unlock()
		removed++
		st.s.metrics.segmentsExpired.Add(1)
	}
	if removed > 0 {
		if err := syncDirAt(st.s.fs, siteRetention, st.dir); err != nil {
			st.log.Warn("store: retention: sync dir", "dir", st.dir, "err", err)
		}
		st.log.Info("store: retention removed segments", "segments", removed)
	}
	return removed
}
