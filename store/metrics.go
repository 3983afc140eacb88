package store

import (
	"sync/atomic"
	"time"
)

// metrics are the store's own counters. The server exports them (Prometheus);
// the store does not depend on an exporter.
type metrics struct {
	fsyncs atomic.Int64
	// fileSystemSyncs counts flushes of the whole file system (SyncStreams);
	// fileSystemSyncFailures those that failed.
	fileSystemSyncs, fileSystemSyncFailures atomic.Int64
	fsyncNanos                              atomic.Int64
	fsyncMaxNanos                           atomic.Int64
	slowFsyncs                              atomic.Int64 // over slowFsync
	segmentsExpired                         atomic.Int64
	fsyncBuckets                            [len(fsyncBounds) + 1]atomic.Int64
}

// fsyncBounds are the upper bounds of the fsync latency histogram buckets.
var fsyncBounds = [...]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second,
}

// slowFsync is when an fsync is worth a log line: the disk is in trouble.
const slowFsync = time.Second

func newMetrics() *metrics { return &metrics{} }

func (m *metrics) observeFsync(d time.Duration) {
	m.fsyncs.Add(1)
	m.fsyncNanos.Add(int64(d))
	for {
		cur := m.fsyncMaxNanos.Load()
		if int64(d) <= cur || m.fsyncMaxNanos.CompareAndSwap(cur, int64(d)) {
			break
		}
	}
	i := 0
	for i < len(fsyncBounds) && d > fsyncBounds[i] {
		i++
	}
	m.fsyncBuckets[i].Add(1)
	if d > slowFsync {
		m.slowFsyncs.Add(1)
	}
}

// Stats is a snapshot of the store's counters.
type Stats struct {
	Fsyncs          int64
	FsyncTotal      time.Duration
	FsyncMax        time.Duration
	SlowFsyncs      int64
	SegmentsExpired int64
	// OpenSegmentFiles is the active segment files open now (at most
	// Options.MaxOpenSegments, openfiles.go); SegmentReopens counts the
	// reopens of files closed to keep under it.
	OpenSegmentFiles int
	SegmentReopens   int64
	// FileSystemSyncs counts flushes of the whole file system that made a
	// batch of streams durable at once (SyncStreams), FileSystemSyncFailures
	// those that failed (the batch was then fsynced file by file).
	FileSystemSyncs        int64
	FileSystemSyncFailures int64
	// FsyncBuckets[i] counts fsyncs that took at most FsyncBounds[i]; the last
	// counts the rest.
	FsyncBuckets []int64
	FsyncBounds  []time.Duration
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	m := s.metrics
	st := Stats{
		Fsyncs:                 m.fsyncs.Load(),
		FsyncTotal:             time.Duration(m.fsyncNanos.Load()),
		FsyncMax:               time.Duration(m.fsyncMaxNanos.Load()),
		SlowFsyncs:             m.slowFsyncs.Load(),
		SegmentsExpired:        m.segmentsExpired.Load(),
		FsyncBounds:            fsyncBounds[:],
		OpenSegmentFiles:       s.files.open(),
		SegmentReopens:         s.files.reopens.Load(),
		FileSystemSyncs:        m.fileSystemSyncs.Load(),
		FileSystemSyncFailures: m.fileSystemSyncFailures.Load(),
	}
	for i := range m.fsyncBuckets {
		st.FsyncBuckets = append(st.FsyncBuckets, m.fsyncBuckets[i].Load())
	}
	return st
}

// StreamUsage is what a stream holds.
type StreamUsage struct {
	Fragments int
	Bytes     int64 // segment bytes on disk
	Segments  int
}

// Usage returns what a stream holds now.
func (s *Store) Usage(name string) (StreamUsage, error) {
	st, err := s.stream(name)
	if err != nil {
		return StreamUsage{}, err
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	var u StreamUsage
	for _, seg := range st.segments {
		u.Fragments += seg.sum.count
		u.Bytes += seg.sum.size
		u.Segments++
	}
	return u, nil
}
