package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultReplica is the durable consumer of a store replica that was not
// given a name (`serve --replica`).
const DefaultReplica = "store"

// A store replica is one process applying the bus to its own store through
// its own durable consumer. Two processes on one consumer would split the
// fragments between them (JetStream gives each message to whichever pulls
// it), and each store would silently miss what the other took. So a process
// claims its replica name before it consumes, and holds the claim while it
// runs:
//
//   - the claim is a key (the replica name) in the JetStream key-value bucket
//     <BUS>_REPLICAS (SENSORIUM_REPLICAS for the default prefix), whose value
//     names the holder (ReplicaHolder) and its liveness subject;
//   - the holder answers requests on its liveness subject,
//     <prefix>.replica.<name>.<claim id>, for as long as its connection lives;
//   - a process finding the key taken asks that subject: an answer means the
//     holder is alive and the new process refuses to start (ErrReplicaInUse);
//     no responder means the holder died without releasing (kill -9, power
//     loss) and the key is taken over with a compare-and-set on its revision,
//     so of two processes racing for a stale claim one wins.
//
// The liveness subject is subscribed before the key is written, so whoever
// reads the key can reach its holder. The holder watches its key: if another
// process takes it over (the holder was cut off from NATS long enough to look
// dead), Lost is closed and the holder must stop consuming.

// ErrReplicaInUse is returned by ClaimReplica when a live process holds the
// replica name.
var ErrReplicaInUse = errors.New("ingest: replica in use")

// ReplicaHolder is the value of a claim: who holds the replica.
type ReplicaHolder struct {
	ID      string    `json:"id"`      // random, per claim
	Subject string    `json:"subject"` // answers while the holder lives
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Since   time.Time `json:"since"`
}

func (h ReplicaHolder) String() string {
	return fmt.Sprintf("process %d on %s, since %s", h.PID, h.Host, h.Since.Format(time.RFC3339))
}

var replicaName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidateReplica checks a replica name: it is a JetStream durable consumer
// name, a key-value key and a subject token, so 1–64 of [A-Za-z0-9_-].
func ValidateReplica(name string) error {
	if !replicaName.MatchString(name) {
		return fmt.Errorf("replica name %q must be 1-64 characters of A-Z a-z 0-9 _ -", name)
	}
	return nil
}

// ReplicaBucket is the key-value bucket of the replica claims of cfg's bus.
func ReplicaBucket(cfg BusConfig) string {
	cfg.setDefaults()
	return strings.TrimSuffix(cfg.Subjects.BusStream(), "_FRAG") + "_REPLICAS"
}

// ReplicaClaim is a held claim on a replica name.
type ReplicaClaim struct {
	Name   string
	Holder ReplicaHolder

	kv   jetstream.KeyValue
	sub  *nats.Subscription
	log  *slog.Logger
	rev  uint64 // of our key; set before the watch starts, then read only
	lost chan struct{}

	stopWatch context.CancelFunc
	watchDone chan struct{}
	release   sync.Once
	released  error
}

// livenessProbes is how often a silent holder is asked before it is taken
// for dead: in a NATS cluster a new subscription reaches the other servers a
// moment after it is made.
const (
	livenessProbes   = 3
	livenessInterval = 100 * time.Millisecond
	livenessTimeout  = 2 * time.Second
	claimTimeout     = 30 * time.Second // the whole claim, when NATS is slow or away
)

// ClaimReplica claims the replica name cfg.Consumer on the bus of cfg, or
// returns an error wrapping ErrReplicaInUse that names the live holder.
// Release gives the claim up.
func ClaimReplica(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, cfg BusConfig, log *slog.Logger) (*ReplicaClaim, error) {
	cfg.setDefaults()
	if err := ValidateReplica(cfg.Consumer); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithTimeout(ctx, claimTimeout)
	defer cancel()
	kv, err := replicaBucket(ctx, js, cfg)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	c := &ReplicaClaim{Name: cfg.Consumer, kv: kv, log: log, lost: make(chan struct{})}
	c.Holder = ReplicaHolder{
		ID: hex.EncodeToString(id), Host: host, PID: os.Getpid(), Since: time.Now().UTC().Truncate(time.Second),
	}
	c.Holder.Subject = cfg.Subjects.Prefix + ".replica." + cfg.Consumer + "." + c.Holder.ID
	value, _ := json.Marshal(c.Holder)
	// Answer before the key names us, so that whoever reads it can reach us.
	if c.sub, err = nc.Subscribe(c.Holder.Subject, func(m *nats.Msg) { _ = m.Respond(value) }); err != nil {
		return nil, fmt.Errorf("ingest: replica %s: subscribe %s: %w", c.Name, c.Holder.Subject, err)
	}
	if err := nc.FlushWithContext(ctx); err != nil {
		_ = c.sub.Unsubscribe()
		return nil, fmt.Errorf("ingest: replica %s: %w", c.Name, err)
	}
	if err := c.acquire(ctx, nc, value); err != nil {
		_ = c.sub.Unsubscribe()
		return nil, err
	}
	if err := c.watch(); err != nil {
		_ = c.Release(context.Background())
		return nil, err
	}
	return c, nil
}

func replicaBucket(ctx context.Context, js jetstream.JetStream, cfg BusConfig) (jetstream.KeyValue, error) {
	name := ReplicaBucket(cfg)
	kv, err := js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: name, Description: "Sensorium: which process holds each store replica's bus consumer",
			History: 1, Storage: cfg.Storage, Replicas: cfg.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, name) // created meanwhile by another replica
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ingest: replica claims bucket %s: %w", name, err)
	}
	return kv, nil
}

// acquire writes the claim: creates the key, or takes over the key of a
// holder that no longer answers.
func (c *ReplicaClaim) acquire(ctx context.Context, nc *nats.Conn, value []byte) error {
	for attempt := 0; attempt < 5; attempt++ {
		rev, err := c.kv.Create(ctx, c.Name, value)
		if err == nil {
			c.rev = rev
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("ingest: replica %s: claim: %w", c.Name, err)
		}
		e, err := c.kv.Get(ctx, c.Name)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // released meanwhile
		}
		if err != nil {
			return fmt.Errorf("ingest: replica %s: read claim: %w", c.Name, err)
		}
		var other ReplicaHolder
		if json.Unmarshal(e.Value(), &other) == nil && other.Subject != "" {
			alive, err := probe(ctx, nc, other.Subject)
			if err != nil {
				return fmt.Errorf("ingest: replica %s: ask holder: %w", c.Name, err)
			}
			if alive {
				return fmt.Errorf("%w: replica %q is already consuming the bus (%s); "+
					"two processes on one replica would split the fragments between their stores: "+
					"give this one another --replica (or another --prefix)", ErrReplicaInUse, c.Name, other)
			}
		}
		rev, err = c.kv.Update(ctx, c.Name, value, e.Revision())
		if err == nil {
			c.rev = rev
			c.log.Warn("ingest: took over the claim of a replica whose holder no longer answers (it stopped without releasing it)",
				"replica", c.Name, "previous", string(e.Value()))
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) { // a lost compare-and-set reports as "key exists"
			return fmt.Errorf("ingest: replica %s: take over claim: %w", c.Name, err)
		}
	}
	return fmt.Errorf("%w: replica %q: the claim kept changing hands; is another process starting with the same --replica?", ErrReplicaInUse, c.Name)
}

// probe reports whether anything answers on subject.
func probe(ctx context.Context, nc *nats.Conn, subject string) (bool, error) {
	for i := 0; i < livenessProbes; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(livenessInterval):
			}
		}
		_, err := nc.Request(subject, nil, livenessTimeout)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, nats.ErrTimeout):
			return true, nil // something is subscribed but slow: alive, not ours to take
		case !errors.Is(err, nats.ErrNoResponders):
			return false, err
		}
	}
	return false, nil
}

// watch closes c.lost when the key stops being ours.
func (c *ReplicaClaim) watch() error {
	ctx, cancel := context.WithCancel(context.Background())
	w, err := c.kv.Watch(ctx, c.Name, jetstream.UpdatesOnly())
	if err != nil {
		cancel()
		return fmt.Errorf("ingest: replica %s: watch claim: %w", c.Name, err)
	}
	c.stopWatch, c.watchDone = cancel, make(chan struct{})
	go func() {
		defer close(c.watchDone)
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil || e.Revision() <= c.rev {
					continue
				}
				var h ReplicaHolder
				if e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &h) == nil && h.ID == c.Holder.ID {
					continue
				}
				c.log.Error("ingest: this process lost its claim on the replica to another process; it stops consuming the bus",
					"replica", c.Name, "now", string(e.Value()), "operation", e.Operation().String())
				close(c.lost)
				return
			}
		}
	}()
	return nil
}

// Lost is closed when another process has taken the claim over (or it was
// deleted by hand): this process must stop consuming with the replica's
// consumer, which may now be someone else's.
func (c *ReplicaClaim) Lost() <-chan struct{} { return c.lost }

// Release gives the claim up (if it is still ours) and stops answering on
// the liveness subject. Later calls return the first call's error.
func (c *ReplicaClaim) Release(ctx context.Context) error {
	c.release.Do(func() { c.released = c.releaseOnce(ctx) })
	return c.released
}

func (c *ReplicaClaim) releaseOnce(ctx context.Context) error {
	if c.stopWatch != nil {
		c.stopWatch()
		<-c.watchDone
	}
	var errs []error
	select {
	case <-c.lost:
	default:
		// Only our own revision: a key taken over meanwhile is not ours to delete.
		if err := c.kv.Delete(ctx, c.Name, jetstream.LastRevision(c.rev)); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			errs = append(errs, fmt.Errorf("ingest: replica %s: release claim: %w", c.Name, err))
		}
	}
	if err := c.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
