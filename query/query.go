package query

import (
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/store"
)

// Options configure a Service.
type Options struct {
	Store  *store.Store
	Logger *slog.Logger
	Now    func() time.Time
	// DecodeWorkers is how many goroutines of one query decode fragments in
	// parallel, ahead of the writer. The default (0) is GOMAXPROCS as the
	// query starts, at most 4: read then, not once at New, because
	// GOMAXPROCS follows the container's CPU limit as it changes (Go 1.25
	// and later) and a process may set it.
	DecodeWorkers int
	// NoSummaries makes every aggregate query decode its samples, even
	// where summaries (SUMMARIES.md) are on disk.
	NoSummaries bool
}

// Service answers the read APIs from a store.
type Service struct {
	st      *store.Store
	log     *slog.Logger
	now     func() time.Time
	workers int // Options.DecodeWorkers; 0: decodeWorkers decides per query
	noSums  bool

	tracksMu sync.Mutex // guards tracks
	tracks   map[trackKey][]mkv.TrackEntry

	summariesUsed atomic.Int64 // fragments an aggregate query read the summary of instead of decoding
}

// decodeWorkers is how many workers a query starting now decodes with. The
// default follows GOMAXPROCS: fixed at the cores there were when the
// Service was made, a process cut to one core ran each query with the old
// count, and Flight's four partitions of one read ran eight workers on one
// core, which took the core in turns so long that the first batch came after
// 23 ms instead of 2–9 (make bench's arrow section, GOMAXPROCS 1).
func (s *Service) decodeWorkers() int {
	if s.workers > 0 {
		return s.workers
	}
	return min(runtime.GOMAXPROCS(0), 4)
}

// SummariesUsed is how many fragments aggregate queries have read the
// summaries of (SUMMARIES.md) instead of decoding them.
func (s *Service) SummariesUsed() int64 { return s.summariesUsed.Load() }

// New returns a Service.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{st: o.Store, log: o.Logger, now: o.Now, workers: o.DecodeWorkers, noSums: o.NoSummaries, tracks: map[trackKey][]mkv.TrackEntry{}}
}
