package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The registry is how nodes know of each other: a JetStream key-value bucket
// (<BUS>_NODES) with one key per node, which each node rewrites every
// heartbeat interval with its addresses and what it cannot serve yet. Every
// node watches the whole bucket and remembers when, by its own clock, it last
// saw each node's key change: a node is alive while its heartbeats keep
// coming, and gone once it has been silent for the replace-after grace
// period. Only local clocks are compared, so clock skew between machines
// does not matter.

// NodeInfo is what a node says of itself in the registry.
type NodeInfo struct {
	Name    string    `json:"name"`
	HTTP    string    `json:"http"`             // base URL of the HTTP API, as clients reach it
	Flight  string    `json:"flight,omitempty"` // Arrow Flight location; "" when off
	NATS    string    `json:"nats"`             // client URL of its NATS server
	Started time.Time `json:"started"`
	Beat    uint64    `json:"beat"` // counts heartbeats, so that each one changes the key
	// Unready lists the streams it stores but does not yet serve reads for:
	// it is filling them from another replica, or catching up on the bus.
	Unready []string `json:"unready,omitempty"`
}

// nodeView is a node as this node last saw it.
type nodeView struct {
	info NodeInfo
	seen time.Time // local clock
}

// Registry publishes this node's heartbeat and tracks the others'.
type Registry struct {
	kv       jetstream.KeyValue
	self     NodeInfo
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time
	unready  func() []string // this node's unready streams, read at each beat
	started  time.Time       // when this registry began watching (local clock)

	stopWatch context.CancelFunc

	mu      sync.RWMutex
	nodes   map[string]*nodeView
	changed []chan struct{} // closed at the next change of membership
}

// RegistryOptions configure a registry.
type RegistryOptions struct {
	KV       jetstream.KeyValue
	Self     NodeInfo
	Interval time.Duration   // heartbeat; default 1 s
	Unready  func() []string // nil: always ready
	Log      *slog.Logger
	Now      func() time.Time
}

// StartRegistry writes this node's key, starts its heartbeat and the watch
// of the others. It returns once the watch has delivered every node already
// registered. ctx bounds the start; Stop ends the heartbeat.
func StartRegistry(ctx context.Context, o RegistryOptions) (*Registry, error) {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Registry{kv: o.KV, self: o.Self, interval: o.Interval, log: o.Log, now: o.Now, unready: o.Unready,
		started: o.Now(), nodes: map[string]*nodeView{}}
	if err := r.beat(ctx); err != nil {
		return nil, err
	}
	// The watch outlives ctx (which only bounds the start): Stop ends it.
	wctx, stop := context.WithCancel(context.Background())
	w, err := r.kv.WatchAll(wctx)
	if err != nil {
		stop()
		return nil, fmt.Errorf("cluster: watch node registry: %w", err)
	}
	r.stopWatch = stop
	for initial := true; initial; {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				stop()
				return nil, errors.New("cluster: node registry watch ended")
			}
			if e == nil {
				initial = false // every existing key has been delivered
				continue
			}
			r.apply(e, true)
		case <-ctx.Done():
			stop()
			return nil, fmt.Errorf("cluster: read node registry: %w", ctx.Err())
		}
	}
	go r.follow(w)
	return r, nil
}

// Key is the registry key of a node (node names are key-safe: ValidateNode).
func nodeKey(name string) string { return name }

func (r *Registry) beat(ctx context.Context) error {
	r.self.Beat++
	if r.unready != nil {
		r.self.Unready = r.unready()
	}
	b, err := json.Marshal(r.self)
	if err != nil {
		return err
	}
	if _, err := r.kv.Put(ctx, nodeKey(r.self.Name), b); err != nil {
		return fmt.Errorf("cluster: heartbeat of node %s: %w", r.self.Name, err)
	}
	return nil
}

// Run beats until ctx ends. A failed beat (no JetStream quorum) is logged
// once per outage; the node keeps trying.
func (r *Registry) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		bctx, cancel := context.WithTimeout(ctx, 2*r.interval)
		err := r.beat(bctx)
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			r.log.Warn("cluster: heartbeat failed; other nodes will count this node as down until it succeeds", "err", err)
			failing = true
		case err == nil && failing:
			r.log.Info("cluster: heartbeat restored")
			failing = false
		}
	}
}

func (r *Registry) follow(w jetstream.KeyWatcher) {
	defer func() { _ = w.Stop() }()
	for e := range w.Updates() {
		if e != nil {
			r.apply(e, false)
		}
	}
}

// apply records one registry entry. Entries present when the watch starts
// are not heartbeats seen now: such a node counts as seen when this node
// started, not alive until it beats again.
func (r *Registry) apply(e jetstream.KeyValueEntry, initial bool) {
	if strings.HasPrefix(e.Key(), "=") {
		return // the cluster's own records (the bus layout), not nodes
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		if _, ok := r.nodes[e.Key()]; ok {
			delete(r.nodes, e.Key())
			r.notifyLocked()
		}
		return
	}
	var info NodeInfo
	if err := json.Unmarshal(e.Value(), &info); err != nil || info.Name != e.Key() {
		r.log.Warn("cluster: ignoring a malformed node registry entry", "key", e.Key(), "err", err)
		return
	}
	seen := r.now()
	if initial && info.Name != r.self.Name {
		seen = r.started.Add(-r.aliveWindow())
	}
	v, ok := r.nodes[info.Name]
	if !ok {
		v = &nodeView{}
		r.nodes[info.Name] = v
	}
	wasAlive := ok && r.aliveLocked(v, r.now())
	v.info, v.seen = info, seen
	if !ok || !wasAlive {
		r.notifyLocked()
	}
}

func (r *Registry) notifyLocked() {
	for _, c := range r.changed {
		close(c)
	}
	r.changed = nil
}

// Changed returns a channel closed at the next change of membership (a node
// registered, came back or was removed).
func (r *Registry) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := make(chan struct{})
	r.changed = append(r.changed, c)
	return c
}

// aliveWindow is how long a silent node still counts as alive: three missed
// heartbeats.
func (r *Registry) aliveWindow() time.Duration { return 3 * r.interval }

func (r *Registry) aliveLocked(v *nodeView, now time.Time) bool {
	return v.info.Name == r.self.Name || now.Sub(v.seen) <= r.aliveWindow()
}

// Member is what the registry knows of one node.
type Member struct {
	NodeInfo
	Alive    bool
	LastSeen time.Time // local clock
}

// Nodes returns every registered node, sorted by name.
func (r *Registry) Nodes() []Member {
	now := r.now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Member, 0, len(r.nodes))
	for _, v := range r.nodes {
		out = append(out, Member{NodeInfo: v.info, Alive: r.aliveLocked(v, now), LastSeen: v.seen})
	}
	slices.SortFunc(out, func(a, b Member) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// Lookup returns one node.
func (r *Registry) Lookup(name string) (Member, bool) {
	now := r.now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.nodes[name]
	if !ok {
		return Member{}, false
	}
	return Member{NodeInfo: v.info, Alive: r.aliveLocked(v, now), LastSeen: v.seen}, true
}

// SilentFor is how long a node has not been heard from (0 for this node and
// for nodes alive now); ok is false for a node never registered.
func (r *Registry) SilentFor(name string) (time.Duration, bool) {
	now := r.now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.nodes[name]
	if !ok {
		return 0, false
	}
	if r.aliveLocked(v, now) {
		return 0, true
	}
	return now.Sub(v.seen), true
}

// Self is this node's name.
func (r *Registry) Self() string { return r.self.Name }

// Stop ends the registry's watch (Run ends with its context).
func (r *Registry) Stop() {
	if r.stopWatch != nil {
		r.stopWatch()
	}
}

// Remove deletes a node from the registry (`sensorium cluster remove`):
// only a node that is not alive may be removed.
func (r *Registry) Remove(ctx context.Context, name string) error {
	if n, ok := r.Lookup(name); !ok {
		return fmt.Errorf("cluster: node %s is not registered", name)
	} else if n.Alive {
		return fmt.Errorf("cluster: node %s is alive; stop it before removing it", name)
	}
	if err := r.kv.Purge(ctx, nodeKey(name)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("cluster: remove node %s: %w", name, err)
	}
	return nil
}
