package sdk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
	"github.com/sensorium-io/sensorium/sdk/internal/spool"
)

// SpoolConfig keeps a producer's fragments on disk until the server has
// PERSISTED them, so that they survive the producer being killed and the
// machine losing power: a producer started again on the same folder re-sends
// what was not PERSISTED, with the same producer id and sequences, and the
// server stores each fragment once. The format, the fsync policy and the
// order of catch-up are in sdk/SPOOL.md.
//
// Close waits for PERSISTED within its context, as without a spool; what is
// not PERSISTED by then stays in the spool for the next producer, and
// Close's error says how many (a device shutting down offline passes a
// short context).
//
// A producer with a spool may be made on a NATS connection that has not
// connected yet (nats.RetryOnFailedConnect): a device that boots offline
// spools from its first frame.
//
// With a spool, the producer's Policy applies to Budget (the disk), and
// BufferBytes bounds only the fragments it holds in memory to send: the
// backlog is read from disk as the link takes it, so memory stays bounded
// whatever the backlog.
type SpoolConfig struct {
	// Dir is the spool's folder, one per producer (a second producer on it is
	// refused). It remembers the producer id: leave ProducerID empty and the
	// spool's is used, or it must match.
	Dir string
	// Budget bounds the spool's files, in bytes; at least
	// 4 × MaxFragmentSize. Space is freed a segment file at a time
	// (Budget/32, within 1 MiB and 64 MiB, at most Budget/4): DropOldest
	// drops the oldest segment's fragments together.
	Budget int64
	// SyncPuts makes the PutFrame (or Flush) that closes a fragment return
	// only once the fragment is fsynced. Without it the fsync happens in a
	// group right after, and always before the fragment is published: a
	// power cut can lose the fragments closed in the last few milliseconds,
	// never one the server has seen.
	SyncPuts bool

	fs vfs.FS // tests inject a crashing file system
}

// minSpoolFragments is how many fragments of MaxFragmentSize a budget must hold.
const minSpoolFragments = 4

// ErrBufferFull is returned, wrapped, by a PutFrame (or Flush) under the
// RefuseNew policy whose fragment found the buffer (or the spool) full: the
// fragment was dropped and reported through OnDrop.
var ErrBufferFull = errors.New("sdk: buffer full")

func (c *ProducerConfig) checkSpool() error {
	s := c.Spool
	if s == nil {
		return nil
	}
	if s.Dir == "" {
		return errors.New("sdk: Spool.Dir is required")
	}
	if need := minSpoolFragments * (int64(c.MaxFragmentSize) + spool.RecordHeaderSize + spool.RecordFixedSize); s.Budget < need {
		return fmt.Errorf("sdk: Spool.Budget is %d bytes; it must hold at least %d fragments of MaxFragmentSize (%d bytes)", s.Budget, minSpoolFragments, need)
	}
	return nil
}

// openSpool opens the producer's spool before the producer id is settled:
// the spool's own id wins, a different configured one is refused.
func openSpool(cfg *ProducerConfig, onSync func()) (*spool.Spool, error) {
	given := cfg.ProducerID
	fresh := spool.Meta{ProducerID: given, Stream: cfg.Stream, FirstSequence: 1}
	if given == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		fresh.ProducerID = "p-" + hex.EncodeToString(b[:])
	} else {
		// A configured id may have been used before, by a producer whose
		// spool was deleted: its sequences start from the clock (µs), above
		// any that producer can have reached, so that the server's dedupe
		// never takes a new fragment for an old one.
		fresh.FirstSequence = uint64(time.Now().UnixMicro())
	}
	sp, meta, reps, err := spool.Open(spool.Options{Dir: cfg.Spool.Dir, Budget: cfg.Spool.Budget, FS: cfg.Spool.fs, OnSync: onSync}, fresh)
	if err != nil {
		return nil, fmt.Errorf("sdk: open spool: %w", err)
	}
	switch {
	case meta.Stream != cfg.Stream:
		sp.Close()
		return nil, fmt.Errorf("sdk: the spool in %s belongs to stream %q, not %q", cfg.Spool.Dir, meta.Stream, cfg.Stream)
	case given != "" && given != meta.ProducerID:
		sp.Close()
		return nil, fmt.Errorf("sdk: the spool in %s belongs to producer %q, not %q: leave ProducerID empty to use the spool's", cfg.Spool.Dir, meta.ProducerID, given)
	}
	if len(meta.ProducerID) > 256 {
		sp.Close()
		return nil, fmt.Errorf("sdk: the spool in %s names a producer id longer than 256 bytes", cfg.Spool.Dir)
	}
	cfg.ProducerID = meta.ProducerID
	for _, r := range reps {
		cfg.Logger.Warn("sdk: spool repaired: a write torn by a crash was cut (it had never been sent)",
			"file", r.File, "offset", r.Offset, "bytes", r.Dropped, "reason", r.Reason)
	}
	return sp, nil
}

// SpooledThrough is the producer time (ns) at which the newest fragment this
// producer's spool ever took ends, made by this process or one before it on
// the same spool; ok is false without a spool or before the first fragment.
// A producer killed loses the frames of its open fragment (they were never
// spooled): one whose source can replay (a file, a device's buffer) resumes
// from here. PutFrame refuses frames earlier than it.
func (p *Producer) SpooledThrough() (ns int64, ok bool) {
	if p.spool == nil {
		return 0, false
	}
	seq, end := p.spool.High()
	return end, seq > 0 && end != 0
}

// enqueueSpool writes a fragment to the spool, applying the policy when the
// budget is full, and hands it to the sender when the sender is not behind;
// otherwise the loader reads it from disk in its turn. putLock held.
func (p *Producer) enqueueSpool(ctx context.Context, f *outFragment) error {
	rec := spool.Record{Seq: f.seq, Start: f.start, End: f.end, Frames: f.frames, Data: f.data}
	p.mu.Lock()
	p.stats.Fragments++
	p.mu.Unlock()
	for !p.spool.Room(rec.Size()) {
		if err := p.spool.Err(); err != nil {
			return p.spoolFailed(f, err)
		}
		switch p.cfg.Policy {
		case DropOldest:
			dropped, err := p.spool.DropOldestSegment()
			p.spoolDropped(dropped)
			if err != nil {
				return p.spoolFailed(f, err)
			}
			if len(dropped) == 0 {
				return p.spoolFailed(f, fmt.Errorf("the budget of %d bytes is full and holds nothing to drop", p.cfg.Spool.Budget))
			}
		case RefuseNew:
			p.mu.Lock()
			p.reportDropLocked(f, DroppedNew)
			p.mu.Unlock()
			return fmt.Errorf("sdk: spool full (%d bytes), fragment %d dropped: %w", p.cfg.Spool.Budget, f.seq, ErrBufferFull)
		default: // Block
			p.mu.Lock()
			ch := p.changed
			p.mu.Unlock()
			if p.spool.Room(rec.Size()) {
				continue
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return p.blockedDrop(f, ctx.Err())
			case <-p.stop:
				return p.blockedDrop(f, ErrClosed)
			}
		}
	}
	p.loadMu.Lock()
	if err := p.spool.Append(&rec); err != nil {
		p.loadMu.Unlock()
		return p.spoolFailed(f, err)
	}
	p.mu.Lock()
	if p.caughtUp && p.loaded < f.seq && p.bytes+int64(len(f.data)) <= p.cfg.BufferBytes {
		p.addPendingLocked(f)
	} else {
		p.caughtUp = false // on disk only: the loader reads it when there is room
	}
	p.mu.Unlock()
	p.loadMu.Unlock()
	if p.cfg.Spool.SyncPuts {
		if err := p.spool.WaitSynced(ctx, f.seq); err != nil {
			return fmt.Errorf("sdk: fragment %d is spooled but not yet fsynced: %w", f.seq, err)
		}
	}
	return nil
}

// addPendingLocked moves a fragment into the send window, after the one
// loaded before it. p.mu and loadMu held.
func (p *Producer) addPendingLocked(f *outFragment) {
	f.prev = 0
	if w, _ := p.findLocked(p.loaded); w != nil {
		f.prev = p.loaded // still on its way: the server must take it first
	}
	p.pending = append(p.pending, f)
	p.bytes += int64(len(f.data))
	p.loaded = f.seq
	p.kick()
}

// load moves spooled fragments into the send window, oldest first, while
// it has room: the backlog streams from disk and is never held whole.
func (p *Producer) load() {
	if p.spool == nil {
		return
	}
	p.loadMu.Lock()
	defer p.loadMu.Unlock()
	for {
		p.mu.Lock()
		after, room, empty := p.loaded, p.cfg.BufferBytes-p.bytes, len(p.pending) == 0
		p.mu.Unlock()
		if empty {
			room = spool.MaxRecordBody // one always fits, even of a larger MaxFragmentSize before a restart
		}
		rec, ok, err := p.reader.Next(after, int(max(room, 0)))
		if errors.Is(err, spool.ErrDamaged) {
			p.log.Error("sdk: a spooled fragment is damaged on disk; it is dropped", "sequence", rec.Seq, "err", err)
			_ = p.spool.Done(rec.Seq, spool.Dropped)
			p.mu.Lock()
			p.loaded = rec.Seq
			p.reportDropLocked(&outFragment{seq: rec.Seq, start: rec.Start, end: rec.End, frames: rec.Frames, spooledBytes: rec.Bytes, gen: p.wireGuess(rec.Seq)}, DroppedDamaged)
			p.mu.Unlock()
			continue
		}
		if err != nil {
			p.log.Error("sdk: reading the spool", "err", err)
			return
		}
		if !ok {
			if rec.Seq == 0 {
				p.mu.Lock()
				p.caughtUp = true
				p.mu.Unlock()
			}
			return
		}
		f := &outFragment{seq: rec.Seq, data: rec.Data, start: rec.Start, end: rec.End, frames: rec.Frames}
		if rec.Seq <= p.spoolStartHigh {
			// An earlier process may have published it, maybe minutes ago: a
			// msg id of this process's own gets it past the bus's dedupe
			// window, so that the store answers it now (PERSISTED, as a
			// duplicate if it has it) rather than after PersistTimeout.
			f.attempt = p.spoolEpoch
		}
		p.mu.Lock()
		p.addPendingLocked(f)
		p.mu.Unlock()
	}
}

// wireGuess says whether a spooled fragment not in the window may have been
// published: those of an earlier process may have been. 1 or 0, as
// outFragment.gen.
func (p *Producer) wireGuess(seq uint64) int {
	if seq <= p.spoolStartHigh {
		return 1
	}
	return 0
}

// spoolDropped reports the fragments DropOldest gave up from the spool,
// taking them out of the send window when they are in it.
func (p *Producer) spoolDropped(recs []spool.Record) {
	if len(recs) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range recs {
		if f, i := p.findLocked(r.Seq); f != nil {
			p.removeLocked(i, spool.Dropped)
			p.reportDropLocked(f, DroppedOldest)
			continue
		}
		p.reportDropLocked(&outFragment{seq: r.Seq, start: r.Start, end: r.End, frames: r.Frames, spooledBytes: r.Bytes, gen: p.wireGuess(r.Seq)}, DroppedOldest)
	}
	p.notifyLocked()
}

// spoolFailed reports a fragment the spool could not take (a failed write
// or fsync: the disk is full or failing) and returns the error.
func (p *Producer) spoolFailed(f *outFragment, err error) error {
	p.mu.Lock()
	p.reportDropLocked(f, DroppedNew)
	p.mu.Unlock()
	return fmt.Errorf("sdk: spool: fragment %d dropped: %w", f.seq, err)
}

// blockedDrop reports the fragment of a PutFrame that waited for room in
// vain.
func (p *Producer) blockedDrop(f *outFragment, err error) error {
	p.mu.Lock()
	p.reportDropLocked(f, DroppedNew)
	p.mu.Unlock()
	return fmt.Errorf("sdk: buffer full, fragment %d dropped: %w", f.seq, err)
}
