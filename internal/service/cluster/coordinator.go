package cluster

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The coordinator acts for the cluster when a node is gone: once a node has
// been silent for the replace-after grace period, each of its streams gets
// a replacement replica (the least-loaded alive node that does not hold it,
// which fills its copy from a live replica), and its bus consumers are
// removed, so that the bus stops keeping every fragment for a node that
// may never come back. A node that does come back finds its consumers
// gone, starts new ones, and catches its copies up from the other replicas;
// its copies of streams placed elsewhere meanwhile are deleted.
//
// Every node runs the loop; only the alive node with the lowest name acts,
// and each re-placement is a compare-and-set on the stream's catalog entry,
// so two nodes that both think they coordinate (for a heartbeat or two)
// cannot place a stream twice.

const coordinateInterval = 2 * time.Second

func (n *Node) coordinate(ctx context.Context) {
	t := time.NewTicker(coordinateInterval)
	defer t.Stop()
	freed := map[string]time.Time{} // gone node → its last-seen time when its consumers were removed
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !n.coordinator() || !n.reg.InMajority() {
			continue
		}
		for _, m := range n.reg.Nodes() {
			if m.Alive || m.Name == n.o.Self.Name {
				continue
			}
			silent, _ := n.reg.SilentFor(m.Name)
			if silent < n.o.ReplaceAfter {
				continue
			}
			n.replaceNode(ctx, m.Name)
			if seen, ok := freed[m.Name]; !ok || !seen.Equal(m.LastSeen) {
				if n.freeConsumers(ctx, m.Name) {
					freed[m.Name] = m.LastSeen
				}
			}
		}
	}
}

// coordinator reports whether this node is the alive node with the lowest name.
func (n *Node) coordinator() bool {
	for _, m := range n.reg.Nodes() {
		if m.Alive {
			return m.Name == n.o.Self.Name
		}
	}
	return false
}

// replaceNode gives every stream of a gone node a replacement replica.
func (n *Node) replaceNode(ctx context.Context, gone string) {
	for _, e := range n.cat.Entries() {
		if !e.Holds(gone) {
			continue
		}
		cands := n.cat.aliveLoads()
		to, ok := Replacement(e.Name, e.Replicas, cands)
		if !ok {
			continue // every alive node holds it already (N ≤ R): it stays one replica short
		}
		next := slices.Clone(e.Replicas)
		next[slices.Index(next, gone)] = to
		err := n.cat.SetReplicas(ctx, e.Name, e.Replicas, next)
		switch {
		case err == nil:
			n.replacements.Add(1)
			n.log.Warn("cluster: stream re-placed: a replica's node is gone", "stream", e.Name, "gone", gone, "new", to, "replicas", next)
		case errors.Is(err, errReplicasChanged):
		default:
			n.log.Warn("cluster: re-placement failed; retried", "stream", e.Name, "err", err)
		}
	}
}

// freeConsumers removes a gone node's bus consumers: the bus keeps every
// fragment until each consumer acknowledged it, and a consumer nobody reads
// would fill the bus to its cap and stop ingest for everyone.
func (n *Node) freeConsumers(ctx context.Context, gone string) bool {
	ok := true
	for _, sh := range n.shards {
		err := sh.Stream.DeleteConsumer(ctx, gone)
		switch {
		case err == nil:
			n.consumersFreed.Add(1)
			n.log.Warn("cluster: removed a gone node's bus consumer; it catches up from other replicas if it comes back",
				"node", gone, "shard", sh.Stream.CachedInfo().Config.Name)
		case errors.Is(err, jetstream.ErrConsumerNotFound):
		default:
			ok = false
		}
	}
	return ok
}

// aliveLoads are the alive nodes and how many streams each holds.
func (c *Catalog) aliveLoads() []NodeLoad {
	nodes := c.o.Registry.Nodes()
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []NodeLoad
	for _, m := range nodes {
		if m.Alive {
			out = append(out, NodeLoad{Node: m.Name, Streams: c.loads[m.Name]})
		}
	}
	return out
}

// housekeep expires the quorum's memory.
func (n *Node) housekeep(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n.quorum.Expire(now)
		}
	}
}

// Remove takes a node out of the cluster at once (`sensorium cluster
// remove`): it must be stopped; its streams are re-placed, its consumers
// removed and its registry entry deleted.
func (n *Node) Remove(ctx context.Context, name string) error {
	if err := n.reg.Remove(ctx, name); err != nil {
		return err
	}
	n.replaceNode(ctx, name)
	n.freeConsumers(ctx, name)
	return nil
}
