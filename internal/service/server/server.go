// Package server wires one Sensorium process: the embedded (or an external)
// NATS server, the store, the ingester that applies the bus to the store, the
// query service and the HTTP API, and shuts them down in the order that loses
// nothing: stop accepting, drain, fsync, close.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/sensorium-io/sensorium/ingest"
	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/internal/platform/pcmpack"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/service/api"
	"github.com/sensorium-io/sensorium/internal/service/cluster"
	"github.com/sensorium-io/sensorium/internal/service/flightauth"
	"github.com/sensorium-io/sensorium/internal/service/flightsrv"
	"github.com/sensorium-io/sensorium/internal/service/natsembed"
	"github.com/sensorium-io/sensorium/internal/service/throttle"
	"github.com/sensorium-io/sensorium/internal/service/usage"
	"github.com/sensorium-io/sensorium/query"
	"github.com/sensorium-io/sensorium/store"
)

// Config configures a server. Zero values take the defaults of `sensorium serve`.
type Config struct {
	DataDir    string // default ./data
	NATSListen string // embedded NATS client address; default 127.0.0.1:4222; "127.0.0.1:0" picks a port
	NATSURL    string // connect to this NATS instead of embedding one
	HTTPListen string // default 127.0.0.1:8080
	Prefix     string // subject prefix; default "sensorium"
	Region     string // for ARNs, and the region requests are signed for; default us-east-1
	Account    string // for ARNs
	// BusStorage is "file" (default) or "memory"; BusSyncAlways makes the
	// embedded JetStream fsync every message (the benchmark's peer setting).
	BusStorage    string
	BusSyncAlways bool
	Limits        ingest.Limits
	Logger        *slog.Logger
	// StoreOptions, when set, adjusts the store's options (tests shorten timers).
	StoreOptions func(*store.Options)
	// Keyring is the master keyring file; default <DataDir>/keyring.json,
	// created at first start. store.KeyringEnv in the environment overrides it.
	Keyring string
	// KeyRotation is the data-key lifetime; default 45 minutes.
	KeyRotation time.Duration
	// NATSAuth is the authorization file of the embedded NATS server (users
	// and the streams each may produce into or consume); empty: no
	// authentication (fine on loopback, said at start-up otherwise).
	NATSAuth string
	// Credentials is the file of the access keys the HTTP API accepts (the
	// AWS shared credentials file format, mode 600); every request must then
	// be signed with AWS Signature Version 4 (internal/awsauth). Empty: no
	// authentication, for local development on loopback (said at start-up).
	Credentials string
	// TLSCert and TLSKey, when set, make both the HTTP API and the embedded
	// NATS server require TLS with this certificate.
	TLSCert, TLSKey string
	// MaxMediaConnections bounds the GetMedia responses open at once per
	// stream; default 16.
	MaxMediaConnections int
	// MaxRequests bounds the HTTP requests served at once; default
	// api.DefaultMaxRequests.
	MaxRequests int
	// MaxOpenSegments bounds the active segment files the store keeps open
	// across all streams; default store.DefaultMaxOpenSegments.
	MaxOpenSegments int
	// PerFileSync makes the store fsync each stream's segment file after a
	// batch even where one flush of the file system would do (store.Options).
	PerFileSync bool
	// MaxPutMediaDuration ends a PutMedia session after this long
	// (MAX_CONNECTION_DURATION_REACHED); default api.DefaultMaxPutMediaDuration.
	MaxPutMediaDuration time.Duration
	// PutMediaIdle is the silence after which PutMedia sends IDLE; default 3 s.
	PutMediaIdle time.Duration
	// RateLimits are the API's rates per second (PutMedia and GetMedia
	// connections and bytes per stream, control-plane calls per server);
	// a zero one takes its default (throttle.DefaultRates). A stream tag
	// overrides a per-stream one for its stream (docs/LIMITS.md).
	RateLimits throttle.Rates
	// RateLimitLogEvery is the least time between two log lines about one
	// rate limit; default 10 s.
	RateLimitLogEvery time.Duration
	// FlightListen is the address of the Arrow Flight service; empty: none.
	// (`serve` defaults it to 127.0.0.1:8815.)
	FlightListen string
	// Replica names this process's durable consumer of the bus; default
	// "store". Store replicas that each keep a full copy consume the same bus
	// under different names; a second process with a name already held on
	// the same NATS and prefix is refused at start-up (docs/NATS.md).
	Replica string
	// Cluster makes the server one node of a cluster (docs/CLUSTER.md).
	Cluster ClusterConfig
	// UsageEvery is how often the usage meter saves the current hour and
	// samples what the streams hold; default a minute.
	UsageEvery time.Duration
	// NoSummaries turns off the per-second summaries the server keeps of
	// fast numeric tracks (query/SUMMARIES.md): aggregate queries then
	// decode every sample, even where summaries are on disk, and the
	// summariser's share of a core is saved.
	NoSummaries bool
	// RawPCM stores PCM audio as it comes. By default the server stores the
	// PCM tracks of retained fragments losslessly coded (about FLAC -8's
	// size) and gives readers back the very PCM bytes put (pcmpack).
	RawPCM bool
}

// Server is a running Sensorium process.
type Server struct {
	cfg         Config
	log         *slog.Logger
	lock        *os.File
	ns          *natsembed.Server // nil with an external NATS
	nc          *nats.Conn
	st          *store.Store
	ring        *store.Keyring
	tls         *tls.Config // nil: plain TCP
	flight      *flightsrv.Service
	limits      *throttle.Limiter // the API's rate limits, counted on /metrics
	in          *ingest.Ingester
	q           *query.Service
	http        *http.Server
	ln          net.Listener
	natsURL     string
	users       []natsembed.User  // of the embedded NATS (--nats-auth, access keys); nil: no authentication
	natsKeys    int               // access keys among users
	natsSkipped []string          // grant patterns with no NATS form (a start-up warning)
	auth        *awsauth.Verifier // of the HTTP API (--credentials); nil: no authentication
	claim       *ingest.ReplicaClaim
	bus         ingest.BusConfig
	js          jetstream.JetStream
	node        *cluster.Node     // nil on a single node
	meter       *usage.Meter      // per-stream usage (GET /v1/usage, /metrics)
	sum         *query.Summarizer // nil with NoSummaries
	stopSum     context.CancelFunc
	sumDone     chan struct{}
	flightLn    net.Listener // the Flight listener, from listen to serve

	// failed gets the reason when the server can no longer do its job while
	// it still runs (it lost its replica claim); see Failed.
	failed chan error

	stopIngest context.CancelFunc
	stopReads  context.CancelFunc
	ingestDone chan error
	once       sync.Once
}

// expandPCM is the store's Expand: a fragment whose PCM audio the ingester
// packed is given back with its PCM as it came.
func expandPCM(dst, payload []byte, clusterOffset uint32) ([]byte, uint32, bool, error) {
	if !pcmpack.Marked(payload, clusterOffset) {
		return nil, 0, false, nil
	}
	out, offset, err := pcmpack.Unpack(dst, payload, clusterOffset)
	return out, offset, err == nil, err
}

// Start starts every part and returns once the server accepts requests.
// Every setting is checked before anything is written: a bad one returns an
// error and leaves the disk as it was.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	cfg.setDefaults()
	s := &Server{cfg: cfg, log: cfg.Logger, failed: make(chan error, 1)}
	if err := s.checkConfig(); err != nil {
		return nil, &ConfigError{Err: err}
	}
	ok := false
	defer func() {
		if !ok {
			s.stopIngesting()
			s.closeAll()
		}
	}()
	// With an external NATS the replica is claimed before the data folder is
	// touched: a second process on a held replica changes nothing on disk.
	// The embedded NATS needs the keyring (its files are encrypted with a key
	// from it), so there the folder comes first.
	if cfg.NATSURL != "" {
		if err := s.connectExternal(ctx); err != nil {
			return nil, err
		}
	}
	if err := s.startStorage(); err != nil {
		return nil, err
	}
	if cfg.NATSURL == "" {
		if err := s.startEmbedded(ctx); err != nil {
			return nil, err
		}
	}
	if err := s.listen(); err != nil {
		return nil, err
	}
	if cfg.clustered() {
		if err := s.startCluster(ctx); err != nil {
			return nil, err
		}
	} else if err := s.startBus(ctx); err != nil {
		return nil, err
	}
	s.serveHTTP()
	if s.flightLn != nil {
		var opts []grpc.ServerOption
		if s.tls != nil {
			opts = append(opts, grpc.Creds(credentials.NewTLS(s.tls)))
		}
		if s.auth != nil { // the HTTP API's access keys, as Flight Basic credentials and bearer tokens
			fa := &flightauth.Authenticator{Keys: s.auth.Keys, Log: s.log.With("component", "flight")}
			opts = append(opts, fa.ServerOptions()...)
			if host, _, _ := net.SplitHostPort(cfg.FlightListen); s.tls == nil && !isLoopback(host) {
				s.log.Warn("sensorium: Flight clients send their secret access key (Basic) or a bearer token in the clear: give --tls-cert and --tls-key when --flight is beyond loopback", "flight", cfg.FlightListen)
			}
		}
		s.flight = flightsrv.Start(s.flightLn, s.st, s.q, s.log.With("component", "flight"), opts...)
		s.flight.SetUsage(s.meter)
		s.flightLn = nil
		if s.node != nil {
			s.flight.SetRouter(&clusterAPI{s: s})
			s.flight.SetLister(s.node.Catalog().ListStreams)
		}
	}
	s.startSummaries()
	ok = true
	s.log.Info("sensorium: serving", "http", s.HTTPURL(), "nats", s.natsURL, "flight", s.FlightURL(), "data", cfg.DataDir, "replica", s.bus.Consumer,
		"node", cfg.Cluster.Node)
	return s, nil
}

// ConfigError is a setting Start refused before it changed anything (a bad
// flag value, to `serve`).
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func (c *Config) setDefaults() {
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.NATSListen == "" {
		c.NATSListen = "127.0.0.1:4222"
	}
	if c.HTTPListen == "" {
		c.HTTPListen = "127.0.0.1:8080"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Replica == "" {
		c.Replica = ingest.DefaultReplica
	}
}

// prefixPattern: one or more subject tokens of which a JetStream stream name
// can also be made (BusStream).
var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// checkConfig validates every setting and reads (never writes) the files
// named by them: TLS certificate, NATS authorization, keyring from the
// environment. It runs before anything touches the disk.
func (s *Server) checkConfig() error {
	c := &s.cfg
	checkAddr := func(flag, addr string) error {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("server: %s %q: %w", flag, addr, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("server: %s %q: bad port", flag, addr)
		}
		return nil
	}
	storage := jetstream.FileStorage
	switch c.BusStorage {
	case "", "file":
	case "memory":
		storage = jetstream.MemoryStorage
	default:
		return fmt.Errorf("server: --bus-storage %q is not file or memory", c.BusStorage)
	}
	if !prefixPattern.MatchString(c.Prefix) && c.Prefix != "" {
		return fmt.Errorf("server: --prefix %q must be NATS subject tokens of A-Z a-z 0-9 _ - separated by dots", c.Prefix)
	}
	if err := ingest.ValidateReplica(c.Replica); err != nil {
		return fmt.Errorf("server: --replica: %w", err)
	}
	s.bus = ingest.BusConfig{Subjects: wire.NewSubjects(c.Prefix), Storage: storage, Consumer: c.Replica, Logger: s.log}
	if err := s.checkCluster(); err != nil {
		return err
	}
	if c.clustered() {
		shards, err := s.busShards()
		if err != nil {
			return err
		}
		s.bus.Subjects.Shards, s.bus.Replicas, s.bus.Consumer = shards, c.Cluster.BusReplicas, c.Cluster.Node
	}
	if err := checkAddr("--http", c.HTTPListen); err != nil {
		return err
	}
	if c.FlightListen != "" {
		if err := checkAddr("--flight", c.FlightListen); err != nil {
			return err
		}
	}
	if c.NATSURL != "" {
		if c.NATSAuth != "" {
			return fmt.Errorf("server: --nats-auth configures the embedded NATS server; with --nats-url, set up your NATS cluster's own authorization")
		}
		if c.BusSyncAlways {
			return fmt.Errorf("server: sync_always configures the embedded NATS server; with --nats-url, set it in your NATS server's configuration")
		}
	} else if err := checkAddr("--nats", c.NATSListen); err != nil {
		return err
	}
	if c.KeyRotation < 0 {
		return fmt.Errorf("server: --key-rotation %s is negative", c.KeyRotation)
	}
	if c.MaxPutMediaDuration < 0 {
		return fmt.Errorf("server: --max-putmedia-duration %s is negative", c.MaxPutMediaDuration)
	}
	if c.MaxRequests < 0 {
		return fmt.Errorf("server: --max-requests %d is negative", c.MaxRequests)
	}
	if c.MaxMediaConnections < 0 {
		return fmt.Errorf("server: --max-media-connections %d is negative", c.MaxMediaConnections)
	}
	if err := c.RateLimits.Check(func(l throttle.Limit) string { return "server: --" + throttle.Flag(l) }); err != nil {
		return err
	}
	if c.Credentials != "" {
		keys, err := awsauth.LoadKeysFile(c.Credentials)
		if err != nil {
			return fmt.Errorf("server: --credentials: %w", err)
		}
		s.auth = &awsauth.Verifier{Keys: keys, Region: c.Region}
		if _, ok := keys.Any(); c.clustered() && !ok {
			// The nodes sign their fills with a key the cluster's routes take.
			return fmt.Errorf("server: --credentials %s: every key has streams = or actions = lines; a cluster node needs one key without them to sign its requests to the other nodes", c.Credentials)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("server: --tls-cert and --tls-key go together")
	}
	if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return fmt.Errorf("server: --tls-cert/--tls-key: %w", err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if c.NATSAuth != "" {
		users, err := loadNATSAuth(c.NATSAuth, s.bus.Subjects)
		if err != nil {
			return err
		}
		s.users = users
	}
	if err := s.addKeyUsers(); err != nil {
		return err
	}
	if v := os.Getenv(store.KeyringEnv); v != "" {
		if _, err := store.KeyringFromEnv(v); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) startStorage() error {
	if err := os.MkdirAll(s.cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("server: create data dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(s.cfg.DataDir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("server: lock data dir: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return fmt.Errorf("server: data dir %s is in use by another sensorium process", s.cfg.DataDir)
	}
	s.lock = lock
	ring, err := s.loadKeyring()
	if err != nil {
		return err
	}
	s.ring = ring
	so := store.Options{Dir: filepath.Join(s.cfg.DataDir, "store"), Logger: s.log, Region: s.cfg.Region, Account: s.cfg.Account,
		Keyring: ring, KeyRotation: s.cfg.KeyRotation, MaxOpenSegments: s.cfg.MaxOpenSegments, PerFileSync: s.cfg.PerFileSync,
		// Always, even with RawPCM: fragments an earlier run packed stay
		// readable.
		Expand: expandPCM}
	if s.cfg.StoreOptions != nil {
		s.cfg.StoreOptions(&so)
	}
	st, err := store.Open(so)
	if err != nil {
		return err
	}
	s.st = st
	for _, r := range st.Repairs {
		s.log.Warn("sensorium: start-up repair", "stream", r.Stream, "segment", r.Segment, "offset", r.Offset,
			"dropped_bytes", r.Dropped, "reason", r.Reason, "saved", r.Saved)
	}
	s.q = query.New(query.Options{Store: st, Logger: s.log, NoSummaries: s.cfg.NoSummaries})
	if !s.cfg.NoSummaries {
		s.sum = query.NewSummarizer(query.SummarizerOptions{Store: st, Logger: s.log})
	}
	meter, err := usage.Open(usage.Options{Dir: filepath.Join(s.cfg.DataDir, "usage"), Stored: s.storedNow, Logger: s.log, Every: s.cfg.UsageEvery})
	if err != nil {
		return err
	}
	s.meter = meter
	return nil
}

// persisted is told of every fragment the ingester stores: the usage
// meter counts it and the summariser is told the stream has more to
// summarise. It runs on the ingester's goroutine and only bumps counters.
func (s *Server) persisted(stream string, bytes int) {
	s.meter.In(stream, bytes)
	if s.sum != nil {
		s.sum.Notify(stream)
	}
}

// startSummaries runs the summariser until closeAll: it first looks through
// every stream for fragments not summarised yet (those stored before a
// restart, or while summaries were off), then follows what is stored.
func (s *Server) startSummaries() {
	if s.sum == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopSum, s.sumDone = cancel, make(chan struct{})
	go func() {
		defer close(s.sumDone)
		if err := s.sum.Run(ctx); err != nil {
			s.log.Warn("sensorium: the summariser stopped; aggregate queries decode every sample", "err", err)
		}
	}()
}

// storedNow is what every stream holds, for the usage meter's byte-hours.
func (s *Server) storedNow() map[string]usage.Stored {
	out := map[string]usage.Stored{}
	next := ""
	for {
		infos, token, err := s.st.ListStreams("", 10000, next)
		if err != nil {
			return out
		}
		for _, i := range infos {
			if u, err := s.st.Usage(i.Name); err == nil {
				out[i.Name] = usage.Stored{Bytes: u.Bytes, Fragments: int64(u.Fragments)}
			}
		}
		if token == "" {
			return out
		}
		next = token
	}
}

// connectExternal connects to the NATS of --nats-url and claims the replica.
func (s *Server) connectExternal(ctx context.Context) error {
	var err error
	// The private inbox prefix keeps the pull consumer's deliveries (every
	// stream's fragments) off _INBOX.>, which a cluster may grant producers
	// for their publish acknowledgements.
	s.nc, err = nats.Connect(s.cfg.NATSURL, nats.Name("sensorium-server"), nats.MaxReconnects(-1), nats.CustomInboxPrefix(natsembed.ServerInboxPrefix))
	if err != nil {
		return fmt.Errorf("server: connect to NATS %s: %w", s.cfg.NATSURL, err)
	}
	s.natsURL = s.cfg.NATSURL
	if s.cfg.clustered() {
		s.js, err = jetstream.New(s.nc)
		return err
	}
	return s.claimReplica(ctx)
}

// isLoopback tells whether a listen host is loopback only ("localhost",
// 127.0.0.1, ::1); an empty host listens on every interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// addKeyUsers makes the credentials file's access keys NATS logins, each
// with the subjects of its grant (keyUsers), when the embedded NATS
// authenticates: with --nats-auth, or as soon as one key carries a grant —
// a grant that NATS ignored would be no grant at all, since any local
// process could still publish into every stream. Without grants and
// without --nats-auth, NATS stays as it was (open, for development).
func (s *Server) addKeyUsers() error {
	c := &s.cfg
	if s.auth == nil || (c.NATSAuth == "" && !anyGrant(s.auth.Keys)) {
		return nil
	}
	if c.NATSURL != "" {
		// An external NATS has its own authorization, which we cannot
		// change: say what it must hold (docs/NATS.md).
		if anyGrant(s.auth.Keys) {
			s.log.Warn("sensorium: the credentials file's grants hold on HTTP and Flight; NATS is external (--nats-url): give each producer there only its streams' subjects and its own inbox prefix (docs/NATS.md)")
		}
		return nil
	}
	taken := map[string]bool{}
	if s.users == nil {
		users, err := internalUsers()
		if err != nil {
			return err
		}
		s.users = users
	}
	for _, u := range s.users {
		taken[u.Name] = true
	}
	users, skipped, err := keyUsers(s.auth.Keys, s.bus.Subjects, taken)
	if err != nil {
		return err
	}
	s.users, s.natsKeys, s.natsSkipped = append(s.users, users...), len(users), skipped
	return nil
}

// startEmbedded starts the embedded NATS server, connects to it and claims
// the replica (another process may use this NATS through --nats-url).
func (s *Server) startEmbedded(ctx context.Context) error {
	host, portStr, _ := net.SplitHostPort(s.cfg.NATSListen) // checked by checkConfig
	port, _ := strconv.Atoi(portStr)
	if port == 0 {
		port = -1 // nats-server's "pick a free port"
	}
	jsKey, err := s.ring.JetStreamKey()
	if err != nil {
		return err
	}
	for _, w := range s.natsSkipped {
		s.log.Warn("sensorium: a stream pattern has no NATS form (NATS permissions are whole subject tokens): its key may not use those streams over NATS, only over HTTP and Flight; name the streams, or use \"*\"", "pattern", w)
	}
	if s.users != nil {
		s.log.Info("sensorium: NATS requires authentication", "users", len(s.users)-1, "file", s.cfg.NATSAuth, "access_keys", s.natsKeys)
	} else if !isLoopback(host) {
		s.log.Warn("sensorium: the embedded NATS server listens beyond loopback without authentication: anyone who reaches it may produce into any stream; use --nats-auth", "nats", s.cfg.NATSListen)
	}
	no := natsembed.Options{
		StoreDir: filepath.Join(s.cfg.DataDir, "nats"), Host: host, Port: port,
		SyncAlways: s.cfg.BusSyncAlways, Logger: s.log, JetStreamKey: jsKey, Users: s.users, TLS: s.tls,
	}
	if s.cfg.clustered() {
		s.clusterNATS(&no)
	}
	s.ns, err = natsembed.Start(no)
	if err != nil {
		return err
	}
	s.natsURL = s.ns.URL()
	if s.nc, err = s.ns.Connect(nats.Name("sensorium-server")); err != nil {
		return fmt.Errorf("server: connect to the embedded NATS: %w", err)
	}
	if s.cfg.clustered() {
		// A cluster node claims its name once JetStream answers, which in a
		// fresh cluster is when a majority of the nodes is up (startCluster).
		s.js, err = jetstream.New(s.nc)
		return err
	}
	return s.claimReplica(ctx)
}

// claimReplica makes sure no other live process consumes the bus as this
// replica (ingest.ClaimReplica), and holds the claim until shutdown.
func (s *Server) claimReplica(ctx context.Context) error {
	var err error
	if s.js, err = jetstream.New(s.nc); err != nil {
		return fmt.Errorf("server: JetStream: %w", err)
	}
	s.claim, err = ingest.ClaimReplica(ctx, s.nc, s.js, s.bus, s.log)
	if err != nil {
		if errors.Is(err, ingest.ErrReplicaInUse) {
			return fmt.Errorf("server: %w", err)
		}
		return fmt.Errorf("server: claim replica %s: %w", s.bus.Consumer, err)
	}
	return nil
}

// startBus ensures the bus stream and this replica's consumer, and starts
// the ingester.
func (s *Server) startBus(ctx context.Context) error {
	var storeMax uint64
	infos, _, err := s.st.ListStreams("", 10000, "")
	if err != nil {
		return err
	}
	for _, i := range infos {
		if f, ok, _ := s.st.Durable(i.Name); ok && f.Number > storeMax {
			storeMax = f.Number
		}
	}
	busStream, cons, err := ingest.EnsureBus(ctx, s.js, s.bus, storeMax)
	if err != nil {
		return err
	}
	s.in = ingest.New(ingest.Options{
		Store: s.st, NC: s.nc, Stream: busStream, Consumer: cons, Subjects: s.bus.Subjects, Limits: s.cfg.Limits, Logger: s.log,
		Replica: s.bus.Consumer, OnPersisted: s.persisted, PackPCM: !s.cfg.RawPCM,
	})
	ictx, cancel := context.WithCancel(context.Background())
	s.stopIngest, s.ingestDone = cancel, make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		err := s.in.Run(ictx)
		if err != nil && ictx.Err() == nil {
			// Said now, not at Shutdown: until then no fragment is PERSISTED.
			s.log.Error("sensorium: ingest stopped; no fragment will be PERSISTED until the server restarts", "err", err)
		}
		close(exited)
		s.ingestDone <- err
	}()
	go func() {
		select {
		case <-ictx.Done():
		case <-s.claim.Lost():
			// Another process consumes as this replica now; consuming on would
			// split the fragments between the two stores.
			cancel()
			<-exited
			s.failed <- fmt.Errorf("server: lost the claim on replica %q to another process: stopped consuming the bus; "+
				"give one of the two another --replica", s.bus.Consumer)
		}
	}()
	return nil
}

// Failed receives an error when the server can no longer ingest while it
// still serves (another process took its replica over). `serve` exits on it.
func (s *Server) Failed() <-chan error { return s.failed }

// stopIngesting stops the ingester (if it runs) and waits for it.
func (s *Server) stopIngesting() error {
	if s.stopIngest == nil {
		return nil
	}
	s.stopIngest()
	s.stopIngest = nil
	if err := <-s.ingestDone; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// listen opens the HTTP API's and Flight's listeners: a cluster node
// advertises their addresses before it serves (startCluster).
func (s *Server) listen() error {
	ln, err := net.Listen("tcp", s.cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("server: listen on %s: %w", s.cfg.HTTPListen, err)
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	s.ln = ln
	if s.cfg.FlightListen != "" {
		fl, err := net.Listen("tcp", s.cfg.FlightListen)
		if err != nil {
			return fmt.Errorf("server: --flight %s: %w", s.cfg.FlightListen, err)
		}
		s.flightLn = fl
	}
	return nil
}

// serveHTTP serves the HTTP API on the listener listen opened.
func (s *Server) serveHTTP() {
	if s.auth != nil {
		s.log.Info("sensorium: the HTTP API requires AWS Signature Version 4", "keys", s.auth.Keys.Len(), "profiles", strings.Join(s.auth.Keys.Profiles(), ","),
			"file", s.cfg.Credentials, "region", s.cfg.Region, "service", awsauth.Service)
		for _, p := range s.auth.Keys.Profiles() {
			if k, _ := s.auth.Keys.ByProfile(p); !k.Grant.Unrestricted() {
				s.log.Info("sensorium: access key narrowed by its grant", "profile", p, "access_key", k.AccessKeyID, "grant", k.Grant.String())
			}
		}
	} else if host, _, _ := net.SplitHostPort(s.cfg.HTTPListen); isLoopback(host) {
		s.log.Info("sensorium: the HTTP API does not authenticate requests (no --credentials): fine for local development on loopback", "http", s.cfg.HTTPListen)
	} else {
		s.log.Warn("sensorium: the HTTP API listens beyond loopback without authentication: anyone who reaches it may read and delete every stream; use --credentials", "http", s.cfg.HTTPListen)
	}
	s.limits = throttle.New(throttle.Options{Rates: s.cfg.RateLimits, Logger: s.log, LogEvery: s.cfg.RateLimitLogEvery})
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(s), prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	if s.node != nil {
		reg.MustRegister(newClusterCollector(s.node))
	}
	readCtx, cancel := context.WithCancel(context.Background())
	s.stopReads = cancel
	ao := api.Options{
		Store: s.st, Query: s.q, Logger: s.log, DataEndpoint: s.HTTPURL,
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), MaxMediaConnections: s.cfg.MaxMediaConnections,
		NATS: s.nc, Subjects: wire.NewSubjects(s.cfg.Prefix), Auth: s.auth,
		MaxPutMediaDuration: s.cfg.MaxPutMediaDuration, PutMediaIdle: s.cfg.PutMediaIdle, MaxRequests: s.cfg.MaxRequests,
		MaxFragmentSize: s.cfg.Limits.MaxFragmentSize, Limits: s.limits, Usage: s.meter,
	}
	if s.node != nil {
		ao.Catalog, ao.Cluster = s.node.Catalog(), &clusterAPI{s: s}
	}
	s.http = &http.Server{
		Handler:           api.New(ao),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// Every request's context ends at shutdown, so that followed GetMedia
		// responses and long queries end instead of holding shutdown up.
		BaseContext: func(net.Listener) context.Context { return readCtx },
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	ln := s.ln
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("sensorium: HTTP server stopped", "err", err)
		}
	}()
}

// HTTPURL is the base URL of the HTTP API.
func (s *Server) HTTPURL() string {
	if s.ln == nil {
		return ""
	}
	if s.tls != nil {
		return "https://" + s.ln.Addr().String()
	}
	return "http://" + s.ln.Addr().String()
}

// NATSURL is the URL producers connect to.
func (s *Server) NATSURL() string { return s.natsURL }

// Store is the server's store (tests inspect it).
func (s *Server) Store() *store.Store { return s.st }

// IngestStats are the ingester's counters (of every shard's, on a cluster node).
func (s *Server) IngestStats() ingest.Snapshot {
	if s.node != nil {
		var out ingest.Snapshot
		for _, in := range s.node.Ingesters() {
			out = out.Add(in.Stats())
		}
		return out
	}
	return s.in.Stats()
}

// Node is the server's part of its cluster (nil on a single node).
func (s *Server) Node() *cluster.Node { return s.node }

// Shutdown stops accepting requests and producers, applies what the bus has
// already delivered, fsyncs and closes everything. ctx bounds the wait for
// HTTP requests in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.once.Do(func() { err = s.shutdown(ctx) })
	return err
}

func (s *Server) shutdown(ctx context.Context) error {
	var errs []error
	if s.http != nil {
		s.stopReads()
		if err := s.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("server: HTTP shutdown: %w", err))
		}
	}
	if s.flight != nil {
		s.flight.Stop()
	}
	if err := s.stopIngesting(); err != nil {
		errs = append(errs, err)
	}
	if s.node != nil {
		errs = append(errs, s.node.Close())
		s.node = nil
	}
	errs = append(errs, s.closeAll())
	s.log.Info("sensorium: stopped")
	return errors.Join(errs...)
}

// closeAll closes whatever was started, store first so that its last fsync
// happens while the bus still holds anything unacknowledged.
func (s *Server) closeAll() error {
	var errs []error
	if s.stopSum != nil { // it reads and writes the store
		s.stopSum()
		<-s.sumDone
		s.stopSum = nil
	}
	if s.meter != nil { // saves the current hour: before the store closes
		errs = append(errs, s.meter.Close()) // a second Close does nothing
	}
	if s.st != nil {
		errs = append(errs, s.st.Close())
	}
	if s.claim != nil {
		// After the ingester stopped: until then this process consumes as the replica.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := s.claim.Release(ctx)
		cancel()
		if err != nil && s.cfg.clustered() {
			// The last nodes of a cluster to stop have no JetStream quorum
			// left to release in: the next start takes the claim over from a
			// holder that no longer answers, which is what it is for.
			s.log.Warn("sensorium: could not release this node's claim on its name (no JetStream quorum); the next start takes it over", "err", err)
			err = nil
		}
		errs = append(errs, err)
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.ns != nil {
		s.ns.Stop()
	}
	if s.ln != nil && s.http == nil {
		s.ln.Close()
	}
	if s.flightLn != nil {
		s.flightLn.Close()
	}
	if s.lock != nil {
		_ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
		s.lock.Close()
	}
	return errors.Join(errs...)
}

// loadKeyring loads the master keys: from the environment when
// store.KeyringEnv is set, else from the keyring file (created when absent).
// It logs where they came from and which is the default, never the keys.
func (s *Server) loadKeyring() (*store.Keyring, error) {
	var ring *store.Keyring
	var err error
	if v := os.Getenv(store.KeyringEnv); v != "" {
		ring, err = store.KeyringFromEnv(v)
	} else {
		path := s.cfg.Keyring
		if path == "" {
			path = filepath.Join(s.cfg.DataDir, "keyring.json")
		}
		ring, err = store.LoadKeyring(nil, path)
		if err == nil && s.cfg.Keyring == "" {
			s.log.Warn("sensorium: the master keyring is in the data folder; in production keep it elsewhere (--keyring or $"+store.KeyringEnv+") so that the data folder alone cannot be read", "keyring", path)
		}
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("sensorium: encryption at rest", "keyring", ring.Source, "default_master_key", ring.Default, "master_keys", len(ring.IDs()))
	return ring, nil
}

// FlightURL is the location of the Arrow Flight service ("" when off).
func (s *Server) FlightURL() string {
	if s.flight == nil {
		return ""
	}
	return s.flight.Location()
}
