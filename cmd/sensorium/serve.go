package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/internal/service/throttle"
	"github.com/sensorium-io/sensorium/store"
)

func newServeCmd() *cobra.Command {
	var cfg server.Config
	var logLevel, logFormat, pprofAddr string
	var pprofPublic bool
	var summaries, packPCM bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Sensorium server (embedded NATS, store, HTTP API)",
		Long: `Run a Sensorium server: an embedded NATS server with JetStream (or a
connection to an external one), the durable store, the ingester that applies
fragments from the bus, and the HTTP API. SIGINT or SIGTERM stops it cleanly:
it stops accepting, applies what it has received, fsyncs and exits 0.

Store replicas: several servers, each with its own data folder, may consume
one bus (--nats-url to the same NATS, the same --prefix), each under its own
--replica name, and so each keep every fragment. They must be given the same
streams (create each stream on every replica). A second process with a
--replica that a live one already holds is refused at start-up: on one
consumer the two would split the fragments between their stores.

Authentication: with --credentials FILE every HTTP request must be signed
with AWS Signature Version 4 (service kinesisvideo, the --region), by an
access key of FILE, as the AWS SDKs and CLI sign for Kinesis Video Streams.
FILE has the format of ~/.aws/credentials:

  [camera-1]
  aws_access_key_id = AKIDCAMERA1EXAMPLE
  aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

Without it the API answers anyone, which is meant for development on
loopback; start-up says so.

Cluster: --node NAME makes this process one node of a cluster whose NATS
servers route to each other (--cluster, the address this node takes routes
on; --routes, the other nodes' route URLs). Any node takes producers,
control-plane calls and reads; each stream is stored by 3 nodes (fewer when
there are fewer), and PERSISTED means a majority of them fsynced it. A
fresh cluster waits until a majority of its nodes is up. A single node's
data and streams carry over when it is restarted as the first node of a
cluster. docs/CLUSTER.md has the promises, the failure modes and the
operations.`,
		Example: `  sensorium serve
  sensorium serve --credentials /etc/sensorium/credentials --http 0.0.0.0:8080
  sensorium serve --data /var/lib/sensorium --http 0.0.0.0:8080 --nats 0.0.0.0:4222
  sensorium serve --nats-url nats://nats-1:4222,nats://nats-2:4222
  sensorium serve --nats-url nats://nats-1:4222 --replica store-b --data /var/lib/sensorium-b

  # three nodes on one machine (each in its own terminal)
  sensorium serve --node a --data ./a --http 127.0.0.1:8080 --nats 127.0.0.1:4222 --flight 127.0.0.1:8815 \
    --cluster 127.0.0.1:6222 --routes nats://127.0.0.1:6223,nats://127.0.0.1:6224
  sensorium serve --node b --data ./b --http 127.0.0.1:8081 --nats 127.0.0.1:4223 --flight 127.0.0.1:8816 \
    --cluster 127.0.0.1:6223 --routes nats://127.0.0.1:6222,nats://127.0.0.1:6224
  sensorium serve --node c --data ./c --http 127.0.0.1:8082 --nats 127.0.0.1:4224 --flight 127.0.0.1:8817 \
    --cluster 127.0.0.1:6224 --routes nats://127.0.0.1:6222,nats://127.0.0.1:6223`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel, logFormat)
			if err != nil {
				return err
			}
			cfg.Logger = log
			cfg.NoSummaries = !summaries
			cfg.RawPCM = !packPCM
			if pprofAddr != "" {
				_, stop, err := startPprof(pprofAddr, pprofPublic, log)
				if err != nil {
					return err
				}
				defer stop()
			}
			srv, err := server.Start(cmd.Context(), cfg)
			var bad *server.ConfigError
			if errors.As(err, &bad) {
				return usagef("%s", bad.Err) // exit 2, like any bad flag value
			}
			if err != nil {
				return err
			}
			var failed error
			select {
			case <-cmd.Context().Done():
			case failed = <-srv.Failed():
				log.Error("sensorium: " + failed.Error())
			}
			log.Info("sensorium: stopping")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return errors.Join(failed, srv.Shutdown(ctx))
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", "./data", "data folder (store and embedded JetStream)")
	f.StringVar(&cfg.NATSListen, "nats", "127.0.0.1:4222", "client address of the embedded NATS server")
	f.StringVar(&cfg.NATSURL, "nats-url", "", "connect to this NATS (cluster) instead of embedding one")
	f.StringVar(&cfg.HTTPListen, "http", "127.0.0.1:8080", "address of the HTTP API")
	f.StringVar(&cfg.FlightListen, "flight", "127.0.0.1:8815", "address of the Arrow Flight service (empty: off)")
	f.StringVar(&cfg.Prefix, "prefix", "sensorium", "first token of every NATS subject")
	f.StringVar(&cfg.BusStorage, "bus-storage", "file", "JetStream storage of the ingest bus: file or memory")
	f.StringVar(&cfg.Replica, "replica", "store", "name of this store replica: its durable consumer of the bus; replicas that each keep a copy consume one bus under different names")
	f.StringVar(&cfg.Region, "region", "us-east-1", "region in stream ARNs")
	f.StringVar(&cfg.Account, "account", "000000000000", "account in stream ARNs")
	f.StringVar(&cfg.Keyring, "keyring", "", "master keyring file (default <data>/keyring.json, created at first start; $"+store.KeyringEnv+" overrides it)")
	f.DurationVar(&cfg.KeyRotation, "key-rotation", 45*time.Minute, "how long a stream's data key seals new fragments before it is replaced")
	f.StringVar(&cfg.Credentials, "credentials", "", "access keys the HTTP API accepts, in the AWS shared credentials file format (mode 600); every request must then be SigV4-signed; a section's streams = and actions = lines narrow its key (README, Authentication). Empty: no authentication, for loopback only")
	f.StringVar(&cfg.NATSAuth, "nats-auth", "", "users of the embedded NATS and the streams each may produce into or consume (JSON, mode 600; docs/NATS.md)")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "certificate (PEM) for TLS on the HTTP API and the embedded NATS")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "its private key (PEM)")
	f.IntVar(&cfg.MaxRequests, "max-requests", 4096, "HTTP requests served at once, long-lived ones included (ClientLimitExceededException past it)")
	f.StringVar(&pprofAddr, "pprof", "", "serve Go runtime profiles (net/http/pprof) on this loopback address, e.g. 127.0.0.1:6060, for `go tool pprof`")
	f.BoolVar(&pprofPublic, "pprof-public", false, "allow --pprof on an address that is not loopback (the profiles have no authentication)")
	f.BoolVar(&cfg.PerFileSync, "per-file-sync", false, "after each ingest batch, fsync every stream's segment file instead of flushing the store's file system once (syncfs, Linux 5.8+); for a store whose file system is shared with heavy writers")
	f.BoolVar(&packPCM, "pack-pcm", true, "store PCM audio (ffmpeg's pcm_s16le, cameras', the SDK's audio tracks) losslessly coded, at about FLAC -8's size; readers still get the very PCM bytes put (internal/platform/pcmpack/FORMAT.md)")
	f.BoolVar(&summaries, "summaries", true, "keep per-second summaries (min, max, sum, sum of squares) of numeric tracks of 1,000 samples a second or more, so that aggregate queries on whole-second windows read them instead of every sample (query/SUMMARIES.md); they use at most a quarter of a core, while there is a backlog, and about 35 bytes a second per channel on disk")
	f.IntVar(&cfg.MaxOpenSegments, "max-open-segments", store.DefaultMaxOpenSegments, "active segment files kept open across all streams; past it the least recently written streams' files are closed and reopened at their next write")
	f.IntVar(&cfg.MaxMediaConnections, "max-media-connections", 16, "GetMedia responses open at once per stream (ConnectionLimitExceededException past it)")
	rl, dr := &cfg.RateLimits, throttle.DefaultRates()
	f.Float64Var(&rl.PutMediaConnections, throttle.Flag(throttle.PutMediaConnections), dr.PutMediaConnections, "PutMedia calls per second per stream (ClientLimitExceededException past it; stream tag "+throttle.PutMediaConnections.Tag()+" overrides it)")
	f.Float64Var(&rl.PutMediaBytes, throttle.Flag(throttle.PutMediaBytes), dr.PutMediaBytes, "PutMedia body bytes per second per stream; past it the body is read more slowly, never refused (stream tag "+throttle.PutMediaBytes.Tag()+" overrides it)")
	f.Float64Var(&rl.GetMediaConnections, throttle.Flag(throttle.GetMediaConnections), dr.GetMediaConnections, "GetMedia calls per second per stream (ClientLimitExceededException past it; stream tag "+throttle.GetMediaConnections.Tag()+" overrides it)")
	f.Float64Var(&rl.GetMediaBytes, throttle.Flag(throttle.GetMediaBytes), dr.GetMediaBytes, "GetMedia response bytes per second per connection; past it the response is written more slowly (stream tag "+throttle.GetMediaBytes.Tag()+" overrides it)")
	f.Float64Var(&rl.ControlPlane, throttle.Flag(throttle.ControlPlane), dr.ControlPlane, "control-plane calls per second on this server, every operation together (ClientLimitExceededException past it; the managed service allows 50 per account)")
	f.DurationVar(&cfg.MaxPutMediaDuration, "max-putmedia-duration", 24*time.Hour, "a PutMedia session ends at its first cluster after this long (MAX_CONNECTION_DURATION_REACHED, 4003); the producer reconnects")
	cc := &cfg.Cluster
	f.StringVar(&cc.Node, "node", "", "this node's name in a cluster, unique and the same at every start (makes this process a cluster node)")
	f.StringVar(&cc.Listen, "cluster", "", "address the embedded NATS server takes routes from the other nodes on, e.g. 127.0.0.1:6222")
	f.StringSliceVar(&cc.Routes, "routes", nil, "the other nodes' route URLs, comma-separated: nats://host:port,…")
	f.StringVar(&cc.Name, "cluster-name", "sensorium", "the NATS cluster's name, the same on every node")
	f.IntVar(&cc.BusReplicas, "bus-replicas", 0, "JetStream replicas of the bus and the cluster's buckets (default min(3, nodes in --routes + 1))")
	f.IntVar(&cc.BusShards, "bus-shards", 0, "JetStream streams the bus is cut into, fixed when the cluster is first started (default 3; 1 with --nats-url)")
	f.IntVar(&cc.AckReplicas, "ack-replicas", 0, "replicas of a stream that must have fsynced a fragment before PERSISTED (default a majority)")
	f.IntVar(&cc.StreamReplicas, "stream-replicas", 0, "nodes that store each new stream (default min(3, nodes))")
	f.DurationVar(&cc.ReplaceAfter, "replace-after", 5*time.Minute, "how long a node may be silent before its streams get a new replica and its bus consumers are removed")
	f.StringVar(&cc.Advertise, "advertise", "", "host other nodes reach this one at, when --http/--nats/--flight listen on every interface (default the host name)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "text or json")
	return cmd
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, usagef("--log-format %q is not text or json", format)
}
