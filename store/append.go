package store

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Fragment is a fragment handed to Append.
type Fragment struct {
	Number       uint64 // from the bus: its sequence
	ServerTime   int64  // from the bus: when it accepted the message, ns
	ProducerTime int64  // ns: the first frame's time
	Duration     int64  // ns
	ProducerID   string // with ProducerSeq, the store's dedupe key; "" when absent
	ProducerSeq  uint64
	// ClusterOffset is where the Cluster element starts in Payload, so that a
	// reader can insert its own tags before it without parsing the fragment.
	ClusterOffset uint32
	Payload       []byte // a complete MKV document; the store does not interpret it
	// ReadSize is the fragment's size as readers get it, when the writer
	// stores it in a form of its own that Options.Expand turns back (the
	// server's packed PCM); 0: the payload's own size. It is what
	// FragmentInfo.Size (ListFragments' FragmentSizeInBytes) says.
	ReadSize int
}

// AppendStatus says what Append did with a fragment.
type AppendStatus uint8

// Append statuses.
const (
	// Appended: written; durable after the next successful Sync.
	Appended AppendStatus = iota + 1
	// Duplicate: the producer key was stored before (a re-send); nothing written.
	Duplicate
	// AlreadyApplied: a redelivered bus message whose number the stream already
	// has; nothing written.
	AlreadyApplied
	// LiveOnly: the stream keeps nothing (retention 0); held in memory for live
	// readers and never written.
	LiveOnly
	// PassedOver: a redelivered bus message below the stream's last number that
	// the stream does not hold — it was refused or held back (RETRY) when it
	// first came, and the stream has moved on; nothing written. Its fragment is
	// not stored under this number and never will be.
	PassedOver
)

func (a AppendStatus) String() string {
	switch a {
	case Appended:
		return "appended"
	case Duplicate:
		return "duplicate"
	case AlreadyApplied:
		return "already-applied"
	case LiveOnly:
		return "live-only"
	case PassedOver:
		return "passed-over"
	}
	return "unknown"
}

// AppendResult is the outcome of an Append.
type AppendResult struct {
	Status AppendStatus
	// Number is the fragment number: the one given, or for a Duplicate the one
	// it was first stored under (0 when that is too old to remember).
	Number     uint64
	ServerTime int64 // as stored: the bus time, raised to keep server time monotonic
}

// sealBufs are the buffers records are sealed into, shared by all streams.
var sealBufs = sync.Pool{New: func() any { return new([]byte) }}

// bigSealBufs keeps two buffers for records of a megabyte and more across
// garbage collections, which empty a sync.Pool: sealing a fragment of tens
// of MB into a fresh allocation cleared it first, a tenth of a server's CPU
// at 45 MiB fragments. They hold at most twice the largest such record.
var bigSealBufs = make(chan *[]byte, 2)

const bigSeal = 1 << 20

func getSealBuf(n int) *[]byte {
	if n >= bigSeal {
		select {
		case b := <-bigSealBufs:
			return b
		default:
			return new([]byte)
		}
	}
	return sealBufs.Get().(*[]byte)
}

func putSealBuf(b *[]byte) {
	if cap(*b) >= bigSeal {
		select {
		case bigSealBufs <- b:
		default:
		}
		return
	}
	sealBufs.Put(b)
}

// ErrTimecodeBackwards refuses a fragment whose producer timestamp is earlier
// than the previous fragment's; the index relies on producer time never going
// back within a stream.
var ErrTimecodeBackwards = errors.New("store: producer timestamp is earlier than the previous fragment's")

// Append writes a fragment to its stream. It is not durable until Sync returns
// nil for that stream; until then readers do not see it. An error from Append or
// Sync discards everything appended to the stream since its last successful
// Sync (the caller must treat those fragments as not stored: the bus still has
// them). Appends to one stream must come in bus order from one goroutine.
func (s *Store) Append(streamName string, f *Fragment) (AppendResult, error) {
	st, err := s.stream(streamName)
	if err != nil {
		return AppendResult{}, err
	}
	return st.append(f)
}

// Sync makes everything appended to the stream durable (fsync) and visible to
// readers.
func (s *Store) Sync(streamName string) error {
	st, err := s.stream(streamName)
	if err != nil {
		return err
	}
	st.wmu.Lock()
	defer st.wmu.Unlock()
	return st.syncLocked()
}

func (st *stream) append(f *Fragment) (AppendResult, error) {
	if len(f.ProducerID) > maxProducerID {
		return AppendResult{}, fmt.Errorf("store: producer id longer than %d bytes", maxProducerID)
	}
	st.wmu.Lock()
	defer st.wmu.Unlock()
	st.mu.RLock()
	deleted, retention, last, hasLast := st.deleted, st.info.RetentionHours, st.last, st.hasLast
	st.mu.RUnlock()
	if deleted {
		return AppendResult{}, refuse(ErrStreamNotFound, "stream %s was deleted", st.info.Name)
	}
	seen := func() (AppendResult, bool) {
		if f.ProducerID != "" && f.ProducerSeq != 0 && st.seenLocked(f.ProducerID, f.ProducerSeq) {
			n, _ := st.recent.get(f.ProducerID, f.ProducerSeq)
			return AppendResult{Status: Duplicate, Number: n}, true
		}
		return AppendResult{}, false
	}
	if hasLast && f.Number <= last.Number && retention == 0 {
		// A redelivery to a live-only stream: it was delivered live when it
		// first came, or it was refused; either way nothing is kept, and
		// saying so again is the truth.
		return AppendResult{Status: LiveOnly, Number: f.Number, ServerTime: last.ServerTime}, nil
	}
	if hasLast && f.Number <= last.Number {
		// A redelivery: the bus lost the ack of a message it had delivered (a
		// crash between the fsync and the ack). The message was stored only if
		// the stream holds its number: one that was refused or held back for
		// its predecessor is below the last number too, and saying it was
		// stored would acknowledge a fragment that is not on disk.
		held, expired, err := st.holds(f.Number)
		if err != nil {
			return AppendResult{}, err
		}
		if held {
			return AppendResult{Status: AlreadyApplied, Number: f.Number}, nil
		}
		if r, ok := seen(); ok {
			return r, nil
		}
		if expired { // older than anything kept: the store cannot tell
			return AppendResult{Status: AlreadyApplied, Number: f.Number}, nil
		}
		return AppendResult{Status: PassedOver, Number: f.Number}, nil
	}
	if r, ok := seen(); ok {
		return r, nil
	}
	if hasLast && f.ProducerTime < last.ProducerTime {
		return AppendResult{}, fmt.Errorf("%w: %s < %s", ErrTimecodeBackwards,
			time.Unix(0, f.ProducerTime).UTC().Format(time.RFC3339Nano), time.Unix(0, last.ProducerTime).UTC().Format(time.RFC3339Nano))
	}
	server := f.ServerTime
	if hasLast && server < last.ServerTime {
		server = last.ServerTime
	}
	info := FragmentInfo{Number: f.Number, ServerTime: server, ProducerTime: f.ProducerTime, Duration: f.Duration, Size: len(f.Payload)}
	if f.ReadSize > 0 {
		info.Size = f.ReadSize
	}
	if retention == 0 {
		st.appendLive(info, f)
		return AppendResult{Status: LiveOnly, Number: f.Number, ServerTime: server}, nil
	}
	if err := st.prepareSegmentLocked(f, server); err != nil {
		return AppendResult{}, err
	}
	rec := fragmentRecord{
		Number: f.Number, ServerTime: server, ProducerTime: f.ProducerTime, Duration: f.Duration,
		ProducerSeq: f.ProducerSeq, ClusterOffset: f.ClusterOffset, ProducerID: f.ProducerID, Payload: f.Payload,
		ReadSize: uint32(max(f.ReadSize, 0)),
	}
	keyID, key, err := st.keys.forAppend(st.s.now(), st.keyRotation)
	if err != nil {
		return AppendResult{}, err
	}
	// The sealed payload lives only until the record is copied into the
	// segment's buffer: it is borrowed, not kept per stream (sized to the
	// stream's largest fragment, 10,000 streams of 256 KiB fragments kept
	// 2.5 GB of them).
	sealBuf := getSealBuf(len(rec.Payload))
	*sealBuf, st.aadBuf, err = sealRecord(&rec, keyID, key, *sealBuf, st.aadBuf)
	if err != nil {
		putSealBuf(sealBuf)
		return AppendResult{}, err
	}
	off, err := st.w.append(&rec)
	recLen := uint32(rec.encodedSize())
	rec.Payload = nil
	putSealBuf(sealBuf)
	if err != nil {
		st.rollbackLocked()
		return AppendResult{}, err
	}
	info.offset, info.recordLen = off, recLen
	st.mu.Lock()
	// Retention was raised from 0: the live buffer ends where storing begins,
	// so that no buffered fragment is older than a stored one (live.go).
	st.live = nil
	act := st.segments[len(st.segments)-1]
	act.entries = append(act.entries, info)
	act.sum.add(&info, st.w.size)
	st.last, st.hasLast = info, true
	st.mu.Unlock()
	if f.ProducerID != "" && f.ProducerSeq != 0 {
		st.pending = append(st.pending, dedupeKey{f.ProducerID, f.ProducerSeq, f.Number, server})
	}
	return AppendResult{Status: Appended, Number: f.Number, ServerTime: server}, nil
}

// holds reports whether the stream holds fragment number n; expired, that n
// is below the first number the stream keeps (retention may have deleted
// it). wmu held.
func (st *stream) holds(n uint64) (held, expired bool, err error) {
	st.mu.RLock()
	segs := append([]*segment(nil), st.segments...)
	sums := make([]segmentSummary, len(segs))
	for i, seg := range segs {
		sums[i] = seg.sum
	}
	st.mu.RUnlock()
	first := true
	for i, seg := range segs {
		sum := sums[i]
		if sum.count == 0 {
			continue
		}
		if first && n < sum.first {
			return false, true, nil
		}
		first = false
		if n < sum.first || n > sum.last {
			continue
		}
		entries, err := st.entriesOf(seg)
		if err != nil {
			return false, false, fmt.Errorf("store: %s: index of %s: %w", st.info.Name, seg.path, err)
		}
		_, found := slices.BinarySearchFunc(entries, n, func(e FragmentInfo, n uint64) int { return cmp.Compare(e.Number, n) })
		return found, false, nil
	}
	return false, first, nil
}

// seenLocked reports whether a producer key is stored or pending. wmu held.
func (st *stream) seenLocked(producer string, seq uint64) bool {
	if st.dedupe.contains(producer, seq) {
		return true
	}
	for _, k := range st.pending {
		if k.producer == producer && k.seq == seq {
			return true
		}
	}
	return false
}

// prepareSegmentLocked seals the active segment when it is full or old and
// opens a new one when none is open. wmu held.
func (st *stream) prepareSegmentLocked(f *Fragment, server int64) error {
	opts := &st.s.opts
	if st.w != nil {
		st.mu.RLock()
		sum := st.segments[len(st.segments)-1].sum
		st.mu.RUnlock()
		recSize := int64(recordHeaderSize + fragmentFixedSize + len(f.ProducerID) + len(f.Payload))
		full := sum.count > 0 && st.w.size+recSize > opts.SegmentMaxBytes
		full = full || sum.count >= opts.SegmentMaxFragments
		full = full || sum.count > 0 && server-sum.firstServer >= int64(st.segmentMaxAge)
		if full {
			if err := st.sealLocked(); err != nil {
				return err
			}
		}
	}
	if st.w != nil {
		return nil
	}
	// Only the newest segment may be unsealed. The one found at start-up is
	// sealed there; if that failed, it is sealed now or nothing is appended.
	st.mu.RLock()
	var idle *segment
	if n := len(st.segments); n > 0 && !st.segments[n-1].sealed {
		idle = st.segments[n-1]
	}
	st.mu.RUnlock()
	if idle != nil {
		if err := st.sealIdle(idle); err != nil {
			return err
		}
	}
	w, err := createSegment(st.s.fs, st.dir, f.Number)
	if err != nil {
		return err
	}
	w.files, w.owner = st.s.files, st
	st.s.files.opened(st)
	st.w = w
	st.mu.Lock()
	st.segments = append(st.segments, &segment{
		path:    w.path,
		idxPath: w.path[:len(w.path)-len(segmentExt)] + indexExt,
	})
	st.mu.Unlock()
	return nil
}

// syncLocked fsyncs the active segment and publishes what it made durable.
// wmu held; mu is taken only around the in-memory update, so readers are not
// blocked by the fsync.
func (st *stream) syncLocked() error {
	st.mu.RLock()
	upToDate := !st.hasLast || st.last.Number == st.durable
	st.mu.RUnlock()
	if st.w == nil || upToDate {
		return nil
	}
	t0 := time.Now()
	err := st.w.sync()
	st.s.metrics.observeFsync(time.Since(t0))
	if err != nil {
		st.rollbackLocked()
		return err
	}
	st.syncedLocked()
	return nil
}

// dirtyLocked reports whether the stream holds appended fragments not yet
// synced. wmu held.
func (st *stream) dirtyLocked() bool {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.w != nil && st.hasLast && st.last.Number != st.durable
}

// syncedLocked publishes what a successful sync made durable: the dedupe
// keys, and the fragments to readers. wmu held.
func (st *stream) syncedLocked() {
	for _, k := range st.pending {
		st.dedupe.add(k.producer, k.seq, k.server)
		st.recent.add(k.producer, k.seq, k.number)
	}
	st.pending = st.pending[:0]
	st.mu.Lock()
	st.durable, st.durableLast, st.hasDurable = st.last.Number, st.last, true
	st.notifyLocked()
	st.mu.Unlock()
	st.s.files.written(st)
}

// rollbackLocked discards what was appended since the last sync, in memory and
// on disk. wmu held.
func (st *stream) rollbackLocked() {
	rerr := st.w.rollback()
	st.pending = st.pending[:0]
	st.mu.Lock()
	act := st.segments[len(st.segments)-1]
	keep := 0
	for keep < len(act.entries) && act.entries[keep].Number <= st.durable {
		keep++
	}
	act.entries = act.entries[:keep]
	act.sum = summarize(act.entries, st.w.synced)
	empty := keep == 0
	if empty {
		st.segments = st.segments[:len(st.segments)-1]
	}
	st.last, st.hasLast = st.durableLast, st.hasDurable
	st.mu.Unlock()
	if empty {
		// Nothing durable in it: remove it so that the next append can create the
		// segment again under the same first number.
		_ = st.w.closeFile()
		if err := st.s.fs.Remove(st.w.path); err != nil {
			st.log.Error("store: remove empty segment after a failed write", "segment", st.w.path, "err", err)
		}
		st.w = nil
		return
	}
	if rerr != nil {
		st.log.Error("store: cannot cut a segment back after a failed write; appends to the stream fail until it can", "err", rerr)
	}
}

// sealLocked makes the active segment immutable: fsync, then its index file
// (with the dedupe state so far), then close. wmu held.
func (st *stream) sealLocked() error {
	if st.w == nil {
		return nil
	}
	if err := st.syncLocked(); err != nil {
		return err
	}
	st.mu.RLock()
	act := st.segments[len(st.segments)-1]
	entries := act.entries
	st.mu.RUnlock()
	if err := writeIndexFile(st.s.fs, act.idxPath, entries, st.w.size, st.dedupe); err != nil {
		return fmt.Errorf("store: seal %s: %w", act.path, err)
	}
	if err := st.w.close(); err != nil {
		st.log.Warn("store: close sealed segment", "segment", act.path, "err", err)
	}
	st.w = nil
	st.mu.Lock()
	act.sealed, act.entries = true, nil
	st.mu.Unlock()
	st.s.cache.put(act.idxPath, entries)
	return nil
}

// sealIdle writes the index of an unsealed segment that no writer holds: the
// newest segment found at start-up. Appends after a start go to a new segment
// (they never reopen an old one), so it is immutable already; the index makes
// it sealed, as FORMAT.md says every segment but the active one is. wmu held,
// or the stream not yet shared (Open).
func (st *stream) sealIdle(seg *segment) error {
	st.mu.RLock()
	entries, size := seg.entries, seg.sum.size
	st.mu.RUnlock()
	if err := writeIndexFile(st.s.fs, seg.idxPath, entries, size, st.dedupe); err != nil {
		return fmt.Errorf("store: seal %s: %w", seg.path, err)
	}
	st.mu.Lock()
	seg.sealed, seg.entries = true, nil
	st.mu.Unlock()
	st.s.cache.put(seg.idxPath, entries)
	return nil
}

// Seen reports whether the stream holds (or has appended since its last
// Sync) the fragment with this producer key.
func (s *Store) Seen(streamName, producer string, seq uint64) (bool, error) {
	st, err := s.stream(streamName)
	if err != nil {
		return false, err
	}
	st.wmu.Lock()
	defer st.wmu.Unlock()
	return st.seenLocked(producer, seq), nil
}
