package cluster

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
)

// TestQuorumAnswersOnceAQuorumStored delivers the verdicts of three
// replicas to each replica in every order and checks that the producer is
// answered at least once and at most once per replica, only after two
// replicas stored, and with the kind the quorum agreed on.
func TestQuorumAnswersOnceAQuorumStored(t *testing.T) {
	nodes := []string{"a", "b", "c"}
	persisted := func(n string) Verdict {
		return Verdict{Node: n, Stream: "s", Shard: 1, Seq: 7, Event: wire.AckEvent{EventType: wire.EventPersisted, FragmentNumber: "7"}}
	}
	retry := func(n string) Verdict {
		return Verdict{Node: n, Stream: "s", Shard: 1, Seq: 7, Event: wire.AckEvent{EventType: wire.EventRetry}}
	}
	cases := []struct {
		name     string
		verdicts map[string]Verdict // per node: what it said; absent: it never stored
		want     wire.EventType     // "" : nobody answers
	}{
		{"all three store", map[string]Verdict{"a": persisted("a"), "b": persisted("b"), "c": persisted("c")}, wire.EventPersisted},
		{"two store, one is down", map[string]Verdict{"b": persisted("b"), "c": persisted("c")}, wire.EventPersisted},
		{"only one stores", map[string]Verdict{"a": persisted("a")}, ""},
		{"replicas disagree", map[string]Verdict{"a": persisted("a"), "b": retry("b")}, ""},
		{"two say retry", map[string]Verdict{"a": persisted("a"), "b": retry("b"), "c": retry("c")}, wire.EventRetry},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for trial := 0; trial < 200; trial++ {
				var mu sync.Mutex
				var answers []wire.EventType
				now := time.Unix(0, 0)
				for _, n := range nodes {
					if _, ok := tc.verdicts[n]; !ok {
						continue // a node that is down counts nothing
					}
					q := NewQuorum(n, time.Minute, func(_ string, ev wire.AckEvent) {
						mu.Lock()
						answers = append(answers, ev.EventType)
						mu.Unlock()
					}, nil)
					// This node sees every verdict, in its own random order.
					var order []Verdict
					for _, v := range tc.verdicts {
						order = append(order, v)
					}
					rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
					for _, v := range order {
						q.Add(v, 2, 3, now)
					}
				}
				if tc.want == "" {
					if len(answers) != 0 {
						t.Fatalf("trial %d: answered %v without a quorum", trial, answers)
					}
					continue
				}
				if len(answers) < 1 || len(answers) > len(tc.verdicts) {
					t.Fatalf("trial %d: %d answers, want 1 to %d", trial, len(answers), len(tc.verdicts))
				}
				for _, a := range answers {
					if a != tc.want {
						t.Fatalf("trial %d: answered %s, want %s", trial, a, tc.want)
					}
				}
			}
		})
	}
}

// TestQuorumForgets checks that a decided message whose replicas have all
// spoken is forgotten at once, and an undecided one after the ttl, reported
// as a quorum loss when this node had stored it.
func TestQuorumForgets(t *testing.T) {
	var lost []uint64
	q := NewQuorum("a", time.Minute, func(string, wire.AckEvent) {}, func(_ string, v Verdict) { lost = append(lost, v.Seq) })
	now := time.Unix(100, 0)
	for seq := uint64(1); seq <= 3; seq++ {
		for _, n := range []string{"a", "b", "c"} {
			q.Add(Verdict{Node: n, Stream: "s", Seq: seq, Event: wire.AckEvent{EventType: wire.EventPersisted}}, 2, 3, now)
		}
	}
	if n := q.Pending(); n != 0 {
		t.Fatalf("%d messages remembered after every replica spoke", n)
	}
	q.Add(Verdict{Node: "a", Stream: "s", Seq: 9, Event: wire.AckEvent{EventType: wire.EventPersisted}}, 2, 3, now)
	q.Expire(now.Add(30 * time.Second))
	if q.Pending() != 1 {
		t.Fatal("forgot an undecided message before its ttl")
	}
	q.Expire(now.Add(61 * time.Second))
	if q.Pending() != 0 || fmt.Sprint(lost) != "[9]" {
		t.Fatalf("after the ttl: pending %d, lost %v; want 0 and [9]", q.Pending(), lost)
	}
}

// TestQuorumTellsAReplicaThatMissedAFragment: a replica that said RETRY for a
// message two others stored is told (once, in any order of arrival) that its
// copy misses fragments; one that agrees with the quorum, or that is outvoted
// without a quorum of stores, is not.
func TestQuorumTellsAReplicaThatMissedAFragment(t *testing.T) {
	v := func(n string, et wire.EventType) Verdict {
		return Verdict{Node: n, Stream: "s", Shard: 0, Seq: 5, Event: wire.AckEvent{EventType: et}}
	}
	cases := []struct {
		name     string
		verdicts []Verdict // "a" is this node
		behind   bool
	}{
		{"a held back what b and c stored", []Verdict{v("a", wire.EventRetry), v("b", wire.EventPersisted), v("c", wire.EventPersisted)}, true},
		{"a refused what b and c stored", []Verdict{v("a", wire.EventError), v("b", wire.EventPersisted), v("c", wire.EventPersisted)}, true},
		{"all held back", []Verdict{v("a", wire.EventRetry), v("b", wire.EventRetry), v("c", wire.EventRetry)}, false},
		{"only b stored", []Verdict{v("a", wire.EventRetry), v("b", wire.EventPersisted), v("c", wire.EventRetry)}, false},
		{"a stored with b", []Verdict{v("a", wire.EventPersisted), v("b", wire.EventPersisted), v("c", wire.EventRetry)}, false},
		{"a never spoke", []Verdict{v("b", wire.EventPersisted), v("c", wire.EventPersisted)}, false},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for trial := 0; trial < 50; trial++ {
				told := 0
				q := NewQuorum("a", time.Minute, func(string, wire.AckEvent) {}, nil)
				q.onBehind = func(stream string, mine Verdict) {
					if stream != "s" || mine.Node != "a" || mine.Seq != 5 {
						t.Fatalf("told about %s %+v", stream, mine)
					}
					told++
				}
				order := append([]Verdict(nil), tc.verdicts...)
				rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
				for _, vd := range order {
					q.Add(vd, 2, 3, time.Unix(0, 0))
				}
				if want := map[bool]int{true: 1}[tc.behind]; told != want {
					t.Fatalf("trial %d (order %v): told %d times, want %d", trial, order, told, want)
				}
			}
		})
	}
}
