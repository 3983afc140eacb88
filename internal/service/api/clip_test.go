package api

import (
	"testing"

	"github.com/sensorium-io/sensorium/store"
)

// The service's limits on a clip: the first 200 fragments or the first
// 100 MB of them, whichever comes first, and never nothing.
func TestClipFragmentsLimits(t *testing.T) {
	frags := func(n, size int) []store.FragmentInfo {
		out := make([]store.FragmentInfo, n)
		for i := range out {
			out[i] = store.FragmentInfo{Number: uint64(i + 1), Size: size}
		}
		return out
	}
	cases := []struct {
		name   string
		frags  []store.FragmentInfo
		expect int
	}{
		{"few and small", frags(3, 1000), 3},
		{"201 fragments", frags(201, 1000), maxClipFragments},
		{"100 MB reached", frags(150, 1_000_000), 100},
		{"one fragment over 100 MB", frags(2, 150_000_000), 1},
		{"exactly 100 MB", frags(4, 25_000_000), 4},
	}
	for _, c := range cases {
		if got := len(clipFragments(c.frags, maxClipFragments, maxClipBytes)); got != c.expect {
			t.Errorf("%s: %d fragments, want %d", c.name, got, c.expect)
		}
	}
}
