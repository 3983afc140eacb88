package store

import "time"

// A stream with retention 0 keeps nothing on disk (the seed service: "live
// consumption only"). Its fragments still get numbers and still reach GetMedia
// followers: they wait here, in a small in-memory buffer, for readers that are
// keeping up. The buffer is bounded three ways: liveRingFragments fragments,
// liveRingBytes of payload, and liveMaxAge of age by server timestamp against
// the store's clock, like the seed service's live buffer. A reader that falls
// further behind skips ahead; that is the documented meaning of live only.
//
// The buffer only ever holds fragments newer than every stored one: when the
// stream's retention is raised, the first fragment it stores drops the buffer
// (under the writer lock, so no buffered fragment can come after a stored one).
// So readers see stored fragments, then buffered ones, in number order.

const (
	liveRingFragments = 64
	liveRingBytes     = 64 << 20
	// liveMaxAge is how long a retention-0 fragment stays readable: past it, it
	// is gone from every read, and the next append or retention pass frees it.
	liveMaxAge = 5 * time.Minute
)

type liveItem struct {
	frag StoredFragment
}

type liveRing struct {
	items []liveItem // ascending by number (and so by server time)
	bytes int
}

func (r *liveRing) push(it liveItem, cutoff int64) {
	r.items = append(r.items, it)
	r.bytes += len(it.frag.Payload)
	for len(r.items) > 1 && (len(r.items) > liveRingFragments || r.bytes > liveRingBytes) {
		r.dropFirst()
	}
	r.expire(cutoff)
}

func (r *liveRing) dropFirst() {
	r.bytes -= len(r.items[0].frag.Payload)
	r.items[0] = liveItem{}
	r.items = r.items[1:]
}

// expire drops the fragments whose server timestamp is before cutoff. Server
// time never decreases within a stream, so they are a prefix.
func (r *liveRing) expire(cutoff int64) {
	for len(r.items) > 0 && r.items[0].frag.ServerTime < cutoff {
		r.dropFirst()
	}
}

// fresh returns the items not older than cutoff, sharing r's array.
func (r *liveRing) fresh(cutoff int64) []liveItem {
	i := 0
	for i < len(r.items) && r.items[i].frag.ServerTime < cutoff {
		i++
	}
	return r.items[i:]
}

func (r *liveRing) find(number uint64, cutoff int64) (StoredFragment, bool) {
	for _, it := range r.fresh(cutoff) {
		if it.frag.Number == number {
			return it.frag, true
		}
	}
	return StoredFragment{}, false
}

// liveCutoff is the server time before which buffered fragments are gone.
func (st *stream) liveCutoff() int64 { return st.now() - int64(liveMaxAge) }

// appendLive holds a fragment of a retention-0 stream for live readers. wmu held.
func (st *stream) appendLive(info FragmentInfo, f *Fragment) {
	info.offset = -1 // marks a fragment that lives in the ring, not in a segment
	frag := StoredFragment{
		FragmentInfo:  info,
		ClusterOffset: f.ClusterOffset,
		ProducerID:    f.ProducerID,
		ProducerSeq:   f.ProducerSeq,
		Payload:       append([]byte(nil), f.Payload...), // the caller's buffer is not ours to keep
	}
	cutoff := st.liveCutoff()
	st.mu.Lock()
	if st.live == nil {
		st.live = &liveRing{}
	}
	st.live.push(liveItem{frag: frag}, cutoff)
	st.last, st.hasLast = info, true
	st.durable, st.durableLast, st.hasDurable = info.Number, info, true
	st.notifyLocked()
	st.mu.Unlock()
}

// expireLive frees buffered fragments past liveMaxAge; the retention pass
// calls it so that an idle live-only stream does not hold them.
func (st *stream) expireLive() {
	cutoff := st.liveCutoff()
	st.mu.Lock()
	if st.live != nil {
		st.live.expire(cutoff)
		if len(st.live.items) == 0 {
			st.live = nil
		}
	}
	st.mu.Unlock()
}
