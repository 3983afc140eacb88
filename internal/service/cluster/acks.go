package cluster

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/ingest"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
)

// A node is its ingesters' Replication (ingest.Replication): it admits
// messages through the replicator and turns verdicts into the producer's
// events through the quorum.

// Admit implements ingest.Replication.
func (n *Node) Admit(ctx context.Context, shard int, stream string, seq uint64) ingest.Admission {
	return n.rep.Admit(ctx, shard, stream, seq)
}

// Created implements ingest.Replication.
func (n *Node) Created(ctx context.Context, stream, arn string) { n.rep.Created(ctx, stream, arn) }

// Idle implements ingest.Replication.
func (n *Node) Idle(ctx context.Context, shard int, position uint64) {
	n.rep.Idle(ctx, shard, position)
}

// storedWildcard is the subject of every replica's verdicts:
// <prefix>.stored.<stream>.
func (n *Node) storedWildcard() string { return n.subs.Prefix + ".stored.>" }

func (n *Node) storedSubject(stream string) string {
	return n.subs.Prefix + ".stored." + wire.SubjectToken(stream)
}

// need is how many replicas of e must agree before the producer is told.
func (n *Node) need(replicas int) int {
	if n.o.AckReplicas > 0 {
		return min(n.o.AckReplicas, replicas)
	}
	return replicas/2 + 1
}

// Verdict implements ingest.Replication: this replica's outcome goes to the
// other replicas and into this node's own count.
func (n *Node) Verdict(shard int, stream string, seq uint64, ev wire.AckEvent) {
	e, ok := n.cat.cached(stream)
	if !ok {
		return // deleted meanwhile
	}
	v := Verdict{Node: n.o.Self.Name, Stream: stream, Shard: shard, Seq: seq, Event: ev}
	if len(e.Replicas) > 1 {
		if b, err := json.Marshal(v); err == nil {
			if err := n.o.NC.Publish(n.storedSubject(stream), b); err != nil {
				n.log.Warn("cluster: publish verdict", "stream", stream, "err", err)
			}
		}
	}
	n.quorum.Add(v, n.need(len(e.Replicas)), len(e.Replicas), time.Now())
}

// onVerdict counts another replica's verdict.
func (n *Node) onVerdict(m *nats.Msg) {
	var v Verdict
	if err := json.Unmarshal(m.Data, &v); err != nil || v.Node == n.o.Self.Name {
		return
	}
	e, ok := n.cat.cached(v.Stream)
	if !ok || !e.Holds(n.o.Self.Name) || !e.Holds(v.Node) {
		return
	}
	n.quorum.Add(v, n.need(len(e.Replicas)), len(e.Replicas), time.Now())
}

// answer tells the producer (the quorum's publish).
func (n *Node) answer(stream string, ev wire.AckEvent) {
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	if err := n.o.NC.Publish(n.subs.Ack(stream), b); err != nil {
		n.log.Warn("cluster: publish ack event", "stream", stream, "err", err)
	}
}

// lost counts a fragment this node stored that no quorum confirmed in time:
// the producer heard nothing and re-sends it.
func (n *Node) lost(stream string, v Verdict) {
	n.quorumLosses.Add(1)
	now := time.Now().UnixNano()
	if last := n.lastLossLog.Load(); now-last > int64(10*time.Second) && n.lastLossLog.CompareAndSwap(last, now) {
		n.log.Warn("cluster: fragments stored here did not reach a quorum of their replicas in time; producers re-send them",
			"stream", stream, "fragment", v.Event.FragmentNumber, "verdict", v.Event.EventType, "reason", v.Event.Message,
			"shard", v.Shard, "seq", v.Seq, "quorum_losses", n.quorumLosses.Load())
	}
}

// Unknown implements ingest.Replication: every node meets a fragment of a
// stream that does not exist; the alive node with the lowest name answers.
func (n *Node) Unknown(stream string, ev wire.AckEvent) {
	for _, node := range n.reg.Nodes() {
		if node.Alive {
			if node.Name == n.o.Self.Name {
				n.answer(stream, ev)
			}
			return
		}
	}
}
