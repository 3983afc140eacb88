package spool

import "sort"

// seqSet is a set of sequences kept as sorted, disjoint closed intervals:
// acknowledgements come nearly in order, so it is a handful of intervals
// whatever the number of sequences.
type seqSet struct{ iv []interval }

type interval struct{ lo, hi uint64 }

func (s *seqSet) contains(x uint64) bool {
	i := sort.Search(len(s.iv), func(i int) bool { return s.iv[i].hi >= x })
	return i < len(s.iv) && s.iv[i].lo <= x
}

// add inserts x; it reports false when x was there already.
func (s *seqSet) add(x uint64) bool {
	iv := s.iv
	i := sort.Search(len(iv), func(i int) bool { return iv[i].hi+1 >= x })
	switch {
	case i < len(iv) && iv[i].lo <= x && x <= iv[i].hi:
		return false
	case i < len(iv) && iv[i].hi+1 == x:
		iv[i].hi = x
		if i+1 < len(iv) && iv[i+1].lo == x+1 {
			iv[i].hi = iv[i+1].hi
			iv = append(iv[:i+1], iv[i+2:]...)
		}
	case i < len(iv) && iv[i].lo == x+1:
		iv[i].lo = x
	default:
		iv = append(iv, interval{})
		copy(iv[i+1:], iv[i:])
		iv[i] = interval{x, x}
	}
	s.iv = iv
	return true
}

// dropBelow forgets every sequence below x.
func (s *seqSet) dropBelow(x uint64) {
	i := sort.Search(len(s.iv), func(i int) bool { return s.iv[i].hi >= x })
	s.iv = append(s.iv[:0], s.iv[i:]...)
	if len(s.iv) > 0 && s.iv[0].lo < x {
		s.iv[0].lo = x
	}
}

// each calls fn for every sequence, in order.
func (s *seqSet) each(fn func(uint64)) {
	s.eachUntil(func(x uint64) bool { fn(x); return true })
}

// eachUntil calls fn for every sequence, in order, until it returns false.
func (s *seqSet) eachUntil(fn func(uint64) bool) {
	for _, v := range s.iv {
		for x := v.lo; ; x++ {
			if !fn(x) {
				return
			}
			if x == v.hi {
				break
			}
		}
	}
}

// last is the largest sequence, 0 when empty.
func (s *seqSet) last() uint64 {
	if len(s.iv) == 0 {
		return 0
	}
	return s.iv[len(s.iv)-1].hi
}
