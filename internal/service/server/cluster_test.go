package server

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/platform/vfs"
	"github.com/sensorium-io/sensorium/internal/platform/vfs/faultfs"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/service/natsembed"
	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/store"
)

// testCluster is n servers in this process, each one node of one cluster
// on loopback, with its own data folder and ports.
type testCluster struct {
	t     *testing.T
	cfgs  []Config
	nodes []*Server // nil while stopped
}

// startTestCluster starts n nodes at once (a fresh cluster elects its meta
// leader once a majority is up); tune adjusts node i's config.
func startTestCluster(t *testing.T, n int, tune func(i int, c *Config)) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, cfgs: make([]Config, n), nodes: make([]*Server, n)}
	routes := make([]string, n)
	for i := range n {
		routes[i] = freeAddr(t)
	}
	for i := range n {
		c := Config{
			DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", FlightListen: "127.0.0.1:0",
			Logger: testLogger(t),
			Cluster: ClusterConfig{Node: fmt.Sprintf("n%d", i), Listen: routes[i], ReplaceAfter: time.Hour,
				Heartbeat: 300 * time.Millisecond},
		}
		for j := range n {
			if j != i {
				c.Cluster.Routes = append(c.Cluster.Routes, "nats://"+routes[j])
			}
		}
		if tune != nil {
			tune(i, &c)
		}
		tc.cfgs[i] = c
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			tc.nodes[i], errs[i] = Start(ctx, tc.cfgs[i])
		}()
	}
	wg.Wait()
	t.Cleanup(tc.stopAll)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start node %d: %v", i, err)
		}
	}
	tc.waitAlive(n)
	return tc
}

func (tc *testCluster) stopAll() {
	var wg sync.WaitGroup
	for i := range tc.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); tc.stop(i) }()
	}
	wg.Wait()
}

// stop shuts node i down cleanly (its registry key stays: it is down).
func (tc *testCluster) stop(i int) {
	if s := tc.nodes[i]; s != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		tc.nodes[i] = nil
	}
}

// restart starts node i again on its data folder and addresses.
func (tc *testCluster) restart(i int) {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, tc.cfgs[i])
	if err != nil {
		tc.t.Fatalf("restart node %d: %v", i, err)
	}
	tc.nodes[i] = s
}

// waitAlive waits until every running node sees want nodes alive.
func (tc *testCluster) waitAlive(want int) {
	tc.t.Helper()
	poll.Until(tc.t, 30*time.Second, 50*time.Millisecond, func() error {
		for i, s := range tc.nodes {
			if s == nil {
				continue
			}
			alive := 0
			for _, m := range s.Node().Registry().Nodes() {
				if m.Alive {
					alive++
				}
			}
			if alive != want {
				return fmt.Errorf("node %d sees %d nodes alive, want %d", i, alive, want)
			}
		}
		return nil
	})
}

func (tc *testCluster) client(i int) *sdk.Client { return sdk.NewClient(tc.nodes[i].HTTPURL(), nil) }

// natsURLs are the client URLs of every running node: producers fail over.
func (tc *testCluster) natsURLs() string {
	var u []string
	for _, s := range tc.nodes {
		if s != nil {
			u = append(u, s.NATSURL())
		}
	}
	return strings.Join(u, ",")
}

// replicas returns the nodes the catalog places a stream on.
func (tc *testCluster) replicas(i int, stream string) []string {
	tc.t.Helper()
	e, ok, err := tc.nodes[i].Node().Catalog().Lookup(context.Background(), stream)
	if err != nil || !ok {
		tc.t.Fatalf("lookup %s: %v %v", stream, ok, err)
	}
	return e.Replicas
}

func (tc *testCluster) index(node string) int {
	for i, c := range tc.cfgs {
		if c.Cluster.Node == node {
			return i
		}
	}
	tc.t.Fatalf("no node %s", node)
	return -1
}

// TestClusterCatalog: a stream created on one node is known at once on
// every node; updates of one stream on two nodes at once give exactly one
// VersionMismatchException; creations of one name on three nodes at once
// give exactly one stream; tags and deletion reach every node, and a
// deleted stream's data leaves every replica.
func TestClusterCatalog(t *testing.T) {
	tc := startTestCluster(t, 3, nil)
	ctx := context.Background()
	if _, err := tc.client(0).CreateStream(ctx, sdk.CreateStreamInput{StreamName: "cat-1", DataRetentionInHours: 2}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // read-your-writes on every node, no waiting
		info, err := tc.client(i).DescribeStream(ctx, sdk.StreamRef{StreamName: "cat-1"})
		if err != nil || info.DataRetentionInHours != 2 {
			t.Fatalf("node %d: DescribeStream just after CreateStream on node 0: %+v, %v", i, info, err)
		}
	}
	for round := range 8 {
		info, err := tc.client(0).DescribeStream(ctx, sdk.StreamRef{StreamName: "cat-1"})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for k := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[k] = tc.client(k+1).UpdateStream(ctx, sdk.StreamRef{StreamName: "cat-1"}, info.Version, fmt.Sprintf("dev-%d-%d", round, k), "")
			}()
		}
		wg.Wait()
		won, lost := 0, 0
		for _, err := range errs {
			var ae *httpwire.APIError
			switch {
			case err == nil:
				won++
			case errors.As(err, &ae) && ae.Name == httpwire.VersionMismatch:
				lost++
			default:
				t.Fatalf("round %d: UpdateStream: %v", round, err)
			}
		}
		if won != 1 || lost != 1 {
			t.Fatalf("round %d: two updates from version %s at once: %d won, %d VersionMismatch; want 1 and 1", round, info.Version, won, lost)
		}
	}
	for round := range 5 {
		name := fmt.Sprintf("race-%d", round)
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for k := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[k] = tc.client(k).CreateStream(ctx, sdk.CreateStreamInput{StreamName: name, DataRetentionInHours: 1})
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			var ae *httpwire.APIError
			switch {
			case err == nil:
				won++
			case errors.As(err, &ae) && ae.Name == httpwire.ResourceInUse:
			default:
				t.Fatalf("%s: CreateStream: %v", name, err)
			}
		}
		if won != 1 {
			t.Fatalf("%s created on three nodes at once: %d won, want 1", name, won)
		}
	}
	if err := tc.client(2).TagStream(ctx, sdk.StreamRef{StreamName: "cat-1"}, map[string]string{"site": "plant-7"}); err != nil {
		t.Fatal(err)
	}
	tags, err := tc.client(1).ListTagsForStream(ctx, sdk.StreamRef{StreamName: "cat-1"})
	if err != nil || tags["site"] != "plant-7" {
		t.Fatalf("tags on node 1 after TagStream on node 2: %v, %v", tags, err)
	}
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		for i := range 3 {
			list, _, err := tc.client(i).ListStreams(ctx, "", 100, "")
			if err != nil {
				return err
			}
			if len(list) != 6 {
				return fmt.Errorf("node %d lists %d streams, want 6", i, len(list))
			}
		}
		return nil
	})
	// Every node holds cat-1 (3 nodes, 3 replicas); deleting it on one
	// removes every replica's copy.
	for i := range 3 {
		if _, err := tc.nodes[i].Store().DescribeStream(store.StreamRef{Name: "cat-1"}); err != nil {
			t.Fatalf("node %d has no copy of cat-1: %v", i, err)
		}
	}
	if err := tc.client(1).DeleteStream(ctx, sdk.StreamRef{StreamName: "cat-1"}, ""); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		for i := range 3 {
			if _, err := tc.nodes[i].Store().DescribeStream(store.StreamRef{Name: "cat-1"}); err == nil {
				return fmt.Errorf("node %d still holds a copy of the deleted stream", i)
			}
			dirs, _ := filepath.Glob(filepath.Join(tc.cfgs[i].DataDir, "store", "streams", "cat-1@*"))
			if len(dirs) > 0 {
				return fmt.Errorf("node %d still has the folder %s", i, dirs[0])
			}
		}
		return nil
	})
	for i := range 3 {
		if _, err := tc.client(i).DescribeStream(ctx, sdk.StreamRef{StreamName: "cat-1"}); !isAPIError(err, httpwire.ResourceNotFound) {
			t.Fatalf("node %d: DescribeStream of the deleted stream: %v", i, err)
		}
	}
}

func isAPIError(err error, name string) bool {
	var ae *httpwire.APIError
	return errors.As(err, &ae) && ae.Name == name
}

// produceFragments writes `fragments` fragments of the pump signal into
// stream through a producer connected to url, and waits for every one to be
// PERSISTED; it returns their events.
func produceFragments(t *testing.T, url, stream, producer string, fragments int) []sdk.AckEvent {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var mu sync.Mutex
	var persisted []sdk.AckEvent
	track, _ := sdk.ScalarTrack(1, "vibration", pumpDesc)
	p, err := sdk.NewProducer(context.Background(), nc, sdk.ProducerConfig{
		Stream: stream, Tracks: []sdk.Track{track}, ProducerID: producer, PersistTimeout: 2 * time.Second,
		MinFragmentDuration: 100 * time.Millisecond, MaxFragmentDuration: 100 * time.Millisecond,
		OnAck: func(e sdk.AckEvent) {
			if e.EventType == sdk.EventPersisted {
				mu.Lock()
				persisted = append(persisted, e)
				mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	w, err := sdk.NewSampleWriter(p, 1, pumpDesc, sdk.SampleWriterOptions{Origin: time.Now().Add(-time.Hour).Truncate(time.Millisecond).UnixNano(), FrameSamples: 100})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]float32, 300)
	for n := int64(0); n < int64(fragments)*100; n += 100 {
		for k := range 100 {
			for ch := range 3 {
				buf[k*3+ch] = sampleValue(n+int64(k), ch)
			}
		}
		if err := w.WriteFloat32(context.Background(), buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("producer close: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return persisted
}

// TestClusterReadsFromAnyNode: with streams on 2 of 3 nodes, the node that
// does not hold a stream serves ListFragments, GetMediaForFragmentList,
// GetMedia, Arrow queries and Flight through a holder, signed requests
// included (the client's signature covers the Host it sent to), and its
// GetDataEndpoint names a holder.
func TestClusterReadsFromAnyNode(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("[ml]\naws_access_key_id = "+authKeyID+"\naws_secret_access_key = "+authSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tc := startTestCluster(t, 3, func(_ int, c *Config) {
		c.Credentials = creds
		c.Cluster.StreamReplicas = 2
	})
	ctx := context.Background()
	signed := func(i int) *sdk.Client {
		return sdk.NewClientWithOptions(tc.nodes[i].HTTPURL(), sdk.ClientOptions{Credentials: &sdk.Credentials{AccessKeyID: authKeyID, SecretAccessKey: authSecret}})
	}
	if _, err := signed(0).CreateStream(ctx, sdk.CreateStreamInput{StreamName: "far-1", DataRetentionInHours: 2}); err != nil {
		t.Fatal(err)
	}
	holders := tc.replicas(0, "far-1")
	if len(holders) != 2 {
		t.Fatalf("far-1 on %v, want 2 nodes", holders)
	}
	outsider := -1
	for i, c := range tc.cfgs {
		if !slices.Contains(holders, c.Cluster.Node) {
			outsider = i
		}
	}
	holder := tc.index(holders[0])
	// Produce through the node that does not hold the stream.
	acks := produceFragments(t, tc.nodes[outsider].NATSURL(), "far-1", "p-far", 20)
	if len(acks) != 20 {
		t.Fatalf("%d PERSISTED, want 20", len(acks))
	}
	fragsOf := func(i int) []sdk.Fragment {
		t.Helper()
		f, _, err := signed(i).ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName("far-1"), MaxResults: 1000})
		if err != nil {
			t.Fatalf("ListFragments on node %d: %v", i, err)
		}
		slices.SortFunc(f, func(a, b sdk.Fragment) int { return strings.Compare(a.FragmentNumber, b.FragmentNumber) })
		return f
	}
	far, near := fragsOf(outsider), fragsOf(holder)
	if len(far) != 20 || !slices.Equal(far, near) {
		t.Fatalf("ListFragments on the node without the stream: %d fragments, on a holder %d; equal: %v", len(far), len(near), slices.Equal(far, near))
	}
	var numbers []string
	for _, f := range far {
		numbers = append(numbers, f.FragmentNumber)
	}
	// framesOf reads a chunk stream into its frames and fragment numbers
	// (the millis-behind-now tags differ from one read to the next).
	framesOf := func(i int) []string {
		t.Helper()
		r, err := signed(i).GetMediaForFragmentList(ctx, sdk.ByName("far-1"), numbers)
		if err != nil {
			t.Fatalf("GetMediaForFragmentList on node %d: %v", i, err)
		}
		defer r.Close()
		var out []string
		rd := mkv.NewReader(r)
		for {
			it, err := rd.Next()
			if errors.Is(err, io.EOF) {
				return out
			}
			if err != nil {
				t.Fatalf("GetMediaForFragmentList on node %d: %v", i, err)
			}
			switch it.Kind {
			case mkv.ItemBlock:
				out = append(out, fmt.Sprintf("%d:%x", it.Time, it.Block.Data))
			case mkv.ItemTags:
				for _, tag := range it.Tags {
					if tag.Name == "AWS_KINESISVIDEO_FRAGMENT_NUMBER" {
						out = append(out, tag.Value)
					}
				}
			}
		}
	}
	if a, b := framesOf(outsider), framesOf(holder); len(a) < 20 || !slices.Equal(a, b) {
		t.Fatalf("GetMediaForFragmentList through the outsider: %d items, from a holder %d; equal %v", len(a), len(b), slices.Equal(a, b))
	}
	rows := func(i int) int64 {
		t.Helper()
		res, err := signed(i).Query(ctx, sdk.QueryInput{Stream: "far-1", Start: time.Now().Add(-2 * time.Hour), End: time.Now()}, nil)
		if err != nil {
			t.Fatalf("query on node %d: %v", i, err)
		}
		defer res.Close()
		n := int64(0)
		for res.Next() {
			n += res.RecordBatch().NumRows()
		}
		if err := res.Err(); err != nil {
			t.Fatalf("query on node %d: %v", i, err)
		}
		return n
	}
	if a, b := rows(outsider), rows(holder); a != 2000 || a != b {
		t.Fatalf("query through the outsider: %d rows, from a holder %d, want 2000", a, b)
	}
	// GetMedia from EARLIEST, through the outsider: every frame.
	frames := 0
	fctx, cancel := context.WithCancel(ctx)
	err := signed(outsider).Follow(fctx, sdk.ByName("far-1"), sdk.StartEarliest(), func(f *sdk.MediaFrame) error {
		frames++
		if frames == 20 {
			cancel()
		}
		return nil
	}, nil)
	cancel()
	if frames != 20 {
		t.Fatalf("GetMedia through the outsider: %d frames (%v), want 20", frames, err)
	}
	// Arrow Flight through the outsider: GetFlightInfo and DoGet pass on to
	// a holder with the caller's bearer token.
	conn, err := grpc.NewClient(strings.TrimPrefix(tc.nodes[outsider].FlightURL(), "grpc+tcp://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fc := flight.NewClientFromConn(conn, nil)
	authed, err := fc.AuthenticateBasicToken(ctx, authKeyID, authSecret)
	if err != nil {
		t.Fatal(err)
	}
	cmd := fmt.Sprintf(`{"stream":"far-1","start":%d,"end":%d,"partitions":2}`, time.Now().Add(-2*time.Hour).UnixNano(), time.Now().UnixNano())
	info, err := fc.GetFlightInfo(authed, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: []byte(cmd)})
	if err != nil {
		t.Fatalf("GetFlightInfo through the outsider: %v", err)
	}
	flightRows := int64(0)
	for _, ep := range info.Endpoint {
		recs, err := doGet(authed, fc, ep)
		if err != nil {
			t.Fatalf("DoGet through the outsider: %v", err)
		}
		for _, r := range recs {
			flightRows += r.NumRows()
			r.Release()
		}
	}
	if flightRows != 2000 {
		t.Fatalf("Flight through the outsider: %d rows, want 2000", flightRows)
	}
	ep, err := signed(outsider).GetDataEndpoint(ctx, sdk.StreamRef{StreamName: "far-1"}, "GET_MEDIA")
	if err != nil {
		t.Fatal(err)
	}
	if ep == tc.nodes[outsider].HTTPURL() {
		t.Fatalf("GetDataEndpoint on the node without the stream named itself")
	}
}

// copyOf is a replica's fragments of a stream as its store holds them:
// numbers, both timestamps, duration and the payload's bytes.
func copyOf(t *testing.T, s *Server, stream string) []string {
	t.Helper()
	st := s.Store()
	infos, err := st.Fragments(stream, 0, 1<<20)
	if err != nil {
		return nil
	}
	rd, err := st.NewReader(stream)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var out []string
	for _, in := range infos {
		f, err := rd.Read(in)
		if err != nil {
			t.Fatalf("read %s/%d: %v", stream, in.Number, err)
		}
		out = append(out, fmt.Sprintf("%d/%d/%d/%d/%s/%d/%x", f.Number, f.ServerTime, f.ProducerTime, f.Duration, f.ProducerID, f.ProducerSeq, sha256.Sum256(f.Payload)))
	}
	return out
}

// TestClusterPlacement: 30 streams at R3 on 5 nodes land on exactly 3
// nodes each, every node within ±2 of the mean; when a node stays away
// past --replace-after, each of its streams gets a new replica, filled to
// the same fragments as the others while reads go on; the node that comes
// back deletes its copies of the streams placed elsewhere.
func TestClusterPlacement(t *testing.T) {
	tc := startTestCluster(t, 5, func(_ int, c *Config) { c.Cluster.ReplaceAfter = 3 * time.Second })
	ctx := context.Background()
	nc, err := nats.Connect(tc.natsURLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	origin := time.Now().Add(-time.Hour).UnixNano()
	for s := range 30 {
		name := fmt.Sprintf("pl-%02d", s)
		if _, err := tc.client(s%5).CreateStream(ctx, sdk.CreateStreamInput{StreamName: name, DataRetentionInHours: 2}); err != nil {
			t.Fatal(err)
		}
		if ev := publish(t, nc, name, scalarFragment(t, origin, 0, 5), "p", 1); ev.EventType != wire.EventPersisted {
			t.Fatalf("%s: %+v", name, ev)
		}
	}
	load := map[string]int{}
	for s := range 30 {
		r := tc.replicas(0, fmt.Sprintf("pl-%02d", s))
		if len(r) != 3 || len(slices.Compact(slices.Sorted(slices.Values(r)))) != 3 {
			t.Fatalf("pl-%02d on %v, want 3 distinct nodes", s, r)
		}
		for _, n := range r {
			load[n]++
		}
	}
	for n, l := range load {
		if l < 16 || l > 20 {
			t.Errorf("%s holds %d streams, want 18 ± 2 (%v)", n, l, load)
		}
	}
	gone := tc.cfgs[4].Cluster.Node
	var moved []string
	for s := range 30 {
		if name := fmt.Sprintf("pl-%02d", s); slices.Contains(tc.replicas(0, name), gone) {
			moved = append(moved, name)
		}
	}
	tc.stop(4)
	// Reads go on through the node's absence and the re-placement.
	stopReads := make(chan struct{})
	readErrs := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stopReads:
				readErrs <- nil
				return
			default:
			}
			for _, name := range moved {
				f, _, err := tc.client(0).ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName(name), MaxResults: 100})
				if err != nil || len(f) != 1 {
					readErrs <- fmt.Errorf("ListFragments %s during re-placement: %d fragments, %v", name, len(f), err)
					return
				}
			}
		}
	}()
	poll.Until(t, 30*time.Second, 100*time.Millisecond, func() error {
		for _, name := range moved {
			r := tc.replicas(0, name)
			if slices.Contains(r, gone) || len(r) != 3 {
				return fmt.Errorf("%s is still on %v", name, r)
			}
			var want []string
			for _, n := range r {
				i := tc.index(n)
				if tc.nodes[i].Node().Replicator().Phase(name) != "live" {
					return fmt.Errorf("%s: its copy on %s is %q", name, n, tc.nodes[i].Node().Replicator().Phase(name))
				}
				got := copyOf(t, tc.nodes[i], name)
				if want == nil {
					want = got
				} else if !slices.Equal(got, want) {
					return fmt.Errorf("%s: the copy on %s differs: %v vs %v", name, n, got, want)
				}
			}
			if len(want) != 1 {
				return fmt.Errorf("%s: %d fragments, want 1", name, len(want))
			}
		}
		return nil
	})
	close(stopReads)
	if err := <-readErrs; err != nil {
		t.Fatal(err)
	}
	tc.restart(4)
	poll.Until(t, 30*time.Second, 100*time.Millisecond, func() error {
		for _, name := range moved {
			if _, err := tc.nodes[4].Store().DescribeStream(store.StreamRef{Name: name}); err == nil {
				return fmt.Errorf("%s: the node that came back still holds its copy", name)
			}
		}
		return nil
	})
}

// TestClusterNoPersistedWithoutQuorum: PERSISTED means a majority of a
// stream's replicas fsynced the fragment. With two of three replicas unable
// to fsync (their disks fail), a fragment the third stored is not
// acknowledged PERSISTED; once the disks heal, it is.
func TestClusterNoPersistedWithoutQuorum(t *testing.T) {
	var ffs [3]*faultfs.FS
	tc := startTestCluster(t, 3, func(i int, c *Config) {
		ffs[i] = faultfs.New(vfs.OS)
		c.StoreOptions = func(o *store.Options) { o.FS = ffs[i] }
	})
	ctx := context.Background()
	if _, err := tc.client(0).CreateStream(ctx, sdk.CreateStreamInput{StreamName: "q-1", DataRetentionInHours: 1}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(tc.natsURLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	origin := time.Now().Add(-time.Hour).UnixNano()
	if ev := publish(t, nc, "q-1", scalarFragment(t, origin, 0, 5), "p", 1); ev.EventType != wire.EventPersisted {
		t.Fatalf("healthy cluster: %+v", ev)
	}
	failSync := func(op faultfs.Op, name string) error {
		if op == faultfs.OpSync && strings.Contains(name, "q-1@") {
			return errors.New("injected: the disk does not sync")
		}
		return nil
	}
	ffs[1].SetFault(failSync)
	ffs[2].SetFault(failSync)
	sub, err := nc.SubscribeSync(wire.NewSubjects("").Ack("q-1"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	js, _ := jetstream.New(nc)
	msg := nats.NewMsg(wire.NewSubjects("").Frag("q-1"))
	msg.Data = scalarFragment(t, origin, 500, 5)
	msg.Header.Set(wire.HeaderProducerID, "p")
	msg.Header.Set(wire.HeaderProducerSeq, "2")
	msg.Header.Set(wire.HeaderMsgID, wire.MsgID("q-1", "p", 2, 0))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	// One replica stores it; nothing may answer PERSISTED for 3 s after.
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n, _ := tc.nodes[0].Store().Fragments("q-1", 0, 10); len(n) != 2 {
			return fmt.Errorf("node 0 has not stored the fragment yet")
		}
		return nil
	})
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			break
		}
		var ev wire.AckEvent
		_ = json.Unmarshal(m.Data, &ev)
		if ev.EventType == wire.EventPersisted && ev.ProducerSequence == 2 {
			t.Fatalf("PERSISTED with one replica of three on disk: %s", m.Data)
		}
	}
	ffs[1].SetFault(nil)
	ffs[2].SetFault(nil)
	for {
		m, err := sub.NextMsg(20 * time.Second)
		if err != nil {
			t.Fatalf("no PERSISTED after the disks healed: %v", err)
		}
		var ev wire.AckEvent
		_ = json.Unmarshal(m.Data, &ev)
		if ev.EventType == wire.EventPersisted && ev.ProducerSequence == 2 {
			break
		}
	}
}

// TestSingleNodeBecomesFirstNode: a single node's streams and data carry
// over when it is restarted as the first node of a cluster: the same ARN,
// the same fragments (numbers, timestamps, bytes) on every replica after
// they fill from it, and new fragments numbered after the old ones.
func TestSingleNodeBecomesFirstNode(t *testing.T) {
	dir := t.TempDir()
	single, err := Start(context.Background(), Config{DataDir: dir, NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	client, nc := newStream(t, single, "old-1", 24)
	origin := time.Now().Add(-time.Hour).UnixNano()
	for seq := uint64(1); seq <= 5; seq++ {
		if ev := publish(t, nc, "old-1", scalarFragment(t, origin, int64(seq-1)*500, 5), "p", seq); ev.EventType != wire.EventPersisted {
			t.Fatalf("single node: %+v", ev)
		}
	}
	info, err := client.DescribeStream(context.Background(), sdk.ByName("old-1"))
	if err != nil {
		t.Fatal(err)
	}
	before := copyOf(t, single, "old-1")
	nc.Close()
	if err := single.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	tc := startTestCluster(t, 3, func(i int, c *Config) {
		if i == 0 {
			c.DataDir = dir
		}
	})
	ctx := context.Background()
	got, err := tc.client(2).DescribeStream(ctx, sdk.ByName("old-1"))
	if err != nil || got.StreamARN != info.StreamARN || got.Version != info.Version {
		t.Fatalf("after the move, on another node: %+v, %v; before %+v", got, err, info)
	}
	poll.Until(t, 30*time.Second, 50*time.Millisecond, func() error {
		for i := range 3 {
			if c := copyOf(t, tc.nodes[i], "old-1"); !slices.Equal(c, before) {
				return fmt.Errorf("node %d holds %d fragments of the single node's %d", i, len(c), len(before))
			}
		}
		return nil
	})
	cnc, err := nats.Connect(tc.natsURLs())
	if err != nil {
		t.Fatal(err)
	}
	defer cnc.Close()
	ev := publish(t, cnc, "old-1", scalarFragment(t, origin, 5*500, 5), "p", 6)
	if ev.EventType != wire.EventPersisted {
		t.Fatalf("in the cluster: %+v", ev)
	}
	oldLast := strings.Split(before[len(before)-1], "/")[0]
	if len(ev.FragmentNumber) < len(oldLast) || (len(ev.FragmentNumber) == len(oldLast) && ev.FragmentNumber <= oldLast) {
		t.Fatalf("the first fragment in the cluster is numbered %s, not after the single node's last %s", ev.FragmentNumber, oldLast)
	}
}

// TestClusterOnExternalNATS: two nodes on a NATS that the user operates
// (--nats-url with --node): one unsharded bus, the catalog and the quorum
// as on the embedded cluster; a stream created on one node is stored by
// both and read from either.
func TestClusterOnExternalNATS(t *testing.T) {
	ns, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Port: -1, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Stop()
	var nodes [2]*Server
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i], errs[i] = Start(context.Background(), Config{DataDir: t.TempDir(), NATSURL: ns.URL(), HTTPListen: "127.0.0.1:0",
				Logger: testLogger(t), Cluster: ClusterConfig{Node: fmt.Sprintf("x%d", i), Heartbeat: 300 * time.Millisecond}})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		defer nodes[i].Shutdown(context.Background())
	}
	poll.Until(t, 10*time.Second, 50*time.Millisecond, func() error {
		for i, s := range nodes {
			if n := len(s.Node().Registry().Nodes()); n != 2 {
				return fmt.Errorf("node %d knows %d nodes", i, n)
			}
		}
		return nil
	})
	ctx := context.Background()
	if _, err := sdk.NewClient(nodes[0].HTTPURL(), nil).CreateStream(ctx, sdk.CreateStreamInput{StreamName: "ext-1", DataRetentionInHours: 1}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if ev := publish(t, nc, "ext-1", scalarFragment(t, time.Now().Add(-time.Hour).UnixNano(), 0, 5), "p", 1); ev.EventType != wire.EventPersisted {
		t.Fatalf("%+v", ev)
	}
	for i, s := range nodes {
		f, _, err := sdk.NewClient(s.HTTPURL(), nil).ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName("ext-1"), MaxResults: 10})
		if err != nil || len(f) != 1 {
			t.Fatalf("node %d: %d fragments, %v", i, len(f), err)
		}
	}
}
