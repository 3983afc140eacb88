package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sensorium-io/sensorium/ingest"
	"github.com/sensorium-io/sensorium/store"
)

// The replicator keeps this node's store in step with the catalog: it
// creates the local copy of each stream placed here, deletes the copy of a
// stream deleted or placed elsewhere, and brings a copy that may lack
// fragments up to date from another replica before it applies the bus to it.
//
// A local copy is in one of three phases:
//
//   - live: it holds every fragment of the stream up to this node's durable
//     position on the stream's bus shard, and the ingester applies each new
//     message to it. It serves reads and fills other replicas.
//   - filling: it is being copied from a live replica in the background
//     (after a lost disk, or when this node was given the stream by
//     re-placement); the ingester leaves the stream's messages to the other
//     replicas meanwhile.
//   - joining: most of it is here, but fragments between the copy's end and
//     this node's bus position may be missing. Before the ingester applies
//     the stream's next message (at sequence S), it fetches from a live
//     replica every fragment numbered below S, once that replica has made
//     its shard durable up to S−1 (a top-up); then the copy is live. A quiet
//     stream is topped up the same way when its shard has nothing to apply.
//
// A stream starts live on its first replicas: CreateStream publishes a
// marker on the stream's subject after the catalog entry, so every replica's
// ingester meets the marker before the stream's first fragment and knows it
// has everything from there on. A copy found on disk at start-up is live when
// this node's bus consumer for its shard was kept (the bus held every message
// since), and joining when the consumer had to be created anew.

type phase uint8

const (
	phaseFilling phase = iota + 1
	phaseJoining
	phaseLive
)

func (p phase) String() string {
	switch p {
	case phaseFilling:
		return "filling"
	case phaseJoining:
		return "joining"
	case phaseLive:
		return "live"
	}
	return "absent"
}

// localCopy is this node's copy of one stream.
type localCopy struct {
	arn       string
	phase     phase
	since     time.Time // when it entered the phase
	lastTry   time.Time // last top-up attempt of a joining copy
	filling   bool      // a background fill is running
	lastError string    // of the last failed fill or top-up, for status
}

// ReplicatorOptions configure a Replicator.
type ReplicatorOptions struct {
	Self  string
	Store *store.Store
	Log   *slog.Logger
	// ShardOf is the bus shard of a stream.
	ShardOf func(stream string) int
	// Position is this node's durable bus position on a shard: every message
	// up to it is applied (or skipped) and fsynced.
	Position func(shard int) uint64
	// FreshShards are the shards whose bus consumer this node created at
	// this start: its copies of their streams may lack what the bus dropped
	// while the consumer was gone.
	FreshShards map[int]bool
	// Behind reports a shard this node is still catching up on: the bus
	// held a backlog for it when it started, not yet applied. Its copies
	// are complete but old, and must not serve reads as if their end were
	// the stream's. nil: never.
	Behind func(shard int) bool
	// Fill fetches from peers.
	Fill *fillClient
	// TopUpWait bounds how long a top-up waits for a peer to reach the
	// position; default 3 s.
	TopUpWait time.Duration
}

// Replicator manages this node's copies.
type Replicator struct {
	o   ReplicatorOptions
	log *slog.Logger
	cat *Catalog
	reg *Registry

	mu     sync.Mutex
	copies map[string]*localCopy

	// Counters for metrics and status.
	filledFragments atomic.Int64
	filledBytes     atomic.Int64
	resyncs         atomic.Int64 // live copies turned joining by Resync
	fills           atomic.Int64
	stop            chan struct{}
	attached        chan struct{} // closed by Attach
	wg              sync.WaitGroup
}

// NewReplicator returns a replicator over the streams already in the store.
// Attach gives it the catalog and the registry before the catalog is read.
func NewReplicator(o ReplicatorOptions) (*Replicator, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.TopUpWait <= 0 {
		o.TopUpWait = 3 * time.Second
	}
	r := &Replicator{o: o, log: o.Log, copies: map[string]*localCopy{}, stop: make(chan struct{}), attached: make(chan struct{})}
	infos, err := o.Store.AllStreams()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for _, info := range infos {
		p := phaseLive
		if o.FreshShards[o.ShardOf(info.Name)] {
			p = phaseJoining
		}
		r.copies[info.Name] = &localCopy{arn: info.ARN, phase: p, since: now}
	}
	return r, nil
}

// Attach sets the catalog and the registry the replicator works with, once
// the catalog is open (fills started while it was read wait for it).
func (r *Replicator) Attach(cat *Catalog, reg *Registry) {
	r.cat, r.reg = cat, reg
	close(r.attached)
}

// Close stops background fills and waits for them.
func (r *Replicator) Close() {
	close(r.stop)
	r.wg.Wait()
}

// OnChange follows the catalog (Catalog's OnChange). initial is set for the
// entries read when the catalog is opened at start-up.
func (r *Replicator) OnChange(old, next *Entry, initial bool) {
	switch {
	case next != nil && next.Holds(r.o.Self):
		// A copy that starts empty needs the stream's history when the stream
		// was not created just now: this node came back without its data, or
		// was given the stream in place of a node that is gone, or the stream
		// came into the cluster from a single node's store. A stream created
		// just now is filled by the bus itself, from its creation marker on.
		reassigned := old != nil && !old.Holds(r.o.Self)
		aged := time.Since(next.CreationTime) > time.Minute
		if err := r.ensure(next, false, initial || reassigned || aged); err != nil {
			r.log.Error("cluster: cannot keep a local copy of a stream placed on this node", "stream", next.Name, "err", err)
		}
	case old != nil:
		name := old.Name
		if next != nil {
			name = next.Name
		}
		r.drop(name, next == nil)
	}
}

// ensure makes sure a local copy of e's incarnation exists, creating it or
// updating its catalog entry; a copy of an older incarnation is deleted
// first. A new copy is live when fromMarker (the ingester met the stream's
// creation marker), else joining; with fill, a new empty copy is filled in
// the background first. A marker turns a joining copy live, never a filling
// one (whose background fill owns the appends until it is done).
func (r *Replicator) ensure(e *Entry, fromMarker, fill bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.copies[e.Name]
	if c != nil && c.arn != e.ARN {
		r.log.Info("cluster: deleting the local copy of an older incarnation of a stream", "stream", e.Name, "old", c.arn, "new", e.ARN)
		if err := r.o.Store.DropLocal(e.Name); err != nil && !errors.Is(err, store.ErrStreamNotFound) {
			return err
		}
		delete(r.copies, e.Name)
		c = nil
	}
	created, err := r.o.Store.Materialize(e.StreamInfo)
	if err != nil {
		return err
	}
	switch {
	case c == nil && fromMarker:
		r.copies[e.Name] = &localCopy{arn: e.ARN, phase: phaseLive, since: time.Now()}
	case c == nil:
		c = &localCopy{arn: e.ARN, phase: phaseJoining, since: time.Now()}
		r.copies[e.Name] = c
		if fill && created {
			r.startFillLocked(e.Name, c)
		}
	case fromMarker && c.phase == phaseJoining:
		r.setPhaseLocked(e.Name, c, phaseLive)
	}
	return nil
}

func (r *Replicator) setPhaseLocked(name string, c *localCopy, p phase) {
	if c.phase == p {
		return
	}
	r.log.Info("cluster: local copy changes phase", "stream", name, "from", c.phase.String(), "to", p.String(), "after", time.Since(c.since).Round(time.Millisecond))
	c.phase, c.since, c.lastError = p, time.Now(), ""
}

// drop deletes the local copy of a stream no longer placed here.
func (r *Replicator) drop(name string, deleted bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.copies[name]; !ok {
		return
	}
	why := "placed on other nodes"
	if deleted {
		why = "deleted"
	}
	if err := r.o.Store.DropLocal(name); err != nil && !errors.Is(err, store.ErrStreamNotFound) {
		r.log.Error("cluster: deleting a local copy failed; it is retried at the next start", "stream", name, "err", err)
		return
	}
	delete(r.copies, name)
	r.log.Info("cluster: local copy deleted", "stream", name, "reason", why)
}

// Admit decides what the ingester does with message seq of stream's shard.
// It runs on the shard ingester's goroutine, which is what lets a top-up
// append to the copy: nothing else appends to the stream meanwhile.
func (r *Replicator) Admit(ctx context.Context, shard int, stream string, seq uint64) ingest.Admission {
	e, ok, err := r.cat.Lookup(ctx, stream)
	if err != nil {
		// The catalog cannot be read (no JetStream quorum): leave the
		// message to replicas that can, rather than refuse it wrongly.
		r.log.Warn("cluster: catalog lookup failed; leaving the fragment to other replicas", "stream", stream, "err", err)
		return ingest.AdmitSkip
	}
	if !ok {
		return ingest.AdmitUnknown
	}
	if !e.Holds(r.o.Self) {
		return ingest.AdmitSkip
	}
	r.mu.Lock()
	c := r.copies[stream]
	r.mu.Unlock()
	if c == nil || c.arn != e.ARN {
		if err := r.ensure(&e, false, false); err != nil {
			r.log.Error("cluster: cannot create the local copy of a stream", "stream", stream, "err", err)
			return ingest.AdmitSkip
		}
		r.mu.Lock()
		c = r.copies[stream]
		r.mu.Unlock()
	}
	r.mu.Lock()
	p := c.phase
	r.mu.Unlock()
	switch p {
	case phaseLive:
		return ingest.AdmitApply
	case phaseJoining:
		if r.topUp(ctx, &e, shard, seq) {
			return ingest.AdmitApply
		}
	}
	return ingest.AdmitSkip
}

// Created handles a stream's creation marker at bus position seq: a
// replica that meets it has every message of the stream from there on.
func (r *Replicator) Created(ctx context.Context, stream, arn string) {
	e, ok, err := r.cat.Lookup(ctx, stream)
	if err != nil || !ok || e.ARN != arn || !e.Holds(r.o.Self) {
		return
	}
	if err := r.ensure(&e, true, false); err != nil {
		r.log.Error("cluster: cannot create the local copy of a new stream", "stream", stream, "err", err)
	}
}

// Idle tops up the joining copies of a shard's streams while the shard has
// nothing to apply; position is this node's durable position on it.
func (r *Replicator) Idle(ctx context.Context, shard int, position uint64) {
	var todo []string
	now := time.Now()
	r.mu.Lock()
	for name, c := range r.copies {
		if c.phase == phaseJoining && r.o.ShardOf(name) == shard && now.Sub(c.lastTry) > 2*time.Second {
			c.lastTry = now
			todo = append(todo, name)
		}
	}
	r.mu.Unlock()
	for _, name := range todo {
		e, ok, err := r.cat.Lookup(ctx, name)
		if err != nil || !ok || !e.Holds(r.o.Self) {
			continue
		}
		r.topUp(ctx, &e, shard, position+1)
	}
}

// topUp fetches every fragment of e numbered below `before` that the copy
// lacks from a live replica whose shard is durable up to before−1, and
// makes the copy live. It reports whether the copy is live now.
func (r *Replicator) topUp(ctx context.Context, e *Entry, shard int, before uint64) bool {
	last := r.localLast(e.Name)
	req := FillRequest{Stream: e.Name, ARN: e.ARN, After: last, Before: before, Shard: shard, Position: before - 1}
	var errs []error
	for _, peer := range r.peers(e) {
		fctx, cancel := context.WithTimeout(ctx, r.o.TopUpWait+time.Minute)
		n, err := r.fetchInto(fctx, peer, req)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.mu.Lock()
		if c := r.copies[e.Name]; c != nil {
			r.setPhaseLocked(e.Name, c, phaseLive)
		}
		r.mu.Unlock()
		if n > 0 {
			r.log.Info("cluster: topped up a local copy from another replica", "stream", e.Name, "from", peer.Name, "fragments", n, "below", before)
		}
		return true
	}
	r.mu.Lock()
	if c := r.copies[e.Name]; c != nil {
		c.lastError = fmt.Sprint(errors.Join(errs...))
		if len(errs) == 0 {
			c.lastError = "no live replica to top up from"
		}
	}
	r.mu.Unlock()
	return len(errs) == 0 && r.takeOver(e)
}

// takeOverAfter is how long a copy waits for a live replica before it
// considers that none will come.
const takeOverAfter = 30 * time.Second

// takeOver makes this node's copy live without a source when no replica of
// the stream has been live for takeOverAfter while every replica is alive
// and this one has the lowest name among them: every copy lost what it
// lacks (the whole cluster lost its disks, or the stream's creation marker
// never reached a replica), and the stream must go on with what is left.
// The others then fill from it.
func (r *Replicator) takeOver(e *Entry) bool {
	r.mu.Lock()
	c := r.copies[e.Name]
	waited := c != nil && time.Since(c.since) > takeOverAfter
	r.mu.Unlock()
	if !waited {
		return false
	}
	for _, name := range e.Replicas {
		if name == r.o.Self {
			continue
		}
		n, ok := r.reg.Lookup(name)
		if !ok || !n.Alive || !slices.Contains(n.Unready, e.Name) || name < r.o.Self {
			return false
		}
	}
	r.log.Error("cluster: no replica of the stream is live; this node goes on with the fragments it has, and the others fill from it",
		"stream", e.Name, "last_fragment", r.localLast(e.Name), "replicas", e.Replicas)
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.copies[e.Name]; c != nil && c.phase != phaseLive {
		r.setPhaseLocked(e.Name, c, phaseLive)
	}
	return true
}

// peers are the other replicas of e that say they are live for it, alive ones first.
func (r *Replicator) peers(e *Entry) []Member {
	var out []Member
	for _, name := range e.Replicas {
		if name == r.o.Self {
			continue
		}
		n, ok := r.reg.Lookup(name)
		if !ok || !n.Alive || n.HTTP == "" || slices.Contains(n.Unready, e.Name) {
			continue
		}
		out = append(out, n)
	}
	return out
}

// localLast is the number of the copy's newest durable fragment (0: none).
func (r *Replicator) localLast(name string) uint64 {
	f, ok, err := r.o.Store.Durable(name)
	if err != nil || !ok {
		return 0
	}
	return f.Number
}

// fetchInto copies the fragments of a fill request from peer into the
// store, syncing as it goes so that an interrupted fill keeps what it got.
func (r *Replicator) fetchInto(ctx context.Context, peer Member, req FillRequest) (int, error) {
	pending := 0
	n, err := r.o.Fill.fetch(ctx, peer.HTTP, req, func(f *store.Fragment) error {
		res, err := r.o.Store.Append(req.Stream, f)
		if err != nil {
			return err
		}
		if res.Status == store.Appended {
			r.filledFragments.Add(1)
			r.filledBytes.Add(int64(len(f.Payload)))
			pending++
			if pending >= 256 {
				pending = 0
				return r.o.Store.Sync(req.Stream)
			}
		}
		return nil
	})
	if serr := r.o.Store.Sync(req.Stream); serr != nil && err == nil {
		err = serr
	}
	return n, err
}

// startFillLocked starts a background fill of a copy that has nothing yet:
// most of a stream's history is copied without holding the bus up, then the
// copy joins (and the ingester tops up the rest in bus order).
func (r *Replicator) startFillLocked(name string, c *localCopy) {
	if c.filling {
		return
	}
	c.filling = true
	r.setPhaseLocked(name, c, phaseFilling)
	r.fills.Add(1)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.fillLoop(name, c)
	}()
}

func (r *Replicator) fillLoop(name string, c *localCopy) {
	select {
	case <-r.attached:
	case <-r.stop:
		return
	}
	defer func() {
		r.mu.Lock()
		c.filling = false
		if c.phase == phaseFilling {
			r.setPhaseLocked(name, c, phaseJoining)
		}
		r.mu.Unlock()
	}()
	backoff := 500 * time.Millisecond
	for {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-r.stop:
			case <-ctx.Done():
			}
			cancel()
		}()
		done, err := r.fillOnce(ctx, name, c)
		cancel()
		if done {
			return
		}
		r.mu.Lock()
		c.lastError = fmt.Sprint(err)
		r.mu.Unlock()
		select {
		case <-r.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// fillOnce copies what one live peer has; done is false when it must be tried again.
func (r *Replicator) fillOnce(ctx context.Context, name string, c *localCopy) (bool, error) {
	e, ok, err := r.cat.Lookup(ctx, name)
	if err != nil {
		return false, err
	}
	r.mu.Lock()
	gone := !ok || !e.Holds(r.o.Self) || r.copies[name] != c || c.arn != e.ARN
	r.mu.Unlock()
	if gone {
		return true, nil
	}
	peers := r.peers(&e)
	if len(peers) == 0 {
		if r.takeOver(&e) {
			return true, nil
		}
		return false, fmt.Errorf("no live replica of %s to fill from", name)
	}
	var errs []error
	for _, p := range peers {
		t0 := time.Now()
		n, err := r.fetchInto(ctx, p, FillRequest{Stream: name, ARN: e.ARN, After: r.localLast(name), Shard: r.o.ShardOf(name)})
		if err == nil {
			r.log.Info("cluster: filled a local copy from another replica", "stream", name, "from", p.Name, "fragments", n, "took", time.Since(t0).Round(time.Millisecond))
			return true, nil
		}
		errs = append(errs, err)
	}
	return false, errors.Join(errs...)
}

// Phase reports this node's phase for a stream ("" when it holds no copy).
func (r *Replicator) Phase(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.copies[name]; c != nil {
		return c.phase.String()
	}
	return ""
}

// Live reports whether this node's copy of the incarnation arn is live.
func (r *Replicator) Live(name, arn string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.copies[name]
	return c != nil && c.phase == phaseLive && (arn == "" || c.arn == arn)
}

// Serves reports whether this node serves reads of the incarnation arn: its
// copy is live and its shard is not catching up on a backlog.
func (r *Replicator) Serves(name, arn string) bool {
	return r.Live(name, arn) && (r.o.Behind == nil || !r.o.Behind(r.o.ShardOf(name)))
}

// Unready lists the streams this node does not serve reads of yet (copies
// filling or joining, or on a shard it is catching up on), sorted.
func (r *Replicator) Unready() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for name, c := range r.copies {
		if c.phase != phaseLive || (r.o.Behind != nil && r.o.Behind(r.o.ShardOf(name))) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// fillReady is the fill server's check: only a live copy of the same
// incarnation is a source.
func (r *Replicator) fillReady(name, arn string) error {
	if !r.Live(name, arn) {
		return fmt.Errorf("cluster: node %s has no live copy of stream %s (%s); ask another replica", r.o.Self, name, r.Phase(name))
	}
	return nil
}

// Local returns the names of every local copy, for reconciliation.
func (r *Replicator) Local() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.copies))
	for n := range r.copies {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Reconcile deletes local copies of streams the catalog does not have
// (deleted while this node was away). Only a positive answer of the catalog
// deletes anything: a lookup that fails keeps the copy.
func (r *Replicator) Reconcile(ctx context.Context) {
	for _, name := range r.Local() {
		e, ok, err := r.cat.Lookup(ctx, name)
		if err != nil {
			continue
		}
		if !ok || !e.Holds(r.o.Self) {
			r.drop(name, !ok)
		}
	}
}

// MarkLive makes a copy live without a fill: this node is the source of the
// stream (it imported it into the cluster).
func (r *Replicator) MarkLive(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.copies[name]; c != nil {
		r.setPhaseLocked(name, c, phaseLive)
	}
}

// Resync turns a live copy joining when a quorum of the other replicas
// stored a bus message that this node did not (v is this node's verdict on
// it): the copy misses fragments, and every later fragment of the same
// producer would be held back here for its missing predecessor, which the
// producer, told PERSISTED by the others, never sends again. Before the
// ingester applies the stream's next message, the copy is topped up from a
// live replica. Replicas apply the same bus in the same order, so this is a
// repair of the unexpected, not a path ingest normally takes.
func (r *Replicator) Resync(name string, v Verdict) {
	r.mu.Lock()
	c := r.copies[name]
	if c == nil || c.phase != phaseLive {
		r.mu.Unlock()
		return
	}
	r.setPhaseLocked(name, c, phaseJoining)
	c.lastTry = time.Time{}
	r.mu.Unlock()
	r.resyncs.Add(1)
	r.log.Warn("cluster: a quorum of the other replicas stored a fragment this copy did not; topping it up from a live replica",
		"stream", name, "shard", v.Shard, "seq", v.Seq, "verdict_here", v.Event.EventType, "reason", v.Event.Message)
}

// Rejoin turns every live copy of a shard's streams joining: this node's
// consumer of the shard was removed (the node was taken for gone) and
// created anew, so the bus may have dropped messages it never received.
func (r *Replicator) Rejoin(shard int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, c := range r.copies {
		if r.o.ShardOf(name) == shard && c.phase == phaseLive {
			r.setPhaseLocked(name, c, phaseJoining)
		}
	}
}

// LastError is the last failure of a fill or top-up of a copy that is not
// live ("" otherwise).
func (r *Replicator) LastError(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.copies[name]; c != nil && c.phase != phaseLive {
		return c.lastError
	}
	return ""
}
