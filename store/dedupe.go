package store

import (
	"encoding/binary"
	"errors"
	"sort"
)

// The store's own dedupe key is (producer id, producer sequence), carried in
// bus headers. JetStream dedupes only inside its duplicate window; a producer
// that was cut off for an hour re-sends what it never saw PERSISTED, and that
// re-send must be a no-op that still answers PERSISTED.
//
// Per producer the applied sequences are kept as a sorted set of closed
// intervals. A producer sends 1, 2, 3 … so the set is one interval plus one per
// gap (a fragment it dropped), which keeps memory tiny whatever the history.

// interval is a closed range of producer sequences.
type interval struct{ lo, hi uint64 }

type producerState struct {
	intervals []interval
	lastSeen  int64 // server time of the newest fragment, ns
}

func (p *producerState) contains(seq uint64) bool {
	i := sort.Search(len(p.intervals), func(i int) bool { return p.intervals[i].hi >= seq })
	return i < len(p.intervals) && p.intervals[i].lo <= seq
}

func (p *producerState) add(seq uint64) {
	iv := p.intervals
	i := sort.Search(len(iv), func(i int) bool { return iv[i].hi+1 >= seq })
	switch {
	case i < len(iv) && iv[i].lo <= seq && seq <= iv[i].hi:
		return // already present
	case i < len(iv) && iv[i].hi+1 == seq:
		iv[i].hi = seq
		if i+1 < len(iv) && iv[i+1].lo == seq+1 { // bridges a gap
			iv[i].hi = iv[i+1].hi
			iv = append(iv[:i+1], iv[i+2:]...)
		}
	case i < len(iv) && iv[i].lo == seq+1:
		iv[i].lo = seq
	default:
		iv = append(iv, interval{})
		copy(iv[i+1:], iv[i:])
		iv[i] = interval{seq, seq}
	}
	p.intervals = iv
}

// dedupeState is the set of applied (producer, sequence) keys of one stream.
type dedupeState struct {
	producers map[string]*producerState
}

func newDedupeState() *dedupeState {
	return &dedupeState{producers: map[string]*producerState{}}
}

func (d *dedupeState) contains(producer string, seq uint64) bool {
	p := d.producers[producer]
	return p != nil && p.contains(seq)
}

func (d *dedupeState) add(producer string, seq uint64, serverTime int64) {
	p := d.producers[producer]
	if p == nil {
		p = &producerState{}
		d.producers[producer] = p
	}
	p.add(seq)
	if serverTime > p.lastSeen {
		p.lastSeen = serverTime
	}
}

// prune forgets producers not seen since before horizon (ns): their re-sends
// would come from buffers long gone.
func (d *dedupeState) prune(horizon int64) {
	for id, p := range d.producers {
		if p.lastSeen < horizon {
			delete(d.producers, id)
		}
	}
}

// appendDedupe encodes the state (FORMAT.md, "Producer table").
func appendDedupe(dst []byte, d *dedupeState) []byte {
	ids := make([]string, 0, len(d.producers))
	for id := range d.producers {
		ids = append(ids, id)
	}
	sort.Strings(ids) // deterministic bytes for the same state
	le := binary.LittleEndian
	dst = le.AppendUint32(dst, uint32(len(ids)))
	for _, id := range ids {
		p := d.producers[id]
		dst = le.AppendUint16(dst, uint16(len(id)))
		dst = append(dst, id...)
		dst = le.AppendUint64(dst, uint64(p.lastSeen))
		dst = le.AppendUint32(dst, uint32(len(p.intervals)))
		for _, iv := range p.intervals {
			dst = le.AppendUint64(dst, iv.lo)
			dst = le.AppendUint64(dst, iv.hi)
		}
	}
	return dst
}

var errBadDedupe = errors.New("malformed producer table")

func decodeDedupe(b []byte) (*dedupeState, error) {
	d := newDedupeState()
	le := binary.LittleEndian
	if len(b) < 4 {
		return nil, errBadDedupe
	}
	n := le.Uint32(b)
	b = b[4:]
	for i := uint32(0); i < n; i++ {
		if len(b) < 2 {
			return nil, errBadDedupe
		}
		l := int(le.Uint16(b))
		if l > maxProducerID || len(b) < 2+l+12 {
			return nil, errBadDedupe
		}
		id := string(b[2 : 2+l])
		b = b[2+l:]
		p := &producerState{lastSeen: int64(le.Uint64(b))}
		k := le.Uint32(b[8:])
		b = b[12:]
		if uint64(len(b)) < uint64(k)*16 {
			return nil, errBadDedupe
		}
		p.intervals = make([]interval, k)
		for j := range p.intervals {
			p.intervals[j] = interval{le.Uint64(b), le.Uint64(b[8:])}
			b = b[16:]
		}
		d.producers[id] = p
	}
	if len(b) != 0 {
		return nil, errBadDedupe
	}
	return d, nil
}

func (d *dedupeState) clone() *dedupeState {
	c := newDedupeState()
	for id, p := range d.producers {
		c.producers[id] = &producerState{intervals: append([]interval(nil), p.intervals...), lastSeen: p.lastSeen}
	}
	return c
}
