package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Reads from anywhere: a node that does not hold a stream, or whose copy is
// not live, passes a read of it to a node whose copy is (proxying the HTTP
// request, or naming that node's Flight location). A copy that is filling or
// joining may lack fragments in the middle or at the end, and serving it
// would show a hole as if it were the stream's end.

// ErrNoLiveReplica: no replica of the stream can serve reads now.
var ErrNoLiveReplica = errors.New("cluster: no live replica")

// Route returns where a read of stream is served: local is true when this
// node serves it; otherwise to lists the nodes to pass it to, best first
// (the caller tries the next when one does not answer). A stream the
// catalog does not know is served locally (which answers that it does not
// exist).
func (n *Node) Route(ctx context.Context, stream string) (to []Member, local bool, err error) {
	e, ok, err := n.cat.Lookup(ctx, stream)
	if err != nil {
		return nil, false, err
	}
	if !ok {
		return nil, true, nil
	}
	if e.Holds(n.o.Self.Name) && n.rep.Live(e.Name, e.ARN) {
		return nil, true, nil
	}
	for _, name := range e.Replicas {
		if name == n.o.Self.Name {
			continue
		}
		m, ok := n.reg.Lookup(name)
		if ok && m.Alive && m.HTTP != "" && !slices.Contains(m.Unready, e.Name) {
			to = append(to, m)
		}
	}
	if len(to) == 0 {
		return nil, false, ErrNoLiveReplica
	}
	return to, false, nil
}

// Holders returns the nodes that serve reads of a stream now (this node
// first when it is one), for GetDataEndpoint and Flight locations.
func (n *Node) Holders(ctx context.Context, stream string) ([]Member, error) {
	e, ok, err := n.cat.Lookup(ctx, stream)
	if err != nil || !ok {
		return nil, err
	}
	var out []Member
	for _, name := range e.Replicas {
		m, ok := n.reg.Lookup(name)
		if !ok || !m.Alive || slices.Contains(m.Unready, e.Name) {
			continue
		}
		if name == n.o.Self.Name {
			if !n.rep.Live(e.Name, e.ARN) {
				continue
			}
			out = append([]Member{m}, out...)
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// Self is this node's name.
func (n *Node) Self() string { return n.o.Self.Name }

func itoa(i int) string    { return strconv.Itoa(i) }
func utoa(u uint64) string { return strconv.FormatUint(u, 10) }

// RouteAll is Route for a read of several streams (a multi-stream query):
// this node when it serves them all, else the nodes that serve them all.
func (n *Node) RouteAll(ctx context.Context, streams []string) (to []Member, local bool, err error) {
	if len(streams) == 1 {
		return n.Route(ctx, streams[0])
	}
	var common []Member
	for i, s := range streams {
		e, ok, err := n.cat.Lookup(ctx, s)
		if err != nil {
			return nil, false, err
		}
		if !ok {
			return nil, true, nil // answered here: no such stream
		}
		holders, err := n.Holders(ctx, s)
		if err != nil {
			return nil, false, err
		}
		if len(holders) == 0 {
			return nil, false, fmt.Errorf("%w of stream %s", ErrNoLiveReplica, e.Name)
		}
		if i == 0 {
			common = holders
			continue
		}
		common = slices.DeleteFunc(common, func(m Member) bool {
			return !slices.ContainsFunc(holders, func(h Member) bool { return h.Name == m.Name })
		})
	}
	if len(common) == 0 {
		return nil, false, fmt.Errorf("no node holds all of the streams %v: read them one at a time", streams)
	}
	if common[0].Name == n.o.Self.Name {
		return nil, true, nil
	}
	return common, false, nil
}
