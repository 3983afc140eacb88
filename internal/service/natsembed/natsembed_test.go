package natsembed

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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
