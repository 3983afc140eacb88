package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/internal/platform/pcmpack"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/store"
)

// Options configure an Ingester.
type Options struct {
	Store    *store.Store
	NC       *nats.Conn         // for acknowledgement events
	Stream   jetstream.Stream   // the bus stream, from EnsureBus
	Consumer jetstream.Consumer // the store's durable consumer, from EnsureBus
	Subjects wire.Subjects
	Limits   Limits
	Logger   *slog.Logger
	Now      func() time.Time
	// Replica is this store replica's name (its consumer), for messages; default "store".
	Replica string

	// A batch is what one fsync covers: as many messages as have arrived, up to
	// these bounds. Defaults: 32 MiB, 2048 messages.
	BatchMaxBytes int
	BatchMaxMsgs  int

	// Shard is the index of the bus shard Stream is (0 when the bus is not
	// sharded); Replication, when set, makes this a cluster node's replica.
	Shard       int
	Replication Replication
	// IdleAfter is how often Replication.Idle is called between batches;
	// default 500 ms.
	IdleAfter time.Duration

	// DiskPath is where the disk guard measures free space (diskguard.go);
	// default the store's folder. DiskReserve is the free space below which
	// the bus takes no new fragments; default DefaultDiskReserve, < 0 turns
	// the guard off.
	DiskPath    string
	DiskReserve int64

	// ChunkPatience is how long the chunks of a fragment larger than a bus
	// message are held, after the newest of them came, for the fragment's
	// last chunk; then they are dropped from the bus (chunks.go). Default
	// 2 min.
	ChunkPatience time.Duration
	// ChunkMemory bounds the bytes of held chunks kept in memory; a chunk
	// past it is read back from the bus when its fragment's last chunk
	// comes (slower: the bus's API answers in JSON). Default 256 MiB.
	ChunkMemory int

	// PackPCM stores the PCM audio tracks of retained fragments losslessly
	// coded (package pcmpack); the store's readers must then be given
	// pcmpack's Unpack (store.Options.Expand). The server does both.
	PackPCM bool

	// OnPersisted, when set, is told of every fragment stored (not of
	// duplicates): its stream and bytes. The server meters usage with it.
	// It runs on the ingester's goroutine: it must be quick.
	OnPersisted func(stream string, bytes int)
}

// Ingester applies fragments from the bus to the store, one batch and one
// fsync per stream at a time, and answers each with an acknowledgement event.
type Ingester struct {
	opts  Options
	log   *slog.Logger
	stats Stats
	mu    sync.Mutex // guards stats.Errors
	// refused remembers recently refused producer keys, so that a fragment
	// that must follow a refused one is not held back (see HeaderProducerPrev).
	// Only the Run goroutine uses it.
	refused map[producerKeyOf]struct{}
	// held is the chunks of fragments whose last chunk has not come yet
	// (chunks.go); only the Run goroutine uses it.
	held      map[chunkKey]*heldFragment
	heldBytes int // the bytes of held chunks kept in memory (ChunkMemory)
	// assembleBuf is where assemble joins a fragment's chunks, and
	// payloadBuf where a retained stream's fragment is parsed into: each
	// the largest seen, at most Limits.MaxFragmentSize. Only the Run
	// goroutine uses them.
	assembleBuf, payloadBuf []byte
	// position is the bus sequence up to which every message of the stream
	// is durable here (applied and fsynced, or not this replica's): what a
	// peer filling from this replica waits for (Position).
	position atomic.Uint64
	// expect is the next bus sequence to apply (inOrder); only the Run
	// goroutine uses it.
	expect uint64
	// draining is set once Run was asked to stop: a store failure then
	// ends the retries at once (the messages stay unacknowledged and the bus
	// redelivers them to the next process) instead of holding the stop until
	// the disk heals, which for a dead disk is never.
	draining atomic.Bool
}

// Position is the ingester's durable position on its bus stream.
func (in *Ingester) Position() uint64 { return in.position.Load() }

type producerKeyOf struct {
	stream, producer string
	seq              uint64
}

// maxRefusedKeys bounds the memory of refusals; past it the memory restarts,
// and a producer whose predecessor it forgot is asked to re-send without the
// constraint (the SDK does so when it knows the predecessor is final).
const maxRefusedKeys = 1 << 16

// New returns an Ingester; Run starts it.
func New(opts Options) *Ingester {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Subjects.Prefix == "" {
		opts.Subjects = wire.NewSubjects("")
	}
	if opts.BatchMaxBytes <= 0 {
		opts.BatchMaxBytes = 32 << 20
	}
	if opts.BatchMaxMsgs <= 0 {
		opts.BatchMaxMsgs = 2048
	}
	if opts.Replica == "" {
		opts.Replica = DefaultReplica
	}
	if opts.DiskPath == "" && opts.Store != nil {
		opts.DiskPath = opts.Store.Dir()
	}
	if opts.DiskReserve == 0 {
		opts.DiskReserve = DefaultDiskReserve
	}
	if opts.ChunkMemory <= 0 {
		opts.ChunkMemory = 256 << 20
	}
	if opts.ChunkPatience <= 0 {
		opts.ChunkPatience = defaultChunkPatience
	}
	if opts.IdleAfter <= 0 {
		opts.IdleAfter = 500 * time.Millisecond
	}
	opts.Limits.setDefaults()
	in := &Ingester{opts: opts, log: opts.Logger, refused: map[producerKeyOf]struct{}{}, held: map[chunkKey]*heldFragment{}}
	in.stats.Errors = map[wire.ErrorCode]int64{}
	return in
}

// busMsg is one fragment message, from the consumer or, at start-up, read
// directly from the stream (then m is nil: it cannot be acked, and will be
// redelivered and recognised as already applied).
type busMsg struct {
	subject string
	header  nats.Header
	data    []byte
	seq     uint64
	ts      time.Time
	m       jetstream.Msg
	stale   bool       // a redelivery of a message already applied (inOrder), or a chunk held or answered (sortChunks)
	chunk   *chunkInfo // set on the last chunk of a chunked fragment (sortChunks)
}

func fromJS(m jetstream.Msg) (*busMsg, error) {
	md, err := m.Metadata()
	if err != nil {
		return nil, err
	}
	return &busMsg{subject: m.Subject(), header: m.Headers(), data: m.Data(), seq: md.Sequence.Stream, ts: md.Timestamp, m: m}, nil
}

// Run consumes until ctx is done. It first applies what the previous run had
// received but not acknowledged, in order, so that new fragments never overtake
// old ones. When ctx is done it finishes the batch in hand, fsyncs and returns.
func (in *Ingester) Run(ctx context.Context) error {
	gctx, stopGuard := context.WithCancel(ctx)
	guarded := make(chan struct{})
	go func() { defer close(guarded); in.guardDisk(gctx) }()
	defer func() { stopGuard(); <-guarded }()
	if err := in.catchUp(ctx); err != nil {
		return err
	}
	msgs := make(chan jetstream.Msg, 4096)
	stopped := make(chan struct{})
	defer close(stopped)
	cc, err := in.opts.Consumer.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-stopped:
		}
	},
		jetstream.PullMaxBytes(64<<20),
		// Short pulls with heartbeats: when the consumer's leader changes (a
		// cluster node died) a pull can be lost, and the client notices only
		// when a heartbeat is missed; with the defaults that took 30 s of
		// stalled ingest.
		jetstream.PullExpiry(2*time.Second), jetstream.PullHeartbeat(500*time.Millisecond),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !errors.Is(err, jetstream.ErrNoHeartbeat) {
				in.log.Warn("ingest: consume", "err", err)
			}
		}))
	if err != nil {
		return fmt.Errorf("ingest: consume: %w", err)
	}
	defer cc.Stop()
	var idle <-chan time.Time
	if in.opts.Replication != nil {
		t := time.NewTicker(in.opts.IdleAfter)
		defer t.Stop()
		idle = t.C
	}
	sweep := time.NewTicker(in.opts.ChunkPatience / 8)
	defer sweep.Stop()
	for {
		var first jetstream.Msg
		select {
		case <-ctx.Done():
			cc.Stop()
			in.drain(msgs)
			return nil
		case <-sweep.C:
			// Nothing is given up while messages wait to be applied: after
			// a long stall (a full disk) a fragment's last chunk may be
			// among them.
			in.expireChunks(len(msgs) == 0)
			continue
		case first = <-msgs:
		case <-idle:
			// Between batches, busy or not: a copy of a quiet stream on a
			// busy shard must catch up too.
			in.opts.Replication.Idle(ctx, in.opts.Shard, in.Position())
			continue
		}
		in.processBatch(ctx, in.collect(first, msgs))
	}
}

// collect takes first and whatever else has already arrived, up to the batch bounds.
func (in *Ingester) collect(first jetstream.Msg, msgs chan jetstream.Msg) []*busMsg {
	var batch []*busMsg
	size := 0
	add := func(m jetstream.Msg) {
		bm, err := fromJS(m)
		if err != nil {
			in.log.Error("ingest: message without JetStream metadata", "subject", m.Subject(), "err", err)
			_ = m.Term()
			return
		}
		batch = append(batch, bm)
		size += len(bm.data)
	}
	add(first)
	for len(batch) < in.opts.BatchMaxMsgs && size < in.opts.BatchMaxBytes {
		select {
		case m := <-msgs:
			add(m)
		default:
			return batch
		}
	}
	return batch
}

// drain applies what was already received when Run was asked to stop.
func (in *Ingester) drain(msgs chan jetstream.Msg) {
	in.draining.Store(true)
	for {
		select {
		case m := <-msgs:
			in.processBatch(context.Background(), in.collect(m, msgs))
		default:
			return
		}
	}
}

// catchUp has every message the consumer delivered before but that was never
// acknowledged (the previous process died between its write and its fsync,
// or before its ack) delivered again first. JetStream would redeliver them
// only after the ack wait, behind newer messages; applying them first keeps
// each stream in bus order, which the store's "already applied" check relies
// on. It resets the consumer to its ack floor (CONSUMER.RESET), so that they
// come again at once, in order, and are acknowledged as they are applied.
//
// A NATS server without that request gets the old way: each message is read
// with GetMsg and applied here. Those stay pending on the consumer (they
// have no delivery to acknowledge) until the ack wait ends, and with
// MaxAckPending of them the consumer delivers nothing new for up to 30 s —
// which, with restarts every few seconds (the power-cut loop), stalled ingest
// for good while producers' re-sends filled the bus.
func (in *Ingester) catchUp(ctx context.Context) error {
	ci, err := in.opts.Consumer.Info(ctx)
	if err != nil {
		return fmt.Errorf("ingest: consumer info: %w", err)
	}
	floor, delivered := ci.AckFloor.Stream, ci.Delivered.Stream
	// Nothing below the stream's first message is left to apply (the bus
	// removes a message once every consumer acknowledged it): a new consumer
	// of a bus whose sequence starts high (a cluster's shards start at the
	// clock's microsecond) has a floor of 0.
	si, err := in.opts.Stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("ingest: stream info: %w", err)
	}
	if si.State.FirstSeq > 0 {
		floor = max(floor, si.State.FirstSeq-1)
	}
	in.position.Store(floor)
	in.expect = floor + 1
	if delivered <= floor {
		return nil
	}
	if _, err = in.opts.Stream.ResetConsumer(ctx, in.opts.Consumer.CachedInfo().Name); err == nil {
		in.log.Info("ingest: the bus redelivers what the previous run left unacknowledged", "from", floor+1, "to", delivered)
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	in.log.Warn("ingest: the NATS server cannot reset the consumer; reading what the previous run left unacknowledged one message at a time", "from", floor+1, "to", delivered, "err", err)
	n := 0
	var batch []*busMsg
	for seq := floor + 1; seq <= delivered; seq++ {
		raw, err := in.opts.Stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // acked (and so removed) or refused
		}
		if err != nil {
			return fmt.Errorf("ingest: catch up: get message %d: %w", seq, err)
		}
		batch = append(batch, &busMsg{subject: raw.Subject, header: raw.Header, data: raw.Data, seq: raw.Sequence, ts: raw.Time})
		n++
		if len(batch) == 256 {
			in.processBatch(ctx, batch)
			batch = nil
		}
	}
	if len(batch) > 0 {
		in.processBatch(ctx, batch)
	}
	if n > 0 {
		in.log.Info("ingest: applied fragments left unacknowledged by the previous run", "fragments", n, "from", floor+1, "to", delivered)
	}
	return ctx.Err()
}

// result is what became of one message.
type result struct {
	stream   string
	event    *wire.AckEvent // published after the batch is durable; nil: none
	unknown  bool           // event refuses a fragment of a stream that does not exist
	stored   bool           // the store was asked to append it (the group needs a Sync)
	term     bool           // refused: terminate instead of ack
	storeErr error          // the store failed: the stream's group is retried
	skip     bool           // leave unacknowledged (shutting down mid-retry)
	held     bool           // a chunk held for its fragment's last: leave unacknowledged
	persist  time.Duration  // bus → PERSISTED, for the latency metric
	bytes    int
}

func (in *Ingester) processBatch(ctx context.Context, batch []*busMsg) {
	batch = in.inOrder(ctx, batch)
	results := make([]result, len(batch))
	in.sortChunks(ctx, batch, results)
	groups := map[string][]int{}
	var order []string
	for i, m := range batch {
		if m.stale {
			continue // applied before: acknowledged once this batch is durable
		}
		name, marker, ok := in.opts.Subjects.ParseBus(m.subject)
		if !ok {
			name = ""
		}
		if marker {
			// A stream's creation marker (cluster): nothing to store.
			if in.opts.Replication != nil {
				in.opts.Replication.Created(ctx, name, m.header.Get(wire.HeaderStreamARN))
			}
			results[i] = result{stream: name}
			continue
		}
		if _, seen := groups[name]; !seen {
			order = append(order, name)
		}
		groups[name] = append(groups[name], i)
	}
	in.applyGroups(ctx, order, groups, batch, results)
	in.finish(batch, results)
	for _, r := range results {
		if r.skip {
			return // shutting down mid-retry: not durable
		}
	}
	if in.expect > 0 && in.expect-1 > in.position.Load() {
		in.position.Store(in.expect - 1)
	}
}

// inOrder puts a batch in bus order. Each stream's fragments must be applied
// in the order of the bus (the store's numbering and its producer-order
// checks rely on it, and a cluster's replicas must all apply the same
// sequence), but a consumer does not always deliver in order: when its
// leader changes (a cluster node died), the messages the old leader had sent
// but that never arrived come again only after the ack wait, behind newer
// ones. So the ingester keeps the next sequence it expects; a message past it
// has the ones in between fetched from the stream first, and a message below
// it (a late redelivery of one already applied) is only acknowledged.
//
// When the messages in between cannot be fetched (the stream has no leader
// for a moment), nothing past them is applied: the rest of the batch is
// handed back to the bus, to come again once the gap can be filled. Applying
// it would let this replica pass over messages the others store, and then
// hold back every later fragment of their producers for a predecessor that
// never comes.
func (in *Ingester) inOrder(ctx context.Context, batch []*busMsg) []*busMsg {
	if in.expect == 0 || len(batch) == 0 {
		if len(batch) > 0 {
			in.expect = batch[0].seq
		}
	}
	out := make([]*busMsg, 0, len(batch))
	for i, m := range batch {
		switch {
		case m.seq < in.expect:
			m.stale = true
			out = append(out, m)
			continue
		case m.seq > in.expect:
			gap, ok := in.fetchGap(ctx, m.seq)
			out = append(out, gap...)
			if !ok {
				in.handBack(batch[i:])
				return out
			}
		}
		out = append(out, m)
		in.expect = m.seq + 1
	}
	return out
}

// handBack returns messages to the bus unapplied: it redelivers them after a
// short delay.
func (in *Ingester) handBack(msgs []*busMsg) {
	for _, m := range msgs {
		if m.m != nil {
			if err := m.m.NakWithDelay(time.Second); err != nil {
				in.log.Warn("ingest: hand a message back to the bus", "seq", m.seq, "err", err)
			}
		}
	}
}

// gapFetchPatience is how long fetchGap retries a message the stream cannot
// serve for the moment (a leader election takes a few seconds) before the
// batch is handed back.
const gapFetchPatience = 15 * time.Second

// fetchGap reads the messages from the expected sequence up to (not
// including) seq straight from the stream, advancing the expected sequence
// past each. A sequence the stream no longer holds (below its first message,
// or removed) is passed over. ok is false when a message could not be read
// within gapFetchPatience: expect is then the first one missing.
func (in *Ingester) fetchGap(ctx context.Context, seq uint64) (out []*busMsg, ok bool) {
	if in.opts.Stream == nil {
		in.expect = seq
		return nil, true
	}
	if si, err := in.opts.Stream.Info(ctx); err == nil && si.State.FirstSeq > in.expect {
		in.expect = si.State.FirstSeq
	}
	from := in.expect
	for ; in.expect < seq; in.expect++ {
		raw, err := in.getMsg(ctx, in.expect)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			in.log.Warn("ingest: cannot read a message the consumer skipped; the messages after it wait for it", "seq", in.expect, "err", err)
			return out, false
		}
		out = append(out, &busMsg{subject: raw.Subject, header: raw.Header, data: raw.Data, seq: raw.Sequence, ts: raw.Time})
	}
	if len(out) > 0 {
		in.log.Info("ingest: applying messages the consumer delivered out of order, in bus order", "from", from, "to", seq-1, "fetched", len(out))
	}
	return out, true
}

// getMsg reads one message of the stream, retrying for gapFetchPatience
// while the stream cannot answer.
func (in *Ingester) getMsg(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
	deadline := time.Now().Add(gapFetchPatience)
	backoff := 50 * time.Millisecond
	for {
		gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		raw, err := in.opts.Stream.GetMsg(gctx, seq)
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrMsgNotFound) || ctx.Err() != nil || time.Now().After(deadline) {
			return raw, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// applyGroups applies each stream's messages of a batch (streams in the
// order the batch first names them, each stream's messages in bus order),
// then makes the streams that stored something durable together. A stream
// whose write or fsync failed is retried on its own (retryGroup); the
// others are durable and go on.
func (in *Ingester) applyGroups(ctx context.Context, order []string, groups map[string][]int, batch []*busMsg, results []result) {
	failed := make([]error, len(order))
	if len(order) > 1 {
		in.opts.Store.PrepareKeys(order)
	}
	var toSync []int
	for g, name := range order {
		stored, err := in.appendGroup(ctx, name, batch, results, groups[name])
		switch {
		case err != nil:
			failed[g] = err
		case stored:
			toSync = append(toSync, g)
		}
	}
	names := make([]string, len(toSync))
	for k, g := range toSync {
		names[k] = order[g]
	}
	// One call for the batch: the store makes many streams durable at
	// once far cheaper than one fsync after another (store.SyncStreams).
	for k, err := range in.opts.Store.SyncStreams(names) {
		if errors.Is(err, store.ErrStreamNotFound) {
			err = nil // deleted meanwhile: the events already say so or will on redelivery
		}
		failed[toSync[k]] = err
	}
	for g, name := range order {
		if failed[g] != nil {
			in.retryGroup(ctx, name, batch, results, groups[name], failed[g])
		}
	}
}

// appendGroup applies one stream's messages of a batch in order (not yet
// durable). It reports whether any was stored, or the store's error, after
// which the store has rolled the stream back to its last sync.
func (in *Ingester) appendGroup(ctx context.Context, name string, batch []*busMsg, results []result, idx []int) (stored bool, err error) {
	for _, i := range idx {
		results[i] = in.apply(ctx, name, batch[i])
		stored = stored || results[i].stored
		if results[i].storeErr != nil {
			return stored, results[i].storeErr
		}
	}
	return stored, nil
}

// retryGroup handles a stream whose write or fsync failed (a full disk, a
// failed fsync): the store has rolled the stream back to its last sync, and
// the group is retried with backoff, holding the messages (and telling the
// bus they are in progress), until it succeeds or the ingester stops.
// Nothing is acknowledged that is not on disk.
func (in *Ingester) retryGroup(ctx context.Context, name string, batch []*busMsg, results []result, idx []int, failed error) {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		in.log.Error("ingest: store failed; holding the stream's fragments and retrying", "stream", name, "attempt", attempt, "err", failed)
		in.stats.StoreFailures.Add(1)
		if in.draining.Load() {
			for _, i := range idx {
				results[i] = result{stream: name, skip: true}
			}
			return
		}
		for _, i := range idx {
			if m := batch[i].m; m != nil {
				_ = m.InProgress()
			}
		}
		select {
		case <-ctx.Done():
			for _, i := range idx {
				results[i] = result{stream: name, skip: true}
			}
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
		stored, err := in.appendGroup(ctx, name, batch, results, idx)
		if err == nil && stored {
			err = in.opts.Store.Sync(name)
			if errors.Is(err, store.ErrStreamNotFound) {
				err = nil
			}
		}
		if err == nil {
			return
		}
		failed = err
	}
}

// apply validates one message and appends it to the store (not yet durable).
func (in *Ingester) apply(ctx context.Context, name string, m *busMsg) result {
	r := result{stream: name, bytes: len(m.data)}
	if name == "" || store.ValidateStreamName(name) != nil {
		in.log.Warn("ingest: fragment on a subject that names no valid stream", "subject", m.subject)
		r.term = true
		return r
	}
	if rep := in.opts.Replication; rep != nil {
		switch rep.Admit(ctx, in.opts.Shard, name, m.seq) {
		case AdmitSkip:
			return result{stream: name}
		case AdmitUnknown:
			ev := wire.ErrorEvent(wire.ErrStreamNotActive, 0, fmt.Sprintf("stream %s does not exist (ResourceNotFoundException); create it first", name))
			ev.ProducerID, ev.ProducerSequence = producerKey(m.header)
			return result{stream: name, event: &ev, unknown: true, term: true}
		}
	}
	errorEvent := func(code wire.ErrorCode, timecode int64, msg string) result {
		ev := wire.ErrorEvent(code, timecode, msg)
		ev.ProducerID, ev.ProducerSequence = producerKey(m.header)
		r.event, r.term = &ev, true
		if ev.ProducerID != "" {
			in.rememberRefused(name, ev.ProducerID, ev.ProducerSequence)
		}
		return r
	}
	info, err := in.opts.Store.DescribeStream(store.StreamRef{Name: name})
	if err != nil {
		// Catalogs are per replica. With one server this is the producer's
		// mistake; with several, the operator's: replicas must share the
		// catalog (docs/NATS.md). Each replica refuses only its own copy, on
		// its own consumer; the others still store theirs.
		return errorEvent(wire.ErrStreamNotActive, 0, fmt.Sprintf("stream %s does not exist in the catalog of store replica %q (ResourceNotFoundException); create it first, on every replica", name, in.opts.Replica))
	}
	if info.Status != store.StatusActive {
		return errorEvent(wire.ErrStreamNotActive, 0, fmt.Sprintf("stream %s is %s", name, info.Status))
	}
	pid, pseq := producerKey(m.header)
	var frag *Fragment
	if m.chunk != nil && pid != "" && in.seen(name, pid, pseq) {
		// A re-send of a chunked fragment the stream has: the store answers
		// it as a duplicate before it looks at a byte, so its chunks are not
		// put together (some may have been passed over as already stored).
		frag = &Fragment{}
	} else {
		data := m.data
		if m.chunk != nil {
			var refused *result
			if data, refused = in.assemble(ctx, name, m); refused != nil {
				return *refused
			}
			r.bytes = len(data)
		}
		// A stream that keeps what it stores is done with the payload once
		// the store has sealed it: parse into the ingester's own buffer. A
		// live-only stream's payload stays in its live buffer.
		var dst []byte
		if info.RetentionHours > 0 {
			dst = in.payloadBuf
		}
		var ferr *FragmentError
		if frag, ferr = ParseFragmentInto(dst, data, in.opts.Limits, in.opts.Now()); ferr != nil {
			return errorEvent(ferr.Code, ferr.TimecodeMS, ferr.Msg)
		}
		if info.RetentionHours > 0 && cap(frag.Payload) > cap(in.payloadBuf) {
			in.payloadBuf = frag.Payload[:0]
		}
	}
	if r, wait := in.mustWait(name, info, m.header, pid, pseq, frag); wait {
		return r
	}
	// A producer's bytes that look like the packed marker must not be read
	// as packed: readers expand whatever carries it.
	frag.Payload, frag.ClusterOffset = pcmpack.Disarm(frag.Payload, frag.ClusterOffset)
	readSize := 0
	if in.opts.PackPCM && frag.PCM && info.RetentionHours > 0 && len(frag.Payload) > 0 {
		packed, offset, ok, err := pcmpack.Pack(frag.Payload, frag.ClusterOffset)
		switch {
		case err != nil:
			in.log.Warn("ingest: a fragment's PCM audio could not be coded; stored as it came", "stream", name, "err", err)
		case ok:
			// Readers get the fragment back as it came: its size is that.
			readSize = len(frag.Payload)
			frag.Payload, frag.ClusterOffset = packed, offset
		}
	}
	r.stored = true
	res, err := in.opts.Store.Append(name, &store.Fragment{
		Number: m.seq, ServerTime: m.ts.UnixNano(), ProducerTime: frag.ProducerTime, Duration: frag.Duration,
		ProducerID: pid, ProducerSeq: pseq, ClusterOffset: frag.ClusterOffset, Payload: frag.Payload, ReadSize: readSize,
	})
	timecode := frag.ProducerTime / int64(time.Millisecond)
	switch {
	case errors.Is(err, store.ErrTimecodeBackwards):
		return errorEvent(wire.ErrFragmentTimecodeLesser, timecode, err.Error())
	case errors.Is(err, store.ErrStreamNotFound):
		return errorEvent(wire.ErrStreamNotActive, timecode, fmt.Sprintf("stream %s was deleted", name))
	case err != nil:
		r.storeErr = err
		return r
	}
	ev := wire.AckEvent{
		EventType: wire.EventPersisted, FragmentTimecode: timecode, ProducerID: pid, ProducerSequence: pseq,
		FragmentNumber: strconv.FormatUint(res.Number, 10), ServerTimestamp: res.ServerTime / int64(time.Millisecond),
	}
	switch res.Status {
	case store.Duplicate:
		ev.Duplicate = true
		if res.Number == 0 {
			ev.FragmentNumber = ""
		}
	case store.LiveOnly:
		ev.EventType = wire.EventReceived
		retained := false
		ev.Retained = &retained
	case store.PassedOver:
		// A redelivered message the stream passed over when it first came
		// (held back for its predecessor, or refused): its fragment is not
		// stored. The producer re-sends it if it still has it.
		in.stats.Retries.Add(1)
		prev, _ := strconv.ParseUint(m.header.Get(wire.HeaderProducerPrev), 10, 64)
		ev = wire.AckEvent{
			EventType: wire.EventRetry, FragmentTimecode: timecode, ProducerID: pid, ProducerSequence: pseq, After: prev,
			Message: fmt.Sprintf("fragment %d was not stored when it first came; re-send it", pseq),
		}
		r.term = true
	}
	r.event = &ev
	r.persist = in.opts.Now().Sub(m.ts)
	return r
}

// mustWait holds back a fragment whose predecessor (HeaderProducerPrev) has
// been neither stored nor refused: it answers RETRY and drops the message, and
// the producer re-sends it after the predecessor. A duplicate of a stored
// fragment is never held back.
func (in *Ingester) mustWait(name string, info store.StreamInfo, h nats.Header, pid string, pseq uint64, frag *Fragment) (result, bool) {
	prev, err := strconv.ParseUint(h.Get(wire.HeaderProducerPrev), 10, 64)
	if err != nil || prev == 0 || pid == "" || info.RetentionHours == 0 {
		return result{}, false
	}
	if _, refused := in.refused[producerKeyOf{name, pid, prev}]; refused {
		return result{}, false
	}
	if seen, err := in.opts.Store.Seen(name, pid, prev); err != nil || seen {
		return result{}, false
	}
	if seen, _ := in.opts.Store.Seen(name, pid, pseq); seen {
		return result{}, false // a re-send of a stored fragment: answer PERSISTED
	}
	in.stats.Retries.Add(1)
	ev := wire.AckEvent{
		EventType: wire.EventRetry, FragmentTimecode: frag.ProducerTime / int64(time.Millisecond),
		ProducerID: pid, ProducerSequence: pseq, After: prev,
		Message: fmt.Sprintf("fragment %d must follow fragment %d, which has not arrived; re-send it after that one", pseq, prev),
	}
	return result{stream: name, event: &ev, term: true}, true
}

func (in *Ingester) seen(stream, producer string, seq uint64) bool {
	seen, err := in.opts.Store.Seen(stream, producer, seq)
	return err == nil && seen
}

func (in *Ingester) rememberRefused(stream, producer string, seq uint64) {
	if len(in.refused) >= maxRefusedKeys {
		in.refused = map[producerKeyOf]struct{}{}
	}
	in.refused[producerKeyOf{stream, producer, seq}] = struct{}{}
}

func producerKey(h nats.Header) (string, uint64) {
	id := h.Get(wire.HeaderProducerID)
	if id == "" || len(id) > 256 {
		return "", 0
	}
	seq, err := strconv.ParseUint(h.Get(wire.HeaderProducerSeq), 10, 64)
	if err != nil {
		return "", 0
	}
	return id, seq
}

// finish publishes each event and then acknowledges each message: PERSISTED
// goes out before the bus forgets the fragment, so a crash between the two
// only repeats an event.
func (in *Ingester) finish(batch []*busMsg, results []result) {
	for i, r := range results {
		m := batch[i]
		if r.skip || r.held {
			continue
		}
		if r.event != nil {
			in.count(r)
			switch rep := in.opts.Replication; {
			case rep != nil && r.unknown:
				rep.Unknown(r.stream, *r.event)
			case rep != nil:
				rep.Verdict(in.opts.Shard, r.stream, m.seq, *r.event)
			default:
				if b, err := json.Marshal(r.event); err == nil {
					if err := in.opts.NC.Publish(in.opts.Subjects.Ack(r.stream), b); err != nil {
						in.log.Warn("ingest: publish ack event", "stream", r.stream, "err", err)
					}
				}
			}
		}
		// A fragment's other chunks go with its last: stored, refused or
		// passed over, the bus needs none of them any more.
		if m.chunk != nil {
			what := "+ACK"
			if r.term {
				what = "+TERM"
			}
			for _, c := range m.chunk.parts {
				in.ackChunk(c, what)
			}
		}
		if m.m == nil {
			continue
		}
		var err error
		if r.term {
			err = m.m.Term()
		} else {
			err = m.m.Ack()
		}
		if err != nil {
			in.log.Warn("ingest: ack bus message", "seq", m.seq, "err", err)
		}
	}
}

func (in *Ingester) count(r result) {
	switch r.event.EventType {
	case wire.EventPersisted:
		if r.event.Duplicate {
			in.stats.Duplicates.Add(1)
		} else {
			in.stats.Persisted.Add(1)
			in.stats.PersistedBytes.Add(int64(r.bytes))
			in.stats.observeLatency(r.persist)
			if in.opts.OnPersisted != nil {
				in.opts.OnPersisted(r.stream, r.bytes)
			}
		}
	case wire.EventReceived:
		in.stats.LiveOnly.Add(1)
	case wire.EventRetry:
		in.log.Debug("ingest: fragment held back for its predecessor", "stream", r.stream, "reason", r.event.Message)
	case wire.EventError:
		in.mu.Lock()
		in.stats.Errors[r.event.ErrorID]++
		in.mu.Unlock()
		in.log.Info("ingest: fragment refused", "stream", r.stream, "code", r.event.ErrorCode, "reason", r.event.Message)
	}
}
