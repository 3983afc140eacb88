package sdk

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/sdk/internal/spool"
)

// sendTick is how often the send loop looks for fragments to re-send (and,
// with a spool, for room to load more) while it has any.
const sendTick = 100 * time.Millisecond

// sendLoop publishes queued fragments in order and re-queues the ones that
// need a re-send: after a failed publish, after a reconnect, and when
// PERSISTED is overdue.
//
// It ticks only while there is something a tick can act on — fragments not
// yet PERSISTED, or a spooled backlog not yet loaded — and otherwise sleeps
// until a new fragment wakes it. A gateway runs a producer per sensor, most
// of them idle between fragments: ticking always, 10,000 producers woke
// 100,000 times a second to find nothing to do, and the timers, the
// scheduler and the connection's lock (for its reconnect count) were a large
// share of their CPU (make bench's many-streams section).
func (p *Producer) sendLoop() {
	defer p.wg.Done()
	tick := time.NewTicker(sendTick)
	defer tick.Stop()
	ticking := true
	for {
		select {
		case <-p.stop:
			return
		case <-p.wake:
			if !ticking {
				// Idle until now, so nothing was on the wire: a reconnect
				// meanwhile calls for no re-send. Taken as seen here, not when
				// going idle, so that one during the idle spell does not
				// re-send the fragments about to go out on the new connection.
				p.syncReconnects()
			}
		case <-tick.C:
			p.sendTicks.Add(1)
			p.requeue(time.Now())
		}
		p.load()
		p.sendQueued()
		if busy := p.busy(); busy != ticking {
			if busy {
				tick.Reset(sendTick)
			} else {
				tick.Stop()
			}
			ticking = busy
		}
	}
}

// busy says whether the send loop must go on ticking. A fragment added after
// the check wakes the loop (wake has room for one signal), which then ticks
// again.
func (p *Producer) busy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending) > 0 || p.spool != nil && !p.caughtUp
}

// syncReconnects takes the connection's reconnect count as seen.
func (p *Producer) syncReconnects() {
	reconnects := p.nc.Stats().Reconnects // its own lock: not under p.mu, as requeue
	p.mu.Lock()
	p.reconnects = reconnects
	p.mu.Unlock()
}

// maxPersistBackoff caps how far a fragment's wait for PERSISTED grows:
// PersistTimeout doubles with each re-send up to 16 times it.
const maxPersistBackoff = 4

// requeue marks for re-sending what a reconnect or a silence calls for.
//
// A RECEIVED fragment is re-sent when the server has said nothing about this
// producer's fragments for its wait — PersistTimeout, doubled with each
// re-send of it — or when it has waited 16 × PersistTimeout in any case. The
// server applies a stream's fragments in bus order: while events for earlier
// fragments keep coming, the later ones are queued in the bus, and re-sending
// them would only add copies for the server to wade through. Re-sending each
// overdue fragment every PersistTimeout whatever the server was doing made a
// slow server slower: after a run of restarts the bus held a million re-sent
// copies and the soak's producers waited minutes for PERSISTED.
func (p *Producer) requeue(now time.Time) {
	reconnects := p.nc.Stats().Reconnects
	p.mu.Lock()
	defer p.mu.Unlock()
	reconnected := reconnects != p.reconnects
	p.reconnects = reconnects
	for _, f := range p.pending {
		wait := p.cfg.PersistTimeout << min(f.resends, maxPersistBackoff)
		quiet := now.Sub(f.receivedAt) >= wait && now.Sub(p.lastEvent) >= wait
		stale := now.Sub(f.receivedAt) >= p.cfg.PersistTimeout<<maxPersistBackoff
		// A later fragment is PERSISTED and this one is not: its verdict was
		// lost. The grace lets events from several servers (a cluster's
		// replicas) arrive out of order without a re-send.
		overtaken := !f.overtakenAt.IsZero() && now.Sub(f.overtakenAt) >= p.cfg.PersistTimeout/4
		switch {
		case f.state == stateReceived && (reconnected || quiet || stale || overtaken):
			f.overtakenAt = time.Time{} // a later PERSISTED marks it again
			// The bus has it; its PERSISTED was lost or the server restarted
			// before applying it. A fresh msg id gets it past the bus's dedupe;
			// the store answers PERSISTED (Duplicate) or stores it now. After a
			// reconnect every RECEIVED fragment goes again at once: events sent
			// while disconnected are lost.
			if !reconnected {
				f.resends++
			}
			f.attempt++
			f.state = stateQueued
			p.stats.Resent++
		case f.state == stateInFlight && reconnected:
			f.state = stateQueued // same msg id: the bus stores it once
			p.stats.Resent++
		}
	}
}

// sendQueued publishes every queued fragment, oldest first.
func (p *Producer) sendQueued() {
	for {
		p.mu.Lock()
		var f *outFragment
		for _, q := range p.pending {
			if q.state == stateQueued {
				f = q
				break
			}
		}
		if f == nil || p.closedLocked() || p.mustWaitLocked(f) || p.spool != nil && f.seq > p.spool.Synced() {
			// (A spooled fragment goes out only once it is fsynced: the
			// server never sees one a power cut could take back.)
			p.mu.Unlock()
			return
		}
		f.state, f.gen, f.retrying = stateInFlight, f.gen+1, false
		seq, gen, attempt, data, prev := f.seq, f.gen, f.attempt, f.data, f.prev
		p.stats.Published++
		p.mu.Unlock()

		// A fragment larger than a bus message goes as chunks (wire.SplitFragment),
		// which the server puts back together; the bus dedupes each chunk, so a
		// re-send after a failure part way adds only the missing ones.
		header := wire.FragmentHeader(p.cfg.Stream, p.cfg.ProducerID, seq, prev, attempt)
		parts, headers := wire.SplitFragment(header, data, wire.MaxChunkPayload(p.nc.MaxPayload(), PublishHeaderBytes))
		futs := make([]jetstream.PubAckFuture, 0, len(parts))
		for k, part := range parts {
			msg := &nats.Msg{Subject: p.subs.Frag(p.cfg.Stream), Data: part, Header: headers[k]}
			fut, err := p.js.PublishMsgAsync(msg)
			for k > 0 && errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				// A fragment of more chunks than the publish window
				// (MaxPublishesInFlight) on a link too slow to free a slot
				// in the stall wait: wait for the window rather than send
				// the fragment again from its first chunk, which on such a
				// link would never end.
				select {
				case <-p.js.PublishAsyncComplete():
				case <-p.stop:
					return
				}
				fut, err = p.js.PublishMsgAsync(msg)
			}
			if errors.Is(err, nats.ErrMaxPayload) {
				// Final: no re-send will fit (the server we reconnected to takes
				// less than its headers and a chunk). Refuse it and go on.
				p.tooLarge(seq, gen, len(part), err)
				futs = nil
				break
			}
			if err != nil {
				// Too many publishes in flight, or no connection: put it back and
				// let the next tick try again rather than spin.
				p.publishFailed(seq, gen, err)
				return
			}
			futs = append(futs, fut)
		}
		if futs == nil {
			continue
		}
		p.wg.Add(1)
		go p.await(seq, gen, futs)
	}
}

// mustWaitLocked holds a re-send back until the fragment it must follow is
// RECEIVED, so that the bus gets them in order this time. Later fragments
// wait behind it.
func (p *Producer) mustWaitLocked(f *outFragment) bool {
	if f.waitFor == 0 {
		return false
	}
	if w, _ := p.findLocked(f.waitFor); w != nil && w.state != stateReceived {
		return true
	}
	f.waitFor = 0
	return false
}

// retryLocked handles a RETRY answer: the fragment arrived before the one it
// follows. Re-send it (with a fresh msg id, past the bus's dedupe) after that
// one, or without the constraint when that one is already final.
func (p *Producer) retryLocked(f *outFragment, after uint64) {
	p.stats.Retries++
	f.attempt++
	f.state, f.retrying = stateQueued, true
	if w, _ := p.findLocked(after); w != nil {
		f.waitFor = after
	} else {
		f.prev = 0 // PERSISTED meanwhile, or refused or dropped: no reason to wait
	}
	p.kick()
}

func (p *Producer) closedLocked() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// await waits for the publish acks of a fragment's message, or of each of
// its chunks: the bus has the fragment once it has its last chunk, whose
// sequence is the fragment's number.
func (p *Producer) await(seq uint64, gen int, futs []jetstream.PubAckFuture) {
	defer p.wg.Done()
	size := 0
	for _, f := range futs {
		size += len(f.Msg().Data)
	}
	t := time.NewTimer(p.cfg.publishWait(size))
	defer t.Stop()
	var ack *jetstream.PubAck
	for _, fut := range futs {
		select {
		case <-t.C:
			p.publishFailed(seq, gen, errPublishTimeout)
			return
		case ack = <-fut.Ok():
		case err := <-fut.Err():
			if errors.Is(err, nats.ErrMaxPayload) {
				p.tooLarge(seq, gen, len(fut.Msg().Data), err)
				return
			}
			p.publishFailed(seq, gen, err)
			return
		case <-p.stop:
			return
		}
	}
	p.received(seq, ack)
}

// errPublishTimeout: the bus did not acknowledge a publish in time.
var errPublishTimeout = errors.New("sdk: no publish acknowledgement in time")

// received records a publish ack: any attempt's ack means the bus has it.
func (p *Producer) received(seq uint64, ack *jetstream.PubAck) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, _ := p.findLocked(seq)
	if f == nil || f.state == stateReceived || f.retrying {
		return
	}
	first := f.number == ""
	f.state, f.receivedAt = stateReceived, time.Now()
	f.number = strconv.FormatUint(ack.Sequence, 10)
	if first {
		p.events.push(AckEvent{EventType: EventReceived, FragmentTimecode: f.timecodeMS(), FragmentNumber: f.number,
			ProducerID: p.cfg.ProducerID, ProducerSequence: f.seq})
	}
	p.kick() // a re-send may have been waiting for this one
}

// publishFailed puts a fragment back in the queue, unless a later publish of
// it is already on its way.
func (p *Producer) publishFailed(seq uint64, gen int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, _ := p.findLocked(seq)
	if f == nil || f.gen != gen || f.state != stateInFlight {
		return
	}
	f.state = stateQueued
	p.stats.Resent++
	p.stats.PublishFailures++
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// The bus itself refused it (full, or closed by the server's disk
		// guard while its disk is full). The fragment stays in the buffer and
		// is re-sent; OnAck hears it once per fragment as a retriable ERROR,
		// the log once in a while.
		if !f.refusalReported {
			f.refusalReported = true
			ev := wire.ErrorEvent(wire.ErrArchival, f.timecodeMS(), "the bus refuses the fragment ("+apiErr.Description+
				"): the server's disk may be nearly full; the fragment is kept and sent again, and PERSISTED follows once the server takes it")
			ev.ProducerID, ev.ProducerSequence, ev.Retriable = p.cfg.ProducerID, f.seq, true
			p.events.push(ev)
		}
		if time.Since(p.lastRefusalLog) > 10*time.Second {
			p.lastRefusalLog = time.Now()
			p.log.Warn("sdk: the bus refuses fragments; keeping them and retrying", "sequence", seq, "err", err)
		}
		return
	}
	p.log.Debug("sdk: publish failed; will re-send", "sequence", seq, "err", err)
}

// tooLarge gives a fragment up when the bus refuses its size: it is dropped
// from the buffer and reported as an ERROR event with MAX_FRAGMENT_SIZE_REACHED,
// as the server would have refused it. Re-sending could only fail again.
func (p *Producer) tooLarge(seq uint64, gen int, size int, err error) {
	maxPayload := p.nc.MaxPayload()
	p.mu.Lock()
	defer p.mu.Unlock()
	f, i := p.findLocked(seq)
	if f == nil || f.gen != gen || f.state != stateInFlight {
		return
	}
	msg := fmt.Sprintf("a fragment of %d bytes is too large for the NATS server's max_payload of %d bytes (%v): "+
		"lower MaxFragmentSize to at most %d, or raise max_payload in the server's configuration",
		size, maxPayload, err, maxPayload-PublishHeaderBytes)
	ev := wire.ErrorEvent(wire.ErrMaxFragmentSize, f.timecodeMS(), msg)
	ev.ProducerID, ev.ProducerSequence = p.cfg.ProducerID, f.seq
	p.stats.Errors++
	p.goneLocked(f.seq)
	p.removeLocked(i, spool.Refused)
	p.log.Warn("sdk: fragment refused", "sequence", f.seq, "code", ev.ErrorCode, "reason", msg)
	p.events.push(ev)
}
