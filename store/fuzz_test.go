package store

import (
	"testing"
)

// The segment and index readers face whatever a crash or a bad disk left
// behind; they must reject it cleanly, never panic, never over-allocate.

func FuzzDecodeFragmentRecord(f *testing.F) {
	f.Add(appendFragmentRecord(nil, &fragmentRecord{Number: 7, ProducerID: "p", Payload: []byte("x")}))
	f.Add(appendFragmentRecord(nil, &fragmentRecord{}))
	f.Add(make([]byte, recordHeaderSize+fragmentFixedSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeFragmentRecord(b)
		if err != nil {
			return
		}
		// What decodes must encode back to the same bytes.
		again := appendFragmentRecord(nil, &r)
		if string(again) != string(b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzDecodeDedupe(f *testing.F) {
	d := newDedupeState()
	d.add("p1", 1, 5)
	d.add("p1", 3, 6)
	d.add("p2", 9, 7)
	f.Add(appendDedupe(nil, d))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeDedupe(b)
		if err != nil {
			return
		}
		_ = appendDedupe(nil, d)
	})
}

func FuzzParseIndexHeader(f *testing.F) {
	f.Add(make([]byte, indexHeaderSize))
	f.Add([]byte(indexMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseIndexHeader(b)
		if len(b) >= indexEntrySize {
			_, _ = decodeIndexEntry(b)
		}
		_ = checkSegmentHeader(b)
		_, _, _ = parseRecordHeader(b)
	})
}

func TestDedupeIntervals(t *testing.T) {
	var p producerState
	for _, s := range []uint64{5, 1, 3, 2, 4, 10, 8, 9, 7, 6, 20} {
		p.add(s)
	}
	if len(p.intervals) != 2 || p.intervals[0] != (interval{1, 10}) || p.intervals[1] != (interval{20, 20}) {
		t.Fatalf("intervals %v", p.intervals)
	}
	for s := uint64(0); s < 25; s++ {
		want := s >= 1 && s <= 10 || s == 20
		if p.contains(s) != want {
			t.Fatalf("contains(%d) = %v", s, !want)
		}
	}
}
