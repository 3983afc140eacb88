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
// Duplicate, exactly as over NATS. A session that ends early (the link
// cut, the server restarted, its maximum duration reached, a fragment it
// could not store) is followed by another from the first fragment without
// PERSISTED; up to mkvRoundFragments (mkvRoundBytes) of them are held for
// that.

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

	sp           *mkvSplitter
	next         *mkvFragment   // the next fragment of the file, not yet sent
	readErr      error          // why reading the file stopped before its end
	pending      []*mkvFragment // sent, without PERSISTED, in order
	pendingBytes int
	// between is the pause before the next session; a session without
	// progress doubles it, up to mkvSessionPauseMax.
	between time.Duration
}

const (
	mkvSessionPause    = 250 * time.Millisecond // PutMedia takes 5 sessions a second per stream
	mkvSessionPauseMax = 30 * time.Second
)

// errSessionAgain is a session that ended before its fragments were all
// stored, for a reason that another session may not meet.
var errSessionAgain = errors.New("session ended early")

func (s *mkvHTTPSender) sendAll(sp *mkvSplitter, f *mkvFragment) (sendErr, readErr error) {
	s.sp, s.next, s.between = sp, f, mkvSessionPause
	since := time.Now()
	var why error
	for s.next != nil || len(s.pending) > 0 {
		before := s.persisted
		err := s.session()
		if err == nil {
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

// session runs one PutMedia session: the pending fragments again, then
// new ones while there is room, until the file's end (nil: all stored),
// a refusal, or an early end (errSessionAgain).
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
	// taken while a write waits for the server to read.
	// It writes in pieces and counts them, so that a large fragment on a
	// slow link is seen to move.
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

	queue := append([]*mkvFragment(nil), s.pending...) // to write, in order
	stored := map[uint64]bool{}
	var refused *mkvFragment
	var refusal sdk.AckEvent
	var again error // why the session will not store the rest
	// quiet fires when neither a verdict came nor a byte moved for
	// mkvAckTimeout: the session is stuck, and another goes again.
	quiet := time.NewTimer(mkvAckTimeout)
	defer quiet.Stop()
	lastMoved := int64(0)
	handle := func() {
		mu.Lock()
		evs := events
		events = nil
		mu.Unlock()
		for _, ev := range evs {
			switch ev.EventType {
			case wire.EventPersisted:
				f := s.pendingAt(ev.ProducerSequence)
				if f == nil || stored[f.seq] {
					continue
				}
				stored[f.seq] = true
				s.stored(f.tc, ev.Duplicate)
				quiet.Reset(mkvAckTimeout)
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
					if f != nil && (refused == nil || f.seq < refused.seq) {
						refused, refusal = f, ev
					}
				}
			}
		}
		s.dropStored(stored)
	}
	for {
		var send chan []byte
		var head []byte
		if (refused != nil || again != nil) && toWrite != nil {
			// Nothing more goes: the body ends, and the server answers
			// what it has and ends the session.
			close(toWrite)
			toWrite = nil
		}
		if refused == nil && again == nil {
			if len(queue) == 0 && s.room() {
				f := s.next
				s.pending = append(s.pending, f)
				s.pendingBytes += len(f.data)
				queue = append(queue, f)
				s.readNext()
			}
			if len(queue) > 0 {
				send, head = toWrite, queue[0].data
			} else if s.next == nil && toWrite != nil {
				close(toWrite) // all written: the body ends
				toWrite = nil
			}
		}
		select {
		case send <- head:
			queue = queue[1:]
		case <-wake:
			handle()
		case <-quiet.C:
			if m := moved.Load(); m != lastMoved {
				lastMoved = m
				quiet.Reset(mkvAckTimeout)
				continue
			}
			if len(s.pending) > 0 {
				cancel()
				return fmt.Errorf("%w: no verdict for %s", errSessionAgain, mkvAckTimeout)
			}
			quiet.Reset(mkvAckTimeout)
		case err := <-done:
			handle()
			switch {
			case refused != nil:
				return s.refusalError(refused, refusal, stored)
			case err != nil && sessionRefused(err):
				return fmt.Errorf("PutMedia: %w", err)
			case err != nil:
				return fmt.Errorf("%w: %v", errSessionAgain, err)
			case again != nil:
				return again
			case len(s.pending) > 0 || s.next != nil:
				return fmt.Errorf("%w: the server ended the session", errSessionAgain)
			}
			return nil
		}
	}
}

// sessionRefused tells an answer that refuses the import for good (no
// such stream, no permission) from one another session may not meet (too
// many sessions at once, the server restarting).
func sessionRefused(err error) bool {
	var apiErr *sdk.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.Name {
	case httpwire.ConnectionLimitExceeded, httpwire.ClientLimitExceeded, httpwire.ServiceUnavailable, httpwire.InternalFailure:
		return false
	}
	return true
}

// pendingAt is the pending fragment of seq, or nil.
func (s *mkvHTTPSender) pendingAt(seq uint64) *mkvFragment {
	for _, f := range s.pending {
		if f.seq == seq {
			return f
		}
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

// dropStored lets go of the pending fragments that are stored.
func (s *mkvHTTPSender) dropStored(stored map[uint64]bool) {
	kept := s.pending[:0]
	for _, f := range s.pending {
		if stored[f.seq] {
			s.pendingBytes -= len(f.data)
			continue
		}
		kept = append(kept, f)
	}
	clear(s.pending[len(kept):])
	s.pending = kept
}

// refusalError says which fragment the server refused and how many after
// it were stored all the same (the stream then lacks that one for good).
func (s *mkvHTTPSender) refusalError(f *mkvFragment, ev sdk.AckEvent, stored map[uint64]bool) error {
	after := 0
	for seq := range stored {
		if seq > f.seq {
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
