package replicate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/sdk"
)

// A round sends the journal's pending fragments, in order, several on their
// way at once, and collects the centre's verdicts.
type round struct {
	w       *worker
	acks    <-chan verdict
	pending []fragRef
	open    map[uint64]bool // sequences still without a verdict
	// confirmedSeq is the journal's newest confirmed sequence when the
	// round began: a RETRY waiting for it (or an older one) means the centre
	// has forgotten it.
	confirmedSeq uint64
	// refused is the first fragment the centre refused (a terminal ERROR),
	// and why; nil while none was.
	refused *refusal

	inFlight []*sent
	sizes    map[uint64]int
	inBytes  int
	sendErr  error // the first publish that failed: the rest waits for the next round
	// sessionErr is why a PutMedia session ended with fragments that had
	// no verdict from it (they are sent again); nil when none did.
	sessionErr error
	// sessions are the PutMedia sessions of this round: the end of another
	// (an earlier round's, heard late) says nothing of this round's sends.
	sessions map[uint64]bool
}

// sendPending runs one round. What is still unconfirmed after AckTimeout (or
// was answered RETRY) stays pending, and the next round sends it again
// under the same keys.
//
// A stream stopped at a fragment the centre refused sends that fragment
// alone (after those before it still unconfirmed): the fragments after it
// would be stored past it, and its hole made for good.
func (w *worker) sendPending(ctx context.Context, acks <-chan verdict) error {
	cfg := &w.r.cfg
	pending := w.j.Pending
	if r := w.j.Refused; r != nil {
		i := 0
		for i < len(pending) && pending[i].Seq <= r.Seq {
			i++
		}
		pending = pending[:i]
	}
	rd := &round{w: w, acks: acks, pending: append([]fragRef(nil), pending...), open: map[uint64]bool{}, sizes: map[uint64]int{},
		sessions: map[uint64]bool{}}
	err := rd.send(ctx)
	if errors.Is(err, sdk.ErrResourceNotFound) {
		// A fragment expired at the edge before it was sent (an outage
		// longer than the edge's retention): it cannot be copied. A
		// refusal heard meanwhile is kept first.
		rd.drain()
		_ = w.settleRefusal(rd)
		return w.dropExpired(ctx, rd.pending)
	}
	if err != nil {
		rd.drain()
		refused := w.settleRefusal(rd)
		w.confirmDone(rd.pending)
		if serr := w.j.save(cfg.StateDir); serr != nil {
			return serr
		}
		if rd.refused != nil { // heard this round; else the round's own error says more
			return refused
		}
		return err
	}
	if err := rd.await(ctx); err != nil {
		return err
	}
	refused := w.settleRefusal(rd)
	w.confirmDone(rd.pending)
	if err := w.j.save(cfg.StateDir); err != nil {
		return err
	}
	if refused == nil && rd.sessionErr != nil {
		return rd.sessionErr // the next round sends the rest after a pause
	}
	return refused
}

// refusedError ends a round at a fragment the centre refused: the worker
// shows the stream as "refused", not "retrying". Its text is the
// refusal's (refusal.describe).
type refusedError struct{ text string }

func (e *refusedError) Error() string { return e.text }

// settleRefusal brings the journal's refusal up to date with the round's
// verdicts: a refused fragment the centre has now stored (its limit was
// raised, its stream made again) lets the copy go on; a new refusal is
// recorded, counted and logged, with how many fragments after it the
// centre stored anyway. It returns the error that ends the round when
// the stream is stopped at a refusal. The journal is saved by the caller,
// before anything else is sent.
func (w *worker) settleRefusal(rd *round) error {
	log := w.r.cfg.Logger
	w.mu.Lock()
	defer w.mu.Unlock()
	j := w.j
	if j.Refused != nil && w.stored[j.Refused.Seq] {
		log.Info("replicate: the centre took the fragment it had refused; the copy goes on", "stream", w.edge,
			"fragment", j.Refused.Number, "sequence", j.Refused.Seq)
		j.Refused = nil
	}
	r := rd.refused
	if r == nil {
		if j.Refused != nil { // not sent this round (the link dropped first)
			return &refusedError{j.Refused.describe(w.centre)}
		}
		return nil
	}
	// The fragments after it that the centre has stored, in this round or
	// an earlier one: each makes the hole at it permanent.
	for _, p := range j.Pending {
		if p.Seq > r.Seq && w.stored[p.Seq] {
			r.StoredAfter++
		}
	}
	for _, p := range j.Pending {
		if p.Seq == r.Seq {
			r.fragRef = p
		}
	}
	switch {
	case j.Refused == nil || j.Refused.Seq != r.Seq:
		r.At = w.r.cfg.Now().UnixNano()
		j.Refused = r
		j.RefusedTotal++
		w.refused++
		log.Warn("replicate: the centre refused a fragment; the copy stops at it and tries it again", "stream", w.edge,
			"fragment", r.Number, "sequence", r.Seq, "code", r.Code, "reason", r.Message, "stored_after_it", r.StoredAfter)
		if r.StoredAfter > 0 {
			log.Error("replicate: the centre stored fragments after one it refused: its copy has a hole at that fragment, which it cannot fill (they are newer); 'sensorium replicate skip' lets the copy go on without it",
				"stream", w.edge, "fragment", r.Number, "stored_after_it", r.StoredAfter)
		}
	default: // refused again: keep when it began, take the latest reason
		j.Refused.Code, j.Refused.ErrorID, j.Refused.Message = r.Code, r.ErrorID, r.Message
		j.Refused.StoredAfter = max(j.Refused.StoredAfter, r.StoredAfter)
	}
	return &refusedError{j.Refused.describe(w.centre)}
}

// describe says which fragment was refused and why, for status and logs.
func (r *refusal) describe(centre string) string {
	s := fmt.Sprintf("the centre refused edge fragment %s (sequence %d) of %s: %s (%d): %s", r.Number, r.Seq, centre, r.Code, r.ErrorID, r.Message)
	if r.StoredAfter > 0 {
		s += fmt.Sprintf("; it stored %d fragments after it: its copy has a hole there", r.StoredAfter)
	}
	return s
}

// send reads the pending fragments from the edge and puts them on the
// centre's bus, each naming the one before it; it returns once the bus has
// taken (or failed) every one sent.
func (rd *round) send(ctx context.Context) error {
	w := rd.w
	cfg := &w.r.cfg
	numbers := make([]string, len(rd.pending))
	for i, p := range rd.pending {
		numbers[i] = p.Number
	}
	// The first follows the newest confirmed fragment, unless the centre
	// said it does not know that one (its stream was made anew, or its
	// dedupe forgot the replicator).
	prev := uint64(0)
	if c := w.j.Confirmed; c != nil && c.Seq > 0 {
		rd.confirmedSeq = c.Seq
		if !w.noPrev {
			prev = c.Seq
		}
	}
	w.noPrev = false
	i := 0
	err := fetchChunks(ctx, cfg.Edge, w.edge, numbers, func(c chunk) error {
		p := rd.pending[i]
		i++
		for len(rd.inFlight) >= cfg.InFlight || (len(rd.inFlight) > 0 && rd.inBytes+len(c.data) > maxInFlightBytes) {
			rd.settleOldest(ctx)
		}
		if rd.sendErr != nil {
			return rd.sendErr // the link is down: stop here, the rest goes next round
		}
		rd.drain()
		if rd.refused != nil {
			// The centre refused one before this: send nothing more, or it
			// would be stored past the refused one (the centre does not hold
			// it back), which could then never be filled in.
			return errStopRound
		}
		if w.decimate > 0 {
			// The same fragment always decimates to the same bytes, so a
			// re-send is the same fragment under the same key.
			d, err := decimateDocument(c.data, w.decimate)
			if err != nil {
				return fmt.Errorf("fragment %s of %s: %w", c.number, w.edge, err)
			}
			c.data = d
		}
		if err := w.r.rate.wait(ctx, len(c.data)); err != nil {
			return err
		}
		rd.open[p.Seq] = true // before the send: its verdict may come before send returns
		s, err := w.r.centre.send(w.centre, w.producer(), p.Seq, prev, w.attempt(p.Seq), floorMS(p.ProducerTime), c.data)
		if err != nil {
			delete(rd.open, p.Seq)
			if errors.Is(err, errNewSession) {
				return errStopRound // the next round starts a session with it
			}
			return err
		}
		prev = p.Seq
		if s.session != 0 {
			rd.sessions[s.session] = true
		}
		rd.inFlight = append(rd.inFlight, s)
		rd.sizes[p.Seq] = len(c.data)
		rd.inBytes += len(c.data)
		w.countSent(len(c.data))
		rd.drain()
		return nil
	})
	w.r.centre.endRound(w.centre)
	for len(rd.inFlight) > 0 {
		rd.settleOldest(ctx)
	}
	if errors.Is(err, errStopRound) {
		err = nil
	}
	if err == nil {
		err = rd.sendErr
	}
	return err
}

// errStopRound ends a round's sending early without being an error.
var errStopRound = errors.New("stop the round")

// settleOldest waits for the bus to take the oldest fragment in flight.
func (rd *round) settleOldest(ctx context.Context) {
	s := rd.inFlight[0]
	rd.inFlight = rd.inFlight[1:]
	if _, err := s.wait(ctx); err != nil && rd.sendErr == nil {
		rd.sendErr = err
	}
	rd.inBytes -= rd.sizes[s.seq]
}

// attempt is the attempt number of the next send of seq: 0 the first time;
// a re-send needs a message id of its own, or the bus would drop it as a
// repeat and the store never answer it again — and so does the first send
// of a fragment a previous process sent.
func (w *worker) attempt(seq uint64) int {
	n := w.attempts[seq]
	w.attempts[seq]++
	if n == 0 && seq >= w.resumeSeq {
		return 0
	}
	w.mu.Lock()
	w.resent++
	w.mu.Unlock()
	return w.r.resendBase + n + 1
}

func (w *worker) countSent(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sentFrags++
	w.sentBytes += uint64(n)
	w.j.SentFragments++
	w.j.SentBytes += uint64(n)
}

// await collects verdicts until every fragment sent has one or AckTimeout
// passes. After a refusal it still waits for the fragments sent after the
// refused one: whether the centre stored them says whether its copy now
// has a hole.
func (rd *round) await(ctx context.Context) error {
	cfg := &rd.w.r.cfg
	timeout := time.NewTimer(cfg.AckTimeout)
	defer timeout.Stop()
	for len(rd.open) > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-rd.acks:
			rd.handle(ev)
		case <-timeout.C:
			cfg.Logger.Info("replicate: no PERSISTED from the centre in time; sending again", "stream", rd.w.edge,
				"fragments", len(rd.open), "after", cfg.AckTimeout)
			return nil
		}
	}
	return nil
}

// drain handles the verdicts that have arrived, without waiting.
func (rd *round) drain() {
	for {
		select {
		case ev := <-rd.acks:
			rd.handle(ev)
		default:
			return
		}
	}
}

// handle takes one verdict on the replicator's fragments.
func (rd *round) handle(v verdict) {
	if v.ended {
		// A PutMedia session ended: what it carried without a verdict gets
		// none, and goes again in the next round.
		if !rd.sessions[v.session] {
			return
		}
		lost := false
		for seq := range rd.open {
			if seq >= v.first && seq <= v.last {
				delete(rd.open, seq)
				lost = true
			}
		}
		if lost && v.err != nil && rd.sessionErr == nil {
			rd.sessionErr = v.err
		}
		return
	}
	ev := v.AckEvent
	seq := ev.ProducerSequence
	if !rd.open[seq] {
		return // an earlier round's, or a re-send's second answer
	}
	switch {
	case ev.EventType == wire.EventError && !ev.Retriable:
		delete(rd.open, seq)
		// The earliest refused one is where the copy stops (several are
		// refused together when, say, the centre's stream is not active).
		if rd.refused == nil || seq < rd.refused.Seq {
			rd.refused = &refusal{fragRef: fragRef{Seq: seq}, Code: ev.ErrorCode, ErrorID: int(ev.ErrorID), Message: ev.Message}
		}
	case ev.EventType == wire.EventRetry:
		// Not stored: its predecessor had not arrived. It goes again next
		// round; if the predecessor is one the centre confirmed long ago,
		// the next round does not name it.
		delete(rd.open, seq)
		if ev.After != 0 && ev.After <= rd.confirmedSeq {
			rd.w.noPrev = true
		}
	case ev.Terminal():
		delete(rd.open, seq)
		rd.w.stored[seq] = true
	}
}
