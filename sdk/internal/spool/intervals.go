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

// last is the largest sequence, 0 when empty.
func (s *seqSet) last() uint64 {
	if len(s.iv) == 0 {
		return 0
	}
	return s.iv[len(s.iv)-1].hi
}

// nextAbsent is the smallest sequence at or above x that is not in the set.
func (s *seqSet) nextAbsent(x uint64) uint64 {
	i := sort.Search(len(s.iv), func(i int) bool { return s.iv[i].hi >= x })
	if i < len(s.iv) && s.iv[i].lo <= x {
		return s.iv[i].hi + 1 // intervals never touch: hi+1 is absent
	}
	return x
}

// addRange inserts every sequence from lo to hi.
func (s *seqSet) addRange(lo, hi uint64) {
	if lo > hi {
		return
	}
	iv := append(s.iv, interval{lo, hi})
	sort.Slice(iv, func(i, j int) bool { return iv[i].lo < iv[j].lo })
	out := iv[:1]
	for _, v := range iv[1:] {
		last := &out[len(out)-1]
		if v.lo <= last.hi+1 {
			last.hi = max(last.hi, v.hi)
			continue
		}
		out = append(out, v)
	}
	s.iv = out
}
