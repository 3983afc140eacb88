package replicate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/sdk"
)

// worker copies one edge stream.
type worker struct {
	r        *Replicator
	edge     string
	centre   string
	decimate int         // the factor the stream's scalar tracks are decimated by; 0: none
	done     atomic.Bool // the edge stream is gone: discovery may start another
	// progress is set when a round of the copy completes, so that the
	// pause after the next failure starts short again.
	progress atomic.Bool

	mu    sync.Mutex // guards the fields below; j is written under it and read by status
	state string
	j     *journal
	// rest is what the latest listing found after the journal's cursor and
	// no batch has taken yet: its count, bytes and oldest server time.
	restCount, restBytes, restOldest int64
	sentFrags, sentBytes             uint64
	resent, expired, errs            uint64
	refused                          uint64 // fragments the centre refused, counted when first refused
	lastErr                          string

	attempts  map[uint64]int  // sends per sequence, this process
	stored    map[uint64]bool // pending sequences the centre stored (PERSISTED), not yet confirmed in order
	noPrev    bool            // the next round's first fragment names no predecessor (the centre forgot it)
	resumeSeq uint64          // the journal's NextSeq when the session began: pending below it were sent before
}

func newWorker(r *Replicator, edge string) *worker {
	return &worker{r: r, edge: edge, centre: r.cfg.CentreNamePrefix + edge, state: "starting", decimate: decimationFor(r.cfg.Decimate, edge), attempts: map[uint64]int{}, stored: map[uint64]bool{}}
}

// producer is the dedupe key's producer id as the link in use names it:
// a PutMedia session gives the journal's id (the centre puts its prefix
// before it), and over NATS the fragments of a journal begun over HTTP
// carry the id with that prefix, so that the centre knows them under the
// same key whichever way they come.
func (w *worker) producer() string {
	if w.r.cfg.Via != ViaHTTP && w.j.Via == ViaHTTP {
		return wire.PutMediaProducerPrefix + w.j.ProducerID
	}
	return w.j.ProducerID
}

// errGone ends a worker whose edge stream was deleted.
var errGone = errors.New("the edge stream is gone")

// run copies until ctx ends, starting over after each failure with a
// growing pause (1 s to 1 min).
func (w *worker) run(ctx context.Context) {
	log := w.r.cfg.Logger.With("stream", w.edge)
	pause := time.Second
	for ctx.Err() == nil {
		w.progress.Store(false)
		err := w.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errGone) {
			log.Info("replicate: the edge stream is gone; stopped copying it")
			w.setState("stopped")
			w.done.Store(true)
			return
		}
		if errors.Is(err, errIgnoresKey) {
			// Going on would store re-sends twice: the operator chooses
			// (--via nats, or a centre of this version) and restarts.
			log.Error("replicate: stopped copying the stream", "err", err)
			w.mu.Lock()
			w.errs++
			w.lastErr, w.state = err.Error(), "stopped"
			w.mu.Unlock()
			return
		}
		w.mu.Lock()
		w.errs++
		w.lastErr = err.Error()
		w.state = "retrying"
		if re := (*refusedError)(nil); errors.As(err, &re) {
			w.state = "refused" // stopped at a refused fragment, which the next session tries again
		}
		w.mu.Unlock()
		if w.progress.Load() {
			pause = time.Second
		}
		log.Warn("replicate: copying failed; trying again", "err", err, "in", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Minute)
	}
}

func (w *worker) setState(s string) {
	w.mu.Lock()
	w.state = s
	w.mu.Unlock()
}

// session prepares both ends and copies until an error or ctx's end.
func (w *worker) session(ctx context.Context) error {
	cfg := &w.r.cfg
	info, err := cfg.Edge.DescribeStream(ctx, sdk.ByName(w.edge))
	if errors.Is(err, sdk.ErrResourceNotFound) {
		return errGone
	}
	if err != nil {
		return fmt.Errorf("describe %s at the edge: %w", w.edge, err)
	}
	if err := w.ensureCentre(ctx, info); err != nil {
		return err
	}
	last, err := newestAtCentre(ctx, cfg.Centre, w.centre, cfg.Now())
	if err != nil {
		return err
	}
	j, err := loadJournal(cfg.StateDir, w.centre)
	if err != nil {
		return err
	}
	if j != nil && j.EdgeARN != info.StreamARN {
		cfg.Logger.Warn("replicate: the edge stream was created anew since the journal began; starting a new journal from what the centre holds",
			"stream", w.edge, "journal_arn", j.EdgeARN, "edge_arn", info.StreamARN)
		j = nil
	}
	if j == nil {
		j = newJournal(w.edge, info.StreamARN, w.centre)
		j.Via = cfg.Via
		if err := startFromCentre(ctx, cfg.Edge, w.edge, last, j); err != nil {
			return err
		}
	} else if err := reconcile(ctx, cfg.Centre, w.centre, j, last); err != nil {
		return err
	} else if cfg.Via == ViaHTTP && j.Via != ViaHTTP {
		if err := w.moveToHTTP(ctx, j); err != nil {
			return err
		}
	}
	if err := j.save(cfg.StateDir); err != nil {
		return err
	}
	w.mu.Lock()
	if w.j == nil || w.j.ProducerID != j.ProducerID {
		// A new journal numbers from 1 again: what was known of the old
		// one's sequences is not about these.
		w.attempts, w.stored = map[uint64]int{}, map[uint64]bool{}
	}
	w.j = j
	w.resumeSeq = j.NextSeq
	w.restCount, w.restBytes, w.restOldest = 0, 0, 0
	w.mu.Unlock()
	acks, unsub, err := w.r.centre.acks(w.centre, w.producer())
	if err != nil {
		return err
	}
	defer unsub()
	return w.copyLoop(ctx, acks)
}

// moveToHTTP makes a journal begun over NATS go on over PutMedia, whose
// sessions cannot give the centre the key its fragments had on the bus
// (wire.PutMediaProducerPrefix). What the centre stored under the old key
// is known from its listing (reconcile), but not a fragment still on its
// bus, not yet applied, which the new key would have stored twice. So a
// journal with pending fragments waits AckTimeout first — its centre's
// store applies its bus in milliseconds when it runs — and looks at the
// centre again; the rest goes under the new key.
func (w *worker) moveToHTTP(ctx context.Context, j *journal) error {
	cfg := &w.r.cfg
	if len(j.Pending) > 0 {
		cfg.Logger.Info("replicate: the journal's fragments went to the centre's NATS and now go over HTTP; waiting for the centre to apply what its bus may still hold",
			"stream", w.edge, "pending", len(j.Pending), "wait", cfg.AckTimeout)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(cfg.AckTimeout):
		}
		last, err := newestAtCentre(ctx, cfg.Centre, w.centre, cfg.Now())
		if err != nil {
			return err
		}
		if err := reconcile(ctx, cfg.Centre, w.centre, j, last); err != nil {
			return err
		}
	}
	j.Via = ViaHTTP
	return nil
}

// ensureCentre creates the centre's stream when it has none, with the edge
// stream's media type and (unless told otherwise) retention.
func (w *worker) ensureCentre(ctx context.Context, edge sdk.StreamInfo) error {
	cfg := &w.r.cfg
	_, err := cfg.Centre.DescribeStream(ctx, sdk.ByName(w.centre))
	if err == nil {
		return nil
	}
	if !errors.Is(err, sdk.ErrResourceNotFound) {
		return fmt.Errorf("describe %s at the centre: %w", w.centre, err)
	}
	retention := edge.DataRetentionInHours
	if cfg.RetentionHours >= 0 {
		retention = cfg.RetentionHours
	}
	_, err = cfg.Centre.CreateStream(ctx, sdk.CreateStreamInput{StreamName: w.centre, MediaType: edge.MediaType,
		DeviceName: edge.DeviceName, DataRetentionInHours: retention})
	if err != nil && !errors.Is(err, sdk.ErrResourceInUse) { // ResourceInUse: created meanwhile
		return fmt.Errorf("create %s at the centre: %w", w.centre, err)
	}
	cfg.Logger.Info("replicate: created the stream at the centre", "stream", w.centre, "retention_hours", retention)
	return nil
}

// copyLoop sends what the journal has pending, then new fragments as the
// edge persists them, in rounds of one batch.
func (w *worker) copyLoop(ctx context.Context, acks <-chan verdict) error {
	cfg := &w.r.cfg
	for {
		if err := w.waitSchedule(ctx); err != nil {
			return err
		}
		if len(w.j.Pending) > 0 {
			if err := w.sendPending(ctx, acks); err != nil {
				return err
			}
			continue
		}
		l, err := listAfter(ctx, cfg.Edge, w.edge, w.j.Cursor, 1000)
		if errors.Is(err, sdk.ErrResourceNotFound) {
			return errGone
		}
		if err != nil {
			return err
		}
		fresh := l.frags
		if w.j.AfterProducerTime != 0 {
			fresh = fresh[:0:0]
			for _, f := range l.frags {
				if f.ProducerTime > w.j.AfterProducerTime {
					fresh = append(fresh, f)
				}
			}
		}
		w.setRest(l.count, l.bytes, fresh)
		if len(fresh) == 0 {
			if len(l.frags) > 0 { // all at or before AfterProducerTime: move past them
				w.mu.Lock()
				w.j.Cursor = &l.frags[len(l.frags)-1]
				w.mu.Unlock()
				if err := w.j.save(cfg.StateDir); err != nil {
					return err
				}
				continue
			}
			w.setState("live")
			w.progress.Store(true)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(cfg.Poll):
			}
			continue
		}
		w.setState("catching up")
		for len(fresh) > 0 && cfg.Schedule.Open(cfg.Now()) {
			n, size := 0, int64(0)
			for n < len(fresh) && n < cfg.BatchFragments && (n == 0 || size+fresh[n].Size <= cfg.BatchBytes) {
				size += fresh[n].Size
				n++
			}
			w.mu.Lock()
			w.j.assign(fresh[:n])
			w.mu.Unlock()
			w.setRest(w.restCount-int64(n), w.restBytes-size, fresh[n:])
			// On disk before the first byte is sent: the sequences are the
			// dedupe keys every later re-send must use.
			if err := w.j.save(cfg.StateDir); err != nil {
				return err
			}
			if err := w.sendPending(ctx, acks); err != nil {
				return err
			}
			w.progress.Store(true)
			fresh = fresh[n:]
			if len(w.j.Pending) > 0 {
				// Not all confirmed in time: those go again, alone, before
				// anything new is added to them.
				break
			}
		}
	}
}

// waitSchedule returns at once inside the schedule, or waits for it to
// open (checking at least each minute, so that a clock change is noticed),
// keeping the backlog figures up to date meanwhile.
func (w *worker) waitSchedule(ctx context.Context) error {
	cfg := &w.r.cfg
	var listed time.Time
	refresh := min(10*cfg.Poll, 30*time.Second)
	for !cfg.Schedule.Open(cfg.Now()) {
		w.setState("paused")
		if len(w.j.Pending) == 0 && time.Since(listed) >= refresh {
			listed = time.Now()
			if l, err := listAfter(ctx, cfg.Edge, w.edge, w.j.Cursor, 1000); err == nil {
				w.setRest(l.count, l.bytes, l.frags)
			}
		}
		wait := min(cfg.Schedule.NextOpen(cfg.Now()).Sub(cfg.Now()), time.Minute, refresh)
		wait = max(wait, 10*time.Millisecond)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	return nil
}

// confirmDone moves the journal's confirmation over the pending fragments
// the centre has stored, in order, up to the first it has not.
func (w *worker) confirmDone(pending []fragRef) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range pending {
		if !w.stored[p.Seq] {
			break
		}
		w.j.confirm(p.Seq)
		delete(w.attempts, p.Seq)
		delete(w.stored, p.Seq)
	}
}

// dropExpired removes from the journal the pending fragments the edge no
// longer has, counting them.
func (w *worker) dropExpired(ctx context.Context, pending []fragRef) error {
	cfg := &w.r.cfg
	cur := &fragRef{Number: "0", ServerTime: pending[0].ServerTime}
	l, err := listAfter(ctx, cfg.Edge, w.edge, cur, 1000)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, f := range l.frags {
		have[f.Number] = true
	}
	w.mu.Lock()
	kept := w.j.Pending[:0]
	var gone []string
	for _, p := range w.j.Pending {
		if have[p.Number] {
			kept = append(kept, p)
		} else {
			gone = append(gone, p.Number)
			if r := w.j.Refused; r != nil && r.Seq == p.Seq {
				// The refused fragment is gone from the edge: it can be
				// neither copied nor retried. It is counted as expired,
				// and the copy goes on.
				cfg.Logger.Warn("replicate: the fragment the centre refused expired at the edge; the copy goes on without it",
					"stream", w.edge, "fragment", r.Number, "stored_after_it", r.StoredAfter)
				w.j.Refused = nil
			}
		}
	}
	w.j.Pending = kept
	w.j.Expired += uint64(len(gone))
	w.expired += uint64(len(gone))
	w.mu.Unlock()
	if len(gone) > 0 {
		cfg.Logger.Warn("replicate: fragments expired at the edge before they could be sent", "stream", w.edge, "fragments", len(gone), "first", gone[0])
	}
	return w.j.save(cfg.StateDir)
}

// setRest records what is listed and not yet taken by a batch.
func (w *worker) setRest(count, bytes int64, fresh []fragRef) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.restCount, w.restBytes, w.restOldest = max(count, 0), max(bytes, 0), 0
	if len(fresh) > 0 {
		w.restOldest = fresh[0].ServerTime
	}
}

// status is the stream's figures at now.
func (w *worker) status(now time.Time) StreamStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := StreamStatus{Edge: w.edge, Centre: w.centre, State: w.state, BacklogFragments: w.restCount, BacklogBytes: w.restBytes,
		SentFragments: w.sentFrags, SentBytes: w.sentBytes, ResentFragments: w.resent, ExpiredFragments: w.expired,
		Errors: w.errs, LastError: w.lastErr, RefusedFragments: w.refused}
	oldest := w.restOldest
	if j := w.j; j != nil {
		st.Refused, st.SkippedFragments = j.Refused.status(), len(j.Skipped)
		st.BacklogFragments += int64(len(j.Pending))
		for _, p := range j.Pending {
			st.BacklogBytes += p.Size
		}
		if len(j.Pending) > 0 {
			oldest = j.Pending[0].ServerTime
		}
		if j.Confirmed != nil {
			st.LastConfirmed = j.Confirmed.Number
		}
	}
	if oldest > 0 && st.BacklogFragments > 0 {
		st.LagSeconds = max(now.Sub(time.Unix(0, oldest)).Seconds(), 0)
	}
	return st
}
