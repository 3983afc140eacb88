package cluster

import (
	"cmp"
	"hash/fnv"
	"slices"
)

// Placement chooses the nodes that store a stream. The rule is deterministic
// and balanced: a new stream goes to the R least-loaded live nodes, and a
// replacement replica to the least-loaded live node that does not hold the
// stream yet. Among nodes of equal load, a rendezvous hash of (stream, node)
// decides, so that streams created at once on different nodes (each seeing
// the same catalog) still spread instead of all landing on the node whose
// name sorts first. Loads are counted in streams, not bytes: the catalog
// knows streams, and the issue a cluster of sensors has is many similar
// streams, not a few giant ones.

// NodeLoad is a candidate node and how many streams it holds now.
type NodeLoad struct {
	Node    string
	Streams int
}

// rendezvous is the tie-break weight of a node for a stream.
func rendezvous(stream, node string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(stream))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(node))
	return h.Sum64()
}

// rank orders candidates for a stream: least loaded first, then by the
// rendezvous weight, then by name (two equal hashes are all but impossible,
// but the order must be total).
func rank(stream string, candidates []NodeLoad) []NodeLoad {
	c := slices.Clone(candidates)
	slices.SortFunc(c, func(a, b NodeLoad) int {
		if d := cmp.Compare(a.Streams, b.Streams); d != 0 {
			return d
		}
		if d := cmp.Compare(rendezvous(stream, b.Node), rendezvous(stream, a.Node)); d != 0 {
			return d
		}
		return cmp.Compare(a.Node, b.Node)
	})
	return c
}

// Place returns the r nodes that store a new stream, chosen among
// candidates (fewer when there are fewer candidates), in rank order.
func Place(stream string, r int, candidates []NodeLoad) []string {
	ranked := rank(stream, candidates)
	if r > len(ranked) {
		r = len(ranked)
	}
	out := make([]string, 0, r)
	for _, c := range ranked[:r] {
		out = append(out, c.Node)
	}
	return out
}

// Replacement returns the node that takes a replica over from a node that is
// gone: the best-ranked candidate that does not already hold the stream.
// ok is false when every candidate holds it.
func Replacement(stream string, holders []string, candidates []NodeLoad) (string, bool) {
	for _, c := range rank(stream, candidates) {
		if !slices.Contains(holders, c.Node) {
			return c.Node, true
		}
	}
	return "", false
}
