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
	acks    <-chan wire.AckEvent
	pending []fragRef
	open    map[uint64]bool // sequences still without a verdict
	// confirmedSeq is the journal's newest confirmed sequence when the
	// round began: a RETRY waiting for it (or an older one) means the centre
	// has forgotten it.
	confirmedSeq uint64
	refused      error // the first terminal ERROR

	inFlight []*sent
	sizes    map[uint64]int
	inBytes  int
	sendErr  error // the first publish that failed: the rest waits for the next round
}

// sendPending runs one round. What is still unconfirmed after AckTimeout (or
// was answered RETRY) stays pending, and the next round sends it again
// under the same keys.
func (w *worker) sendPending(ctx context.Context, acks <-chan wire.AckEvent) error {
	cfg := &w.r.cfg
	rd := &round{w: w, acks: acks, pending: append([]fragRef(nil), w.j.Pending...), open: map[uint64]bool{}, sizes: map[uint64]int{}}
	for _, p := range rd.pending {
		rd.open[p.Seq] = true
	}
	err := rd.send(ctx)
	if errors.Is(err, sdk.ErrResourceNotFound) {
		// A fragment expired at the edge before it was sent (an outage
		// longer than the edge's retention): it cannot be copied.
		return w.dropExpired(ctx, rd.pending)
	}
	if err != nil {
		rd.drain()
		w.confirmDone(rd.pending)
		if serr := w.j.save(cfg.StateDir); serr != nil {
			return serr
		}
		return err
	}
	if err := rd.await(ctx); err != nil {
		return err
	}
	w.confirmDone(rd.pending)
	if err := w.j.save(cfg.StateDir); err != nil {
		return err
	}
	return rd.refused
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
		s, err := w.r.centre.send(w.centre, w.j.ProducerID, p.Seq, prev, w.attempt(p.Seq), c.data)
		if err != nil {
			return err
		}
		prev = p.Seq
		rd.inFlight = append(rd.inFlight, s)
		rd.sizes[p.Seq] = len(c.data)
		rd.inBytes += len(c.data)
		w.countSent(len(c.data))
		rd.drain()
		return nil
	})
	for len(rd.inFlight) > 0 {
		rd.settleOldest(ctx)
	}
	if err == nil {
		err = rd.sendErr
	}
	return err
}

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

// await collects verdicts until every fragment has one, one is refused, or
// AckTimeout passes.
func (rd *round) await(ctx context.Context) error {
	cfg := &rd.w.r.cfg
	timeout := time.NewTimer(cfg.AckTimeout)
	defer timeout.Stop()
	for len(rd.open) > 0 && rd.refused == nil {
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

// handle takes one acknowledgement event of the replicator's producer id.
func (rd *round) handle(ev wire.AckEvent) {
	seq := ev.ProducerSequence
	if !rd.open[seq] {
		return // an earlier round's, or a re-send's second answer
	}
	switch {
	case ev.EventType == wire.EventError && !ev.Retriable:
		if rd.refused == nil {
			rd.refused = fmt.Errorf("the centre refused fragment %d of %s: %s (%d): %s", seq, rd.w.centre, ev.ErrorCode, int(ev.ErrorID), ev.Message)
			// The fragments after it already on their way may be stored all
			// the same (the centre holds none back for a refused
			// predecessor): the copy may then have a hole here.
			rd.w.r.cfg.Logger.Warn("replicate: the centre refused a fragment; those after it already sent may be stored, leaving a hole at it",
				"stream", rd.w.edge, "sequence", seq, "code", ev.ErrorCode, "reason", ev.Message)
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
