package replicate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/sdk"
)

// Writing the centre over HTTP only (Config.Via "http"): for a site whose
// firewall lets nothing out but HTTPS, the fragments go in PutMedia
// sessions over the centre's HTTP API, signed like every other call, and
// the verdicts come back in each session's response.
//
// A round of a stream is one session: its fragments are the body, one
// after another, and the body ends after the round's last, so that a proxy
// that passes a request on only once its body has ended still passes it.
// The session names the replicator's dedupe key (x-sensorium-producer-id,
// and x-sensorium-producer-sequence for its first fragment); the centre
// numbers the session's clusters on from it, so the round's fragments must
// have consecutive sequences (errNewSession ends a round at a gap, and the
// next starts a session of its own there). On the centre's bus the key is
// wire.PutMediaProducerPrefix + the journal's id, apart from its NATS
// producers' ids; a journal begun over NATS moves over (worker.session).
//
// Each edge fragment is a document of its own in the body
// (x-sensorium-documents: fragments), so the centre keeps its Info whole,
// its Duration — the fragment's length — included.
//
// The fragments of one session reach the centre's bus in order. A session
// cut part way ends the round: what it carried without a verdict is sent
// again, from the first such, in the next round's session, whose first
// fragment names no predecessor; those the centre stored meanwhile are
// answered PERSISTED, Duplicate.

// httpCentre puts fragments to the centre with PutMedia.
type httpCentre struct {
	ctx context.Context
	c   *sdk.Client
	// quiet is how long a session's body may take no byte before the
	// session is given up (Config.AckTimeout): a link that hangs without a
	// reset would otherwise hold the stream until the kernel gives up on
	// it, many minutes later.
	quiet time.Duration

	mu       sync.Mutex
	streams  map[string]*httpStream // by centre stream name
	sessions uint64                 // sessions started, to number them
}

// httpStream is one centre stream's sessions.
type httpStream struct {
	ch      chan verdict // where verdicts go; nil while no one listens
	sess    *putSession  // the round's session, or the last round's
	inRound bool         // a round is being sent: a fragment must continue sess
}

func newHTTPCentre(ctx context.Context, c *sdk.Client, quiet time.Duration) *httpCentre {
	return &httpCentre{ctx: ctx, c: c, quiet: quiet, streams: map[string]*httpStream{}}
}

func (h *httpCentre) streamLocked(name string) *httpStream {
	st := h.streams[name]
	if st == nil {
		st = &httpStream{}
		h.streams[name] = st
	}
	return st
}

// acks: the verdicts of stream's sessions. Its stop also abandons a
// session still running: the worker that listened has given up on it.
func (h *httpCentre) acks(stream, _ string) (<-chan verdict, func(), error) {
	ch := make(chan verdict, 4096)
	h.mu.Lock()
	st := h.streamLocked(stream)
	st.ch = ch
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if st.ch == ch {
			st.ch = nil
		}
		if st.sess != nil {
			st.sess.abort()
			st.sess = nil
		}
		st.inRound = false
	}, nil
}

// send writes the fragment to the round's session, starting one at the
// round's first fragment. prev and attempt are the NATS link's: a session
// orders its fragments itself, and gives its messages ids of their own.
func (h *httpCentre) send(stream, producer string, seq, _ uint64, _ int, producerMS int64, data []byte) (*sent, error) {
	h.mu.Lock()
	st := h.streamLocked(stream)
	s := st.sess
	if st.inRound {
		if s == nil || s.isFinished() || seq != s.next {
			h.mu.Unlock()
			return nil, errNewSession
		}
	} else {
		if s != nil {
			// The last round's session, its verdicts no longer awaited (it
			// timed out): the centre takes one session per stream at once.
			s.abort()
		}
		s = h.start(stream, producer, seq)
		st.sess, st.inRound = s, true
	}
	s.next = seq + 1
	if _, ok := s.times[producerMS]; !ok {
		s.times[producerMS] = seq
	}
	h.mu.Unlock()
	taken := make(chan error, 1)
	select {
	case s.writes <- bodyWrite{data: data, taken: taken}:
	case <-s.done:
		return nil, s.endErr()
	}
	return &sent{taken: taken, session: s.id, seq: seq, stream: stream}, nil
}

// endRound ends the session's body: the centre answers what it holds and
// ends the response.
func (h *httpCentre) endRound(stream string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.streamLocked(stream)
	st.inRound = false
	if st.sess != nil {
		st.sess.endBody()
	}
}

func (h *httpCentre) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, st := range h.streams {
		if st.sess != nil {
			st.sess.abort()
		}
	}
}

// forward passes a session's verdict on, unless the session is no longer
// its stream's (abandoned) or no one listens.
func (h *httpCentre) forward(s *putSession, v verdict) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.streams[s.stream]
	if st == nil || st.sess != s || st.ch == nil {
		return
	}
	select {
	case st.ch <- v:
	default: // a full channel: the re-send after the timeout gets it again
	}
}

// putSession is one PutMedia session: a round's fragments.
type putSession struct {
	h        *httpCentre
	id       uint64 // from 1, in the order sessions start
	stream   string
	producer string
	cancel   context.CancelFunc
	writes   chan bodyWrite // to the body's writer, in order
	done     chan struct{}  // closed when the response has ended

	// Guarded by h.mu.
	first, next uint64           // the first fragment's sequence; the one the next must have
	times       map[int64]uint64 // producer time (ms) → the first fragment's sequence at it
	bodyEnded   bool             // writes is closed

	// err is why it ended early (nil when it ended as it should); written
	// before done closes.
	err error

	fmu     sync.Mutex
	failure error // why the rest of it will not be stored: the first reason found (an event, the watchdog)
}

// bodyWrite is a fragment for the body; taken gives the write's result.
type bodyWrite struct {
	data  []byte
	taken chan error
}

// errSessionGone: the session was given up (a new round began, or the
// worker stopped).
var errSessionGone = errors.New("the PutMedia session was given up")

// errIgnoresKey: the centre stores PutMedia's fragments under keys of its
// own, so re-sends would be stored twice. The stream's copy stops.
var errIgnoresKey = errors.New("the centre does not take PutMedia's dedupe key")

// h.mu is held.
func (h *httpCentre) start(stream, producer string, first uint64) *putSession {
	ctx, cancel := context.WithCancel(h.ctx)
	h.sessions++
	s := &putSession{h: h, id: h.sessions, stream: stream, producer: producer, cancel: cancel, writes: make(chan bodyWrite, 64),
		done: make(chan struct{}), first: first, next: first, times: map[int64]uint64{}}
	pr, pw := io.Pipe()
	go s.writeBody(pw)
	go s.run(ctx, pr)
	return s
}

// fail records why the session's rest will not be stored (the first
// reason wins) and, with stop, ends it.
func (s *putSession) fail(err error, stop bool) {
	s.fmu.Lock()
	if s.failure == nil {
		s.failure = err
	}
	s.fmu.Unlock()
	if stop {
		s.cancel()
	}
}

func (s *putSession) failed() error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.failure
}

// bodyPiece is how much of a fragment is written to the body at once: the
// watchdog sees a large fragment on a slow link move.
const bodyPiece = 64 << 10

// writeBody writes the fragments to the body as they come, and ends it
// when the round does. A write the session can no longer take fails, and
// so does every one after it. A piece the link takes nothing of for
// h.quiet ends the session.
func (s *putSession) writeBody(pw *io.PipeWriter) {
	var failed error
	for w := range s.writes {
		for b := w.data; failed == nil && len(b) > 0; {
			n := min(len(b), bodyPiece)
			watchdog := time.AfterFunc(s.h.quiet, func() {
				s.fail(fmt.Errorf("the link to the centre took nothing of the PutMedia body for %s", s.h.quiet), true)
			})
			_, failed = pw.Write(b[:n])
			watchdog.Stop()
			b = b[n:]
		}
		w.taken <- failed
	}
	_ = pw.Close()
}

// run is the session's request, until the centre ends its response.
func (s *putSession) run(ctx context.Context, body *io.PipeReader) {
	err := s.h.c.PutMedia(ctx, sdk.PutMediaInput{Stream: sdk.ByName(s.stream), Body: body,
		ProducerID: s.producer, FirstSequence: s.first, FragmentDocuments: true}, s.onEvent)
	// The reason found first says more than the cancellation it caused.
	if f := s.failed(); f != nil {
		err = f
	} else if err != nil && ctx.Err() != nil {
		err = errSessionGone
	}
	cause := err
	if cause == nil {
		cause = errSessionGone
	}
	_ = body.CloseWithError(cause) // writes waiting on the body fail with it
	s.err = err
	s.h.mu.Lock()
	first, last := s.first, s.next-1
	s.h.mu.Unlock()
	s.h.forward(s, verdict{ended: true, session: s.id, first: first, last: last, err: err})
	close(s.done)
}

// onEvent takes one event of the session's response.
func (s *putSession) onEvent(ev sdk.AckEvent) {
	switch ev.EventType {
	case wire.EventPersisted:
		if ev.ProducerID != s.producer {
			// A server that ignores the key numbers each session's
			// clusters under an id of its own: re-sends would be stored
			// twice. Nothing is taken as stored.
			s.fail(fmt.Errorf("%w (its events name producer %q, not %q): it is not a Sensorium server of this version; replicate over its NATS (--via nats)",
				errIgnoresKey, ev.ProducerID, s.producer), true)
			return
		}
		s.h.forward(s, verdict{AckEvent: ev})
	case wire.EventError:
		switch ev.ErrorID {
		case wire.ErrStreamRead, wire.ErrMaxConnectionDuration, wire.ErrInternal, wire.ErrArchival:
			// The session ends without storing the rest, for a reason the
			// next one may not meet: they are sent again.
			s.fail(fmt.Errorf("the centre ended the PutMedia session: %s (%s %d)", ev.Message, ev.ErrorCode, int(ev.ErrorID)), false)
			return
		}
		if ev.ProducerSequence == 0 {
			// Refused by the session before the bus: it names the cluster
			// by its time only.
			s.h.mu.Lock()
			ev.ProducerSequence = s.times[ev.FragmentTimecode]
			s.h.mu.Unlock()
		}
		if ev.ProducerSequence == 0 {
			s.fail(fmt.Errorf("the centre ended the PutMedia session: %s (%s %d)", ev.Message, ev.ErrorCode, int(ev.ErrorID)), false)
			return
		}
		s.h.forward(s, verdict{AckEvent: ev})
	}
}

// endBody ends the body after the fragments written. h.mu is held.
func (s *putSession) endBody() {
	if !s.bodyEnded {
		s.bodyEnded = true
		close(s.writes)
	}
}

// abort gives the session up. h.mu is held.
func (s *putSession) abort() {
	s.endBody()
	s.cancel()
}

func (s *putSession) isFinished() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// endErr is why a finished session cannot take a fragment.
func (s *putSession) endErr() error {
	if s.err != nil {
		return s.err
	}
	return errors.New("the PutMedia session ended")
}
