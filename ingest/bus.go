package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
)

// BusConfig is how the fragment stream is laid out in JetStream.
type BusConfig struct {
	Subjects wire.Subjects
	// Storage of the bus: file (default) or memory. The durability point is the
	// store's fsync, not the bus (DESIGN.md), so memory is a valid choice on one
	// node; file storage survives a restart with fragments not yet applied.
	Storage  jetstream.StorageType
	Replicas int // default 1
	// MaxBytes caps what the bus holds while the store catches up; a publish
	// past it is refused (the producer keeps the fragment and retries) rather
	// than an older fragment being dropped. Default 4 GiB. When the NATS
	// server cannot reserve that much (JetStream refuses a stream larger than
	// its storage limit, by default 75% of the disk's free space), EnsureBus
	// halves it until the server accepts, down to minBusBytes: a gateway with
	// a small disk still starts, with a smaller bus.
	MaxBytes int64
	// MaxAge is a safety cap on how long an unapplied fragment may wait; default 7 days.
	MaxAge time.Duration
	// DuplicateWindow is the bus's Nats-Msg-Id window; default 2 min.
	DuplicateWindow time.Duration
	// MaxMsgSize is the largest fragment message; default 8 MiB (the embedded
	// server's max payload is set to match).
	MaxMsgSize int32
	// Consumer is the durable consumer name of this store replica; default
	// "store" (DefaultReplica). Each replica that consumes the bus needs its
	// own (ValidateReplica says which names are valid).
	Consumer string
	// Logger hears what EnsureShard repairs (a bus that lost its tail);
	// default slog.Default().
	Logger *slog.Logger
}

func (c *BusConfig) setDefaults() {
	if c.Subjects.Prefix == "" {
		c.Subjects = wire.NewSubjects("")
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 4 << 30
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 7 * 24 * time.Hour
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = 2 * time.Minute
	}
	if c.MaxMsgSize <= 0 {
		c.MaxMsgSize = 8 << 20
	}
	if c.Consumer == "" {
		c.Consumer = DefaultReplica
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// StreamConfig is the JetStream configuration of the bus stream for cfg.
// EnsureBus creates the bus from it, and the benchmark builds its raw
// JetStream peer from it, so that the two cannot drift apart.
func (c BusConfig) StreamConfig() jetstream.StreamConfig { return c.ShardConfig(0) }

// ShardConfig is the JetStream configuration of shard k of a sharded bus
// (of the one bus stream when it is not sharded).
func (c BusConfig) ShardConfig(k int) jetstream.StreamConfig {
	c.setDefaults()
	return jetstream.StreamConfig{
		Name:        c.Subjects.BusShard(k),
		Description: "Sensorium fragments: the ingest bus and write-ahead log",
		Subjects:    []string{c.Subjects.ShardWildcard(k)},
		// Interest: a fragment stays until every store replica's consumer acked
		// it, which each does only after its own fsync. (Work-queue retention
		// would allow one consumer only, so one store replica.)
		Retention:  jetstream.InterestPolicy,
		Discard:    jetstream.DiscardNew,
		Storage:    c.Storage,
		Replicas:   c.Replicas,
		MaxBytes:   c.MaxBytes,
		MaxAge:     c.MaxAge,
		MaxMsgSize: c.MaxMsgSize,
		Duplicates: c.DuplicateWindow,
	}
}

// ConsumerConfig is the durable consumer of this store replica (c.Consumer).
// Every replica has its own, so each receives every fragment; replicas that
// shared one would split the fragments between them.
func (c BusConfig) ConsumerConfig() jetstream.ConsumerConfig { return c.ShardConsumerConfig(0) }

// ShardConsumerConfig is this replica's durable consumer of shard k.
func (c BusConfig) ShardConsumerConfig(k int) jetstream.ConsumerConfig {
	c.setDefaults()
	return jetstream.ConsumerConfig{
		Durable:       c.Consumer,
		Description:   "Sensorium store replica " + c.Consumer + ": applies fragments, acks after fsync",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: 8192,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: c.Subjects.ShardWildcard(k),
	}
}

// EnsureBus creates the fragment stream and the store's durable consumer, or
// updates them to the given settings; it is idempotent. storeMax is the highest
// fragment number the store holds: a bus created anew starts its sequence
// above it, so fragment numbers keep increasing even if the bus's own files
// were lost.
//
// EnsureBus does not check that no other process consumes with the same
// consumer: ClaimReplica does, and the server calls it first.
func EnsureBus(ctx context.Context, js jetstream.JetStream, cfg BusConfig, storeMax uint64) (jetstream.Stream, jetstream.Consumer, error) {
	sh, err := EnsureShard(ctx, js, cfg, 0, storeMax, storeMax+1)
	return sh.Stream, sh.Consumer, err
}

// Shard is one bus stream and this replica's consumer of it.
type Shard struct {
	Index    int
	Stream   jetstream.Stream
	Consumer jetstream.Consumer
	// Fresh is set when the consumer did not exist and was created now:
	// the bus may have dropped messages this replica never received.
	Fresh bool
}

// EnsureShard creates shard k of the bus and this replica's consumer of
// it, or updates them to cfg; it is idempotent. storeMax is the highest
// fragment number this replica's store holds of the shard's streams, and a
// shard created anew starts its sequence at firstSeq (> storeMax): fragment
// numbers are bus sequences, so they must not go back below what any store
// holds. See EnsureBus.
func EnsureShard(ctx context.Context, js jetstream.JetStream, cfg BusConfig, k int, storeMax, firstSeq uint64) (Shard, error) {
	cfg.setDefaults()
	sc := cfg.ShardConfig(k)
	firstSeq = max(firstSeq, storeMax+1)
	stream, err := js.Stream(ctx, sc.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		sc.FirstSeq = firstSeq
		stream, err = shrinkToFit(&sc, func(sc jetstream.StreamConfig) (jetstream.Stream, error) { return js.CreateStream(ctx, sc) })
		if err != nil {
			return Shard{}, fmt.Errorf("ingest: create bus stream %s: %w", sc.Name, err)
		}
	case err != nil:
		return Shard{}, fmt.Errorf("ingest: look up bus stream %s: %w", sc.Name, err)
	default:
		info := stream.CachedInfo()
		if info.State.LastSeq < storeMax {
			if stream, err = moveBusPast(ctx, stream, cfg.Consumer, max(storeMax, firstSeq-1), cfg.Logger); err != nil {
				return Shard{}, err
			}
			info = stream.CachedInfo()
		}
		if info.Config.Storage != sc.Storage {
			// JetStream cannot change storage in place; keep what exists and say so.
			sc.Storage = info.Config.Storage
		}
		if upToDate(info.Config, sc) {
			break // nothing to change: in a cluster, an update is a round of Raft for every node's start
		}
		stream, err = shrinkToFit(&sc, func(sc jetstream.StreamConfig) (jetstream.Stream, error) { return js.UpdateStream(ctx, sc) })
		if err != nil {
			return Shard{}, fmt.Errorf("ingest: update bus stream %s: %w", sc.Name, err)
		}
	}
	_, err = stream.Consumer(ctx, cfg.Consumer)
	fresh := errors.Is(err, jetstream.ErrConsumerNotFound)
	if err != nil && !fresh {
		return Shard{}, fmt.Errorf("ingest: look up consumer %s of %s: %w", cfg.Consumer, sc.Name, err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, cfg.ShardConsumerConfig(k))
	if err != nil {
		return Shard{}, fmt.Errorf("ingest: create consumer %s of %s: %w", cfg.Consumer, sc.Name, err)
	}
	return Shard{Index: k, Stream: stream, Consumer: cons, Fresh: fresh}, nil
}

// moveBusPast handles a bus stream that ends below what the store holds: a
// power cut took the tail of JetStream's files (nats-server fsyncs them on
// a timer, sync_interval, not per message) after the store had fsynced
// fragments numbered from them, or someone recreated the stream by hand.
// New messages would reuse the numbers of stored fragments, so the stream's
// sequence is moved past to (a purge up to to+1: JetStream then starts at
// to+1). Nothing a store still needs is dropped: the store applies the bus
// in order, so every message at or below the stream's end was applied,
// refused or answered RETRY before the fragment numbered storeMax was
// stored; what the bus lost that was not PERSISTED its producer re-sends.
// Another consumer (a store replica sharing the bus) may still need the
// messages left: then the repair is left to the operator.
func moveBusPast(ctx context.Context, stream jetstream.Stream, ours string, to uint64, log *slog.Logger) (jetstream.Stream, error) {
	info := stream.CachedInfo()
	name := info.Config.Name
	refuse := func(why string) error {
		return fmt.Errorf("ingest: bus stream %s ends at sequence %d but the store already holds fragment %d, and %s; "+
			"new fragments would reuse old numbers. When every store replica has applied what it needs, delete the bus stream "+
			"(nats stream rm %s) and restart: it is recreated above the store's numbers", name, info.State.LastSeq, to, why, name)
	}
	// Our own consumer may remember deliveries past the stream's end (its
	// state file survived where the stream's tail did not): it would skip
	// new messages up to there.
	lister := stream.ListConsumers(ctx)
	for ci := range lister.Info() {
		if ci.Name == ours {
			to = max(to, ci.Delivered.Stream)
			continue
		}
		if ci.AckFloor.Stream < info.State.LastSeq && info.State.Msgs > 0 {
			return nil, refuse(fmt.Sprintf("consumer %s has not applied all it holds", ci.Name))
		}
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("ingest: list consumers of bus stream %s: %w", name, err)
	}
	if err := stream.Purge(ctx, jetstream.WithPurgeSequence(to+1)); err != nil {
		return nil, fmt.Errorf("ingest: move bus stream %s past sequence %d: %w", name, to, err)
	}
	if _, err := stream.Info(ctx); err != nil {
		return nil, fmt.Errorf("ingest: bus stream %s: %w", name, err)
	}
	log.Warn("ingest: the bus ended below the fragments the store holds (a power cut took its unsynced tail, or it was recreated by hand); "+
		"moved its sequence past them so that new fragments take new numbers. Fragments it lost that were not yet PERSISTED are re-sent by their producers",
		"bus", name, "bus_ended_at", info.State.LastSeq, "store_holds", to, "next", to+1)
	return stream, nil
}

// errCodeInsufficientStorage is JetStream's "insufficient storage resources
// available" (JSStorageResourcesExceededErr): the stream's MaxBytes exceeds
// what the server may still reserve.
const errCodeInsufficientStorage jetstream.ErrorCode = 10047

// minBusBytes is the smallest bus shrinkToFit settles for: a few fragments.
const minBusBytes = 4 * (8 << 20)

// shrinkToFit applies sc, halving its MaxBytes while the server answers that
// it has not the storage for it.
func shrinkToFit(sc *jetstream.StreamConfig, apply func(jetstream.StreamConfig) (jetstream.Stream, error)) (jetstream.Stream, error) {
	for {
		stream, err := apply(*sc)
		var apiErr *jetstream.APIError
		if err == nil || !errors.As(err, &apiErr) || apiErr.ErrorCode != errCodeInsufficientStorage || sc.MaxBytes/2 < minBusBytes {
			if err != nil && apiErr != nil && apiErr.ErrorCode == errCodeInsufficientStorage {
				return nil, fmt.Errorf("%w (a bus of %d MiB does not fit the NATS server's storage: free disk space, or raise its max_file_store)", err, sc.MaxBytes>>20)
			}
			return stream, err
		}
		sc.MaxBytes /= 2
	}
}

// upToDate reports whether an existing bus stream already has the settings
// EnsureShard would give it. Its MaxBytes may be below the configured one
// (shrinkToFit settled for less) but not closed by the disk guard.
func upToDate(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Retention == want.Retention && have.Discard == want.Discard &&
		have.Replicas == want.Replicas && have.MaxAge == want.MaxAge && have.MaxMsgSize == want.MaxMsgSize &&
		have.Duplicates == want.Duplicates && have.MaxBytes > closedBusBytes && have.MaxBytes <= want.MaxBytes
}
