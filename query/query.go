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
	// parallel, ahead of the writer; default GOMAXPROCS, at most 4.
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
	workers int
	noSums  bool

	tracksMu sync.Mutex // guards tracks
	tracks   map[trackKey][]mkv.TrackEntry

	summariesUsed atomic.Int64 // fragments an aggregate query read the summary of instead of decoding
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
	if o.DecodeWorkers <= 0 {
		o.DecodeWorkers = min(runtime.GOMAXPROCS(0), 4)
	}
	return &Service{st: o.Store, log: o.Logger, now: o.Now, workers: o.DecodeWorkers, noSums: o.NoSummaries, tracks: map[trackKey][]mkv.TrackEntry{}}
}
