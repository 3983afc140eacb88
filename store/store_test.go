package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

func TestAppendReadRestart(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxBytes int64 // small values force many sealed segments
	}{
		{"one segment", 0},
		{"many segments", 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tweak := func(o *Options) { o.SegmentMaxBytes = tc.maxBytes }
			s := newTestStore(t, dir, nil, tweak)
			mustCreate(t, s, "pump-1", 24)
			appendN(t, s, "pump-1", 1, 60, 7)
			checkAll(t, s, "pump-1", 1, 60)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = newTestStore(t, dir, nil, tweak)
			defer s.Close()
			checkAll(t, s, "pump-1", 1, 60)
			appendN(t, s, "pump-1", 61, 80, 0)
			checkAll(t, s, "pump-1", 1, 80)
			if len(s.Repairs) != 0 {
				t.Fatalf("clean restart reported repairs: %+v", s.Repairs)
			}
			u, _ := s.Usage("pump-1")
			if tc.maxBytes > 0 && u.Segments < 5 {
				t.Fatalf("expected many segments, have %d", u.Segments)
			}
		})
	}
}

func TestNotVisibleUntilSync(t *testing.T) {
	s := newTestStore(t, t.TempDir(), nil, nil)
	defer s.Close()
	mustCreate(t, s, "a", 1)
	if _, err := s.Append("a", frag(1, "p")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Fragments("a", 0, 10); len(got) != 0 {
		t.Fatalf("unsynced fragment visible: %v", got)
	}
	if err := s.Sync("a"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Fragments("a", 0, 10); len(got) != 1 {
		t.Fatalf("synced fragment not visible: %v", got)
	}
}

func TestAppendRefusals(t *testing.T) {
	s := newTestStore(t, t.TempDir(), nil, nil)
	defer s.Close()
	mustCreate(t, s, "a", 1)
	appendN(t, s, "a", 1, 3, 0)

	// A redelivered bus message.
	res, err := s.Append("a", frag(2, "p1"))
	if err != nil || res.Status != AlreadyApplied {
		t.Fatalf("redelivery: %v %v", res, err)
	}
	// A re-send with a new bus number but the same producer key.
	f := frag(3, "p1")
	f.Number = 1000
	res, err = s.Append("a", f)
	if err != nil || res.Status != Duplicate || res.Number != 30 {
		t.Fatalf("re-send: %+v %v", res, err)
	}
	// Producer time going backwards.
	f = frag(4, "p1")
	f.ProducerTime = frag(2, "").ProducerTime
	if _, err := s.Append("a", f); !errors.Is(err, ErrTimecodeBackwards) {
		t.Fatalf("backwards: %v", err)
	}
	// Unknown stream.
	if _, err := s.Append("nope", frag(5, "p1")); !errors.Is(err, ErrStreamNotFound) {
		t.Fatalf("unknown stream: %v", err)
	}
	// A fragment without a producer key is never a duplicate.
	f = frag(5, "")
	f.ProducerSeq = 0
	if res, err := s.Append("a", f); err != nil || res.Status != Appended {
		t.Fatalf("keyless: %v %v", res, err)
	}
	// Server time is kept monotonic.
	f = frag(6, "p1")
	f.ServerTime = base
	res, err = s.Append("a", f)
	if err != nil || res.ServerTime != frag(5, "").ServerTime {
		t.Fatalf("server time not raised: %+v %v", res, err)
	}
}

// The dedupe key must survive restarts, sealing, index rebuilds.
func TestDedupeSurvivesRestartAndSeal(t *testing.T) {
	dir := t.TempDir()
	tweak := func(o *Options) { o.SegmentMaxBytes = 1500 }
	s := newTestStore(t, dir, nil, tweak)
	mustCreate(t, s, "a", 1)
	appendN(t, s, "a", 1, 40, 5)
	s.Close()

	resend := func(s *Store, n int) AppendStatus {
		f := frag(n, "p1")
		f.Number = uint64(10000 + n)
		f.ProducerTime = frag(40, "").ProducerTime
		res, err := s.Append("a", f)
		if err != nil {
			t.Fatalf("resend %d: %v", n, err)
		}
		return res.Status
	}
	s = newTestStore(t, dir, nil, tweak)
	for _, n := range []int{1, 17, 40} {
		if st := resend(s, n); st != Duplicate {
			t.Fatalf("after restart, resend of %d: %v", n, st)
		}
	}
	s.Close()
	// Remove every index: they are rebuilt, dedupe state included.
	idx, _ := filepath.Glob(filepath.Join(dir, "streams", "*", "*.idx"))
	if len(idx) < 3 {
		t.Fatalf("expected sealed segments, found %d indexes", len(idx))
	}
	for _, p := range idx {
		os.Remove(p)
	}
	s = newTestStore(t, dir, nil, tweak)
	defer s.Close()
	for _, n := range []int{1, 17, 40} {
		if st := resend(s, n); st != Duplicate {
			t.Fatalf("after index rebuild, resend of %d: %v", n, st)
		}
	}
	checkAll(t, s, "a", 1, 40)
}

func TestRangeAndSeek(t *testing.T) {
	s := newTestStore(t, t.TempDir(), nil, func(o *Options) { o.SegmentMaxBytes = 1500 })
	defer s.Close()
	mustCreate(t, s, "a", 1)
	appendN(t, s, "a", 1, 50, 0)
	sec := int64(time.Second)
	cases := []struct {
		name       string
		basis      TimeBasis
		start, end int64
		want       []int // fragment indexes (number/10)
	}{
		{"inside one", ProducerTime, base + 10*sec + sec/2, base + 10*sec + sec/2 + 1, []int{10}},
		{"exact edges", ProducerTime, base + 10*sec, base + 13*sec, []int{10, 11, 12}},
		{"spans segments", ProducerTime, base + 5*sec, base + 45*sec, seq(5, 44)},
		{"before all", ProducerTime, base - 100*sec, base, nil},
		{"after all", ProducerTime, base + 100*sec, base + 200*sec, nil},
		{"server", ServerTime, base + 10*sec, base + 12*sec + 5e6, []int{10, 11}},
		{"server inclusive start", ServerTime, base + 12*sec + 5e6, base + 13*sec, []int{12}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Range("a", tc.basis, tc.start, tc.end, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d fragments %v, want %v", len(got), numbers(got), tc.want)
			}
			for i := range got {
				if got[i].Number != uint64(tc.want[i]*10) {
					t.Fatalf("got %v, want %v", numbers(got), tc.want)
				}
			}
		})
	}
	n, ok, err := s.Seek("a", ProducerTime, base+20*sec+sec/3)
	if err != nil || !ok || n != 200 {
		t.Fatalf("Seek into fragment 20: %d %v %v", n, ok, err)
	}
	if _, ok, _ := s.Seek("a", ProducerTime, base+99*sec); ok {
		t.Fatal("Seek past the end found something")
	}
	// Paging through a range with from.
	page, _ := s.Range("a", ProducerTime, base, base+100*sec, 0, 7)
	page2, _ := s.Range("a", ProducerTime, base, base+100*sec, page[6].Number+1, 7)
	if page2[0].Number != page[6].Number+10 {
		t.Fatalf("second page starts at %d", page2[0].Number)
	}
}

func seq(a, b int) []int {
	var out []int
	for i := a; i <= b; i++ {
		out = append(out, i)
	}
	return out
}

func numbers(in []FragmentInfo) []uint64 {
	var out []uint64
	for _, f := range in {
		out = append(out, f.Number)
	}
	return out
}

func TestWaitWakesOnSync(t *testing.T) {
	s := newTestStore(t, t.TempDir(), nil, nil)
	defer s.Close()
	mustCreate(t, s, "a", 1)
	done := make(chan error, 1)
	go func() { done <- s.Wait(context.Background(), "a", 10) }()
	select {
	case err := <-done:
		t.Fatalf("Wait returned before any data: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	appendN(t, s, "a", 1, 1, 0)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not wake")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := s.Wait(ctx, "a", 11); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait past the end: %v", err)
	}
	// Deleting the stream wakes waiters with ResourceNotFound.
	go func() { done <- s.Wait(context.Background(), "a", 11) }()
	time.Sleep(10 * time.Millisecond)
	if err := s.DeleteStream(StreamRef{Name: "a"}, ""); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrStreamNotFound) {
		t.Fatalf("Wait on deleted stream: %v", err)
	}
}

func TestLiveOnlyStream(t *testing.T) {
	dir := t.TempDir()
	clock := &testClock{t: time.Unix(0, frag(100, "").ServerTime)} // the live buffer ages by server time
	s := newTestStore(t, dir, nil, func(o *Options) { o.Now = clock.Now })
	mustCreate(t, s, "live", 0)
	for i := 1; i <= 100; i++ {
		res, err := s.Append("live", frag(i, "p"))
		if err != nil || res.Status != LiveOnly {
			t.Fatalf("append %d: %v %v", i, res, err)
		}
	}
	got, err := s.Fragments("live", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != liveRingFragments || got[len(got)-1].Number != 1000 {
		t.Fatalf("live ring holds %d fragments ending %d", len(got), got[len(got)-1].Number)
	}
	r, _ := s.NewReader("live")
	f, err := r.Read(got[len(got)-1])
	if err != nil || string(f.Payload) != string(frag(100, "").Payload) {
		t.Fatalf("read live: %v", err)
	}
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "streams", "*", "*.seg"))
	if len(segs) != 0 {
		t.Fatalf("a retention-0 stream wrote segments: %v", segs)
	}
}

func TestReadFromDeletedSegment(t *testing.T) {
	clock := &testClock{t: time.Unix(0, base)}
	s := newTestStore(t, t.TempDir(), vfs.OS, func(o *Options) { o.Now = clock.Now; o.SegmentMaxBytes = 1000 })
	defer s.Close()
	mustCreate(t, s, "a", 1)
	appendN(t, s, "a", 1, 20, 0)
	infos, _ := s.Fragments("a", 0, 100)
	clock.t = time.Unix(0, base).Add(3 * time.Hour)
	if n := s.EnforceRetention(); n == 0 {
		t.Fatal("nothing expired")
	}
	r, _ := s.NewReader("a")
	defer r.Close()
	if _, err := r.Read(infos[0]); !errors.Is(err, ErrFragmentGone) {
		t.Fatalf("read of an expired fragment: %v", err)
	}
}
