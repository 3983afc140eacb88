package cluster

import (
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
)

// The quorum turns each replica's verdict on a bus message into the one
// event a producer sees. Every replica of a stream applies the same bus
// message, fsyncs and then, instead of answering the producer itself,
// publishes a Verdict on the cluster's stored subject. Every replica counts
// the verdicts of the messages of its streams; the producer is told
// PERSISTED once ack-replicas replicas (a majority by default) have said
// PERSISTED, never before. ERROR, RETRY and the RECEIVED of a live-only stream
// take the same path, so a replica whose catalog lags cannot refuse a
// fragment on its own.
//
// Who answers: each replica decides once per message, at the first moment it
// has given its own verdict and holds ack-replicas verdicts of one kind; it
// answers if it is the lowest-named node among those verdicts. The lowest-
// named replica that ever stores the message always answers (whenever its
// own verdict completes its view, it is the lowest of every view), so a
// fragment stored by a quorum is always answered, usually once, and at most
// once per replica when verdicts arrive in different orders on different
// nodes. Producers already act on the first terminal event of a fragment.
//
// Verdicts are core NATS, like the events themselves: a lost one can leave a
// fragment unanswered, and the producer re-sends it after its persist timeout;
// the store recognises the re-send and the replicas answer again.

// Verdict is one replica's outcome for one bus message.
type Verdict struct {
	Node   string        `json:"node"`
	Stream string        `json:"stream"`
	Shard  int           `json:"shard"`
	Seq    uint64        `json:"seq"` // the bus message's sequence in its shard
	Event  wire.AckEvent `json:"event"`
}

// kind groups verdicts that mean the same to a producer.
func (v *Verdict) kind() string {
	switch v.Event.EventType {
	case wire.EventPersisted:
		return "P" // a re-send answered Duplicate is as durable as a first store
	case wire.EventError:
		return "E" + strconv.Itoa(int(v.Event.ErrorID))
	}
	return string(v.Event.EventType)
}

type msgKey struct {
	shard int
	seq   uint64
}

type tally struct {
	first   time.Time
	byKind  map[string][]string // kind → nodes, in arrival order
	mine    *Verdict            // this node's own verdict, once given
	votes   int
	decided bool
	behind  bool // onBehind was told
}

// Quorum counts verdicts for one node. It is safe for concurrent use.
type Quorum struct {
	self    string
	publish func(stream string, ev wire.AckEvent) // answers the producer
	// onExpire is told of each message that left the quorum's memory
	// undecided although this node had stored it (a quorum loss).
	onExpire func(stream string, v Verdict)
	// onBehind is told of each message that this node did not store but a
	// quorum of the other replicas did: this node's copy misses fragments
	// (see Replicator.Resync). Nil: no one is told.
	onBehind func(stream string, v Verdict)
	ttl      time.Duration

	mu      sync.Mutex
	tallies map[msgKey]*tally
}

// NewQuorum returns a quorum for node self; publish sends the event a
// producer sees. A message undecided after ttl is forgotten.
func NewQuorum(self string, ttl time.Duration, publish func(string, wire.AckEvent), onExpire func(string, Verdict)) *Quorum {
	return &Quorum{self: self, publish: publish, onExpire: onExpire, ttl: ttl, tallies: map[msgKey]*tally{}}
}

// Add counts a verdict (this node's own or another replica's); need is how
// many replicas of the stream must agree and replicas how many store it. It
// publishes the producer's event when this node is the one to answer. A
// message is forgotten once every replica has given its verdict, or after
// the quorum's ttl.
func (q *Quorum) Add(v Verdict, need, replicas int, now time.Time) {
	if need < 1 {
		need = 1
	}
	k := msgKey{v.Shard, v.Seq}
	q.mu.Lock()
	t := q.tallies[k]
	if t == nil {
		t = &tally{first: now, byKind: map[string][]string{}}
		q.tallies[k] = t
	}
	kind := v.kind()
	if slices.Contains(t.byKind[kind], v.Node) {
		q.mu.Unlock()
		return // the same verdict twice (a redelivery applied again)
	}
	t.byKind[kind] = append(t.byKind[kind], v.Node)
	t.votes++
	if v.Node == q.self && t.mine == nil {
		mine := v
		t.mine = &mine
	}
	var answer *wire.AckEvent
	var behind *Verdict
	if t.mine != nil && !t.behind && t.mine.kind() != "P" && len(t.byKind["P"]) >= need {
		t.behind = true
		mine := *t.mine
		behind = &mine
	}
	if !t.decided && t.mine != nil {
		// The kind this node said, once enough replicas say it too.
		mk := t.mine.kind()
		if voters := t.byKind[mk]; len(voters) >= need {
			t.decided = true
			if slices.Min(voters) == q.self {
				ev := t.mine.Event
				answer = &ev
			}
		}
	}
	if t.decided && t.votes >= replicas {
		delete(q.tallies, k)
	}
	q.mu.Unlock()
	if answer != nil {
		q.publish(v.Stream, *answer)
	}
	if behind != nil && q.onBehind != nil {
		q.onBehind(v.Stream, *behind)
	}
}

// Expire forgets messages first counted more than ttl ago, telling onExpire
// of those this node stored that never reached a quorum.
func (q *Quorum) Expire(now time.Time) {
	var lost []Verdict
	q.mu.Lock()
	for k, t := range q.tallies {
		if now.Sub(t.first) < q.ttl {
			continue
		}
		if !t.decided && t.mine != nil {
			lost = append(lost, *t.mine)
		}
		delete(q.tallies, k)
	}
	q.mu.Unlock()
	if q.onExpire != nil {
		for _, v := range lost {
			q.onExpire(v.Stream, v)
		}
	}
}

// Pending is how many messages the quorum is counting.
func (q *Quorum) Pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.tallies)
}
