package replicate

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/service/replicate/replicatetest"
	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/sdk"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// testLogger logs at warning level, or at $SENSORIUM_TEST_LOG's.
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	_ = level.UnmarshalText([]byte(os.Getenv("SENSORIUM_TEST_LOG")))
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

// startServer runs a real server on loopback ports with its data in dir;
// opts change its configuration (its limits, say).
func startServer(t testing.TB, dir string, opts ...func(*server.Config)) *server.Server {
	t.Helper()
	cfg := server.Config{DataDir: dir, NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: testLogger(t)}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	return srv
}

// producer is a replicatetest.Producer that fails the test on error.
type producer struct {
	t testing.TB
	*replicatetest.Producer
}

func newProducer(t testing.TB, natsURL, stream string, origin time.Time, size int) producer {
	t.Helper()
	p, err := replicatetest.NewProducer(natsURL, stream, origin, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return producer{t, p}
}

func (p producer) put(n int) {
	p.t.Helper()
	if err := p.Put(n, 30*time.Second); err != nil {
		p.t.Fatal(err)
	}
}

// checkExactlyOnce fails the test unless the centre holds every edge
// fragment of the stream once (replicatetest.Compare); it returns how many
// the edge holds.
func checkExactlyOnce(t testing.TB, edge, centre *sdk.Client, edgeStream, centreStream string) int {
	t.Helper()
	n, err := replicatetest.Compare(context.Background(), edge, centre, edgeStream, centreStream)
	if err != nil {
		t.Fatalf("%s → %s: %v", edgeStream, centreStream, err)
	}
	return n
}
