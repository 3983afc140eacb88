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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The registry is how nodes know of each other. Membership is a JetStream
// key-value bucket (<BUS>_NODES), one key per node with its addresses,
// written when the node starts and when it stops cleanly: the nodes that
// exist, alive or not. Liveness is a heartbeat on core NATS
// (<prefix>.cluster.beat.<node>, the node's NodeInfo with what it cannot
// serve yet) every interval: it does not wait on a JetStream leader, so a
// leader election elsewhere cannot make live nodes look dead. A node is
// alive while its heartbeats keep coming (three intervals), and gone once it
// has been silent for the replace-after grace period. Only local clocks are
// compared, so clock skew between machines does not matter.

// NodeInfo is what a node says of itself in the registry.
type NodeInfo struct {
	Name    string    `json:"name"`
	HTTP    string    `json:"http"`             // base URL of the HTTP API, as clients reach it
	Flight  string    `json:"flight,omitempty"` // Arrow Flight location; "" when off
	NATS    string    `json:"nats"`             // client URL of its NATS server
	Started time.Time `json:"started"`
	Beat    uint64    `json:"beat"` // counts heartbeats
	// Unready lists the streams it stores but does not yet serve reads for:
	// it is filling them from another replica, or catching up on the bus.
	Unready []string `json:"unready,omitempty"`
	// Stopped is the last word of a node that stopped cleanly: the others
	// take it for down at once, not after missing heartbeats.
	Stopped bool `json:"stopped,omitempty"`
}

// nodeView is a node as this node last saw it.
type nodeView struct {
	info NodeInfo
	seen time.Time // local clock: its last heartbeat, or when this node started
}

// Registry publishes this node's heartbeat and tracks the others'.
type Registry struct {
	kv       jetstream.KeyValue
	nc       *nats.Conn
	subject  string // heartbeat subject prefix: <prefix>.cluster.beat.
	self     NodeInfo
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time
	unready  func() []string // this node's unready streams, read at each beat
	started  time.Time       // when this registry began watching (local clock)

	stopWatch context.CancelFunc
	beats     *nats.Subscription

	mu      sync.RWMutex
	nodes   map[string]*nodeView
	changed []chan struct{} // closed at the next change of membership
}

// RegistryOptions configure a registry.
type RegistryOptions struct {
	KV       jetstream.KeyValue
	NC       *nats.Conn
	Prefix   string // subject prefix; default "sensorium"
	Self     NodeInfo
	Interval time.Duration   // heartbeat; default 1 s
	Unready  func() []string // nil: always ready
	Log      *slog.Logger
	Now      func() time.Time
}

// StartRegistry writes this node's key, subscribes to the heartbeats and
// reads the membership. It returns once every registered node is known.
// ctx bounds the start; Run beats; Stop ends it.
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
	if o.Prefix == "" {
		o.Prefix = "sensorium"
	}
	r := &Registry{kv: o.KV, nc: o.NC, subject: o.Prefix + ".cluster.beat.", self: o.Self, interval: o.Interval, log: o.Log,
		now: o.Now, unready: o.Unready, started: o.Now(), nodes: map[string]*nodeView{}}
	var err error
	if r.beats, err = o.NC.Subscribe(r.subject+"*", r.onBeat); err != nil {
		return nil, fmt.Errorf("cluster: subscribe to heartbeats: %w", err)
	}
	if err := r.register(ctx); err != nil {
		_ = r.beats.Unsubscribe()
		return nil, err
	}
	// The watch outlives ctx (which only bounds the start): Stop ends it.
	wctx, stop := context.WithCancel(context.Background())
	w, err := r.kv.WatchAll(wctx)
	if err != nil {
		stop()
		_ = r.beats.Unsubscribe()
		return nil, fmt.Errorf("cluster: watch node registry: %w", err)
	}
	r.stopWatch = stop
	for initial := true; initial; {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				r.Stop()
				return nil, errors.New("cluster: node registry watch ended")
			}
			if e == nil {
				initial = false // every existing key has been delivered
				continue
			}
			r.apply(e)
		case <-ctx.Done():
			r.Stop()
			return nil, fmt.Errorf("cluster: read node registry: %w", ctx.Err())
		}
	}
	go r.follow(w)
	return r, nil
}

// nodeKey is the registry key of a node (node names are key-safe: ValidateNode).
func nodeKey(name string) string { return name }

// register writes this node's membership key.
func (r *Registry) register(ctx context.Context) error {
	r.mu.RLock()
	b, err := json.Marshal(r.self)
	r.mu.RUnlock()
	if err != nil {
		return err
	}
	if _, err := r.kv.Put(ctx, nodeKey(r.self.Name), b); err != nil {
		return fmt.Errorf("cluster: register node %s: %w", r.self.Name, err)
	}
	return nil
}

// beat publishes one heartbeat.
func (r *Registry) beat() error {
	var unready []string
	if r.unready != nil {
		unready = r.unready() // before r.mu: it takes the replicator's lock
	}
	r.mu.Lock()
	r.self.Beat++
	r.self.Unready = unready
	b, err := json.Marshal(r.self)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	return r.nc.Publish(r.subject+r.self.Name, b)
}

// Run beats until ctx ends.
func (r *Registry) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	_ = r.beat()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.beat(); err != nil && ctx.Err() == nil {
				r.log.Warn("cluster: heartbeat not sent", "err", err)
			}
		}
	}
}

// onBeat records another node's heartbeat.
func (r *Registry) onBeat(m *nats.Msg) {
	var info NodeInfo
	if err := json.Unmarshal(m.Data, &info); err != nil || info.Name == "" || !strings.HasSuffix(m.Subject, "."+info.Name) {
		return
	}
	if info.Name == r.self.Name {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.nodes[info.Name]
	if !ok {
		v = &nodeView{}
		r.nodes[info.Name] = v
	}
	wasAlive := ok && r.aliveLocked(v, r.now())
	v.info, v.seen = info, r.now()
	if !wasAlive {
		r.notifyLocked()
	}
}

func (r *Registry) follow(w jetstream.KeyWatcher) {
	defer func() { _ = w.Stop() }()
	for e := range w.Updates() {
		if e != nil {
			r.apply(e)
		}
	}
}

// apply records a change of membership: a node registered (its addresses),
// stopped cleanly, or was removed.
func (r *Registry) apply(e jetstream.KeyValueEntry) {
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
	if info.Name == r.self.Name {
		info = r.self // under r.mu, held
	}
	v, ok := r.nodes[info.Name]
	if !ok {
		// Known from the registry only: it counts as silent since this node
		// started, until its heartbeats come.
		r.nodes[info.Name] = &nodeView{info: info, seen: r.started.Add(-r.aliveWindow())}
		r.notifyLocked()
		return
	}
	if info.Stopped || info.Started.After(v.info.Started) {
		wasAlive := r.aliveLocked(v, r.now())
		unready := v.info.Unready
		v.info = info
		if !info.Stopped {
			v.info.Unready = unready
		}
		if wasAlive != r.aliveLocked(v, r.now()) {
			r.notifyLocked()
		}
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
	if v.info.Name == r.self.Name {
		return true
	}
	return !v.info.Stopped && now.Sub(v.seen) <= r.aliveWindow()
}

// Member is what the registry knows of one node.
type Member struct {
	NodeInfo
	Alive    bool
	LastSeen time.Time // local clock
}

func (r *Registry) memberLocked(v *nodeView, now time.Time) Member {
	if v.info.Name == r.self.Name {
		return Member{NodeInfo: r.self, Alive: true, LastSeen: now}
	}
	return Member{NodeInfo: v.info, Alive: r.aliveLocked(v, now), LastSeen: v.seen}
}

// Nodes returns every registered node, sorted by name.
func (r *Registry) Nodes() []Member {
	now := r.now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Member, 0, len(r.nodes))
	for _, v := range r.nodes {
		out = append(out, r.memberLocked(v, now))
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
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
	return r.memberLocked(v, now), true
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

// InMajority reports whether this node hears a majority of the registered
// nodes (itself included): a node cut off from the rest must not act for
// the cluster (re-place streams, free consumers) on its lonely view.
func (r *Registry) InMajority() bool {
	alive, all := 0, 0
	for _, m := range r.Nodes() {
		all++
		if m.Alive {
			alive++
		}
	}
	return alive*2 > all
}

// Self is this node's name.
func (r *Registry) Self() string { return r.self.Name }

// Leave tells the other nodes this one is stopping (a clean shutdown):
// they count it down at once. Its key stays: it is a node that is down.
func (r *Registry) Leave(ctx context.Context) error {
	r.mu.Lock()
	r.self.Stopped = true
	r.mu.Unlock()
	_ = r.beat()
	return r.register(ctx)
}

// Stop ends the registry's watch and heartbeat subscription (Run ends
// with its context).
func (r *Registry) Stop() {
	if r.stopWatch != nil {
		r.stopWatch()
	}
	if r.beats != nil {
		_ = r.beats.Unsubscribe()
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
