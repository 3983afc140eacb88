// Package natsembed runs the NATS server with JetStream inside the Sensorium
// process: the embedded default that makes one binary enough on one machine.
// Tests use it too, so that they exercise the same configuration as serve.
package natsembed

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// DefaultMaxPayload is the embedded server's largest message. nats-server's
// default is 1 MB; one fragment is one message, so we raise it deliberately —
// to 8 MiB, the size nats-server still recommends, well below the 32 MB where
// users report trouble (nats-server#6797). A larger fragment is refused with
// MAX_FRAGMENT_SIZE_REACHED.
const DefaultMaxPayload = 8 << 20

// ServerInboxPrefix is the inbox prefix of the server's own connections
// (Connect). Its JetStream pull consumer receives every fragment of every
// stream on inbox subjects: were they under "_INBOX", a client allowed
// "_INBOX.>" (an external NATS's producers, often) could read every stream.
// No user of an authorization is ever given this prefix; each has its own
// (UserInboxPrefix).
const ServerInboxPrefix = "_SENSORIUM_INBOX"

// UserInboxPrefix is the inbox prefix of a NATS user of an authorization
// (natsembed.User): each user may subscribe to its own inboxes only,
// "_INBOX_<user>.>", where JetStream answers its publishes, so that one
// producer does not see another's publish acknowledgements. The user's
// client connects with nats.CustomInboxPrefix(UserInboxPrefix(user)). user
// must be one subject token (ValidInboxUser).
func UserInboxPrefix(user string) string { return "_INBOX_" + user }

// ValidInboxUser reports whether a user name can be an inbox prefix's
// token: letters, digits, _ and -.
func ValidInboxUser(user string) bool {
	if user == "" {
		return false
	}
	for _, c := range user {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Options configure the embedded server.
type Options struct {
	StoreDir   string // JetStream file storage; required
	Host       string // default 127.0.0.1
	Port       int    // default 4222; -1 picks a free port
	MaxPayload int32  // default DefaultMaxPayload
	// SyncAlways makes JetStream fsync every message (sync_always). The store's
	// own fsync is the durability point, so this is off by default; the
	// benchmark turns it on for the like-for-like peer.
	SyncAlways bool
	// JetStreamKey, when set, makes JetStream encrypt its files at rest
	// (AES-GCM, keys derived from this value by nats-server), so the bus
	// holds fragments on disk only as ciphertext until the store has them.
	JetStreamKey string
	// MaxStore caps JetStream's file storage (max_file_store); default
	// nats-server's: 75% of the disk's free space when it starts.
	MaxStore int64
	// MaxConnections bounds the client connections open at once; a client
	// past it is refused ("maximum connections exceeded"). Default
	// nats-server's, 65536.
	MaxConnections int
	// DontListen serves in-process connections only (no TCP port).
	DontListen bool
	Logger     *slog.Logger
	// Users, when not empty, turns authentication on: only these users may
	// connect, each with its permissions. Connect (in-process) then logs in
	// as Users[0], which should be the server's own, unrestricted user.
	Users []User
	// TLS, when set, makes the client port require TLS.
	TLS *tls.Config

	// Name is the server's name: a cluster's node name, unique in the
	// cluster and the same at every start (JetStream knows its peers by
	// it). Default "sensorium".
	Name string
	// Cluster, when set, makes this server one node of a NATS cluster with
	// clustered JetStream (Raft).
	Cluster *ClusterOptions
	// Mappings are subject mappings of the server's account, source to
	// destination (the bus's shard mapping).
	Mappings map[string]string
}

// ClusterOptions are the route settings of a cluster node.
type ClusterOptions struct {
	Name   string   // the cluster's name, the same on every node; default "sensorium"
	Host   string   // route listener
	Port   int      // -1 picks a free port
	Routes []string // the other nodes' route URLs (nats://host:port)
	// PingInterval is how often a route is pinged; a node that stops
	// answering (SIGSTOP, a cut cable) is dropped after MaxPingsOut missed
	// pings. Default 1 s and 3: a stalled node is noticed in seconds, not
	// nats-server's default of minutes.
	PingInterval time.Duration
	MaxPingsOut  int
}

// User is a NATS login and what it may publish and subscribe to (subject
// patterns; nil allows everything).
type User struct {
	Name, Password     string // the password may be a bcrypt hash ("$2a$…")
	Publish, Subscribe []string
}

// Server is a running embedded NATS server.
type Server struct {
	*server.Server
	opts Options
}

// Start starts the server and waits until it accepts connections.
func Start(o Options) (*Server, error) {
	if o.StoreDir == "" {
		return nil, errors.New("natsembed: StoreDir is required")
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = 4222
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = DefaultMaxPayload
	}
	if o.Name == "" {
		o.Name = "sensorium"
	}
	sopts := &server.Options{
		ServerName:         o.Name,
		Host:               o.Host,
		Port:               o.Port,
		JetStream:          true,
		StoreDir:           o.StoreDir,
		MaxPayload:         o.MaxPayload,
		MaxPending:         int64(o.MaxPayload) * 8,
		SyncAlways:         o.SyncAlways,
		DontListen:         o.DontListen,
		NoSigs:             true, // the Sensorium process owns signal handling
		JetStreamMaxMemory: -1,
		JetStreamMaxStore:  -1,
	}
	if o.MaxConnections > 0 {
		sopts.MaxConn = o.MaxConnections
	}
	if o.MaxStore > 0 {
		sopts.JetStreamMaxStore = o.MaxStore
	}
	if o.JetStreamKey != "" {
		sopts.JetStreamKey, sopts.JetStreamCipher = o.JetStreamKey, server.AES
	}
	for _, u := range o.Users {
		su := &server.User{Username: u.Name, Password: u.Password}
		if u.Publish != nil || u.Subscribe != nil {
			su.Permissions = &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: u.Publish},
				Subscribe: &server.SubjectPermission{Allow: u.Subscribe},
			}
		}
		sopts.Users = append(sopts.Users, su)
	}
	if o.TLS != nil {
		sopts.TLSConfig, sopts.TLS, sopts.TLSVerify = o.TLS, true, o.TLS.ClientAuth == tls.RequireAndVerifyClientCert
	}
	if c := o.Cluster; c != nil {
		if c.Name == "" {
			c.Name = "sensorium"
		}
		if c.PingInterval <= 0 {
			c.PingInterval = time.Second
		}
		if c.MaxPingsOut <= 0 {
			c.MaxPingsOut = 3
		}
		sopts.Cluster = server.ClusterOpts{Name: c.Name, Host: c.Host, Port: c.Port, PingInterval: c.PingInterval, MaxPingsOut: c.MaxPingsOut}
		for _, r := range c.Routes {
			u, err := url.Parse(r)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("natsembed: route %q is not a URL such as nats://10.0.0.2:6222", r)
			}
			sopts.Routes = append(sopts.Routes, u)
		}
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	for src, dst := range o.Mappings {
		if err := ns.GlobalAccount().AddMapping(src, dst); err != nil {
			return nil, fmt.Errorf("natsembed: mapping %s → %s: %w", src, dst, err)
		}
	}
	if o.Logger != nil {
		ns.SetLoggerV2(&logAdapter{l: o.Logger.With("component", "nats")}, false, false, false)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("natsembed: server not ready within 30s (is %s:%d free?)", o.Host, o.Port)
	}
	return &Server{Server: ns, opts: o}, nil
}

// URL is the client URL of the server ("" when it does not listen).
func (s *Server) URL() string {
	if s.opts.DontListen {
		return ""
	}
	addr, ok := s.Addr().(*net.TCPAddr)
	if !ok {
		return s.ClientURL()
	}
	return "nats://" + net.JoinHostPort(addr.IP.String(), strconv.Itoa(addr.Port))
}

// Connect opens an in-process client connection for the server itself,
// with its private inbox prefix (ServerInboxPrefix).
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.InProcessServer(s.Server), nats.CustomInboxPrefix(ServerInboxPrefix)}, opts...)
	if len(s.opts.Users) > 0 {
		opts = append(opts, nats.UserInfo(s.opts.Users[0].Name, s.opts.Users[0].Password))
	}
	return nats.Connect("", opts...)
}

// ClusterURL is the URL of the route listener ("" when not clustered).
func (s *Server) ClusterURL() string {
	if s.opts.Cluster == nil {
		return ""
	}
	addr := s.ClusterAddr()
	if addr == nil {
		return ""
	}
	return "nats://" + net.JoinHostPort(addr.IP.String(), strconv.Itoa(addr.Port))
}

// SetMapping replaces a subject mapping of the server's account.
func (s *Server) SetMapping(src, dst string) error { return s.GlobalAccount().AddMapping(src, dst) }

// Stop shuts the server down and waits for it.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}

type logAdapter struct{ l *slog.Logger }

func (a *logAdapter) Noticef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a *logAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a *logAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *logAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *logAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a *logAdapter) Tracef(format string, v ...any)  {}
