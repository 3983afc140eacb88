package cluster

import (
	"fmt"
	"slices"
	"testing"
)

// TestPlacementBalances places 30 streams at R3 on 5 nodes one after the
// other, as CreateStream does, and checks that every stream has 3 distinct
// nodes and every node is within ±2 of the mean (the bar; greedy
// least-loaded placement gives ±1).
func TestPlacementBalances(t *testing.T) {
	for _, tc := range []struct{ nodes, streams, r int }{{5, 30, 3}, {3, 10, 3}, {7, 100, 3}, {4, 9, 2}, {2, 5, 3}} {
		t.Run(fmt.Sprintf("%d nodes %d streams R%d", tc.nodes, tc.streams, tc.r), func(t *testing.T) {
			load := map[string]int{}
			var nodes []string
			for i := 0; i < tc.nodes; i++ {
				n := fmt.Sprintf("node-%d", i)
				nodes = append(nodes, n)
				load[n] = 0
			}
			cands := func() []NodeLoad {
				var c []NodeLoad
				for _, n := range nodes {
					c = append(c, NodeLoad{n, load[n]})
				}
				return c
			}
			for s := 0; s < tc.streams; s++ {
				name := fmt.Sprintf("stream-%d", s)
				got := Place(name, tc.r, cands())
				if want := min(tc.r, tc.nodes); len(got) != want {
					t.Fatalf("%s on %v, want %d nodes", name, got, want)
				}
				if c := slices.Compact(slices.Sorted(slices.Values(got))); len(c) != len(got) {
					t.Fatalf("%s placed twice on one node: %v", name, got)
				}
				if again := Place(name, tc.r, cands()); !slices.Equal(again, got) {
					t.Fatalf("%s: not deterministic: %v then %v", name, got, again)
				}
				for _, n := range got {
					load[n]++
				}
			}
			mean := float64(tc.streams*min(tc.r, tc.nodes)) / float64(tc.nodes)
			for n, l := range load {
				if float64(l) < mean-2 || float64(l) > mean+2 {
					t.Errorf("%s holds %d streams; mean %.1f", n, l, mean)
				}
			}
		})
	}
}

func TestReplacementAvoidsHolders(t *testing.T) {
	c := []NodeLoad{{"a", 5}, {"b", 1}, {"c", 1}, {"d", 2}}
	got, ok := Replacement("s", []string{"b", "c", "gone"}, c)
	if !ok || got != "d" {
		t.Fatalf("Replacement = %q, %v; want d (the least loaded node that does not hold the stream)", got, ok)
	}
	if _, ok := Replacement("s", []string{"a", "b", "c", "d"}, c); ok {
		t.Fatal("found a replacement although every node holds the stream")
	}
}
