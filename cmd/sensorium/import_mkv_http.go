package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/sdk"
)

// An MKV import over HTTP: the same fragments as over the bus, put with
// PutMedia for a server whose NATS port the importer cannot reach. Each
// session names the import's dedupe key (x-sensorium-producer-id, and
// x-sensorium-producer-sequence for its first Cluster's place in the file),
// so the store answers a fragment it holds under that key — left on the bus
// by a killed run, or re-sent after a session was cut — PERSISTED,
// Duplicate, exactly as over NATS. A session carries one round — up to
// mkvRoundFragments (mkvRoundBytes) fragments, held until PERSISTED — and
// ends its body after it, so that a proxy that passes a request on only
// once its body has ended (nginx's default) still moves the import on. A
// session that ends early (the link cut, the server restarted, its maximum
// duration reached, a fragment it could not store) is followed by another
// from the first fragment without PERSISTED: the sequences of a session
// are its place in the body, so it sends every fragment from there on
// again, those stored meanwhile included (answered Duplicate).

// mkvTally is what an import's sender counts.
type mkvTally struct {
	persisted, duplicates int   // PERSISTED, and of those Duplicate (stored by an earlier run)
	lastTC                int64 // the last stored fragment's producer time, ms
	progress              func(stored int)
}

func (t *mkvTally) stored(tc int64, duplicate bool) {
	t.persisted++
	if duplicate {
		t.duplicates++
	}
	t.lastTC = max(t.lastTC, tc)
	if t.progress != nil {
		t.progress(t.persisted)
	}
}

// mkvHTTPSender puts fragments with PutMedia under the import's key.
type mkvHTTPSender struct {
	mkvTally
	ctx      context.Context
	c        *sdk.Client
	stream   string
	producer string

	sp      *mkvSplitter
	next    *mkvFragment // the next fragment of the file, not yet sent
	readErr error        // why reading the file stopped before its end
	// pending are the fragments sent and not yet let go, in order and
	// without a gap in their sequences: from the first without PERSISTED on
	// (those after it may be stored, and are flagged so).
	pending      []*mkvFragment
	pendingBytes int
	// between is the pause before the next session; a session without
	// progress doubles it, up to mkvSessionPauseMax.
	between time.Duration
}

const (
	mkvSessionPause    = 250 * time.Millisecond // PutMedia takes 5 sessions a second per stream
	mkvSessionPauseMax = 30 * time.Second
	// mkvHTTPQuiet is how long a session may go without a verdict, an
	// event of progress (BUFFERING, RECEIVED) or a byte taken from its body
	// before it is given up: longer than over NATS, since a slow link may
	// hold megabytes in its buffers after the last write.
	mkvHTTPQuiet = 2 * time.Minute
)

var (
	// errSessionAgain is a session that ended before its fragments were all
	// stored, for a reason that another session may not meet.
	errSessionAgain = errors.New("session ended early")
	// errRoundDone is a session that sent its round and heard every verdict.
	errRoundDone = errors.New("round done")
)

func (s *mkvHTTPSender) sendAll(sp *mkvSplitter, f *mkvFragment) (sendErr, readErr error) {
	s.sp, s.next, s.between = sp, f, mkvSessionPause
	since := time.Now()
	var why error
	for s.next != nil || len(s.pending) > 0 {
		before := s.persisted
		err := s.session()
		if err == nil || errors.Is(err, errRoundDone) {
			since, s.between = time.Now(), mkvSessionPause
			continue
		}
		if !errors.Is(err, errSessionAgain) {
			return err, s.readErr
		}
		why = err
		if s.persisted > before {
			since, s.between = time.Now(), mkvSessionPause
		} else if time.Since(since) > mkvGiveUp {
			first := s.next
			if len(s.pending) > 0 {
				first = s.pending[0]
			}
			return fmt.Errorf("no PERSISTED from the server for %s (fragment %d, at %s, is the next; the last session: %v); a re-run resumes",
				mkvGiveUp, first.seq, time.UnixMilli(first.tc).UTC().Format(time.RFC3339Nano), why), s.readErr
		} else {
			s.between = min(2*s.between, mkvSessionPauseMax)
		}
		select {
		case <-s.ctx.Done():
			return s.ctx.Err(), s.readErr
		case <-time.After(s.between):
		}
	}
	return nil, s.readErr
}

// readNext moves to the file's next fragment.
func (s *mkvHTTPSender) readNext() {
	g, err := s.sp.next()
	s.next = g
	if err != nil && !errors.Is(err, io.EOF) {
		s.readErr = err
	}
}

// room reports whether the next fragment may be sent before verdicts
// come: what is held for a re-send stays within a round.
func (s *mkvHTTPSender) room() bool {
	return s.next != nil && (len(s.pending) == 0 ||
		len(s.pending) < mkvRoundFragments && s.pendingBytes+len(s.next.data) <= mkvRoundBytes)
}

// session runs one PutMedia session: the pending fragments again, then new
// ones while there is room. It returns nil at the file's end with all
// stored, errRoundDone after a round whose fragments are all stored, a
// refusal, or an early end (errSessionAgain).
func (s *mkvHTTPSender) session() error {
	first := s.next
	if len(s.pending) > 0 {
		first = s.pending[0]
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	pr, pw := io.Pipe()
	var mu sync.Mutex
	var events []sdk.AckEvent
	wake := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		err := s.c.PutMedia(ctx, sdk.PutMediaInput{Stream: sdk.ByName(s.stream), Body: pr, ProducerID: s.producer, FirstSequence: first.seq},
			func(ev sdk.AckEvent) {
				mu.Lock()
				events = append(events, ev)
				mu.Unlock()
				select {
				case wake <- struct{}{}:
				default:
				}
			})
		pr.CloseWithError(errSessionAgain) // the writer stops
		done <- err
	}()
	// The body is written by a goroutine of its own, so that verdicts are
	// taken while a write waits for the server to read. It writes in
	// pieces and counts them, so that a large fragment on a slow link is
	// seen to move.
	toWrite := make(chan []byte)
	wrote := make(chan struct{})
	var moved atomic.Int64
	go func() {
		defer close(wrote)
		for b := range toWrite {
			for len(b) > 0 {
				n := min(len(b), 64<<10)
				if _, err := pw.Write(b[:n]); err != nil {
					for range toWrite { // the session is over: let the sender go on
					}
					return
				}
				moved.Add(int64(n))
				b = b[n:]
			}
		}
		pw.Close() // the body's end: the server answers the rest and ends
	}()
	defer func() {
		if toWrite != nil {
			close(toWrite)
		}
		pr.CloseWithError(errSessionAgain)
		<-wrote
	}()
	endBody := func() {
		if toWrite != nil {
			close(toWrite)
			toWrite = nil
		}
	}

	queue := append([]*mkvFragment(nil), s.pending...) // to write, in order: every pending one again
	var refused *mkvFragment
	var refusal sdk.AckEvent
	var again, fatal error // why the session will not store the rest; why the import cannot go on
	// quiet fires when neither a verdict, nor an event of progress, nor a
	// byte of the body moved for mkvHTTPQuiet: the session is stuck.
	quiet := time.NewTimer(mkvHTTPQuiet)
	defer quiet.Stop()
	lastMoved := int64(0)
	handle := func() {
		mu.Lock()
		evs := events
		events = nil
		mu.Unlock()
		for _, ev := range evs {
			switch ev.EventType {
			case wire.EventBuffering:
				quiet.Reset(mkvHTTPQuiet)
			case wire.EventReceived, wire.EventPersisted:
				if ev.ProducerID != s.producer && fatal == nil {
					// A server that ignored the key numbers the clusters of
					// every session from 1 under an id of its own: its
					// verdicts cannot be matched, and re-sends would be
					// stored twice.
					fatal = fmt.Errorf("the server at the endpoint does not take PutMedia's dedupe key (its events name producer %q, not %q): it is not a Sensorium server of this version, so the import cannot resume exactly once over HTTP; give its NATS address (--nats)",
						ev.ProducerID, s.producer)
				}
				quiet.Reset(mkvHTTPQuiet)
				if ev.EventType == wire.EventPersisted && fatal == nil {
					if f := s.pendingAt(ev.ProducerSequence); f != nil && !f.stored {
						f.stored = true
						s.stored(f.tc, ev.Duplicate)
					}
				}
			case wire.EventError:
				switch ev.ErrorID {
				case wire.ErrStreamRead, wire.ErrMaxConnectionDuration, wire.ErrInternal, wire.ErrArchival:
					if again == nil {
						again = fmt.Errorf("%w: %s (%s %d)", errSessionAgain, ev.Message, ev.ErrorCode, int(ev.ErrorID))
					}
				default:
					f := s.pendingAt(ev.ProducerSequence)
					if f == nil {
						f = s.pendingAtTime(ev.FragmentTimecode)
					}
					if f == nil && len(s.pending) > 0 {
						// Between Clusters, or about one let go: it stops
						// the import at the first not stored.
						f = s.firstUnstored()
					}
					if f != nil && (refused == nil || f.seq < refused.seq) {
						refused, refusal = f, ev
					}
					if f == nil && fatal == nil {
						fatal = fmt.Errorf("the server ended the session: %s (%s %d)", ev.Message, ev.ErrorCode, int(ev.ErrorID))
					}
				}
			}
		}
		s.dropStoredPrefix()
	}
	for {
		var send chan []byte
		var head []byte
		switch {
		case refused != nil || again != nil || fatal != nil:
			// Nothing more goes: the body ends, and the server answers
			// what it has and ends the session.
			endBody()
		case len(queue) > 0:
			send, head = toWrite, queue[0].data
		case s.room():
			f := s.next
			s.pending = append(s.pending, f)
			s.pendingBytes += len(f.data)
			queue = append(queue, f)
			s.readNext()
			continue
		default:
			// The round is all written (or the file is): the body ends, and
			// the session with the round's last verdict.
			endBody()
		}
		select {
		case send <- head:
			queue = queue[1:]
		case <-wake:
			handle()
		case <-quiet.C:
			if m := moved.Load(); m != lastMoved {
				lastMoved = m
				quiet.Reset(mkvHTTPQuiet)
				continue
			}
			cancel()
			if refused != nil {
				return s.refusalError(refused, refusal)
			}
			return fmt.Errorf("%w: nothing moved for %s", errSessionAgain, mkvHTTPQuiet)
		case err := <-done:
			handle()
			switch {
			case fatal != nil:
				return fatal
			case refused != nil:
				return s.refusalError(refused, refusal)
			case err != nil && sessionRefused(err):
				return fmt.Errorf("PutMedia: %w", err)
			case err != nil:
				return fmt.Errorf("%w: %v", errSessionAgain, err)
			case again != nil:
				return again
			case len(s.pending) > 0:
				return fmt.Errorf("%w: the server ended the session with %d fragments without PERSISTED", errSessionAgain, len(s.pending))
			case s.next != nil:
				return errRoundDone
			}
			return nil
		}
	}
}

// sessionRefused tells an answer that refuses the import for good (no
// such stream, no permission, a proxy that refuses the request) from one
// another session may not meet (too many sessions at once, the server
// restarting, a proxy timing out).
func sessionRefused(err error) bool {
	var apiErr *sdk.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.Name {
		case httpwire.ConnectionLimitExceeded, httpwire.ClientLimitExceeded, httpwire.ServiceUnavailable, httpwire.InternalFailure:
			return false
		}
		return true
	}
	var httpErr *sdk.HTTPError
	if errors.As(err, &httpErr) {
		c := httpErr.StatusCode
		return c >= 400 && c < 500 && c != 408 && c != 429
	}
	return false
}

// pendingAt is the pending fragment of seq, or nil.
func (s *mkvHTTPSender) pendingAt(seq uint64) *mkvFragment {
	if len(s.pending) == 0 || seq < s.pending[0].seq {
		return nil
	}
	// pending holds consecutive sequences from its first.
	if i := seq - s.pending[0].seq; i < uint64(len(s.pending)) {
		return s.pending[i]
	}
	return nil
}

// pendingAtTime is the first pending fragment at producer time tc, or nil.
func (s *mkvHTTPSender) pendingAtTime(tc int64) *mkvFragment {
	for _, f := range s.pending {
		if f.tc == tc {
			return f
		}
	}
	return nil
}

// firstUnstored is the first pending fragment without PERSISTED, or nil.
func (s *mkvHTTPSender) firstUnstored() *mkvFragment {
	for _, f := range s.pending {
		if !f.stored {
			return f
		}
	}
	return nil
}

// dropStoredPrefix lets go of the pending fragments stored before the
// first one that is not: the rest stay, so that a session that starts
// again at the first sends consecutive sequences.
func (s *mkvHTTPSender) dropStoredPrefix() {
	i := 0
	for i < len(s.pending) && s.pending[i].stored {
		s.pendingBytes -= len(s.pending[i].data)
		i++
	}
	if i > 0 {
		n := copy(s.pending, s.pending[i:])
		clear(s.pending[n:])
		s.pending = s.pending[:n]
	}
}

// refusalError says which fragment the server refused and how many after
// it were stored all the same (the stream then lacks that one for good).
func (s *mkvHTTPSender) refusalError(f *mkvFragment, ev sdk.AckEvent) error {
	after := 0
	for _, p := range s.pending {
		if p.seq > f.seq && p.stored {
			after++
		}
	}
	err := fmt.Errorf("the server refused the fragment of the Cluster at %s (the file's fragment %d): %s (%s %d)",
		time.UnixMilli(f.tc).UTC().Format(time.RFC3339Nano), f.seq, ev.Message, ev.ErrorCode, int(ev.ErrorID))
	if after > 0 {
		err = fmt.Errorf("%w; the %d fragments after it that were already on their way are stored, so the stream lacks that one", err, after)
	}
	return err
}
