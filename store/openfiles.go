package store

import (
	"container/list"
	"sync"
	"sync/atomic"
)

// DefaultMaxOpenSegments is how many active segment files the store keeps
// open by default, across all streams. Each stream that stores data has one
// active segment; with more streams than this, the files of the least
// recently written ones are closed (parked) and reopened at their next
// write. A reopen costs an open(2) and a seek, small beside the fsync every
// write is followed by, so the cap is about the process's file table, not
// speed: it keeps a server with tens of thousands of streams well inside a
// usual limit of open files (its readers, the bus and the listeners need
// theirs too).
const DefaultMaxOpenSegments = 4096

// openFiles tracks the streams whose active segment file is open, least
// recently written last, and parks the idle ones past the cap.
type openFiles struct {
	max     int
	reopens atomic.Int64

	mu    sync.Mutex
	order *list.List // of *stream, most recently written first
	elems map[*stream]*list.Element
}

func newOpenFiles(max int) *openFiles {
	return &openFiles{max: max, order: list.New(), elems: map[*stream]*list.Element{}}
}

// opened records that st's active segment file is open.
func (o *openFiles) opened(st *stream) {
	o.mu.Lock()
	if e, ok := o.elems[st]; ok {
		o.order.MoveToFront(e)
	} else {
		o.elems[st] = o.order.PushFront(st)
	}
	o.mu.Unlock()
}

// closed records that st's active segment file is closed.
func (o *openFiles) closed(st *stream) {
	o.mu.Lock()
	if e, ok := o.elems[st]; ok {
		o.order.Remove(e)
		delete(o.elems, st)
	}
	o.mu.Unlock()
}

// open is the number of active segment files open.
func (o *openFiles) open() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.order.Len()
}

// written marks st as the most recently written stream and, past the cap,
// parks the least recently written streams that are idle. The caller holds
// st.wmu; other streams are only ever tried (TryLock), never waited for, so
// that two writers cannot deadlock on each other's locks: a stream busy
// writing is not idle anyway and goes back to the front.
func (o *openFiles) written(st *stream) {
	o.mu.Lock()
	if e, ok := o.elems[st]; ok {
		o.order.MoveToFront(e)
	}
	over := o.order.Len() - o.max
	if over <= 0 {
		o.mu.Unlock()
		return
	}
	// Take candidates from the back, at most a few more than needed: a
	// candidate that cannot be parked now is moved to the front, so each
	// call looks at a bounded number of streams.
	var cands []*stream
	for e := o.order.Back(); e != nil && len(cands) < over+8; e = e.Prev() {
		if c := e.Value.(*stream); c != st {
			cands = append(cands, c)
		}
	}
	o.mu.Unlock()
	for _, c := range cands {
		if over <= 0 {
			break
		}
		if c.tryPark() {
			over--
			continue
		}
		o.mu.Lock()
		if e, ok := o.elems[c]; ok {
			o.order.MoveToFront(e)
		}
		o.mu.Unlock()
	}
}

// tryPark closes the stream's active segment file if the stream is not
// being written and everything it holds is synced. It reports whether the
// file was closed.
func (st *stream) tryPark() bool {
	if !st.wmu.TryLock() {
		return false
	}
	defer st.wmu.Unlock()
	if st.w == nil || !st.w.idle() {
		return false
	}
	if err := st.w.park(); err != nil {
		st.log.Warn("store: closing an idle segment file", "err", err)
	}
	return true
}
