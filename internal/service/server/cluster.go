package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sensorium-io/sensorium/ingest"
	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/internal/service/cluster"
	"github.com/sensorium-io/sensorium/internal/service/natsembed"
)

// ClusterConfig makes a server one node of a cluster (docs/CLUSTER.md).
// The zero value is a single node.
type ClusterConfig struct {
	// Node is this node's name, unique in the cluster and the same at every
	// start; setting it makes the server a cluster node.
	Node string
	// Listen is the embedded NATS server's route listener (host:port);
	// Routes are the other nodes' route URLs. With an external NATS
	// (NATSURL) both stay empty: that NATS is the cluster.
	Listen string
	Routes []string
	// Name is the NATS cluster's name; default "sensorium".
	Name string
	// BusReplicas is the JetStream replica count of the bus and the
	// cluster's buckets; default min(3, 1 + len(Routes)) with the embedded
	// NATS, 1 with an external one.
	BusReplicas int
	// BusShards is how many JetStream streams the bus is cut into; default
	// 3 with the embedded NATS, 1 with an external one (whose operator adds
	// the shard mapping to its configuration, docs/CLUSTER.md, to have more).
	// Fixed when the cluster is first started.
	BusShards int
	// AckReplicas is how many replicas of a stream must have fsynced a
	// fragment before PERSISTED; 0: a majority.
	AckReplicas int
	// StreamReplicas is how many nodes store a new stream; 0: min(3, N).
	StreamReplicas int
	// ReplaceAfter is how long a node may be silent before its streams are
	// re-placed; default 5 min.
	ReplaceAfter time.Duration
	// Heartbeat is the node registry's interval; default 1 s.
	Heartbeat time.Duration
	// Advertise is the host other nodes and clients reach this node at,
	// when its listeners are on every interface; default the host name.
	Advertise string
}

func (c *Config) clustered() bool { return c.Cluster.Node != "" }

// checkCluster validates the cluster settings (checkConfig's part).
func (s *Server) checkCluster() error {
	c := &s.cfg.Cluster
	if !s.cfg.clustered() {
		if c.Listen != "" || len(c.Routes) > 0 || c.BusShards != 0 || c.AckReplicas != 0 || c.StreamReplicas != 0 || c.BusReplicas != 0 {
			return errors.New("server: --cluster, --routes, --bus-replicas, --bus-shards, --ack-replicas and --stream-replicas need --node (this node's name in the cluster)")
		}
		return nil
	}
	if err := cluster.ValidateNode(c.Node); err != nil {
		return fmt.Errorf("server: --node: %w", err)
	}
	if s.cfg.Replica != "" && s.cfg.Replica != ingest.DefaultReplica && s.cfg.Replica != c.Node {
		return errors.New("server: --replica and --node name the same thing in a cluster (this node's bus consumers); give --node only")
	}
	if s.cfg.NATSURL != "" {
		if c.Listen != "" || len(c.Routes) > 0 {
			return errors.New("server: --cluster and --routes configure the embedded NATS server; with --nats-url, your NATS servers are the cluster")
		}
	} else {
		if c.Listen == "" {
			return errors.New("server: --node needs --cluster, the address this node's NATS server takes routes from the other nodes on (e.g. 127.0.0.1:6222)")
		}
		if len(c.Routes) == 0 {
			return errors.New("server: --node needs --routes, the route URLs of the other nodes (nats://host:port,…): clustered JetStream needs them, and the node waits for a majority of them; for one machine without a cluster, leave --node out")
		}
		if _, port, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("server: --cluster %q: %w", c.Listen, err)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("server: --cluster %q: bad port", c.Listen)
		}
		for _, r := range c.Routes {
			u, err := url.Parse(r)
			if err != nil || u.Scheme != "nats" || u.Host == "" {
				return fmt.Errorf("server: --routes: %q is not a route URL such as nats://10.0.0.2:6222", r)
			}
		}
	}
	for name, v := range map[string]int{"--bus-replicas": c.BusReplicas, "--bus-shards": c.BusShards, "--ack-replicas": c.AckReplicas, "--stream-replicas": c.StreamReplicas} {
		if v < 0 {
			return fmt.Errorf("server: %s %d is negative", name, v)
		}
	}
	if c.BusReplicas > 5 {
		return fmt.Errorf("server: --bus-replicas %d: JetStream replicates a stream at most 5 times", c.BusReplicas)
	}
	if c.BusShards > 64 {
		return fmt.Errorf("server: --bus-shards %d: at most 64", c.BusShards)
	}
	if c.AckReplicas > 0 && c.StreamReplicas > 0 && c.AckReplicas > c.StreamReplicas {
		return fmt.Errorf("server: --ack-replicas %d is more than --stream-replicas %d: no fragment would ever be PERSISTED", c.AckReplicas, c.StreamReplicas)
	}
	if c.ReplaceAfter < 0 {
		return fmt.Errorf("server: --replace-after %s is negative", c.ReplaceAfter)
	}
	if c.BusReplicas == 0 {
		c.BusReplicas = 1
		if s.cfg.NATSURL == "" {
			c.BusReplicas = min(3, 1+len(c.Routes))
		}
	}
	return nil
}

// busShards decides the bus's shard count before the NATS server starts
// (its mapping is installed then): the count this node recorded when it
// first joined, else the flag, else the default. startCluster checks it
// against the cluster's own record.
func (s *Server) busShards() (int, error) {
	c := &s.cfg.Cluster
	node, shards, joined, err := cluster.ReadRecord(s.cfg.DataDir)
	if err != nil {
		return 0, err
	}
	if joined {
		if node != c.Node {
			return 0, fmt.Errorf("server: the data folder %s belongs to cluster node %q, not %q: a node keeps its name for life (its bus consumers and its copies are named after it)", s.cfg.DataDir, node, c.Node)
		}
		if c.BusShards != 0 && c.BusShards != shards {
			return 0, fmt.Errorf("server: --bus-shards %d: the cluster's bus has %d shards, fixed when it was first started (fragment numbers are the shards' sequences)", c.BusShards, shards)
		}
		return shards, nil
	}
	if c.BusShards != 0 {
		return c.BusShards, nil
	}
	if s.cfg.NATSURL != "" {
		return 1, nil
	}
	return 3, nil
}

// clusterNATS are the embedded NATS server's options of a cluster node.
func (s *Server) clusterNATS(o *natsembed.Options) {
	c := s.cfg.Cluster
	host, portStr, _ := net.SplitHostPort(c.Listen) // checked
	port, _ := strconv.Atoi(portStr)
	if port == 0 {
		port = -1
	}
	o.Name = c.Node
	o.Cluster = &natsembed.ClusterOptions{Name: c.Name, Host: host, Port: port, Routes: c.Routes}
	if s.bus.Subjects.Sharded() {
		src, dst := s.bus.Subjects.ShardMapping()
		o.Mappings = map[string]string{src: dst}
	}
}

// busLayoutKey is the key of the bus layout in the nodes bucket ('=' cannot
// be in a node name).
const busLayoutKey = "=bus"

type busLayout struct {
	Shards int `json:"shards"`
}

// waitForJetStream waits until JetStream answers: in a fresh cluster, until
// a majority of the nodes is up and has elected a meta leader.
func (s *Server) waitForJetStream(ctx context.Context) error {
	start := time.Now()
	lastLog := time.Time{}
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := s.js.AccountInfo(actx)
		cancel()
		if err == nil {
			if time.Since(start) > time.Second {
				s.log.Info("sensorium: JetStream is ready", "waited", time.Since(start).Round(time.Millisecond))
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("server: waiting for JetStream: %w", ctx.Err())
		}
		if time.Since(lastLog) > 5*time.Second {
			peers := 0
			if s.ns != nil {
				peers = s.ns.NumRoutes()
			}
			s.log.Info("sensorium: waiting for JetStream's meta leader: it is elected once a majority of the cluster's nodes is up",
				"node", s.cfg.Cluster.Node, "connected_nodes", peers+1, "given_routes", len(s.cfg.Cluster.Routes), "waited", time.Since(start).Round(time.Second), "err", err)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("server: waiting for JetStream: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// agreeBusLayout checks this node's shard count against the cluster's
// record of it (made by the first node), adopting the cluster's when this
// node has never joined.
func (s *Server) agreeBusLayout(ctx context.Context, kv jetstream.KeyValue) error {
	mine := max(1, s.bus.Subjects.Shards)
	b, _ := json.Marshal(busLayout{Shards: mine})
	if _, err := kv.Create(ctx, busLayoutKey, b); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("server: record the bus layout: %w", err)
	}
	e, err := kv.Get(ctx, busLayoutKey)
	if err != nil {
		return fmt.Errorf("server: read the bus layout: %w", err)
	}
	var theirs busLayout
	if err := json.Unmarshal(e.Value(), &theirs); err != nil || theirs.Shards < 1 {
		return fmt.Errorf("server: the cluster's bus layout %q is not one this build reads", e.Value())
	}
	if theirs.Shards == mine {
		return nil
	}
	if _, _, joined, _ := cluster.ReadRecord(s.cfg.DataDir); joined {
		return fmt.Errorf("server: this node recorded a bus of %d shards, the cluster has %d", mine, theirs.Shards)
	}
	if s.ns == nil && theirs.Shards > 1 {
		return fmt.Errorf("server: the cluster's bus has %d shards: with --nats-url give --bus-shards %d and the shard mapping in your NATS configuration (docs/CLUSTER.md)", theirs.Shards, theirs.Shards)
	}
	s.log.Warn("sensorium: the cluster's bus has another shard count than this node was given; taking the cluster's", "given", mine, "cluster", theirs.Shards)
	s.bus.Subjects.Shards = theirs.Shards
	if s.ns != nil {
		src, dst := s.bus.Subjects.ShardMapping()
		if theirs.Shards <= 1 {
			s.ns.GlobalAccount().RemoveMapping(src)
			return nil
		}
		return s.ns.SetMapping(src, dst)
	}
	return nil
}

// drainLegacyBus applies what a single node's bus still holds before the
// node's first start in a cluster: its fragments were published before the
// shard mapping existed, to the unsharded bus and the single node's
// consumer. The old consumer is removed afterwards (it would hold the bus's
// interest forever), and the old stream too when the bus is sharded.
func (s *Server) drainLegacyBus(ctx context.Context) error {
	old := ingest.BusConfig{Subjects: s.bus.Subjects, Storage: s.bus.Storage, Consumer: s.cfg.Replica, Logger: s.log}
	old.Subjects.Shards = 0
	stream, err := s.js.Stream(ctx, old.Subjects.BusStream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("server: look up the single node's bus: %w", err)
	}
	cons, err := stream.Consumer(ctx, old.Consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("server: look up the single node's bus consumer: %w", err)
	}
	s.log.Info("sensorium: applying what the single node's bus still holds before joining the cluster", "bus", old.Subjects.BusStream(), "consumer", old.Consumer)
	in := ingest.New(ingest.Options{Store: s.st, NC: s.nc, Stream: stream, Consumer: cons, Subjects: old.Subjects, Limits: s.cfg.Limits, Logger: s.log, Replica: old.Consumer, PackPCM: !s.cfg.RawPCM})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- in.Run(rctx) }()
	err = waitUntil(ctx, 100*time.Millisecond, func() bool {
		ci, err := cons.Info(ctx)
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
	})
	cancel()
	if rerr := <-done; rerr != nil && !errors.Is(rerr, context.Canceled) {
		return rerr
	}
	if err != nil {
		return err
	}
	if err := stream.DeleteConsumer(ctx, old.Consumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("server: remove the single node's bus consumer: %w", err)
	}
	if s.bus.Subjects.Sharded() {
		if err := s.js.DeleteStream(ctx, old.Subjects.BusStream()); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("server: remove the single node's bus: %w", err)
		}
	}
	return nil
}

func waitUntil(ctx context.Context, every time.Duration, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
	return nil
}

// startCluster joins the cluster once JetStream is ready, and starts
// applying the bus (startBus's cluster counterpart).
func (s *Server) startCluster(ctx context.Context) error {
	if err := s.waitForJetStream(ctx); err != nil {
		return err
	}
	// The node's name is its bus consumers' name: two processes started as
	// one node would split the fragments between their stores.
	if err := cluster.Retry(ctx, s.log, "claim the node's name", func(ctx context.Context) error {
		err := s.claimReplica(ctx)
		if errors.Is(err, ingest.ErrReplicaInUse) {
			return cluster.Permanent{Err: err}
		}
		return err
	}); err != nil {
		return err
	}
	var kv jetstream.KeyValue
	if err := cluster.Retry(ctx, s.log, "open the node registry", func(ctx context.Context) (err error) {
		kv, err = s.nodesBucket(ctx)
		return err
	}); err != nil {
		return err
	}
	if err := cluster.Retry(ctx, s.log, "agree on the bus layout", func(ctx context.Context) error { return s.agreeBusLayout(ctx, kv) }); err != nil {
		return err
	}
	if _, _, joined, _ := cluster.ReadRecord(s.cfg.DataDir); !joined {
		if err := s.drainLegacyBus(ctx); err != nil {
			return err
		}
	}
	c := s.cfg.Cluster
	self := cluster.NodeInfo{Name: c.Node, HTTP: s.advertised(s.HTTPURL()), NATS: s.advertised(s.natsURL)}
	if s.cfg.FlightListen != "" {
		self.Flight = s.advertised(s.flightLocation())
	}
	node, err := cluster.Start(ctx, cluster.Options{
		Self: self, DataDir: s.cfg.DataDir, NC: s.nc, JS: s.js, Bus: s.bus, Store: s.st, Keyring: s.ring,
		Region: s.cfg.Region, Account: s.cfg.Account, Limits: s.cfg.Limits,
		StreamReplicas: c.StreamReplicas, AckReplicas: c.AckReplicas, ReplaceAfter: c.ReplaceAfter, Heartbeat: c.Heartbeat,
		Sign: s.signPeer(), Log: s.log, OnPersisted: s.persisted, PackPCM: !s.cfg.RawPCM,
	})
	if err != nil {
		return err
	}
	s.node = node
	return nil
}

// nodesBucket opens the cluster's node registry (created by the first node
// with the bus's replicas).
func (s *Server) nodesBucket(ctx context.Context) (jetstream.KeyValue, error) {
	name := strings.TrimSuffix(s.bus.Subjects.BusStream(), "FRAG") + "NODES"
	kv, err := s.js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, Description: "Sensorium: the cluster's nodes and their heartbeats",
			History: 1, Storage: jetstream.FileStorage, Replicas: max(1, s.bus.Replicas)})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = s.js.KeyValue(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("server: node registry %s: %w", name, err)
	}
	return kv, nil
}

// advertised replaces an unspecified listen host (0.0.0.0, ::) in a URL by
// the host other nodes reach this one at.
func (s *Server) advertised(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return raw
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		return raw
	}
	adv := s.cfg.Cluster.Advertise
	if adv == "" {
		adv, _ = os.Hostname()
	}
	u.Host = net.JoinHostPort(adv, port)
	return u.String()
}

// flightLocation is the Flight service's location once it serves on the
// listener listen opened.
func (s *Server) flightLocation() string {
	if s.flightLn == nil {
		return s.FlightURL()
	}
	scheme := "grpc+tcp://"
	if s.tls != nil {
		scheme = "grpc+tls://"
	}
	return scheme + s.flightLn.Addr().String()
}

// signPeer signs this node's requests to other nodes (fills) with one of
// the API's access keys, which every node reads from the same credentials
// file; nil when the API does not authenticate.
func (s *Server) signPeer() func(*http.Request, []byte) error {
	if s.auth == nil {
		return nil
	}
	key, ok := s.auth.Keys.Any()
	if !ok {
		return nil
	}
	region := s.cfg.Region
	return func(r *http.Request, body []byte) error { return awsauth.Sign(r, key, region, body, time.Now()) }
}

// clusterAPI is the cluster as the HTTP API sees it (api.Cluster).
type clusterAPI struct{ s *Server }

func (c *clusterAPI) Route(ctx context.Context, streams []string) ([]string, bool, error) {
	ms, local, err := c.s.node.RouteAll(ctx, streams)
	if err != nil || local {
		return nil, local, err
	}
	var urls []string
	for _, m := range ms {
		urls = append(urls, m.HTTP)
	}
	return urls, false, nil
}

// RouteFlight implements flightsrv.Router.
func (c *clusterAPI) RouteFlight(ctx context.Context, streams []string) (string, bool, error) {
	ms, local, err := c.s.node.RouteAll(ctx, streams)
	if err != nil || local {
		return "", local, err
	}
	for _, m := range ms {
		if m.Flight != "" {
			return m.Flight, false, nil
		}
	}
	return "", false, fmt.Errorf("no node holding %v serves Flight", streams)
}

// Dial implements flightsrv.Router: a connection to another node's Flight,
// with TLS when this node serves TLS (the nodes share a certificate
// authority).
func (c *clusterAPI) Dial(_ context.Context, location string) (*grpc.ClientConn, error) {
	u, err := url.Parse(location)
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if c.s.tls != nil || u.Scheme == "grpc+tls" {
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: c.s.peerRoots()})
	}
	return grpc.NewClient(u.Host, grpc.WithTransportCredentials(creds))
}

func (c *clusterAPI) DataEndpoint(ctx context.Context, stream string) (string, error) {
	holders, err := c.s.node.Holders(ctx, stream)
	if err != nil {
		return "", err
	}
	if len(holders) == 0 {
		return c.s.advertised(c.s.HTTPURL()), nil
	}
	return holders[0].HTTP, nil
}

func (c *clusterAPI) Status(ctx context.Context) any { return c.s.node.Status(ctx) }

func (c *clusterAPI) FillHandler() http.Handler { return c.s.node.FillHandler() }

func (c *clusterAPI) Remove(ctx context.Context, node string) error {
	return c.s.node.Remove(ctx, node)
}

func (c *clusterAPI) Self() string { return c.s.node.Self() }

// peerRoots are the certificate authorities a node trusts when it calls
// another: the system's, and this node's own certificate chain (a cluster
// whose nodes share one self-signed certificate, or certificates of one
// private authority).
func (s *Server) peerRoots() *x509.CertPool {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if s.tls != nil {
		for _, cert := range s.tls.Certificates {
			for _, der := range cert.Certificate {
				if c, err := x509.ParseCertificate(der); err == nil {
					pool.AddCert(c)
				}
			}
		}
	}
	return pool
}
