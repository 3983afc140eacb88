package cluster

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Status is what `GET /v1/cluster` and `sensorium cluster status` show: the
// nodes, the bus shards and how far each node's consumer of them is, and
// each stream's replicas with their phase and lag (docs/CLUSTER.md,
// "Status").
type Status struct {
	Node         string         `json:"node"` // the node that answered
	Shards       int            `json:"shards"`
	BusReplicas  int            `json:"busReplicas"`
	AckReplicas  string         `json:"ackReplicas"` // "majority" or a count
	ReplaceAfter string         `json:"replaceAfter"`
	Nodes        []NodeStatus   `json:"nodes"`
	Bus          []ShardStatus  `json:"bus"`
	Streams      []StreamStatus `json:"streams"`
}

// NodeStatus is one node.
type NodeStatus struct {
	Name       string  `json:"name"`
	Alive      bool    `json:"alive"`
	SilentSec  float64 `json:"silentSeconds,omitempty"`
	HTTP       string  `json:"http"`
	Flight     string  `json:"flight,omitempty"`
	NATS       string  `json:"nats"`
	Streams    int     `json:"streams"`           // placed on it
	Unready    int     `json:"unready,omitempty"` // of those, not live there
	Responded  bool    `json:"responded"`         // answered the status request
	Coordinate bool    `json:"coordinator,omitempty"`
}

// ShardStatus is one bus shard.
type ShardStatus struct {
	Name      string           `json:"name"`
	Leader    string           `json:"leader"`
	Replicas  []string         `json:"replicas"`
	Messages  uint64           `json:"messages"` // held, waiting for a consumer
	LastSeq   uint64           `json:"lastSeq"`
	Consumers []ConsumerStatus `json:"consumers"`
}

// ConsumerStatus is one node's consumer of a shard: how many messages it
// has not yet applied.
type ConsumerStatus struct {
	Node       string `json:"node"`
	Pending    uint64 `json:"pending"`
	AckPending int    `json:"ackPending"`
}

// StreamStatus is one stream and its replicas.
type StreamStatus struct {
	Name     string          `json:"name"`
	Shard    int             `json:"shard"`
	Replicas []ReplicaStatus `json:"replicas"`
}

// ReplicaStatus is one node's copy of a stream.
type ReplicaStatus struct {
	Node         string `json:"node"`
	Phase        string `json:"phase"` // live, joining, filling, or unknown (the node did not answer)
	LastFragment string `json:"lastFragment,omitempty"`
	// LagMs is how far its newest fragment's server time is behind the
	// newest of any replica.
	LagMs int64  `json:"lagMs"`
	Error string `json:"error,omitempty"`
}

// localReport is a node's answer to a status request.
type localReport struct {
	Streams map[string]localStream `json:"streams"`
}

type localStream struct {
	Phase      string `json:"phase"`
	Last       uint64 `json:"last"`
	LastServer int64  `json:"lastServer"` // ns
	Error      string `json:"error,omitempty"`
}

func (n *Node) statusSubject(node string) string { return n.subs.Prefix + ".cluster.status." + node }

func (n *Node) onStatusRequest(m *nats.Msg) {
	rep := localReport{Streams: map[string]localStream{}}
	for _, name := range n.rep.Local() {
		ls := localStream{Phase: n.rep.Phase(name), Error: n.rep.LastError(name)}
		if f, ok, err := n.o.Store.Durable(name); err == nil && ok {
			ls.Last, ls.LastServer = f.Number, f.ServerTime
		}
		rep.Streams[name] = ls
	}
	b, _ := json.Marshal(rep)
	_ = m.Respond(b)
}

// Status gathers the cluster's status from every alive node.
func (n *Node) Status(ctx context.Context) Status {
	st := Status{Node: n.o.Self.Name, Shards: max(1, n.subs.Shards), BusReplicas: max(1, n.o.Bus.Replicas),
		AckReplicas: "majority", ReplaceAfter: n.o.ReplaceAfter.String()}
	if n.o.AckReplicas > 0 {
		st.AckReplicas = itoa(n.o.AckReplicas)
	}
	members := n.reg.Nodes()
	entries := n.cat.Entries()
	placed := map[string]int{}
	for _, e := range entries {
		for _, r := range e.Replicas {
			placed[r]++
		}
	}
	reports := map[string]localReport{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range members {
		if !m.Alive {
			continue
		}
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			msg, err := n.o.NC.RequestWithContext(rctx, n.statusSubject(name), nil)
			if err != nil {
				return
			}
			var r localReport
			if json.Unmarshal(msg.Data, &r) == nil {
				mu.Lock()
				reports[name] = r
				mu.Unlock()
			}
		}(m.Name)
	}
	wg.Wait()
	coordinator := ""
	for _, m := range members {
		if m.Alive {
			coordinator = m.Name
			break
		}
	}
	for _, m := range members {
		ns := NodeStatus{Name: m.Name, Alive: m.Alive, HTTP: m.HTTP, Flight: m.Flight, NATS: m.NATS, Streams: placed[m.Name],
			Unready: len(m.Unready), Coordinate: m.Name == coordinator}
		if s, _ := n.reg.SilentFor(m.Name); s > 0 {
			ns.SilentSec = s.Seconds()
		}
		_, ns.Responded = reports[m.Name]
		st.Nodes = append(st.Nodes, ns)
	}
	// Each JetStream call has a short deadline: during a leader election
	// (a node just died) they hang, and the status is wanted most then.
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, time.Second) }
	for _, sh := range n.shards {
		ictx, cancel := short()
		info, err := sh.Stream.Info(ictx)
		cancel()
		if err != nil {
			st.Bus = append(st.Bus, ShardStatus{Name: sh.Stream.CachedInfo().Config.Name, Leader: "(no answer: electing a leader?)"})
			continue
		}
		ss := ShardStatus{Name: info.Config.Name, Messages: info.State.Msgs, LastSeq: info.State.LastSeq}
		if info.Cluster != nil {
			ss.Leader = info.Cluster.Leader
			ss.Replicas = append(ss.Replicas, info.Cluster.Leader)
			for _, p := range info.Cluster.Replicas {
				ss.Replicas = append(ss.Replicas, p.Name)
			}
			slices.Sort(ss.Replicas)
		}
		for _, m := range members {
			cctx, cancel := short()
			c, err := sh.Stream.Consumer(cctx, m.Name)
			var ci *jetstream.ConsumerInfo
			if err == nil {
				ci, err = c.Info(cctx)
			}
			cancel()
			if err != nil {
				continue
			}
			ss.Consumers = append(ss.Consumers, ConsumerStatus{Node: m.Name, Pending: ci.NumPending, AckPending: ci.NumAckPending})
		}
		st.Bus = append(st.Bus, ss)
	}
	for _, e := range entries {
		ss := StreamStatus{Name: e.Name, Shard: n.subs.ShardOf(e.Name)}
		var newest int64
		for _, r := range e.Replicas {
			if ls, ok := reports[r].Streams[e.Name]; ok && ls.LastServer > newest {
				newest = ls.LastServer
			}
		}
		for _, r := range e.Replicas {
			rs := ReplicaStatus{Node: r, Phase: "unknown"}
			if rep, ok := reports[r]; ok {
				ls, ok := rep.Streams[e.Name]
				if !ok {
					rs.Phase = "absent"
				} else {
					rs.Phase, rs.Error = ls.Phase, ls.Error
					if ls.Last > 0 {
						rs.LastFragment = utoa(ls.Last)
					}
					if newest > 0 {
						rs.LagMs = (newest - ls.LastServer) / int64(time.Millisecond)
					}
				}
			}
			ss.Replicas = append(ss.Replicas, rs)
		}
		st.Streams = append(st.Streams, ss)
	}
	return st
}
