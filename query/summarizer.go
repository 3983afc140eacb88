package query

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/sensorium-io/sensorium/store"
)

// SummarizerOptions configure a Summarizer.
type SummarizerOptions struct {
	Store  *store.Store
	Logger *slog.Logger
	// MinRate is the samples per second (rate × channels) from which a track
	// is summarised; default 1000. Slower tracks decode faster than their
	// summaries would be read.
	MinRate float64
	// Share is the part of one core the Summarizer may use while it has work:
	// it rests in proportion to the time it works. Default 0.25. Queries
	// decode what it has not summarised yet, so falling behind costs them
	// speed, never correctness.
	Share float64
}

// Summarizer writes the summaries of stored fragments (SUMMARIES.md), one
// stream at a time, in the background: Notify says that a stream has new
// fragments; Run works through the streams told of, and at start-up through
// every stream, from the first fragment not summarised yet.
type Summarizer struct {
	o SummarizerOptions

	mu      sync.Mutex
	dirty   map[string]struct{}
	wake    chan struct{}
	streams map[string]*summaryState

	// Counters for /metrics and tests.
	statsMu    sync.Mutex
	summarised uint64
	failures   uint64
}

// summaryState is where the Summarizer is in one stream.
type summaryState struct {
	created    time.Time // the stream's: a stream made again starts over
	arn        string    // the stream's: blocks are written to this incarnation only
	next       uint64    // the first fragment number not summarised
	file       string    // the file blocks are appended to; "" before the first
	fileBlocks int
	tracks     map[uint64]*trackSummarizer
	// idle counts the fragments in a row that had no summarised track: a
	// stream of none is looked at again only every idleRecheck.
	idle int
	// idleBytes is the bytes of those fragments: a stream of large ones
	// (video) is passed over after fewer, since reading one back — all of
	// it, decrypted — is what deciding costs.
	idleBytes int
	skipUntil time.Time
	pruned    time.Time // when retention's removals were last looked for
	// broken: a write failed (a full disk …); after skipUntil the stream's
	// summaries are read again from disk and the Summarizer goes on from
	// where they end, rather than retry at every fragment stored.
	broken bool
}

const (
	summaryBatch     = 64               // fragments read per turn of a stream
	idleFragments    = 16               // fragments in a row without a summarised track before a stream is passed over
	newIdleFragments = 4                // the same for a stream that never had one: each is read whole, and at 10,000 slow streams 16 were 160,000 reads after each start
	idleBytes        = 16 << 20         // or their bytes: a 4K camera's fragments are 30 MB each to read back
	idleRecheck      = 10 * time.Minute // how long a stream without one is passed over
	summaryPruneGap  = 5 * time.Minute  // how often a stream's files are checked against retention
	brokenRetry      = time.Minute      // how long a stream whose summaries could not be written is passed over
)

// NewSummarizer returns a Summarizer of the store's streams.
func NewSummarizer(o SummarizerOptions) *Summarizer {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MinRate <= 0 {
		o.MinRate = 1000
	}
	if o.Share <= 0 || o.Share > 1 {
		o.Share = 0.25
	}
	return &Summarizer{o: o, dirty: map[string]struct{}{}, wake: make(chan struct{}, 1), streams: map[string]*summaryState{}}
}

// Notify says that a stream has new fragments. It is cheap and never
// blocks: the ingester calls it for every fragment it stores.
func (z *Summarizer) Notify(stream string) {
	z.mu.Lock()
	z.dirty[stream] = struct{}{}
	z.mu.Unlock()
	select {
	case z.wake <- struct{}{}:
	default:
	}
}

// Summarised is how many fragments the Summarizer has summarised, and how
// many it could not (they are decoded by queries instead).
func (z *Summarizer) Summarised() (done, failed uint64) {
	z.statsMu.Lock()
	defer z.statsMu.Unlock()
	return z.summarised, z.failures
}

// Run summarises until ctx is done.
func (z *Summarizer) Run(ctx context.Context) error {
	if err := z.sweep(); err != nil {
		return err
	}
	tick := time.NewTicker(summaryPruneGap)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if err := z.sweep(); err != nil {
				z.o.Logger.Warn("summaries: cannot list the streams", "err", err)
			}
		default:
		}
		z.mu.Lock()
		var name string
		for n := range z.dirty {
			name = n
			break
		}
		if name != "" {
			delete(z.dirty, name)
		}
		z.mu.Unlock()
		if name == "" {
			select {
			case <-ctx.Done():
				z.release()
				return nil
			case <-z.wake:
			case <-tick.C:
				if err := z.sweep(); err != nil {
					z.o.Logger.Warn("summaries: cannot list the streams", "err", err)
				}
			}
			continue
		}
		began := time.Now()
		more := z.turn(name)
		if more {
			z.mu.Lock()
			z.dirty[name] = struct{}{}
			z.mu.Unlock()
		}
		if rest := time.Duration(float64(time.Since(began)) * (1 - z.o.Share) / z.o.Share); rest > 0 {
			t := time.NewTimer(rest)
			select {
			case <-ctx.Done():
				t.Stop()
				z.release()
				return nil
			case <-t.C:
			}
		}
	}
}

// sweep looks at every stream: at start-up for the fragments stored before
// it, then every summaryPruneGap for the files retention emptied in streams
// that store nothing new, and the streams a write failure set aside. The
// state of streams deleted since is dropped.
func (z *Summarizer) sweep() error {
	all, err := z.o.Store.AllStreams()
	if err != nil {
		return err
	}
	live := make(map[string]bool, len(all))
	for _, info := range all {
		live[info.Name] = true
		z.Notify(info.Name)
	}
	for name := range z.streams {
		if !live[name] {
			z.forget(name)
		}
	}
	return nil
}

func (z *Summarizer) release() {
	for _, st := range z.streams {
		for _, ts := range st.tracks {
			ts.release()
		}
	}
	z.streams = map[string]*summaryState{}
}

// turn summarises up to a batch of a stream's fragments; it reports whether
// more are waiting.
func (z *Summarizer) turn(name string) bool {
	st := z.o.Store
	info, err := st.DescribeStream(store.StreamRef{Name: name})
	if err != nil || info.RetentionHours == 0 {
		// Gone, or a stream that keeps fragments in memory for live readers
		// only: nothing to summarise.
		z.forget(name)
		return false
	}
	s := z.streams[name]
	now := time.Now()
	if s != nil && (!s.created.Equal(info.CreationTime) || s.arn != info.ARN || s.broken && !now.Before(s.skipUntil)) {
		z.forget(name)
		s = nil
	}
	if s == nil {
		if s, err = z.resume(name, info.CreationTime); err != nil {
			z.o.Logger.Warn("summaries: cannot read a stream's summaries; its aggregate queries decode every fragment", "stream", name, "err", err)
			return false
		}
		s.arn = info.ARN
		z.streams[name] = s
	}
	if now.Sub(s.pruned) >= summaryPruneGap {
		// Before anything else: a stream that stores nothing new, or that is
		// passed over, still loses the files retention emptied.
		s.pruned = now
		z.prune(name, s)
	}
	if now.Before(s.skipUntil) {
		return false
	}
	infos, err := st.Fragments(name, s.next, summaryBatch)
	if err != nil || len(infos) == 0 {
		return false
	}
	if s.idle >= s.idleLimit() || s.idleBytes >= idleBytes {
		// A stream with no summarised track: pass over what it stored and
		// look again at its newest fragment later. Fragments passed over
		// have no block and are decoded by the queries that read them.
		last, ok, err := st.Durable(name)
		if err == nil && ok {
			s.next = last.Number
		}
		s.idle, s.idleBytes = s.idleLimit()-1, idleBytes-1
		s.skipUntil = now.Add(idleRecheck)
		return false
	}
	r, err := st.NewReader(name)
	if err != nil {
		return false
	}
	defer r.Close()
	var blocks [][]byte
	for _, fi := range infos {
		f, err := r.Read(fi)
		if err != nil {
			if !errors.Is(err, store.ErrFragmentGone) {
				z.failed(name, fi.Number, err)
			}
			s.next = fi.Number + 1
			continue
		}
		fs, err := summarizeFragment(fi.Number, f.Payload, z.o.MinRate, s.tracks)
		if err != nil {
			z.failed(name, fi.Number, err)
			s.next = fi.Number + 1
			continue
		}
		passOver := false
		if len(fs.tracks) == 0 {
			s.idle++
			s.idleBytes += fi.Size
			// Enough read to tell: the next turn passes the stream over
			// instead of reading the rest of this batch.
			passOver = s.idle >= s.idleLimit() || s.idleBytes >= idleBytes
			if s.file == "" {
				// A stream that has had no summarised track yet gets no file
				// of blocks that say so: queries decode these fragments
				// either way, and most slow streams never need a file.
				s.next = fi.Number + 1
				if passOver {
					break
				}
				continue
			}
		} else {
			s.idle, s.idleBytes = 0, 0
		}
		if s.file == "" || s.fileBlocks+len(blocks) >= summaryFileBlocks {
			// A new file, named by its first fragment, after the blocks of
			// the one before.
			if err := z.flush(name, s, blocks); err != nil {
				return false
			}
			blocks = blocks[:0]
			s.file, s.fileBlocks = summaryFileName(fi.Number), 0
		}
		blocks = append(blocks, appendSummary(nil, &fs))
		s.next = fi.Number + 1
		if passOver {
			break
		}
	}
	if err := z.flush(name, s, blocks); err != nil {
		return false
	}
	return len(infos) == summaryBatch || s.idle >= s.idleLimit() || s.idleBytes >= idleBytes
}

// idleLimit is how many fragments in a row without a summarised track set
// the stream aside: fewer for one that never had such a track (most slow
// streams) than for one whose fast track pauses.
func (s *summaryState) idleLimit() int {
	if s.file == "" {
		return newIdleFragments
	}
	return idleFragments
}

// flush appends blocks to the stream's current file.
func (z *Summarizer) flush(name string, s *summaryState, blocks [][]byte) error {
	if len(blocks) == 0 {
		return nil
	}
	// By ARN: if the stream was deleted (and perhaps made again under its
	// name) since the turn began, the blocks are of fragments it no longer
	// has and are refused.
	if err := z.o.Store.AppendDerived(store.StreamRef{ARN: s.arn}, s.file, blocks...); err != nil {
		if errors.Is(err, store.ErrStreamNotFound) {
			z.forget(name)
			return err
		}
		z.o.Logger.Warn("summaries: cannot write; the stream's aggregate queries decode its fragments until a retry in a minute succeeds", "stream", name, "err", err)
		s.broken, s.skipUntil = true, time.Now().Add(brokenRetry)
		return err
	}
	s.fileBlocks += len(blocks)
	z.statsMu.Lock()
	z.summarised += uint64(len(blocks))
	z.statsMu.Unlock()
	return nil
}

func (z *Summarizer) failed(name string, number uint64, err error) {
	z.statsMu.Lock()
	z.failures++
	z.statsMu.Unlock()
	z.o.Logger.Warn("summaries: a fragment cannot be summarised; queries decode it", "stream", name, "fragment", number, "err", err)
}

func (z *Summarizer) forget(name string) {
	if s := z.streams[name]; s != nil {
		for _, ts := range s.tracks {
			ts.release()
		}
		delete(z.streams, name)
	}
}

// resume finds where a stream's summaries end: after the last block of its
// newest file. A torn newest file (a crash while appending) is removed and
// made again from its first fragment.
func (z *Summarizer) resume(name string, created time.Time) (*summaryState, error) {
	s := &summaryState{created: created, tracks: map[uint64]*trackSummarizer{}}
	names, err := z.o.Store.ListDerived(name, summaryFilePrefix)
	if err != nil {
		return nil, err
	}
	for len(names) > 0 {
		last := names[len(names)-1]
		first, ok := parseSummaryFileName(last)
		if !ok {
			names = names[:len(names)-1]
			continue
		}
		var blocks int
		var lastNumber uint64
		err := z.o.Store.ReadDerived(name, last, func(b []byte) error {
			fs, err := parseSummary(b, ^uint64(0))
			if err != nil {
				return err
			}
			blocks++
			lastNumber = fs.number
			return nil
		})
		if err != nil {
			z.o.Logger.Info("summaries: the newest file is damaged or torn (a crash while writing); it is made again", "stream", name, "file", last, "err", err)
			if err := z.o.Store.RemoveDerived(name, last); err != nil {
				return nil, err
			}
			s.next = first
			return s, nil
		}
		if blocks == 0 {
			s.next = first
			return s, nil
		}
		s.next, s.file, s.fileBlocks = lastNumber+1, last, blocks
		return s, nil
	}
	return s, nil
}

// prune removes the files that describe only fragments retention removed:
// a file's fragments end where the next file's begin.
func (z *Summarizer) prune(name string, s *summaryState) {
	st := z.o.Store
	first, err := st.Fragments(name, 0, 1)
	if err != nil {
		return
	}
	names, err := st.ListDerived(name, summaryFilePrefix)
	if err != nil {
		return
	}
	if len(first) == 0 {
		// Retention removed every fragment: every file goes, and the next
		// fragment starts a file of its own.
		for _, n := range names {
			if err := st.RemoveDerived(name, n); err != nil {
				z.o.Logger.Warn("summaries: cannot remove a file retention emptied", "stream", name, "file", n, "err", err)
				return
			}
		}
		s.file, s.fileBlocks = "", 0
		return
	}
	for i := 0; i+1 < len(names); i++ {
		next, ok := parseSummaryFileName(names[i+1])
		if ok && next <= first[0].Number {
			if err := st.RemoveDerived(name, names[i]); err != nil {
				z.o.Logger.Warn("summaries: cannot remove a file retention emptied", "stream", name, "file", names[i], "err", err)
			}
		}
	}
}
