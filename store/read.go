package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

// TimeBasis selects which timestamp a time range or a seek is about.
type TimeBasis uint8

// Time bases.
const (
	ProducerTime TimeBasis = iota + 1 // the producer's clock: the first frame of each fragment
	ServerTime                        // the server's clock: when the bus accepted the fragment
)

// StoredFragment is a fragment read back from the store.
type StoredFragment struct {
	FragmentInfo
	ClusterOffset uint32 // where the Cluster element starts in Payload
	ProducerID    string
	ProducerSeq   uint64
	Payload       []byte // the MKV document as appended
}

// ErrFragmentGone is returned for a fragment that retention or deletion removed
// while it was being read.
var ErrFragmentGone = errors.New("store: fragment no longer stored")

// readView is a consistent picture of a stream for one read: the segments and
// how far they are durable.
type readView struct {
	st      *stream
	segs    []segView
	durable uint64
	live    []liveItem
}

// segView is a segment with its summary as of the view (the active segment's
// summary changes under the stream's lock).
type segView struct {
	seg *segment
	sum segmentSummary
}

func (st *stream) view() (readView, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.deleted {
		return readView{}, refuse(ErrStreamNotFound, "stream %s was deleted", st.info.Name)
	}
	v := readView{st: st, segs: make([]segView, len(st.segments)), durable: st.durable}
	for i, seg := range st.segments {
		v.segs[i] = segView{seg: seg, sum: seg.sum}
	}
	if st.live != nil {
		v.live = append([]liveItem(nil), st.live.fresh(st.liveCutoff())...)
	}
	return v, nil
}

// durableEntries returns the durable entries of one segment of the view; a
// segment removed since the view was taken yields none.
func (v *readView) durableEntries(seg *segment) ([]FragmentInfo, error) {
	e, err := v.st.entriesOf(seg)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	n := sort.Search(len(e), func(i int) bool { return e[i].Number > v.durable })
	return e[:n], nil
}

// walk calls fn for every durable fragment with number ≥ from, in number
// order, until fn returns false. Live-only fragments (retention 0) are newer
// than every stored one (see live.go), so they come after them; the check on
// next keeps the order strict whatever a view holds.
func (v *readView) walk(from uint64, fn func(FragmentInfo) bool) error {
	next := from // every fragment handed to fn is numbered ≥ next
	i := sort.Search(len(v.segs), func(i int) bool { return v.segs[i].sum.last >= from })
	for ; i < len(v.segs); i++ {
		e, err := v.durableEntries(v.segs[i].seg)
		if err != nil {
			return err
		}
		j := sort.Search(len(e), func(k int) bool { return e[k].Number >= next })
		for ; j < len(e); j++ {
			if !fn(e[j]) {
				return nil
			}
			next = e[j].Number + 1
		}
	}
	for _, it := range v.live {
		if it.frag.Number < next {
			continue
		}
		if !fn(it.frag.FragmentInfo) {
			return nil
		}
		next = it.frag.Number + 1
	}
	return nil
}

// seek returns the number of the first durable fragment that holds ts or comes
// after it, on the given basis; ok is false when there is none yet.
func (v *readView) seek(basis TimeBasis, ts int64) (uint64, bool, error) {
	// Segments wholly before ts are skipped on their summaries; within the first
	// candidate the entries are searched. Both clocks are non-decreasing within a
	// stream (Append enforces it), so the first match is the answer.
	after := func(e *FragmentInfo) bool {
		if basis == ServerTime {
			return e.ServerTime >= ts
		}
		return e.ProducerTime >= ts || e.ProducerEnd() > ts
	}
	for _, sv := range v.segs {
		if basis == ServerTime && sv.sum.lastServer < ts || basis == ProducerTime && sv.sum.maxProducerEnd <= ts && sv.sum.lastProducer < ts {
			continue
		}
		e, err := v.durableEntries(sv.seg)
		if err != nil {
			return 0, false, err
		}
		// Binary search on the start times, then step back over fragments that
		// started earlier but still cover ts.
		j := sort.Search(len(e), func(k int) bool {
			if basis == ServerTime {
				return e[k].ServerTime >= ts
			}
			return e[k].ProducerTime >= ts
		})
		for back := 0; j > 0 && back < 64 && after(&e[j-1]); back++ {
			j--
		}
		if j < len(e) {
			return e[j].Number, true, nil
		}
	}
	for _, it := range v.live {
		if after(&it.frag.FragmentInfo) {
			return it.frag.Number, true, nil
		}
	}
	return 0, false, nil
}

func (s *Store) view(name string) (readView, error) {
	st, err := s.stream(name)
	if err != nil {
		return readView{}, err
	}
	return st.view()
}

// Fragments returns up to limit durable fragments numbered from `from` on,
// ascending.
func (s *Store) Fragments(name string, from uint64, limit int) ([]FragmentInfo, error) {
	v, err := s.view(name)
	if err != nil {
		return nil, err
	}
	var out []FragmentInfo
	err = v.walk(from, func(e FragmentInfo) bool {
		out = append(out, e)
		return len(out) < limit
	})
	return out, err
}

// Range returns up to limit durable fragments numbered from `from` on that
// overlap [start, end): on producer time a fragment [p, p+duration) overlaps
// when p < end and it reaches past start (a zero-length fragment at start
// counts); on server time its server timestamp is in [start, end).
func (s *Store) Range(name string, basis TimeBasis, start, end int64, from uint64, limit int) ([]FragmentInfo, error) {
	v, err := s.view(name)
	if err != nil {
		return nil, err
	}
	first, ok, err := v.seek(basis, start)
	if err != nil || !ok {
		return nil, err
	}
	from = max(from, first)
	var out []FragmentInfo
	err = v.walk(from, func(e FragmentInfo) bool {
		t := e.ProducerTime
		if basis == ServerTime {
			t = e.ServerTime
		}
		if t >= end {
			return false
		}
		if basis == ProducerTime && e.ProducerEnd() <= start && e.ProducerTime < start {
			return true // started and ended before the range; a later one may overlap
		}
		out = append(out, e)
		return len(out) < limit
	})
	return out, err
}

// Seek returns the number of the first durable fragment that holds ts or comes
// after it; ok is false when no such fragment is stored yet.
func (s *Store) Seek(name string, basis TimeBasis, ts int64) (uint64, bool, error) {
	v, err := s.view(name)
	if err != nil {
		return 0, false, err
	}
	return v.seek(basis, ts)
}

// Durable returns the newest durable fragment of a stream; ok is false when the
// stream has none.
func (s *Store) Durable(name string) (FragmentInfo, bool, error) {
	st, err := s.stream(name)
	if err != nil {
		return FragmentInfo{}, false, err
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.durableLast, st.hasDurable, nil
}

// Fragment returns the index entry of one durable fragment.
func (s *Store) Fragment(name string, number uint64) (FragmentInfo, error) {
	v, err := s.view(name)
	if err != nil {
		return FragmentInfo{}, err
	}
	var out FragmentInfo
	var found bool
	err = v.walk(number, func(e FragmentInfo) bool {
		out, found = e, e.Number == number
		return false
	})
	if err != nil {
		return FragmentInfo{}, err
	}
	if !found {
		return FragmentInfo{}, refuse(ErrFragmentNotFound, "stream %s has no fragment %d", name, number)
	}
	return out, nil
}

// Wait blocks until the stream has a durable fragment numbered from `from` on,
// or ctx is done, or the stream is deleted.
func (s *Store) Wait(ctx context.Context, name string, from uint64) error {
	st, err := s.stream(name)
	if err != nil {
		return err
	}
	for {
		st.mu.RLock()
		durable, deleted, ch := st.durable, st.deleted, st.changed
		st.mu.RUnlock()
		if deleted {
			return refuse(ErrStreamNotFound, "stream %s was deleted", name)
		}
		if durable >= from && durable > 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return errors.New("store: closed")
		}
	}
}

// Reader reads fragment payloads of one stream, keeping the current segment
// file open across reads. It is not safe for concurrent use.
type Reader struct {
	st   *stream
	path string
	f    vfs.File
	buf  []byte
	// plain and aad hold the opened payload of an encrypted record.
	plain, aad []byte
	// expanded holds the payload Options.Expand made of the last one read.
	expanded []byte
}

// NewReader returns a reader of the stream's fragments. Close it.
func (s *Store) NewReader(name string) (*Reader, error) {
	st, err := s.stream(name)
	if err != nil {
		return nil, err
	}
	return &Reader{st: st}, nil
}

// Read reads the fragment described by info (from Fragments, Range or
// Fragment), as Options.Expand gives it when set. The payload is valid
// until the next Read. A damaged record is a *CorruptionError for that
// fragment only; one removed by retention is ErrFragmentGone.
func (r *Reader) Read(info FragmentInfo) (StoredFragment, error) {
	f, err := r.ReadStored(info)
	expand := r.st.s.opts.Expand
	if err != nil || expand == nil {
		return f, err
	}
	out, offset, expanded, err := expand(r.expanded[:0], f.Payload, f.ClusterOffset)
	if err != nil {
		return StoredFragment{}, &CorruptionError{Path: r.path, Offset: info.offset, Err: fmt.Errorf("fragment %d: %w", info.Number, err)}
	}
	if expanded {
		r.expanded, f.Payload, f.ClusterOffset = out, out, offset
	}
	return f, nil
}

// ReadStored reads the fragment described by info as it is stored, without
// Options.Expand: what a replica copies.
func (r *Reader) ReadStored(info FragmentInfo) (StoredFragment, error) {
	if info.offset < 0 {
		cutoff := r.st.liveCutoff()
		r.st.mu.RLock()
		var f StoredFragment
		ok := false
		if r.st.live != nil {
			f, ok = r.st.live.find(info.Number, cutoff)
		}
		r.st.mu.RUnlock()
		if !ok {
			return StoredFragment{}, fmt.Errorf("%w: live fragment %d has left the live buffer", ErrFragmentGone, info.Number)
		}
		return f, nil
	}
	path := r.st.segmentPathOf(info.Number)
	if path == "" {
		return StoredFragment{}, fmt.Errorf("%w: %s fragment %d", ErrFragmentGone, r.st.info.Name, info.Number)
	}
	if path != r.path {
		r.closeFile()
		f, err := r.st.s.fs.OpenFile(path, os.O_RDONLY, 0)
		if errors.Is(err, fs.ErrNotExist) {
			return StoredFragment{}, fmt.Errorf("%w: %s fragment %d", ErrFragmentGone, r.st.info.Name, info.Number)
		}
		if err != nil {
			return StoredFragment{}, fmt.Errorf("store: open %s: %w", path, err)
		}
		r.f, r.path = f, path
	}
	rec, buf, err := readRecord(r.f, r.path, info.offset, int(info.recordLen), r.buf)
	r.buf = buf
	if err != nil {
		return StoredFragment{}, err
	}
	if rec.Number != info.Number {
		return StoredFragment{}, &CorruptionError{Path: r.path, Offset: info.offset, Err: fmt.Errorf("record holds fragment %d, index says %d", rec.Number, info.Number)}
	}
	if rec.KeyID != 0 {
		g, ok := r.st.keys.get(rec.KeyID)
		if !ok {
			return StoredFragment{}, &CorruptionError{Path: r.path, Offset: info.offset, Err: fmt.Errorf("data key %d of fragment %d is not in %s", rec.KeyID, info.Number, r.st.keys.path)}
		}
		r.aad = recordAAD(r.aad[:0], &rec)
		plain, err := g.Open(r.plain[:0], rec.Nonce[:], rec.Payload, r.aad)
		if err != nil {
			return StoredFragment{}, &CorruptionError{Path: r.path, Offset: info.offset, Err: errDecrypt}
		}
		r.plain, rec.Payload = plain, plain
	}
	return StoredFragment{
		FragmentInfo:  info,
		ClusterOffset: rec.ClusterOffset,
		ProducerID:    rec.ProducerID,
		ProducerSeq:   rec.ProducerSeq,
		Payload:       rec.Payload,
	}, nil
}

// Close releases the reader's open file.
func (r *Reader) Close() error {
	r.closeFile()
	return nil
}

func (r *Reader) closeFile() {
	if r.f != nil {
		r.f.Close()
		r.f, r.path = nil, ""
	}
}

// segmentPathOf returns the path of the segment that holds fragment number,
// or "" when none does.
func (st *stream) segmentPathOf(number uint64) string {
	st.mu.RLock()
	defer st.mu.RUnlock()
	i := sort.Search(len(st.segments), func(i int) bool { return st.segments[i].sum.last >= number })
	if i == len(st.segments) || st.segments[i].sum.first > number {
		return ""
	}
	return st.segments[i].path
}
