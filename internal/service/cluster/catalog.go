package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/textproto"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/store"
)

// The cluster's catalog is a replicated JetStream key-value bucket
// (<BUS>_CATALOG): one key per stream, whose value is the stream's catalog
// entry and the nodes that store it (Entry). Any node takes any control-plane
// call; the bucket's revision of a key is its compare-and-set token, so two
// nodes updating one stream at once cannot both win: the loser re-reads, and
// fails with VersionMismatchException when it gave a CurrentVersion (or
// applies its change on top when it did not). Each node keeps the bucket in
// memory through a watch (reads are local), and answers a miss with a read
// of the bucket itself, so a stream created on one node is known at once on
// every node that is asked about it.
//
// Each node's store holds a local copy of the entries placed on it
// (Materialize); the catalog file in its data folder is that copy, not the
// truth.

// Entry is a stream's entry in the cluster catalog.
type Entry struct {
	store.StreamInfo
	// Replicas are the nodes that store the stream, in placement order.
	Replicas []string
}

// entryJSON is the bucket's value (docs/CLUSTER.md, "Catalog").
type entryJSON struct {
	Format         int               `json:"format"`
	Name           string            `json:"name"`
	ARN            string            `json:"arn"`
	DeviceName     string            `json:"deviceName,omitempty"`
	MediaType      string            `json:"mediaType,omitempty"`
	KMSKeyID       string            `json:"kmsKeyId,omitempty"`
	Version        string            `json:"version"`
	Status         string            `json:"status"`
	CreationTime   time.Time         `json:"creationTime"`
	RetentionHours int               `json:"retentionHours"`
	Tags           map[string]string `json:"tags,omitempty"`
	Replicas       []string          `json:"replicas"`
}

const entryFormat = 1

func (e *Entry) marshal() ([]byte, error) {
	return json.Marshal(entryJSON{
		Format: entryFormat, Name: e.Name, ARN: e.ARN, DeviceName: e.DeviceName, MediaType: e.MediaType,
		KMSKeyID: e.KMSKeyID, Version: e.Version, Status: e.Status, CreationTime: e.CreationTime,
		RetentionHours: e.RetentionHours, Tags: e.Tags, Replicas: e.Replicas,
	})
}

func unmarshalEntry(b []byte) (Entry, error) {
	var j entryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return Entry{}, err
	}
	if j.Format != entryFormat {
		return Entry{}, fmt.Errorf("catalog entry format %d; this build reads %d", j.Format, entryFormat)
	}
	if j.Tags == nil {
		j.Tags = map[string]string{}
	}
	return Entry{StreamInfo: store.StreamInfo{
		Name: j.Name, ARN: j.ARN, DeviceName: j.DeviceName, MediaType: j.MediaType, KMSKeyID: j.KMSKeyID,
		Version: j.Version, Status: j.Status, CreationTime: j.CreationTime, RetentionHours: j.RetentionHours, Tags: j.Tags,
	}, Replicas: j.Replicas}, nil
}

func (e Entry) clone() Entry {
	e.StreamInfo = e.StreamInfo.Clone()
	e.Replicas = slices.Clone(e.Replicas)
	return e
}

// Holds reports whether node stores the stream.
func (e *Entry) Holds(node string) bool { return slices.Contains(e.Replicas, node) }

// catalogKey is a stream's key in the bucket. Key tokens are separated by
// '.', which stream names may hold; '=' may be in a key and never in a
// stream name, so the mapping is reversible.
func catalogKey(name string) string { return strings.ReplaceAll(name, ".", "=") }

func streamOfKey(key string) string { return strings.ReplaceAll(key, "=", ".") }

// CatalogOptions configure a Catalog.
type CatalogOptions struct {
	KV jetstream.KeyValue
	// NC reads entries from the bucket's stream leader (get).
	NC       *nats.Conn
	Registry *Registry
	Keyring  *store.Keyring
	Region   string
	Account  string
	// Replicas is how many nodes store a new stream; 0: min(3, registered nodes).
	Replicas   int
	MaxStreams int // default store.DefaultStreamsLimit
	Log        *slog.Logger
	Now        func() time.Time
	// OnChange is called, from one goroutine and in bucket order, for every
	// change of an entry: old is nil for a new stream, new is nil for a
	// deleted one; initial is set for the entries read at open. The node's
	// replicator keeps its store in step with it.
	OnChange func(old, new *Entry, initial bool)
	// Marker publishes a new stream's creation marker on the bus, after its
	// entry is written and before CreateStream returns (replica.go says why).
	Marker func(context.Context, store.StreamInfo) error
}

// Catalog is the cluster's catalog as one node sees it.
type Catalog struct {
	o CatalogOptions

	mu      sync.RWMutex
	entries map[string]Entry // by stream name
	loads   map[string]int   // streams per node
	ready   chan struct{}    // closed once the watch has delivered every existing key

	stopWatch context.CancelFunc
}

// Close ends the catalog's watch.
func (c *Catalog) Close() {
	if c.stopWatch != nil {
		c.stopWatch()
	}
}

// OpenCatalog starts watching the bucket and returns once every existing
// entry has been read (and passed to OnChange).
func OpenCatalog(ctx context.Context, o CatalogOptions) (*Catalog, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = store.DefaultStreamsLimit
	}
	c := &Catalog{o: o, entries: map[string]Entry{}, loads: map[string]int{}, ready: make(chan struct{})}
	wctx, stop := context.WithCancel(context.Background())
	w, err := o.KV.WatchAll(wctx, jetstream.IncludeHistory()) // history 1: the latest of each key
	if err != nil {
		stop()
		return nil, fmt.Errorf("cluster: watch catalog: %w", err)
	}
	c.stopWatch = stop
	go c.follow(w)
	select {
	case <-c.ready:
		return c, nil
	case <-ctx.Done():
		stop()
		return nil, fmt.Errorf("cluster: read catalog: %w", ctx.Err())
	}
}

func (c *Catalog) follow(w jetstream.KeyWatcher) {
	defer func() { _ = w.Stop() }()
	initial := true
	for e := range w.Updates() {
		if e == nil {
			if initial {
				initial = false
				close(c.ready)
			}
			continue
		}
		c.apply(e, initial)
	}
}

// apply records one change of the bucket and tells OnChange.
func (c *Catalog) apply(e jetstream.KeyValueEntry, initial bool) {
	name := streamOfKey(e.Key())
	var next *Entry
	if e.Operation() == jetstream.KeyValuePut {
		en, err := unmarshalEntry(e.Value())
		if err != nil || en.Name != name {
			c.o.Log.Error("cluster: ignoring a malformed catalog entry", "key", e.Key(), "revision", e.Revision(), "err", err)
			return
		}
		next = &en
	}
	c.mu.Lock()
	var old *Entry
	if prev, ok := c.entries[name]; ok {
		old = &prev
		for _, n := range prev.Replicas {
			c.loads[n]--
		}
	}
	if next != nil {
		c.entries[name] = next.clone()
		for _, n := range next.Replicas {
			c.loads[n]++
		}
	} else {
		delete(c.entries, name)
	}
	c.mu.Unlock()
	if c.o.OnChange != nil && (old != nil || next != nil) {
		c.o.OnChange(old, next, initial)
	}
}

// cached returns the entry of name from memory.
func (c *Catalog) cached(name string) (Entry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[name]
	if !ok {
		return Entry{}, false
	}
	return e.clone(), true
}

// Lookup returns a stream's entry: from memory, or from the bucket when
// memory does not have it (yet).
func (c *Catalog) Lookup(ctx context.Context, name string) (Entry, bool, error) {
	if e, ok := c.cached(name); ok {
		return e, true, nil
	}
	e, _, err := c.get(ctx, name)
	if errors.Is(err, store.ErrStreamNotFound) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	return e, true, nil
}

// get reads an entry and its revision from the bucket's stream leader, so
// that a call on one node sees what a call on another has just written (a
// key-value Get may be answered by a follower that lags: direct get).
func (c *Catalog) get(ctx context.Context, name string) (Entry, uint64, error) {
	var value []byte
	var rev uint64
	var err error
	// A leader election of the bucket's stream (a node came back) makes
	// reads fail for a moment: wait it out rather than fail the call.
	for attempt := 0; ; attempt++ {
		value, rev, err = leaderGet(ctx, c.o.NC, c.o.KV.Bucket(), catalogKey(name))
		if err == nil || !transient(err) || attempt >= 25 || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Entry{}, 0, store.Refuse(store.ErrStreamNotFound, "stream %s not found", name)
	}
	if err != nil {
		return Entry{}, 0, unavailable("read catalog entry "+name, err)
	}
	e, err := unmarshalEntry(value)
	if err != nil {
		return Entry{}, 0, fmt.Errorf("cluster: catalog entry %s: %w", name, err)
	}
	return e, rev, nil
}

// leaderGet reads the latest value of a key from the bucket stream's leader
// (JetStream's STREAM.MSG.GET API, which only the leader answers). A key
// deleted or purged is ErrKeyNotFound.
func leaderGet(ctx context.Context, nc *nats.Conn, bucket, key string) ([]byte, uint64, error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + bucket + "." + key})
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+bucket, req)
	if err != nil {
		return nil, 0, err
	}
	var resp struct {
		Message *struct {
			Seq  uint64 `json:"seq"`
			Hdrs []byte `json:"hdrs"`
			Data []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return nil, 0, fmt.Errorf("cluster: bucket %s: bad answer: %w", bucket, err)
	}
	if resp.Error != nil {
		if resp.Error.Code == 404 {
			return nil, 0, jetstream.ErrKeyNotFound
		}
		if resp.Error.Code == 503 || resp.Error.ErrCode == jsTemporarilyUnavailable {
			return nil, 0, fmt.Errorf("%w: bucket %s: %s", errLeaderless, bucket, resp.Error.Description)
		}
		return nil, 0, fmt.Errorf("cluster: bucket %s: %s (%d)", bucket, resp.Error.Description, resp.Error.ErrCode)
	}
	if resp.Message == nil {
		return nil, 0, jetstream.ErrKeyNotFound
	}
	if op := headerValue(resp.Message.Hdrs, "KV-Operation"); op == "DEL" || op == "PURGE" {
		return nil, 0, jetstream.ErrKeyNotFound
	}
	return resp.Message.Data, resp.Message.Seq, nil
}

// headerValue reads one header of a NATS message's raw header block
// ("NATS/1.0" status line, then MIME headers).
func headerValue(raw []byte, name string) string {
	i := bytes.Index(raw, []byte("\r\n"))
	if i < 0 {
		return ""
	}
	h, _ := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw[i+2:]))).ReadMIMEHeader()
	return h.Get(name)
}

// resolve turns a reference into an entry and its revision, read from the
// bucket (so that an update's compare-and-set starts from the latest).
func (c *Catalog) resolve(ctx context.Context, ref store.StreamRef) (Entry, uint64, error) {
	name, err := store.ResolveName(ref)
	if err != nil {
		return Entry{}, 0, err
	}
	e, rev, err := c.get(ctx, name)
	if err != nil {
		return Entry{}, 0, err
	}
	if ref.ARN != "" && e.ARN != ref.ARN {
		return Entry{}, 0, store.Refuse(store.ErrStreamNotFound, "stream %s not found", ref.ARN)
	}
	return e, rev, nil
}

// candidates are the nodes a stream may be placed on, with their loads:
// the nodes alive now, or when fewer than want are alive, the others too
// (they fill the stream when they come back).
func (c *Catalog) candidates(want int) []NodeLoad {
	nodes := c.o.Registry.Nodes()
	c.mu.RLock()
	defer c.mu.RUnlock()
	var alive, down []NodeLoad
	for _, n := range nodes {
		nl := NodeLoad{Node: n.Name, Streams: c.loads[n.Name]}
		if n.Alive {
			alive = append(alive, nl)
		} else {
			down = append(down, nl)
		}
	}
	if len(alive) >= want {
		return alive
	}
	return append(alive, down...)
}

// replicasFor is how many nodes store a new stream.
func (c *Catalog) replicasFor() int {
	if c.o.Replicas > 0 {
		return c.o.Replicas
	}
	return min(3, max(1, len(c.o.Registry.Nodes())))
}

// CreateStream adds a stream, placed on the least-loaded nodes.
func (c *Catalog) CreateStream(ctx context.Context, in store.CreateStreamInput) (store.StreamInfo, error) {
	info, err := store.NewStreamInfo(in, c.o.Now(), c.o.Region, c.o.Account, c.o.Keyring)
	if err != nil {
		return store.StreamInfo{}, err
	}
	c.mu.RLock()
	n := len(c.entries)
	c.mu.RUnlock()
	if n >= c.o.MaxStreams {
		return store.StreamInfo{}, store.Refuse(store.ErrTooManyStreams, "this cluster holds at most %d streams", c.o.MaxStreams)
	}
	r := c.replicasFor()
	e := Entry{StreamInfo: info, Replicas: Place(info.Name, r, c.candidates(r))}
	if len(e.Replicas) == 0 {
		return store.StreamInfo{}, fmt.Errorf("cluster: no node to place stream %s on", info.Name)
	}
	b, err := e.marshal()
	if err != nil {
		return store.StreamInfo{}, err
	}
	// A leader election of the bucket's stream (a node frozen or gone) makes
	// writes fail for a few seconds: ride it out here rather than hand every
	// client a 503. A write whose answer was lost may have been applied, so
	// "exists" after a transient failure is checked against our own ARN.
	lostAnswer := false
	err = patiently(ctx, func() error {
		_, err := c.o.KV.Create(ctx, catalogKey(info.Name), b)
		if errors.Is(err, jetstream.ErrKeyExists) && lostAnswer {
			if cur, _, gerr := c.get(ctx, info.Name); gerr == nil && cur.ARN == info.ARN {
				return nil
			}
		}
		lostAnswer = lostAnswer || transient(err)
		return err
	})
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return store.StreamInfo{}, store.Refuse(store.ErrStreamExists, "stream %s already exists", info.Name)
		}
		return store.StreamInfo{}, unavailable("create stream "+info.Name, err)
	}
	if c.o.Marker != nil {
		// A second marker of the same incarnation changes nothing on a
		// replica, so a publish whose answer was lost is simply sent again.
		if err := patiently(ctx, func() error { return c.o.Marker(ctx, info) }); err != nil {
			// Without its marker the replicas would not know the stream
			// starts empty: take the entry back, so the call can be retried.
			if derr := c.o.KV.Delete(context.WithoutCancel(ctx), catalogKey(info.Name)); derr != nil {
				c.o.Log.Error("cluster: could not take back the entry of a stream whose creation failed", "stream", info.Name, "err", derr)
			}
			return store.StreamInfo{}, unavailable("create stream "+info.Name+": the bus did not take its creation marker", err)
		}
	}
	c.o.Log.Info("cluster: stream created", "stream", info.Name, "replicas", strings.Join(e.Replicas, ","), "retention_hours", info.RetentionHours)
	return info.Clone(), nil
}

// DescribeStream returns a stream's catalog entry.
func (c *Catalog) DescribeStream(ctx context.Context, ref store.StreamRef) (store.StreamInfo, error) {
	// From the bucket, not memory: a client that updated a stream on one
	// node and describes it on another must see its own write.
	e, _, err := c.resolve(ctx, ref)
	if err != nil {
		return store.StreamInfo{}, err
	}
	return e.StreamInfo, nil
}

// ListStreams lists streams by name, as store.Store.ListStreams does.
func (c *Catalog) ListStreams(_ context.Context, prefix string, limit int, nextToken string) ([]store.StreamInfo, string, error) {
	after, err := store.ParseListToken(limit, nextToken)
	if err != nil {
		return nil, "", err
	}
	c.mu.RLock()
	names := make([]string, 0, len(c.entries))
	for n := range c.entries {
		if strings.HasPrefix(n, prefix) && n > after {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) > limit+1 {
		names = names[:limit+1]
	}
	out := make([]store.StreamInfo, 0, len(names))
	for _, n := range names {
		out = append(out, c.entries[n].StreamInfo.Clone())
	}
	c.mu.RUnlock()
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = store.ListToken(out[limit-1].Name)
	}
	return out, next, nil
}

// update applies edit to a stream's entry with compare-and-set on the
// bucket revision, re-reading and re-applying when another node changed the
// entry meanwhile. A stale currentVersion is a VersionMismatch.
//
// placement says that edit changes only where the stream's copies are: the
// version is the user's and changes with what DescribeStream shows, not with
// where the copies are (a re-placement that bumped it made a user's
// UpdateDataRetention with the CurrentVersion just read fail with
// VersionMismatchException for nothing).
func (c *Catalog) update(ctx context.Context, ref store.StreamRef, currentVersion string, edit func(*Entry) error, placement bool) error {
	written := "" // the version of a write whose answer was lost
	for attempt := 0; ; attempt++ {
		e, rev, err := c.resolve(ctx, ref)
		if err != nil {
			return err
		}
		if written != "" && e.Version == written {
			return nil // the write whose answer timed out was applied
		}
		if currentVersion != "" && currentVersion != e.Version {
			return store.Refuse(store.ErrVersionMismatch, "stream %s is at version %s, not %s", e.Name, e.Version, currentVersion)
		}
		next := e.clone()
		if err := edit(&next); err != nil {
			return err
		}
		if placement && !reflect.DeepEqual(next.StreamInfo, e.StreamInfo) {
			return fmt.Errorf("cluster: a placement edit of stream %s changed its description", e.Name)
		}
		if !placement {
			next.Version = store.NewVersion()
		}
		b, err := next.marshal()
		if err != nil {
			return err
		}
		_, err = c.o.KV.Update(ctx, catalogKey(e.Name), b, rev)
		if err == nil {
			return nil
		}
		// A lost compare-and-set: someone else changed the entry since we
		// read it; a timeout may have applied it or not: read again either way.
		if (!isWrongRevision(err) && !transient(err)) || attempt >= 20 {
			return unavailable("update stream "+e.Name, err)
		}
		if transient(err) {
			if !placement {
				written = next.Version
			} // else the edit itself sees a write that was applied (SetReplicas: errReplicasChanged)
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// jsTemporarilyUnavailable is JetStream's "system temporarily unavailable"
// (JSClusterNotAvailErr): no leader for the request just now.
const jsTemporarilyUnavailable = 10008

// errLeaderless: the bucket's stream has no leader for a moment.
var errLeaderless = errors.New("cluster: no leader")

// ErrUnavailable: the catalog's bucket did not answer (no JetStream quorum,
// or a leader election in progress); the call may be retried.
var ErrUnavailable = errors.New("cluster: the catalog is unavailable")

// transient tells a failure that a retry may not meet (a timeout, no
// responders during a leader election) from a refusal.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jsTemporarilyUnavailable {
		return true
	}
	return errors.Is(err, errLeaderless) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrConnectionReconnecting)
}

// writePatience bounds how long a catalog write waits out transient
// failures: longer than a JetStream leader election (4–9 s seen here), short
// enough that a client with a 30 s timeout still hears a 503 and retries.
const writePatience = 12 * time.Second

// patiently runs write until it succeeds, fails for good, or transient
// failures have lasted writePatience (or ctx ends).
func patiently(ctx context.Context, write func() error) error {
	deadline := time.Now().Add(writePatience)
	for {
		err := write()
		if err == nil || !transient(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// unavailable wraps a transient failure so that the API answers it as one
// the client retries (503), not an internal error.
func unavailable(what string, err error) error {
	if transient(err) {
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
	}
	return fmt.Errorf("cluster: %s: %w", what, err)
}

// isWrongRevision tells a lost compare-and-set from other failures.
func isWrongRevision(err error) bool {
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

func infoEdit(edit store.Edit) func(*Entry) error {
	return func(e *Entry) error { return edit(&e.StreamInfo) }
}

// UpdateStream changes a stream's device name and media type.
func (c *Catalog) UpdateStream(ctx context.Context, ref store.StreamRef, currentVersion string, deviceName, mediaType *string) error {
	edit, err := store.EditStream(currentVersion, deviceName, mediaType)
	if err != nil {
		return err
	}
	return c.update(ctx, ref, currentVersion, infoEdit(edit), false)
}

// UpdateDataRetention raises or lowers a stream's retention.
func (c *Catalog) UpdateDataRetention(ctx context.Context, ref store.StreamRef, currentVersion string, increase bool, changeHours int) error {
	edit, err := store.EditRetention(currentVersion, increase, changeHours)
	if err != nil {
		return err
	}
	return c.update(ctx, ref, currentVersion, infoEdit(edit), false)
}

// TagStream adds or replaces tags.
func (c *Catalog) TagStream(ctx context.Context, ref store.StreamRef, tags map[string]string) error {
	edit, err := store.EditTags(tags)
	if err != nil {
		return err
	}
	return c.update(ctx, ref, "", infoEdit(edit), false)
}

// UntagStream removes tags.
func (c *Catalog) UntagStream(ctx context.Context, ref store.StreamRef, keys []string) error {
	edit, err := store.EditUntag(keys)
	if err != nil {
		return err
	}
	return c.update(ctx, ref, "", infoEdit(edit), false)
}

// DeleteStream removes a stream from the catalog; every replica then deletes
// its copy (at once, or when it next starts).
func (c *Catalog) DeleteStream(ctx context.Context, ref store.StreamRef, currentVersion string) error {
	for attempt := 0; ; attempt++ {
		e, rev, err := c.resolve(ctx, ref)
		if err != nil {
			return err
		}
		if currentVersion != "" && currentVersion != e.Version {
			return store.Refuse(store.ErrVersionMismatch, "stream %s is at version %s, not %s", e.Name, e.Version, currentVersion)
		}
		err = c.o.KV.Delete(ctx, catalogKey(e.Name), jetstream.LastRevision(rev))
		if err == nil {
			c.o.Log.Info("cluster: stream deleted", "stream", e.Name, "replicas", strings.Join(e.Replicas, ","))
			return nil
		}
		if (!isWrongRevision(err) && !transient(err)) || attempt >= 20 {
			return unavailable("delete stream "+e.Name, err)
		}
		if transient(err) {
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// SetReplicas rewrites the nodes of a stream (re-placement), with
// compare-and-set on the revision the decision was made from.
func (c *Catalog) SetReplicas(ctx context.Context, name string, from []string, to []string) error {
	return c.update(ctx, store.StreamRef{Name: name}, "", func(e *Entry) error {
		if !slices.Equal(e.Replicas, from) {
			return errReplicasChanged
		}
		e.Replicas = slices.Clone(to)
		return nil
	}, true)
}

var errReplicasChanged = errors.New("cluster: the stream's replicas changed meanwhile")

// Entries returns every entry (copies), sorted by name.
func (c *Catalog) Entries() []Entry {
	c.mu.RLock()
	out := make([]Entry, 0, len(c.entries))
	for _, e := range c.entries {
		out = append(out, e.clone())
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Import adds a stream that already exists in this node's store (a single
// node becoming the first node of a cluster): same ARN, version and creation
// time, placed on this node first. An entry already in the bucket is left
// alone and reported as false.
func (c *Catalog) Import(ctx context.Context, info store.StreamInfo, self string) (bool, error) {
	r := c.replicasFor()
	others := slices.DeleteFunc(c.candidates(r), func(n NodeLoad) bool { return n.Node == self })
	e := Entry{StreamInfo: info.Clone(), Replicas: append([]string{self}, Place(info.Name, r-1, others)...)}
	b, err := e.marshal()
	if err != nil {
		return false, err
	}
	if _, err := c.o.KV.Create(ctx, catalogKey(info.Name), b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return false, nil
		}
		return false, fmt.Errorf("cluster: import stream %s: %w", info.Name, err)
	}
	return true, nil
}
