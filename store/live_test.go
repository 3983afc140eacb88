package store

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// pageAll reads a stream the way GetMedia does: pages of Fragments, each from
// one past the last number served.
func pageAll(t *testing.T, s *Store, name string, page int) []uint64 {
	t.Helper()
	var out []uint64
	var from uint64
	for len(out) < 1000 {
		got, err := s.Fragments(name, from, page)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			return out
		}
		for _, f := range got {
			out = append(out, f.Number)
			from = f.Number + 1
		}
	}
	t.Fatalf("paging does not end: %v…", out[:20])
	return nil
}

// Raising retention from 0: the fragments held for live readers must not come
// back after (or again with) the stored ones. Every read path is in number
// order with no repeats.
func TestRetentionRaisedFromZeroKeepsOrder(t *testing.T) {
	clock := &testClock{t: time.Unix(0, base).Add(42 * time.Second)}
	s := newTestStore(t, t.TempDir(), nil, func(o *Options) { o.Now = clock.Now })
	defer s.Close()
	info := mustCreate(t, s, "a", 0)
	for i := 36; i <= 38; i++ {
		if res, err := s.Append("a", frag(i, "p1")); err != nil || res.Status != LiveOnly {
			t.Fatalf("append %d: %v %v", i, res, err)
		}
	}
	if got, _ := s.Fragments("a", 0, 100); !slices.Equal(numbers(got), []uint64{360, 370, 380}) {
		t.Fatalf("live buffer: %v", numbers(got))
	}
	d, _ := s.DescribeStream(StreamRef{Name: "a"})
	if err := s.UpdateDataRetention(StreamRef{ARN: info.ARN}, d.Version, true, 1); err != nil {
		t.Fatal(err)
	}
	appendN(t, s, "a", 39, 41, 0)

	want := []uint64{390, 400, 410}
	got, err := s.Fragments("a", 0, 100)
	if err != nil || !slices.Equal(numbers(got), want) {
		t.Fatalf("Fragments: %v %v, want %v", numbers(got), err, want)
	}
	for _, page := range []int{1, 2, 32} {
		if got := pageAll(t, s, "a", page); !slices.Equal(got, want) {
			t.Errorf("paged by %d: %v, want %v", page, got, want)
		}
	}
	for _, basis := range []TimeBasis{ProducerTime, ServerTime} {
		got, err := s.Range("a", basis, base, base+int64(time.Hour), 0, 100)
		if err != nil || !slices.Equal(numbers(got), want) {
			t.Errorf("Range basis %d: %v %v, want %v", basis, numbers(got), err, want)
		}
		n, ok, err := s.Seek("a", basis, frag(37, "").ProducerTime)
		if err != nil || !ok || n != 390 {
			t.Errorf("Seek basis %d to fragment 37's time: %d %v %v, want 390", basis, n, ok, err)
		}
	}
	if _, err := s.Fragment("a", 370); !errors.Is(err, ErrFragmentNotFound) {
		t.Errorf("a live-only fragment after storing began: %v", err)
	}
	checkAll(t, s, "a", 39, 41)
}

// A retention-0 stream keeps nothing: a buffered fragment is gone from every
// read once it is liveMaxAge old, whether or not more fragments arrive.
func TestLiveBufferAgesOut(t *testing.T) {
	newest := frag(3, "").ServerTime
	cases := []struct {
		name string
		now  int64
		want []uint64
	}{
		{"all fresh", newest, []uint64{10, 20, 30}},
		{"oldest at the limit", frag(1, "").ServerTime + int64(liveMaxAge), []uint64{10, 20, 30}},
		{"oldest past it", frag(1, "").ServerTime + int64(liveMaxAge) + 1, []uint64{20, 30}},
		{"all past it", newest + int64(liveMaxAge) + 1, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := &testClock{t: time.Unix(0, newest)}
			s := newTestStore(t, t.TempDir(), nil, func(o *Options) { o.Now = clock.Now })
			defer s.Close()
			mustCreate(t, s, "live", 0)
			for i := 1; i <= 3; i++ {
				if _, err := s.Append("live", frag(i, "p")); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := s.Fragments("live", 0, 100)
			clock.t = time.Unix(0, tc.now)
			got, err := s.Fragments("live", 0, 100)
			if err != nil || !slices.Equal(numbers(got), tc.want) {
				t.Fatalf("Fragments: %v %v, want %v", numbers(got), err, tc.want)
			}
			r, _ := s.NewReader("live")
			defer r.Close()
			for _, info := range before {
				_, err := r.Read(info)
				fresh := slices.Contains(tc.want, info.Number)
				if fresh && err != nil || !fresh && !errors.Is(err, ErrFragmentGone) {
					t.Errorf("Read %d: %v", info.Number, err)
				}
			}
			if _, ok, _ := s.Seek("live", ServerTime, 0); ok != (len(tc.want) > 0) {
				t.Errorf("Seek found a fragment: %v", ok)
			}
			s.EnforceRetention()
			st, _ := s.stream("live")
			st.mu.RLock()
			held := 0
			if st.live != nil {
				held = len(st.live.items)
			}
			st.mu.RUnlock()
			if held != len(tc.want) {
				t.Errorf("after a retention pass the buffer holds %d fragments, want %d", held, len(tc.want))
			}
		})
	}
}
