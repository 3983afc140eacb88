package server

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/service/throttle"
	"github.com/sensorium-io/sensorium/store"
)

// A bad setting is refused before anything is written: the folder that was
// to hold the data stays empty.
func TestBadConfigChangesNothing(t *testing.T) {
	auth := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(auth, []byte(`{"users":[]}`), 0o644); err != nil { // group-readable: refused
		t.Fatal(err)
	}
	dotted := filepath.Join(t.TempDir(), "dotted.json")
	if err := os.WriteFile(dotted, []byte(`{"users":[{"user":"gw.7","password":"p","produce":["a"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	badGrant := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(badGrant, []byte("[cam]\naws_access_key_id = AKIDCAMEXAMPLE0001\naws_secret_access_key = cam-secret-0123456789\nactions = PutMedia, Describe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	allGranted := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(allGranted, []byte("[cam]\naws_access_key_id = AKIDCAMEXAMPLE0001\naws_secret_access_key = cam-secret-0123456789\nstreams = cam\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  Config
		env  string // store.KeyringEnv
		want string // in the error
	}{
		{"bus storage", Config{BusStorage: "tape"}, "", "--bus-storage"},
		{"prefix with a space", Config{Prefix: "a b"}, "", "--prefix"},
		{"prefix with a wildcard", Config{Prefix: "a.>"}, "", "--prefix"},
		{"prefix with an empty token", Config{Prefix: "a..b"}, "", "--prefix"},
		{"replica with a dot", Config{Replica: "a.b"}, "", "--replica"},
		{"nats address", Config{NATSListen: "nowhere"}, "", "--nats"},
		{"nats port", Config{NATSListen: "127.0.0.1:http"}, "", "--nats"},
		{"nats port range", Config{NATSListen: "127.0.0.1:70000"}, "", "--nats"},
		{"http address", Config{HTTPListen: "8080"}, "", "--http"},
		{"flight address", Config{FlightListen: "flight"}, "", "--flight"},
		{"auth with external nats", Config{NATSURL: "nats://127.0.0.1:1", NATSAuth: auth}, "", "--nats-auth"},
		{"sync_always with external nats", Config{NATSURL: "nats://127.0.0.1:1", BusSyncAlways: true}, "", "sync_always"},
		{"negative key rotation", Config{KeyRotation: -time.Minute}, "", "--key-rotation"},
		{"negative media connections", Config{MaxMediaConnections: -1}, "", "--max-media-connections"},
		{"negative PutMedia byte rate", Config{RateLimits: throttle.Rates{PutMediaBytes: -1}}, "", "--putmedia-bytes-per-second"},
		{"infinite control-plane rate", Config{RateLimits: throttle.Rates{ControlPlane: math.Inf(1)}}, "", "--control-plane-per-second"},
		{"cert without key", Config{TLSCert: "cert.pem"}, "", "--tls-key"},
		{"missing cert", Config{TLSCert: "/nonexistent/cert.pem", TLSKey: "/nonexistent/key.pem"}, "", "--tls-cert"},
		{"auth file readable by others", Config{NATSAuth: auth}, "", "chmod 600"},
		{"missing auth file", Config{NATSAuth: "/nonexistent/auth.json"}, "", "--nats-auth"},
		{"producer name that cannot be an inbox token", Config{NATSAuth: dotted}, "", `user "gw.7" produces`},
		{"unknown action in a grant", Config{Credentials: badGrant}, "", `[cam] (line 4): unknown action "Describe"`},
		{"a cluster node without a key free of grants", Config{Credentials: allGranted, Cluster: ClusterConfig{Node: "n1", Listen: "127.0.0.1:0", Routes: []string{"nats://127.0.0.1:1"}}}, "", "a cluster node needs one key without them"},
		{"bad keyring in the environment", Config{}, "not a keyring", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "" {
				t.Setenv(store.KeyringEnv, c.env)
			}
			root := t.TempDir()
			cfg := c.cfg
			cfg.DataDir = filepath.Join(root, "data")
			if cfg.NATSListen == "" {
				cfg.NATSListen = "127.0.0.1:0"
			}
			if cfg.HTTPListen == "" {
				cfg.HTTPListen = "127.0.0.1:0"
			}
			cfg.Logger = testLogger(t)
			srv, err := Start(context.Background(), cfg)
			if err == nil {
				_ = srv.Shutdown(context.Background())
				t.Fatal("started")
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("error %q is not a ConfigError", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not name %q", err, c.want)
			}
			if entries, _ := os.ReadDir(root); len(entries) != 0 {
				t.Errorf("refused, but it wrote %s", entries[0].Name())
			}
		})
	}
	// The check above can fail: a good setting writes the folder.
	root := t.TempDir()
	srv := startServer(t, filepath.Join(root, "data"))
	_ = srv.Shutdown(context.Background())
	if entries, _ := os.ReadDir(root); len(entries) == 0 {
		t.Fatal("a server that started wrote nothing")
	}
}
