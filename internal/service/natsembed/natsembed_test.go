package natsembed

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
)

// Connections past MaxConnections are refused with nats-server's own error,
// and a closed one frees its place.
func TestMaxConnections(t *testing.T) {
	s, err := Start(Options{StoreDir: t.TempDir(), Port: -1, MaxConnections: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	a, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	b, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// The server answers "-ERR 'maximum connections exceeded'" and closes;
	// the client sees that or, when it is still writing its CONNECT, the
	// broken pipe.
	if c, err := nats.Connect(s.URL(), nats.NoReconnect()); err == nil {
		c.Close()
		t.Fatal("a third connection with MaxConnections 2")
	} else if msg := strings.ToLower(err.Error()); !strings.Contains(msg, "maximum connections exceeded") && !strings.Contains(msg, "broken pipe") && !strings.Contains(msg, "reset") {
		t.Fatalf("third connection: %v", err)
	}
	a.Close()
	deadline := 50
	for {
		c, err := nats.Connect(s.URL(), nats.NoReconnect())
		if err == nil {
			c.Close()
			break
		}
		if deadline--; deadline == 0 {
			t.Fatalf("a closed connection did not free its place: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestShardOfMatchesNATS: the server's subject mapping (nats-server's
// partition function) sends every stream's fragments to the shard that
// wire.Subjects.ShardOf names, for names with dots, dashes and underscores.
func TestShardOfMatchesNATS(t *testing.T) {
	for _, shards := range []int{2, 3, 7} {
		subs := wire.Subjects{Prefix: "sensorium", Shards: shards}
		src, dst := subs.ShardMapping()
		s, err := Start(Options{StoreDir: t.TempDir(), Port: -1, Mappings: map[string]string{src: dst}})
		if err != nil {
			t.Fatal(err)
		}
		nc, err := s.Connect()
		if err != nil {
			t.Fatal(err)
		}
		sub, err := nc.SubscribeSync(subs.Prefix + ".bus.>")
		if err != nil {
			t.Fatal(err)
		}
		for i := range 200 {
			name := fmt.Sprintf("pump-%d.line_%d", i, i*7)
			if err := nc.Publish(subs.Frag(name), nil); err != nil {
				t.Fatal(err)
			}
			m, err := sub.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("%s.bus.%d.%s", subs.Prefix, subs.ShardOf(name), wire.SubjectToken(name))
			if m.Subject != want {
				t.Fatalf("%d shards: %s went to %s; ShardOf says %s", shards, name, m.Subject, want)
			}
			if got, marker, ok := subs.ParseBus(m.Subject); !ok || marker || got != name {
				t.Fatalf("ParseBus(%s) = %q, %v, %v", m.Subject, got, marker, ok)
			}
		}
		nc.Close()
		s.Stop()
	}
}
