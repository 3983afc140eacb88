package store

// A stream with retention 0 keeps nothing on disk (the seed service: "live
// consumption only"). Its fragments still get numbers and still reach GetMedia
// followers: they wait here, in a small ring, for readers that are keeping up.
// A reader that falls further behind than the ring skips ahead; that is the
// documented meaning of live only.

const (
	liveRingFragments = 64
	liveRingBytes     = 64 << 20
)

type liveItem struct {
	frag StoredFragment
}

type liveRing struct {
	items []liveItem // ascending by number
	bytes int
}

func (r *liveRing) push(it liveItem) {
	r.items = append(r.items, it)
	r.bytes += len(it.frag.Payload)
	for len(r.items) > 1 && (len(r.items) > liveRingFragments || r.bytes > liveRingBytes) {
		r.bytes -= len(r.items[0].frag.Payload)
		r.items[0] = liveItem{}
		r.items = r.items[1:]
	}
}

func (r *liveRing) find(number uint64) (StoredFragment, bool) {
	for i := range r.items {
		if r.items[i].frag.Number == number {
			return r.items[i].frag, true
		}
	}
	return StoredFragment{}, false
}

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
	st.mu.Lock()
	if st.live == nil {
		st.live = &liveRing{}
	}
	st.live.push(liveItem{frag: frag})
	st.last, st.hasLast = info, true
	st.durable, st.durableLast, st.hasDurable = info.Number, info, true
	st.notifyLocked()
	st.mu.Unlock()
}
