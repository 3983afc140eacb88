package replicate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
)

// Writing the centre: fragments go on its bus as a producer's do, and its
// store's verdicts come back on the acknowledgement subject (centre); or,
// where only HTTPS leaves the site, they go in PutMedia sessions over its
// HTTP API and the verdicts come back in the sessions' responses
// (httpCentre, centre_http.go).

// centreLink is the way fragments reach the centre and its verdicts come
// back.
type centreLink interface {
	// acks returns the centre's verdicts on the fragments of stream sent
	// under producer, until the returned func is called.
	acks(stream, producer string) (<-chan verdict, func(), error)
	// send starts one fragment on its way without waiting; the returned
	// sent says when the link has taken it. prev is the sequence it must
	// follow (0: none), attempt > 0 marks a re-send, producerMS is its
	// producer time. errNewSession: the fragment cannot go in this round
	// (it cannot follow the one before it on the same ordered way); the
	// round ends there and the next one sends it.
	send(stream, producer string, seq, prev uint64, attempt int, producerMS int64, data []byte) (*sent, error)
	// endRound says the round's last fragment of stream has been sent.
	endRound(stream string)
	close()
}

// verdict is what the centre says about the copy's fragments: one event
// of its store, or (PutMedia) that a session ended. A session's fragments
// from first to last that have no verdict by then will get none from it,
// and are sent again; err says why it ended early (nil: it ended as it
// should).
type verdict struct {
	wire.AckEvent
	ended       bool
	session     uint64 // the session that ended (sent.session)
	first, last uint64
	err         error
}

// errNewSession: the fragment cannot join the round's way to the centre.
var errNewSession = errors.New("the fragment cannot follow the round's last on its way to the centre")

// centre is the connection to the central server's NATS.
type centre struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	subj    wire.Subjects
	timeout time.Duration // of one publish

	mu   sync.Mutex
	lost chan struct{} // closed when the connection drops; replaced then
}

// dialCentre connects to the centre's NATS. It keeps reconnecting for as
// long as the replicator runs: an outage of days is an outage, not an end.
func dialCentre(ctx context.Context, url, prefix string, timeout time.Duration, opts []nats.Option) (*centre, error) {
	c := &centre{timeout: min(timeout, maxPublishTimeout), lost: make(chan struct{})}
	all := append([]nats.Option{
		nats.Name("sensorium replicate"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(true),
		// A publish whose connection dropped is given up at once rather
		// than at its timeout: its acknowledgement will not come, and the
		// fragment is sent again on the new connection.
		nats.DisconnectErrHandler(func(*nats.Conn, error) {
			c.mu.Lock()
			close(c.lost)
			c.lost = make(chan struct{})
			c.mu.Unlock()
		}),
	}, opts...)
	nc, err := nats.Connect(url, all...)
	if err != nil {
		return nil, fmt.Errorf("replicate: connect to the centre's NATS %s: %w", url, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(c.timeout), jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("replicate: centre JetStream: %w", err)
	}
	if prefix == "" {
		prefix = "sensorium"
	}
	c.nc, c.js, c.subj = nc, js, wire.NewSubjects(prefix)
	return c, nil
}

func (c *centre) close() { c.nc.Close() }

// errLinkDropped ends a publish whose connection to the centre dropped.
var errLinkDropped = errors.New("the connection to the centre's NATS dropped")

// DefaultInFlight is how many fragments of one stream may be on their way
// to the centre's bus at once (Config.InFlight; and at most
// maxInFlightBytes): over a link with a long round trip, one at a time
// would leave it idle most of the time.
const (
	DefaultInFlight  = 32
	maxInFlightBytes = 16 << 20
)

// maxPublishTimeout bounds one publish: the bus's acknowledgement of one
// fragment (at most the ack timeout). Past it the fragment is sent again
// (same dedupe key).
const maxPublishTimeout = 15 * time.Second

// send puts one fragment on the centre's bus under the replicator's dedupe
// key without waiting; the returned sent says when the bus has it. prev
// is the sequence it must follow (Sensorium-Producer-Prev; 0: none): with
// several fragments in flight, one lost with a dropped connection must not
// be overtaken by the next, which the NATS client may send on the new
// connection — the centre's store answers that one RETRY instead of storing
// it out of order. attempt > 0 gives the message a fresh Nats-Msg-Id, so
// that the bus takes a re-send again and the store answers it again
// (PERSISTED, Duplicate) instead of the bus swallowing it.
func (c *centre) send(stream, producer string, seq, prev uint64, attempt int, _ int64, data []byte) (*sent, error) {
	c.mu.Lock()
	lost := c.lost
	c.mu.Unlock()
	m := &nats.Msg{Subject: c.subj.Frag(stream), Data: data, Header: wire.FragmentHeader(stream, producer, seq, prev, attempt)}
	f, err := c.js.PublishMsgAsync(m)
	if err != nil {
		return nil, fmt.Errorf("publish fragment %d of %s to the centre: %w", seq, stream, err)
	}
	return &sent{f: f, lost: lost, seq: seq, stream: stream}, nil
}

// endRound: each fragment went on its own.
func (c *centre) endRound(string) {}

// sent is a fragment on its way to the centre.
type sent struct {
	f    jetstream.PubAckFuture // over NATS
	lost <-chan struct{}        // the connection it went on dropped
	// taken (over HTTP) gives nil once the session's body has taken the
	// fragment, or why it cannot; session is that session's number.
	taken   <-chan error
	session uint64
	seq     uint64
	stream  string
}

// wait returns once the bus has the fragment (and whether it had this
// message id already), or it was not taken: a timeout, an error from the
// bus, or the connection it went on dropped (its acknowledgement will not
// come; it is not waited for).
func (s *sent) wait(ctx context.Context) (bool, error) {
	if s.f == nil {
		select {
		case err := <-s.taken:
			if err != nil {
				return false, fmt.Errorf("put fragment %d of %s to the centre: %w", s.seq, s.stream, err)
			}
			return false, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	select {
	case ack := <-s.f.Ok():
		return ack.Duplicate, nil
	case err := <-s.f.Err():
		return false, fmt.Errorf("publish fragment %d of %s to the centre: %w", s.seq, s.stream, err)
	case <-s.lost:
		return false, fmt.Errorf("publish fragment %d of %s to the centre: %w", s.seq, s.stream, errLinkDropped)
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// acks subscribes to the centre's acknowledgements of stream and passes
// those of producer to the returned channel. Events are core NATS: while
// the link is down they are lost, and the sender's timeout re-sends.
func (c *centre) acks(stream, producer string) (<-chan verdict, func(), error) {
	ch := make(chan verdict, 4096)
	sub, err := c.nc.Subscribe(c.subj.Ack(stream), func(m *nats.Msg) {
		var ev wire.AckEvent
		if json.Unmarshal(m.Data, &ev) != nil || ev.ProducerID != producer {
			return
		}
		select {
		case ch <- verdict{AckEvent: ev}:
		default: // a full channel: the re-send after the timeout gets it again
		}
	})
	if err != nil {
		return nil, nil, fmt.Errorf("subscribe to the centre's acknowledgements of %s: %w", stream, err)
	}
	if err := c.nc.Flush(); err != nil && c.nc.IsConnected() {
		_ = sub.Unsubscribe()
		return nil, nil, fmt.Errorf("subscribe to the centre's acknowledgements of %s: %w", stream, err)
	}
	return ch, func() { _ = sub.Unsubscribe() }, nil
}
