package store

import (
	"testing"
)

// A bus message redelivered after a crash is reported as stored only if the
// stream holds its number. One the stream passed over when it first came
// (held back for its predecessor, or refused) is below the last number too;
// calling it AlreadyApplied would acknowledge a fragment that is not on disk.
func TestRedeliveryBelowTheLastNumber(t *testing.T) {
	s := newTestStore(t, t.TempDir(), nil, nil)
	defer s.Close()
	mustCreate(t, s, "r", 24)
	for _, n := range []int{1, 2, 4, 5} { // 3 was passed over
		if _, err := s.Append("r", frag(n, "p")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync("r"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		f    *Fragment
		want AppendStatus
	}{
		{"stored", frag(2, "p"), AlreadyApplied},
		{"passed over", frag(3, "p"), PassedOver},
		{"passed over, its fragment stored since under a later number", func() *Fragment {
			f := frag(3, "p")
			f.ProducerSeq = frag(5, "p").ProducerSeq
			return f
		}(), Duplicate},
	} {
		res, err := s.Append("r", tt.f)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if res.Status != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, res.Status, tt.want)
		}
	}
	// After a restart the segment is sealed and its index read from disk.
	s.Close()
	s = newTestStore(t, s.Dir(), nil, nil)
	defer s.Close()
	if res, err := s.Append("r", frag(3, "p")); err != nil || res.Status != PassedOver {
		t.Fatalf("after a restart: %v %v, want passed over", res.Status, err)
	}
	if res, err := s.Append("r", frag(4, "p")); err != nil || res.Status != AlreadyApplied {
		t.Fatalf("after a restart: %v %v, want already applied", res.Status, err)
	}
}

// A live-only stream keeps nothing: a redelivered message is answered live
// only again, never as stored and never as passed over (which would make the
// producer re-send what live readers already had).
func TestRedeliveryToALiveOnlyStream(t *testing.T) {
	s := newTestStore(t, t.TempDir(), nil, nil)
	defer s.Close()
	mustCreate(t, s, "live", 0)
	for _, n := range []int{1, 2} {
		if res, err := s.Append("live", frag(n, "p")); err != nil || res.Status != LiveOnly {
			t.Fatalf("append %d: %v %v", n, res.Status, err)
		}
	}
	if res, err := s.Append("live", frag(2, "p")); err != nil || res.Status != LiveOnly {
		t.Fatalf("redelivered: %v %v, want live-only", res.Status, err)
	}
}
