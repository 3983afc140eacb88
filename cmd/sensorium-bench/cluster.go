package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/ingest"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/service/natsembed"
	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/store"
)

// The cluster section: the SDK path into three nodes on loopback (three
// server.Start in this process, each with its own data folder and ports,
// configured as `sensorium serve --node --cluster --routes` is), against
// the single node of the same run and against raw JetStream publish at R3
// to three clustered JetStream servers. Every node shares this machine's
// cores and disk: the ratios show what replication costs here, not what
// three machines give.

// skipClusterEnv set to 1 leaves the cluster section out of `make bench`.
const skipClusterEnv = "SENSORIUM_BENCH_SKIP_CLUSTER"

const clusterNodes = 3

// peerRun is one raw JetStream run.
type peerRun struct {
	rate  float64
	acked int64
	lat   []time.Duration
	disk  diskUse
}

func (b *bench) cluster(mib int) error {
	n := min(max(1, (mib<<20)/b.fragBytes), b.fragments)
	if b.single == nil {
		single, err := b.sdk()
		if err != nil {
			return err
		}
		b.single = single
	}
	fmt.Printf("Cluster ingest: %d nodes on loopback in this process, sharing this machine's cores and disk; %d fragments × %d KiB (%d MiB) per run, the first fragments of the same data\n\n",
		clusterNodes, n, b.fragBytes>>10, n*b.fragBytes>>20)
	t0 := time.Now()
	payloads := b.payloads(n)
	r3, err := b.rawR3(payloads)
	if err != nil {
		return fmt.Errorf("raw JetStream R3: %w", err)
	}
	payloads = nil
	cl, resent, err := b.sdkCluster(n)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	s := b.single
	fmt.Printf("%-46s %9s %8s %8s %9s %9s\n", "path", "MB/s", "× single", "× raw R3", "p50", "p99")
	row := func(name string, rate float64, lat []time.Duration) {
		fmt.Printf("%-46s %9.0f %7.2f× %7.2f× %9s %9s\n", name, rate/1e6, rate/s.rate, rate/r3.rate, pct(lat, 50), pct(lat, 99))
	}
	row("SDK → PERSISTED, single node", s.rate, s.lat)
	row(fmt.Sprintf("SDK → PERSISTED, %d nodes (2 of 3 fsynced)", clusterNodes), cl.rate, cl.lat)
	row("raw JetStream publish R3, file, default sync", r3.rate, r3.lat)
	fmt.Println("(latency: PutFrame → PERSISTED one fragment at a time; raw: synchronous publish → publish ack)")
	if resent > 0 {
		fmt.Printf("(the cluster producer re-sent %d fragments)\n", resent)
	}
	fmt.Println()
	fmt.Printf("%-46s %8s %8s %8s %10s %12s\n", "written per acknowledged byte", "store", "bus", "files", "cancelled", "bus written")
	fmt.Printf("%-46s %8s %8s %8s %10s %12s\n", "", "kept", "kept", "written", "", "(derived)")
	drow := func(name string, d diskUse, acked int64, derived bool) {
		per := func(v int64) string { return fmt.Sprintf("%.2f", float64(v)/float64(acked)) }
		written, cancelled, bus := "-", "-", "-"
		if d.io {
			written, cancelled = per(d.written), per(d.cancelled)
			if derived {
				bus = per(d.written - d.storeKept)
			}
		}
		fmt.Printf("%-46s %8s %8s %8s %10s %12s\n", name, per(d.storeKept), per(d.busKept), written, cancelled, bus)
	}
	drow("SDK → PERSISTED, single node", s.disk, s.acked, true)
	drow(fmt.Sprintf("SDK → PERSISTED, %d nodes", clusterNodes), cl.disk, cl.acked, true)
	drow("raw JetStream R3 (keeps every message)", r3.disk, r3.acked, false)
	fmt.Println("(kept: growth of the data folders; written: bytes the process dirtied in files, /proc/self/io write_bytes;")
	fmt.Println(" cancelled: of those, dropped before writeback because the file was deleted first; bus written: written − store kept)")
	if !cl.disk.io {
		fmt.Println("(/proc/self/io is not readable here: what JetStream wrote and then deleted is not measured)")
	}
	fmt.Printf("(cluster section: %s, set %s=1 to skip it)\n", time.Since(t0).Round(time.Second), skipClusterEnv)
	return nil
}

// sdkCluster starts three nodes, creates the streams (placed on all three)
// and runs the same producer as the single node, connected to every node.
func (b *bench) sdkCluster(fragments int) (*ingestRun, int64, error) {
	ctx := context.Background()
	routes := make([]string, clusterNodes)
	for i := range routes {
		a, err := freeAddr()
		if err != nil {
			return nil, 0, err
		}
		routes[i] = a
	}
	cfgs := make([]server.Config, clusterNodes)
	var disk dataFolders
	for i := range cfgs {
		dir := b.scratch(fmt.Sprintf("node-%c", 'a'+i))
		c := server.Config{DataDir: dir, NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: quiet,
			Cluster: server.ClusterConfig{Node: fmt.Sprintf("%c", 'a'+i), Listen: routes[i]}}
		for j := range routes {
			if j != i {
				c.Cluster.Routes = append(c.Cluster.Routes, "nats://"+routes[j])
			}
		}
		cfgs[i] = c
		disk.bus = append(disk.bus, filepath.Join(dir, "nats"))
		disk.store = append(disk.store, filepath.Join(dir, "store"))
	}
	// A fresh cluster's nodes wait for a majority of each other: start them at once.
	nodes := make([]*server.Server, clusterNodes)
	errs := make([]error, clusterNodes)
	var wg sync.WaitGroup
	for i := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			nodes[i], errs[i] = server.Start(sctx, cfgs[i])
		}()
	}
	wg.Wait()
	defer func() {
		var wg sync.WaitGroup
		for _, s := range nodes {
			if s != nil {
				wg.Add(1)
				go func() { defer wg.Done(); _ = s.Shutdown(ctx) }()
			}
		}
		wg.Wait()
	}()
	if err := errors.Join(errs...); err != nil {
		return nil, 0, err
	}
	// Placement takes the alive nodes: every node must see every other first.
	if err := waitFor(time.Minute, 50*time.Millisecond, func() error {
		for i, s := range nodes {
			alive := 0
			for _, m := range s.Node().Registry().Nodes() {
				if m.Alive {
					alive++
				}
			}
			if alive != clusterNodes {
				return fmt.Errorf("node %d sees %d nodes alive", i, alive)
			}
		}
		return nil
	}); err != nil {
		return nil, 0, err
	}
	client := sdk.NewClient(nodes[0].HTTPURL(), nil)
	for _, s := range []string{"bench", "latency"} {
		if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: s, DataRetentionInHours: 1}); err != nil {
			return nil, 0, err
		}
		e, ok, err := nodes[0].Node().Catalog().Lookup(ctx, s)
		if err != nil || !ok || len(e.Replicas) != clusterNodes {
			return nil, 0, fmt.Errorf("stream %s placed on %v (%v), want all %d nodes", s, e.Replicas, err, clusterNodes)
		}
	}
	urls := make([]string, len(nodes))
	for i, s := range nodes {
		urls[i] = s.NATSURL()
	}
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		return nil, 0, err
	}
	defer nc.Close()
	persisted := func() []int64 {
		out := make([]int64, len(nodes))
		for i, s := range nodes {
			out[i] = s.IngestStats().PersistedBytes
		}
		return out
	}
	before, err := disk.sample()
	if err != nil {
		return nil, 0, err
	}
	p0 := persisted()
	elapsed, pst, err := b.produce(ctx, nc, "bench", fragments)
	if err != nil {
		return nil, 0, err
	}
	if pst.Persisted != int64(fragments) {
		return nil, 0, fmt.Errorf("%d fragments PERSISTED, want %d", pst.Persisted, fragments)
	}
	// Acknowledged bytes: what the most advanced replica has stored when the
	// last PERSISTED came (a quorum had all of it; the third may lag).
	run := &ingestRun{}
	for i, v := range persisted() {
		run.acked = max(run.acked, v-p0[i])
	}
	run.rate = float64(run.acked) / elapsed.Seconds()
	if err := waitFor(2*time.Minute, 50*time.Millisecond, func() error {
		for i, v := range persisted() {
			if v-p0[i] < run.acked {
				return fmt.Errorf("node %d has stored %d of %d bytes", i, v-p0[i], run.acked)
			}
		}
		return nil
	}); err != nil {
		return nil, 0, err
	}
	if run.disk, err = disk.settled(ctx, nc, before); err != nil {
		return nil, 0, err
	}
	if run.lat, err = b.latency(ctx, nc, "latency"); err != nil {
		return nil, 0, err
	}
	return run, pst.Resent, nil
}

// rawR3 is the cluster's peer: three JetStream servers clustered on
// loopback (the embedded server, as the nodes run it, at-rest encryption
// included), one stream built by ingest.BusConfig with 3 replicas, file
// storage and default sync, and one durable consumer per node that never
// pulls, so that JetStream keeps every message (see the package comment).
func (b *bench) rawR3(payloads [][]byte) (*peerRun, error) {
	ctx := context.Background()
	base := b.scratch("jetstream-r3")
	routes := make([]string, clusterNodes)
	for i := range routes {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		routes[i] = a
	}
	servers := make([]*natsembed.Server, clusterNodes)
	errs := make([]error, clusterNodes)
	var disk dataFolders
	var wg sync.WaitGroup
	for i := range servers {
		dir := filepath.Join(base, fmt.Sprintf("%c", 'a'+i))
		disk.bus = append(disk.bus, filepath.Join(dir, "nats"))
		wg.Add(1)
		go func() {
			defer wg.Done()
			servers[i], errs[i] = startClusteredJetStream(dir, fmt.Sprintf("%c", 'a'+i), routes, i)
		}()
	}
	wg.Wait()
	defer func() {
		for _, s := range servers {
			if s != nil {
				s.Stop()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.URL()
	}
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(sdk.MaxPublishesInFlight), jetstream.WithPublishAsyncTimeout(30*time.Second))
	bus := ingest.BusConfig{Replicas: clusterNodes}
	var stream jetstream.Stream
	// JetStream takes the stream once its meta leader is elected and knows its peers.
	if err := waitFor(time.Minute, 250*time.Millisecond, func() error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var err error
		stream, err = js.CreateStream(cctx, bus.StreamConfig())
		return err
	}); err != nil {
		return nil, err
	}
	for i := range clusterNodes {
		c := bus
		c.Consumer = fmt.Sprintf("%c", 'a'+i)
		if _, err := stream.CreateOrUpdateConsumer(ctx, c.ConsumerConfig()); err != nil {
			return nil, err
		}
	}
	before, err := disk.sample()
	if err != nil {
		return nil, err
	}
	subjects := wire.NewSubjects("")
	rate, err := rawPublish(js, subjects.Frag("bench"), payloads)
	if err != nil {
		return nil, err
	}
	run := &peerRun{rate: rate}
	for _, p := range payloads {
		run.acked += int64(len(p))
	}
	// Every replica has every message before the folders are measured.
	if err := waitFor(time.Minute, 50*time.Millisecond, func() error {
		info, err := stream.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != uint64(len(payloads)) {
			return fmt.Errorf("the stream kept %d of %d messages; the peer must keep what it acknowledged", info.State.Msgs, len(payloads))
		}
		if info.Cluster == nil || len(info.Cluster.Replicas) != clusterNodes-1 {
			return fmt.Errorf("the stream has replicas %+v, want %d followers", info.Cluster, clusterNodes-1)
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Lag > 0 {
				return fmt.Errorf("replica %s is %d behind", r.Name, r.Lag)
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	waitQuiet()
	after, err := disk.sample()
	if err != nil {
		return nil, err
	}
	run.disk = after.since(before)
	if run.lat, err = b.rawLatency(ctx, js, subjects.Frag("latency"), payloads); err != nil {
		return nil, err
	}
	return run, nil
}

// startClusteredJetStream starts server i of the raw peer's JetStream
// cluster, routed to the others.
func startClusteredJetStream(dir, name string, routes []string, i int) (*natsembed.Server, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	ring, err := store.LoadKeyring(nil, filepath.Join(dir, "keyring.json"))
	if err != nil {
		return nil, err
	}
	jsKey, err := ring.JetStreamKey()
	if err != nil {
		return nil, err
	}
	host, port, err := splitHostPort(routes[i])
	if err != nil {
		return nil, err
	}
	co := &natsembed.ClusterOptions{Name: "bench-r3", Host: host, Port: port}
	for j, r := range routes {
		if j != i {
			co.Routes = append(co.Routes, "nats://"+r)
		}
	}
	return natsembed.Start(natsembed.Options{StoreDir: filepath.Join(dir, "nats"), Host: "127.0.0.1", Port: -1,
		JetStreamKey: jsKey, Name: name, Cluster: co})
}

// freeAddr is a loopback address with a port free a moment ago (route
// listeners must be known before any server starts).
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	var port int
	_, err = fmt.Sscanf(p, "%d", &port)
	return host, port, err
}
