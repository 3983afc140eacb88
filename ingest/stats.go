package ingest

import (
	"sync/atomic"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
)

// Stats are the ingester's counters, exported by the server as metrics.
type Stats struct {
	Persisted      atomic.Int64
	PersistedBytes atomic.Int64
	Duplicates     atomic.Int64
	LiveOnly       atomic.Int64
	StoreFailures  atomic.Int64
	Retries        atomic.Int64 // fragments held back for a predecessor that had not arrived
	DiskFull       atomic.Bool  // the disk guard has closed the bus to new fragments
	DiskFullPauses atomic.Int64 // how often it did
	// ChunksAbandoned counts chunks dropped because their fragment's last
	// chunk never came (chunks.go).
	ChunksAbandoned atomic.Int64
	Errors          map[wire.ErrorCode]int64 // guarded by Ingester.mu

	latencyNanos atomic.Int64
	latencyCount atomic.Int64
}

func (s *Stats) observeLatency(d time.Duration) {
	s.latencyNanos.Add(int64(d))
	s.latencyCount.Add(1)
}

// Snapshot is a copy of the counters.
type Snapshot struct {
	Persisted, PersistedBytes, Duplicates, LiveOnly, StoreFailures, Retries int64
	Errors                                                                  map[wire.ErrorCode]int64
	// DiskFull is true while the disk guard keeps new fragments out of the
	// bus; DiskFullPauses counts how often it has.
	DiskFull       bool
	DiskFullPauses int64
	// ChunksAbandoned counts the chunks of fragments that never got their
	// last chunk, dropped after waiting for it.
	ChunksAbandoned int64
	// MeanPersistLatency is the mean time from the bus accepting a fragment to
	// its PERSISTED event.
	MeanPersistLatency time.Duration
}

// Stats returns a copy of the counters.
func (in *Ingester) Stats() Snapshot {
	s := &in.stats
	out := Snapshot{
		Persisted: s.Persisted.Load(), PersistedBytes: s.PersistedBytes.Load(), Duplicates: s.Duplicates.Load(),
		LiveOnly: s.LiveOnly.Load(), StoreFailures: s.StoreFailures.Load(), Retries: s.Retries.Load(), Errors: map[wire.ErrorCode]int64{},
		DiskFull: s.DiskFull.Load(), DiskFullPauses: s.DiskFullPauses.Load(), ChunksAbandoned: s.ChunksAbandoned.Load(),
	}
	if n := s.latencyCount.Load(); n > 0 {
		out.MeanPersistLatency = time.Duration(s.latencyNanos.Load() / n)
	}
	in.mu.Lock()
	for k, v := range s.Errors {
		out.Errors[k] = v
	}
	in.mu.Unlock()
	return out
}

// Add sums two snapshots (a cluster node's shards); the mean latency is
// weighted by the fragments persisted.
func (a Snapshot) Add(b Snapshot) Snapshot {
	out := Snapshot{
		Persisted: a.Persisted + b.Persisted, PersistedBytes: a.PersistedBytes + b.PersistedBytes,
		Duplicates: a.Duplicates + b.Duplicates, LiveOnly: a.LiveOnly + b.LiveOnly,
		StoreFailures: a.StoreFailures + b.StoreFailures, Retries: a.Retries + b.Retries,
		DiskFull: a.DiskFull || b.DiskFull, DiskFullPauses: a.DiskFullPauses + b.DiskFullPauses,
		Errors: map[wire.ErrorCode]int64{},
	}
	for k, v := range a.Errors {
		out.Errors[k] += v
	}
	for k, v := range b.Errors {
		out.Errors[k] += v
	}
	if n := a.Persisted + b.Persisted; n > 0 {
		out.MeanPersistLatency = time.Duration((int64(a.MeanPersistLatency)*a.Persisted + int64(b.MeanPersistLatency)*b.Persisted) / n)
	}
	return out
}
