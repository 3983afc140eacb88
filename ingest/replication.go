package ingest

import (
	"context"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
)

// Replication is what an ingester of a cluster's node consults (nil on a
// single node): which messages its store replica applies, and who tells the
// producer. The cluster implements it (internal/service/cluster); its calls
// come from the ingester's goroutine, in bus order of the ingester's shard.
type Replication interface {
	// Admit decides what this replica does with message seq of the shard, a
	// fragment of stream. It may first bring the replica's copy up to date
	// (a top-up), which is why it runs on the ingester's goroutine.
	Admit(ctx context.Context, shard int, stream string, seq uint64) Admission
	// Created handles a stream's creation marker.
	Created(ctx context.Context, stream, arn string)
	// Idle is called between batches every IdleAfter; position is this
	// replica's durable position on it.
	Idle(ctx context.Context, shard int, position uint64)
	// Verdict takes this replica's outcome for an applied message once it
	// is durable, instead of the ingester publishing it to the producer: the
	// cluster answers once enough replicas agree.
	Verdict(shard int, stream string, seq uint64, ev wire.AckEvent)
	// Unknown takes the ERROR for a fragment of a stream that does not
	// exist; the cluster has one node answer it.
	Unknown(stream string, ev wire.AckEvent)
}

// Admission is what an ingester does with a message (Replication.Admit).
type Admission uint8

// Admissions.
const (
	// AdmitApply: apply the message to the store and give a verdict.
	AdmitApply Admission = iota + 1
	// AdmitSkip: not this replica's to store (another node's stream, or a
	// copy still filling): acknowledge it on this replica's consumer only.
	AdmitSkip
	// AdmitUnknown: no such stream; refuse the fragment (Unknown).
	AdmitUnknown
)
