package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/sdk"
)

// Config is what to replicate, from where to where.
type Config struct {
	// Edge is the edge server's HTTP API (signed with the edge's key).
	Edge *sdk.Client
	// Centre is the central server's HTTP API (signed with the centre's
	// key): its control plane and, at start, its newest fragments.
	Centre *sdk.Client
	// CentreNATS is the URL of the centre's NATS (nats://host:4222), where
	// fragments are published; CentreNATSOptions log in (for a key:
	// sdk.Credentials.NATSOptions) and set TLS. CentrePrefix is the
	// centre's subject prefix (its serve --prefix; default sensorium).
	CentreNATS        string
	CentreNATSOptions []nats.Option
	CentrePrefix      string
	// Via is how fragments reach the centre: ViaNATS (the default; its
	// NATS, CentreNATS) or ViaHTTP (PutMedia sessions over Centre, for a
	// site whose only way out is HTTPS; centre_http.go).
	Via string
	// Streams are the edge stream names to copy: path.Match patterns
	// ("pump-*", "line?.vib", "cam-7"); a stream matching any is copied.
	Streams []string
	// CentreNamePrefix is put before each stream's name at the centre, so
	// that several edges may feed one centre without their names meeting.
	CentreNamePrefix string
	// RetentionHours is the retention of the streams the replicator
	// creates at the centre; < 0: the edge stream's own.
	RetentionHours int
	// Decimate lists the streams whose scalar tracks reach the centre at a
	// fraction of their rate (decimate.go); the first matching rule applies.
	Decimate []Decimation
	// StateDir holds the journals (docs/REPLICATION.md). Required.
	StateDir string
	// MaxRate caps the bytes per second sent to the centre, all streams
	// together; 0: no cap.
	MaxRate int64
	// Schedule is when sending is allowed; the zero Schedule is always.
	Schedule Schedule
	// Poll is how often a caught-up stream asks the edge for new fragments
	// (default 1 s); Discover how often the edge's streams are listed for
	// new matches (default 30 s).
	Poll, Discover time.Duration
	// BatchFragments and BatchBytes bound one round of fragments sent
	// before their confirmations are awaited (default 100, 32 MiB).
	BatchFragments int
	BatchBytes     int64
	// InFlight is how many fragments of a stream may be on their way to the
	// centre's bus at once (default DefaultInFlight).
	InFlight int
	// AckTimeout is how long a sent fragment may go without its PERSISTED
	// before it is sent again (default 30 s).
	AckTimeout time.Duration
	// Now is the clock (the schedule's and the lag's); default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// The ways to the centre (Config.Via).
const (
	ViaNATS = "nats"
	ViaHTTP = "http"
)

func (c *Config) setDefaults() {
	if c.Via == "" {
		c.Via = ViaNATS
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.Discover <= 0 {
		c.Discover = 30 * time.Second
	}
	if c.BatchFragments <= 0 {
		c.BatchFragments = 100
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 32 << 20
	}
	if c.InFlight <= 0 {
		c.InFlight = DefaultInFlight
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
}

// CheckPatterns refuses a stream pattern that path.Match cannot read, or
// one that no stream name could match.
func CheckPatterns(patterns []string) error {
	if len(patterns) == 0 {
		return errors.New("no stream patterns")
	}
	for _, p := range patterns {
		if p == "" {
			return errors.New("an empty stream pattern")
		}
		if _, err := path.Match(p, "x"); err != nil {
			return fmt.Errorf("stream pattern %q: %w", p, err)
		}
		if strings.Contains(p, "/") {
			return fmt.Errorf("stream pattern %q: stream names have no /", p)
		}
	}
	return nil
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// Replicator copies the matching streams until its context ends.
type Replicator struct {
	cfg    Config
	centre centreLink
	rate   *rateCap
	// resendBase makes the message ids of re-sends unique across restarts
	// (the bus would swallow a repeat of an id inside its window, and the
	// store would then never answer it).
	resendBase int

	mu      sync.Mutex
	workers map[string]*worker // by edge stream name
	started time.Time
	running atomic.Bool
}

// New checks cfg and returns a Replicator; Run starts it.
func New(cfg Config) (*Replicator, error) {
	cfg.setDefaults()
	switch {
	case cfg.Edge == nil || cfg.Centre == nil:
		return nil, errors.New("replicate: the edge and the centre are both needed")
	case cfg.Via != ViaNATS && cfg.Via != ViaHTTP:
		return nil, fmt.Errorf("replicate: the way to the centre is %q or %q, not %q", ViaNATS, ViaHTTP, cfg.Via)
	case cfg.Via == ViaNATS && cfg.CentreNATS == "":
		return nil, errors.New("replicate: the centre's NATS URL is needed")
	case cfg.StateDir == "":
		return nil, errors.New("replicate: a state folder is needed")
	}
	if err := CheckPatterns(cfg.Streams); err != nil {
		return nil, fmt.Errorf("replicate: %w", err)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("replicate: state folder: %w", err)
	}
	return &Replicator{cfg: cfg, rate: newRateCap(cfg.MaxRate), workers: map[string]*worker{},
		resendBase: int(time.Now().Unix() % 1_000_000_000)}, nil
}

// Run replicates until ctx ends, then returns nil. It fails only when the
// state folder cannot be locked or the centre's NATS URL is malformed;
// everything else (a server down, a link cut) is retried, and shows in
// Status and the metrics.
func (r *Replicator) Run(ctx context.Context) error {
	unlock, err := lockState(r.cfg.StateDir)
	if err != nil {
		return err
	}
	defer unlock()
	if r.cfg.Via == ViaHTTP {
		r.centre = newHTTPCentre(ctx, r.cfg.Centre, r.cfg.AckTimeout)
	} else {
		c, err := dialCentre(ctx, r.cfg.CentreNATS, r.cfg.CentrePrefix, r.cfg.AckTimeout, r.cfg.CentreNATSOptions)
		if err != nil {
			return err
		}
		if !c.nc.IsConnected() {
			r.cfg.Logger.Warn("replicate: the centre's NATS does not answer (yet); fragments wait for it. If only HTTPS reaches the centre, replicate with --via http",
				"nats", r.cfg.CentreNATS)
		}
		r.centre = c
	}
	defer r.centre.close()
	r.mu.Lock()
	r.started = r.cfg.Now()
	r.mu.Unlock()
	r.running.Store(true)
	defer r.running.Store(false)
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(r.cfg.Discover)
	defer t.Stop()
	for {
		if err := r.discover(ctx, &wg); err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("replicate: listing the edge's streams failed; trying again", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// discover starts a worker for every matching edge stream without one.
func (r *Replicator) discover(ctx context.Context, wg *sync.WaitGroup) error {
	var names []string
	token := ""
	for {
		page, next, err := r.cfg.Edge.ListStreams(ctx, "", 1000, token)
		if err != nil {
			return fmt.Errorf("list the edge's streams: %w", err)
		}
		for _, s := range page {
			if matchAny(r.cfg.Streams, s.StreamName) {
				names = append(names, s.StreamName)
			}
		}
		if next == "" {
			break
		}
		token = next
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, name := range names {
		if w := r.workers[name]; w != nil && !w.done.Load() {
			continue
		}
		w := newWorker(r, name)
		r.workers[name] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx)
		}()
	}
	return nil
}

// StreamStatus is one replicated stream as Status reports it.
type StreamStatus struct {
	Edge   string `json:"edge"`
	Centre string `json:"centre"`
	// State: "starting", "live" (caught up), "catching up", "paused"
	// (outside the schedule), "retrying" (after an error), "refused"
	// (stopped at a fragment the centre refused, which is tried again
	// after each pause: Refused), "stopped" (the edge stream is gone).
	State string `json:"state"`
	// LagSeconds is the age, by the edge's server time, of the oldest edge
	// fragment the centre has not confirmed; 0 when caught up.
	LagSeconds float64 `json:"lag_seconds"`
	// BacklogFragments and BacklogBytes are what the edge holds that the
	// centre has not confirmed.
	BacklogFragments int64 `json:"backlog_fragments"`
	BacklogBytes     int64 `json:"backlog_bytes"`
	// Since this process started.
	SentFragments    uint64 `json:"sent_fragments"`
	SentBytes        uint64 `json:"sent_bytes"`
	ResentFragments  uint64 `json:"resent_fragments"`
	ExpiredFragments uint64 `json:"expired_fragments"`
	Errors           uint64 `json:"errors"`
	// LastConfirmed is the newest edge fragment the centre confirmed.
	LastConfirmed string `json:"last_confirmed,omitempty"`
	LastError     string `json:"last_error,omitempty"`
	// RefusedFragments counts the edge fragments the centre refused, since
	// this process started.
	RefusedFragments uint64 `json:"refused_fragments"`
	// Refused is the fragment the copy is stopped at because the centre
	// refused it (from the journal, so it outlives restarts); nil when the
	// copy is not stopped.
	Refused *RefusalStatus `json:"refused,omitempty"`
	// SkippedFragments is how many refused fragments an operator let go
	// (SkipRefused) since the journal began: the centre's copy lacks each.
	SkippedFragments int `json:"skipped_fragments"`
}

// RefusalStatus is a fragment the centre refused, as status shows it.
type RefusalStatus struct {
	Fragment string    `json:"fragment"` // the edge's fragment number
	Sequence uint64    `json:"sequence"` // its producer sequence at the centre
	Code     string    `json:"code"`     // the centre's error code
	ErrorID  int       `json:"error_id"`
	Message  string    `json:"message"`
	Since    time.Time `json:"since"` // when it was first refused
	// StoredAfter is how many fragments after it the centre is known to
	// have stored anyway. More than 0: the centre's copy has a hole at it
	// that it cannot fill (it refuses a fragment older than its newest);
	// `sensorium replicate skip` lets the copy go on without it.
	StoredAfter int `json:"stored_after"`
}

func (r *refusal) status() *RefusalStatus {
	if r == nil {
		return nil
	}
	return &RefusalStatus{Fragment: r.Number, Sequence: r.Seq, Code: r.Code, ErrorID: r.ErrorID, Message: r.Message,
		Since: time.Unix(0, r.At).UTC(), StoredAfter: r.StoredAfter}
}

// Status is the replicator's state, for `sensorium replicate status`.
type Status struct {
	Running      bool           `json:"running"`
	Since        time.Time      `json:"since"`
	Schedule     string         `json:"schedule"`
	ScheduleOpen bool           `json:"schedule_open"`
	MaxRate      int64          `json:"max_rate_bytes_per_second"`
	Streams      []StreamStatus `json:"streams"`
}

// Status returns a snapshot, streams sorted by name.
func (r *Replicator) Status() Status {
	now := r.cfg.Now()
	r.mu.Lock()
	st := Status{Running: r.running.Load(), Since: r.started, Schedule: r.cfg.Schedule.String(),
		ScheduleOpen: r.cfg.Schedule.Open(now), MaxRate: r.cfg.MaxRate}
	ws := make([]*worker, 0, len(r.workers))
	for _, w := range r.workers {
		ws = append(ws, w)
	}
	r.mu.Unlock()
	for _, w := range ws {
		st.Streams = append(st.Streams, w.status(now))
	}
	sort.Slice(st.Streams, func(i, j int) bool { return st.Streams[i].Edge < st.Streams[j].Edge })
	return st
}
