// Package cluster makes Sensorium processes one cluster on the engine they
// already embed, NATS with clustered JetStream: a replicated, sharded bus,
// the catalog and the node registry in replicated key-value buckets, each
// stream stored by R of N nodes (placement), PERSISTED once a quorum of a
// stream's replicas has fsynced (the quorum), copies brought up to date from
// each other (the replicator), and reads served by any node through one
// that holds the stream (routing). It owns no consensus protocol: every
// decision that must be agreed on is a compare-and-set on a key-value
// bucket, and every replica builds the same store from the same bus
// (DESIGN.md, "Scaling out"). docs/CLUSTER.md is its user's guide and the
// specification of what it keeps in JetStream.
//
// It does not start NATS servers (the server package embeds them with the
// cluster's routes and the bus's subject mapping) nor serve HTTP (the api
// package mounts its handlers).
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/ingest"
	"github.com/sensorium-io/sensorium/internal/platform/vfs"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/store"
)

var nodeName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidateNode checks a node name: it names the node's NATS server, its bus
// consumers and its registry key, so 1–64 of [A-Za-z0-9_-].
func ValidateNode(name string) error {
	if !nodeName.MatchString(name) {
		return fmt.Errorf("node name %q must be 1-64 characters of A-Z a-z 0-9 _ -", name)
	}
	return nil
}

// Options configure a node.
type Options struct {
	Self    NodeInfo // Name, HTTP, Flight and NATS of this node
	DataDir string   // for the node's record of its cluster (cluster.json)
	NC      *nats.Conn
	JS      jetstream.JetStream
	// Bus is the bus layout (Subjects.Shards set) and its JetStream settings;
	// Consumer is ignored (a node's consumers are named after it).
	Bus     ingest.BusConfig
	Store   *store.Store
	Keyring *store.Keyring
	Region  string
	Account string
	Limits  ingest.Limits
	// OnPersisted is every shard ingester's (ingest.Options.OnPersisted).
	OnPersisted func(stream string, bytes int)
	// PackPCM is every shard ingester's (ingest.Options.PackPCM).
	PackPCM bool

	// StreamReplicas is how many nodes store a new stream; 0: min(3, N).
	StreamReplicas int
	// AckReplicas is how many of a stream's replicas must have fsynced a
	// fragment before PERSISTED; 0: a majority of them.
	AckReplicas int
	// ReplaceAfter is how long a node may be silent before its streams get a
	// new replica and its bus consumers are removed; default 5 min.
	ReplaceAfter time.Duration
	// Heartbeat is the registry's interval; default 1 s.
	Heartbeat time.Duration
	// Sign signs requests to other nodes' HTTP APIs; nil: unsigned.
	Sign func(*http.Request, []byte) error
	// HTTPClient reaches other nodes; default a client with no overall
	// timeout (fills and proxied GetMedia are long).
	HTTPClient *http.Client
	Log        *slog.Logger
}

// Node is this process's part of a cluster.
type Node struct {
	o      Options
	log    *slog.Logger
	subs   wire.Subjects
	reg    *Registry
	cat    *Catalog
	rep    *Replicator
	quorum *Quorum
	fill   *fillServer

	shards    []ingest.Shard
	ingesters []*ingest.Ingester
	verdicts  *nats.Subscription
	statusSub *nats.Subscription

	stop      context.CancelFunc
	wg        sync.WaitGroup
	ingestErr chan error

	replacements   atomic.Int64
	quorumLosses   atomic.Int64
	consumersFreed atomic.Int64
	lastLossLog    atomic.Int64 // unix ns

	// backlog is, per shard, the bus sequence the shard had reached when
	// this node's ingester of it started: until the node's position reaches
	// it, the node is catching up on what it missed (0: caught up).
	backlog []atomic.Uint64

	pendingMu    sync.Mutex
	pendingAt    time.Time
	pendingCache map[string]uint64
}

// Bucket names, after the bus stream's (SENSORIUM_FRAG → SENSORIUM_CATALOG).
func bucket(subs wire.Subjects, what string) string {
	return subs.BusStream()[:len(subs.BusStream())-len("FRAG")] + what
}

// record is what a node keeps of its cluster in its data folder: that it
// has joined one (so that a local stream missing from the catalog was
// deleted, not yet imported) and the bus's shard count.
type record struct {
	Format int       `json:"format"`
	Node   string    `json:"node"`
	Shards int       `json:"shards"`
	Joined time.Time `json:"joined"`
}

func recordPath(dir string) string { return filepath.Join(dir, "cluster.json") }

// ReadRecord returns the node's record of its cluster; ok is false before
// its first start in a cluster.
func ReadRecord(dataDir string) (node string, shards int, ok bool, err error) {
	b, err := os.ReadFile(recordPath(dataDir))
	if errors.Is(err, os.ErrNotExist) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil || r.Format != 1 {
		return "", 0, false, fmt.Errorf("cluster: %s is not a cluster record (%v)", recordPath(dataDir), err)
	}
	return r.Node, r.Shards, true, nil
}

func writeRecord(dataDir, node string, shards int) error {
	b, _ := json.MarshalIndent(record{Format: 1, Node: node, Shards: shards, Joined: time.Now().UTC()}, "", "  ")
	return vfs.WriteFileAtomic(vfs.OS, recordPath(dataDir), append(b, '\n'), 0o640)
}

// Start joins this node to the cluster: it ensures the buckets, the bus
// shards and this node's consumers, registers the node, reads the catalog
// (importing the streams of a single node's store at its first start in a
// cluster), and starts applying the bus. JetStream must be ready (a meta
// leader elected). Close stops it.
func Start(ctx context.Context, o Options) (*Node, error) {
	if err := ValidateNode(o.Self.Name); err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.ReplaceAfter <= 0 {
		o.ReplaceAfter = 5 * time.Minute
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: time.Minute}}
	}
	o.Bus.Consumer = o.Self.Name
	n := &Node{o: o, log: o.Log.With("component", "cluster", "node", o.Self.Name), subs: o.Bus.Subjects, ingestErr: make(chan error, 1)}
	_, _, joined, err := ReadRecord(o.DataDir)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			n.Close()
		}
	}()
	var kvCatalog, kvNodes jetstream.KeyValue
	if err := Retry(ctx, n.log, "open the catalog bucket", func(ctx context.Context) (err error) {
		kvCatalog, err = n.bucket(ctx, "CATALOG", "Sensorium: the cluster's catalog of streams", 1)
		return err
	}); err != nil {
		return nil, err
	}
	if err := Retry(ctx, n.log, "open the node registry", func(ctx context.Context) (err error) {
		kvNodes, err = n.bucket(ctx, "NODES", "Sensorium: the cluster's nodes and their heartbeats", 1)
		return err
	}); err != nil {
		return nil, err
	}
	if err := Retry(ctx, n.log, "create the bus shards", func(ctx context.Context) error { return n.ensureShards(ctx) }); err != nil {
		return nil, err
	}
	n.backlog = make([]atomic.Uint64, len(n.shards))
	fresh := map[int]bool{}
	for _, sh := range n.shards {
		fresh[sh.Index] = sh.Fresh
	}
	n.rep, err = NewReplicator(ReplicatorOptions{
		Self: o.Self.Name, Store: o.Store, Log: n.log, ShardOf: n.subs.ShardOf, Position: n.position,
		FreshShards: fresh, Fill: &fillClient{http: o.HTTPClient, sign: o.Sign}, Behind: n.behind,
	})
	if err != nil {
		return nil, err
	}
	n.fill = &fillServer{st: o.Store, ready: n.rep.fillReady, position: n.position, maxWait: 5 * time.Second}
	self := o.Self
	self.Started = time.Now().UTC()
	if err := Retry(ctx, n.log, "join the node registry", func(ctx context.Context) (err error) {
		n.reg, err = StartRegistry(ctx, RegistryOptions{KV: kvNodes, NC: o.NC, Prefix: n.subs.Prefix, Self: self, Interval: o.Heartbeat, Unready: n.rep.Unready, Log: n.log})
		return err
	}); err != nil {
		return nil, err
	}
	if err := Retry(ctx, n.log, "read the catalog", func(ctx context.Context) (err error) {
		n.cat, err = OpenCatalog(ctx, CatalogOptions{
			KV: kvCatalog, NC: o.NC, Registry: n.reg, Keyring: o.Keyring, Region: o.Region, Account: o.Account,
			Replicas: o.StreamReplicas, Log: n.log, OnChange: n.rep.OnChange,
			Marker: n.publishMarker,
		})
		return err
	}); err != nil {
		return nil, err
	}
	n.rep.Attach(n.cat, n.reg)
	if !joined {
		if err := n.importLocal(ctx); err != nil {
			return nil, err
		}
		if err := writeRecord(o.DataDir, o.Self.Name, max(1, n.subs.Shards)); err != nil {
			return nil, fmt.Errorf("cluster: record membership: %w", err)
		}
	} else {
		n.rep.Reconcile(ctx)
	}
	n.quorum = NewQuorum(o.Self.Name, 30*time.Second, n.answer, n.lost)
	n.quorum.onBehind = func(stream string, v Verdict) { n.rep.Resync(stream, v) }
	if n.verdicts, err = o.NC.Subscribe(n.storedWildcard(), n.onVerdict); err != nil {
		return nil, fmt.Errorf("cluster: subscribe to verdicts: %w", err)
	}
	if n.statusSub, err = o.NC.Subscribe(n.statusSubject(o.Self.Name), n.onStatusRequest); err != nil {
		return nil, fmt.Errorf("cluster: subscribe to status requests: %w", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	n.startIngesters(rctx)
	n.wg.Add(3)
	go func() { defer n.wg.Done(); n.reg.Run(rctx) }()
	go func() { defer n.wg.Done(); n.coordinate(rctx) }()
	go func() { defer n.wg.Done(); n.housekeep(rctx) }()
	ok = true
	n.log.Info("cluster: node joined", "shards", max(1, n.subs.Shards), "nodes", len(n.reg.Nodes()), "streams", len(n.cat.Entries()),
		"local_copies", len(n.rep.Local()), "unready", len(n.rep.Unready()))
	return n, nil
}

// bucket opens (or creates) one of the cluster's key-value buckets, with the
// bus's storage and replicas.
func (n *Node) bucket(ctx context.Context, what, desc string, history uint8) (jetstream.KeyValue, error) {
	name := bucket(n.subs, what)
	kv, err := n.o.JS.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = n.o.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: name, Description: desc, History: history, Storage: jetstream.FileStorage, Replicas: max(1, n.o.Bus.Replicas),
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = n.o.JS.KeyValue(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: bucket %s: %w", name, err)
	}
	return kv, nil
}

// ensureShards ensures every shard of the bus and this node's consumer of
// each. A shard created now starts its sequence at the clock's microsecond:
// were its JetStream files ever lost and it created again, its numbers
// would still start above every fragment number it gave before (it would
// need a million fragments a second, every second, to catch up with the
// clock), and above a single node's numbers when that node becomes the
// first node of a cluster.
func (n *Node) ensureShards(ctx context.Context) error {
	shards := max(1, n.subs.Shards)
	storeMax := make([]uint64, shards)
	infos, err := n.o.Store.AllStreams()
	if err != nil {
		return err
	}
	for _, i := range infos {
		if f, ok, _ := n.o.Store.Durable(i.Name); ok {
			k := n.subs.ShardOf(i.Name)
			storeMax[k] = max(storeMax[k], f.Number)
		}
	}
	firstSeq := uint64(time.Now().UnixMicro())
	n.shards = n.shards[:0]
	for k := 0; k < shards; k++ {
		sh, err := ingest.EnsureShard(ctx, n.o.JS, n.o.Bus, k, storeMax[k], firstSeq)
		if err != nil {
			return err
		}
		if sh.Fresh {
			n.log.Info("cluster: created this node's consumer of a bus shard", "shard", sh.Stream.CachedInfo().Config.Name)
		}
		n.shards = append(n.shards, sh)
	}
	return nil
}

// startIngesters starts one ingester per shard. An ingester that stops
// with an error (its consumer was removed: this node was taken for gone)
// has its shard re-ensured (a fresh consumer, its copies joining) and is
// started again.
func (n *Node) startIngesters(ctx context.Context) {
	n.ingesters = make([]*ingest.Ingester, len(n.shards))
	for i := range n.shards {
		n.noteBacklog(i)
		n.ingesters[i] = n.newIngester(n.shards[i])
		n.wg.Add(1)
		go n.runShard(ctx, i)
	}
}

func (n *Node) newIngester(sh ingest.Shard) *ingest.Ingester {
	return ingest.New(ingest.Options{
		Store: n.o.Store, NC: n.o.NC, Stream: sh.Stream, Consumer: sh.Consumer, Subjects: n.subs, Limits: n.o.Limits,
		Logger: n.o.Log, Replica: n.o.Self.Name, Shard: sh.Index, Replication: n, OnPersisted: n.o.OnPersisted, PackPCM: n.o.PackPCM,
		// A full disk on one node must not close the bus to the others: its
		// store holds and retries, the other replicas answer (CLUSTER.md).
		DiskReserve: -1,
	})
}

func (n *Node) runShard(ctx context.Context, i int) {
	defer n.wg.Done()
	for {
		err := n.ingesters[i].Run(ctx)
		if ctx.Err() != nil {
			return
		}
		n.log.Error("cluster: a shard's ingester stopped; re-creating its consumer", "shard", i, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		sh, err := ingest.EnsureShard(ctx, n.o.JS, n.o.Bus, i, 0, uint64(time.Now().UnixMicro()))
		if err != nil {
			continue
		}
		if sh.Fresh {
			n.rep.Rejoin(i)
		}
		n.shards[i] = sh
		n.noteBacklog(i)
		n.ingesters[i] = n.newIngester(sh)
	}
}

// noteBacklog records how far shard i's bus has gone: this node serves
// reads of its streams once it has applied that far.
func (n *Node) noteBacklog(i int) {
	if info := n.shards[i].Stream.CachedInfo(); info != nil {
		n.backlog[i].Store(info.State.LastSeq)
	}
}

// behind reports whether this node is still applying the backlog shard k
// had when its ingester started.
func (n *Node) behind(k int) bool {
	if k < 0 || k >= len(n.backlog) {
		return false
	}
	target := n.backlog[k].Load()
	if target == 0 {
		return false
	}
	if n.position(k) >= target {
		n.backlog[k].Store(0)
		n.log.Info("cluster: caught up on the bus shard's backlog; serving its streams' reads", "shard", k)
		return false
	}
	return true
}

// position is this node's durable position on shard k.
func (n *Node) position(k int) uint64 {
	if k < 0 || k >= len(n.ingesters) || n.ingesters[k] == nil {
		return 0
	}
	return n.ingesters[k].Position()
}

// importLocal brings the streams of this node's store into the catalog at
// its first start in a cluster (a single node becoming the first node of a
// cluster): same ARN, version and data, placed on this node first, which is
// their source. A name the cluster already has for another stream stops the
// start: the two cannot be merged, and deleting either would lose data.
func (n *Node) importLocal(ctx context.Context) error {
	infos, err := n.o.Store.AllStreams()
	if err != nil {
		return err
	}
	for _, info := range infos {
		imported, err := n.cat.Import(ctx, info, n.o.Self.Name)
		if err != nil {
			return err
		}
		if !imported {
			e, ok, err := n.cat.Lookup(ctx, info.Name)
			if err != nil {
				return err
			}
			if ok && e.ARN != info.ARN {
				return fmt.Errorf("cluster: stream %s of this node's store (%s) is another stream than the cluster's (%s): "+
					"rename or delete one of them before this node joins", info.Name, info.ARN, e.ARN)
			}
			continue
		}
		n.rep.MarkLive(info.Name)
		n.log.Info("cluster: stream of this node's store imported into the cluster", "stream", info.Name)
	}
	return nil
}

// Close stops the node: ingesters (each finishing and fsyncing its batch),
// heartbeat, coordinator and fills. The caller closes the store after it.
func (n *Node) Close() error {
	if n.stop != nil {
		n.stop()
	}
	n.wg.Wait()
	if n.reg != nil && n.stop != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := n.reg.Leave(ctx); err != nil {
			n.log.Warn("cluster: could not tell the other nodes this one stops; they notice in a few heartbeats", "err", err)
		}
		cancel()
	}
	if n.verdicts != nil {
		_ = n.verdicts.Unsubscribe()
	}
	if n.statusSub != nil {
		_ = n.statusSub.Unsubscribe()
	}
	if n.rep != nil {
		n.rep.Close()
	}
	if n.cat != nil {
		n.cat.Close()
	}
	if n.reg != nil {
		n.reg.Stop()
	}
	return nil
}

// Catalog is the cluster's catalog (the API's control plane).
func (n *Node) Catalog() *Catalog { return n.cat }

// Registry is the node registry.
func (n *Node) Registry() *Registry { return n.reg }

// FillHandler serves other nodes' fills (mounted at FillPath).
func (n *Node) FillHandler() http.Handler { return n.fill }

// Ingesters are this node's shard ingesters (for stats).
func (n *Node) Ingesters() []*ingest.Ingester { return n.ingesters }

// publishMarker publishes a new stream's creation marker on the bus.
func (n *Node) publishMarker(ctx context.Context, info store.StreamInfo) error {
	m := &nats.Msg{Subject: n.subs.Marker(info.Name), Header: nats.Header{}}
	m.Header.Set(wire.HeaderStreamARN, info.ARN)
	_, err := n.o.JS.PublishMsg(ctx, m)
	return err
}

// Metrics are a node's counters and gauges for /metrics.
type Metrics struct {
	Alive, Down, Unready            int
	Pending                         map[string]uint64 // shard stream → messages this node has not applied
	QuorumLosses, Replacements      int64
	Resyncs                         int64 // live copies found missing fragments and topped up
	ConsumersRemoved, FillFragments int64
	FillBytes                       int64
	PendingVerdicts                 int
}

// Metrics reads the node's metrics; the consumer counts are cached for a
// second (each is a JetStream API request).
func (n *Node) Metrics() Metrics {
	m := Metrics{
		Unready: len(n.rep.Unready()), QuorumLosses: n.quorumLosses.Load(), Replacements: n.replacements.Load(),
		Resyncs:          n.rep.resyncs.Load(),
		ConsumersRemoved: n.consumersFreed.Load(), FillFragments: n.rep.filledFragments.Load(), FillBytes: n.rep.filledBytes.Load(),
		PendingVerdicts: n.quorum.Pending(), Pending: n.consumerPending(),
	}
	for _, mem := range n.reg.Nodes() {
		if mem.Alive {
			m.Alive++
		} else {
			m.Down++
		}
	}
	return m
}

// consumerPending asks JetStream how far behind this node's consumers are.
func (n *Node) consumerPending() map[string]uint64 {
	n.pendingMu.Lock()
	defer n.pendingMu.Unlock()
	if time.Since(n.pendingAt) < time.Second && n.pendingCache != nil {
		return n.pendingCache
	}
	out := map[string]uint64{}
	for _, sh := range n.shards {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ci, err := sh.Consumer.Info(ctx)
		cancel()
		if err == nil {
			out[ci.Stream] = ci.NumPending + uint64(ci.NumAckPending)
		}
	}
	n.pendingCache, n.pendingAt = out, time.Now()
	return out
}

// Retry runs fn until it succeeds or ctx ends: a cluster that has just
// elected its meta leader may time out the first requests that create
// replicated streams while its peers catch up. It logs every few seconds.
func Retry(ctx context.Context, log *slog.Logger, what string, fn func(context.Context) error) error {
	start, lastLog := time.Now(), time.Now()
	for {
		// Each attempt has its own deadline: a JetStream request that the
		// new cluster loses would otherwise wait for ctx's.
		actx, cancel := context.WithTimeout(ctx, 6*time.Second)
		err := fn(actx)
		cancel()
		if err == nil {
			return nil
		}
		var stop Permanent
		if errors.As(err, &stop) {
			return stop.Err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("cluster: %s: %w (last error: %v)", what, ctx.Err(), err)
		}
		if time.Since(lastLog) > 5*time.Second {
			log.Warn("cluster: still trying to "+what, "for", time.Since(start).Round(time.Second), "err", err)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Permanent stops Retry: fn's error will not go away by trying again.
type Permanent struct{ Err error }

func (p Permanent) Error() string { return p.Err.Error() }

// Replicator is the node's replicator (tests look at phases).
func (n *Node) Replicator() *Replicator { return n.rep }
