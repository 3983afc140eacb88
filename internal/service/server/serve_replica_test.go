package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/ingest"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/store"
)

// waitFragments polls srv's store until stream holds n durable fragments.
func waitFragments(t *testing.T, srv *Server, stream string, n int) []store.FragmentInfo {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := srv.Store().Fragments(stream, 0, n+1)
		if err == nil && len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d of %d fragments of %s (err %v)", srv.cfg.Replica, len(got), n, stream, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Two servers on one NATS: the second with the first's replica name is
// refused before it touches the disk; with its own, both store every
// fragment, with the same numbers and timestamps (both materialise the bus).
func TestReplicasOnOneBus(t *testing.T) {
	ctx := context.Background()
	a := startServer(t, "")

	dirB := filepath.Join(t.TempDir(), "b")
	same, err := Start(ctx, Config{DataDir: dirB, NATSURL: a.NATSURL(), HTTPListen: "127.0.0.1:0", Logger: testLogger(t)})
	if err == nil {
		_ = same.Shutdown(ctx)
		t.Fatal("a second server on the same NATS, prefix and replica started")
	}
	if !errors.Is(err, ingest.ErrReplicaInUse) || !strings.Contains(err.Error(), "--replica") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("second server with the same replica: %q, want a one-line ErrReplicaInUse naming --replica", err)
	}
	if _, err := os.Stat(dirB); !os.IsNotExist(err) {
		t.Fatalf("the refused server touched its data folder: %v", err)
	}

	b, err := Start(ctx, Config{DataDir: dirB, NATSURL: a.NATSURL(), HTTPListen: "127.0.0.1:0", Logger: testLogger(t), Replica: "store-b"})
	if err != nil {
		t.Fatalf("second server with its own replica: %v", err)
	}
	t.Cleanup(func() { _ = b.Shutdown(ctx) })

	_, nc := newStream(t, a, "pump", 1)
	newStream(t, b, "pump", 1)
	// Only in a's catalog: b refuses its own copy, a still stores its own.
	newStream(t, a, "solo", 1)

	const n = 12
	origin := time.Now().Add(-time.Hour).UnixNano()
	for i := 0; i < n; i++ {
		if ev := publish(t, nc, "pump", scalarFragment(t, origin, int64(i)*1000, 10), "p", uint64(i+1)); ev.EventType != wire.EventPersisted {
			t.Fatalf("fragment %d: %+v", i, ev)
		}
	}
	fa, fb := waitFragments(t, a, "pump", n), waitFragments(t, b, "pump", n)
	for i := range n {
		if fa[i].Number != fb[i].Number || fa[i].ServerTime != fb[i].ServerTime || fa[i].ProducerTime != fb[i].ProducerTime || fa[i].Size != fb[i].Size {
			t.Fatalf("fragment %d differs between replicas: %+v vs %+v", i, fa[i], fb[i])
		}
	}

	publish(t, nc, "solo", scalarFragment(t, origin, 0, 10), "q", 1) // PERSISTED from a or ERROR from b, whichever is first
	waitFragments(t, a, "solo", 1)
	if _, err := b.Store().Fragments("solo", 0, 1); err == nil {
		t.Fatal("b stored a fragment of a stream it does not have")
	}
	// b answered for itself: its ERROR names it.
	deadline := time.Now().Add(10 * time.Second)
	for b.IngestStats().Errors[wire.ErrStreamNotActive] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("b never refused the fragment of a stream it does not have")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A server stopped cleanly gives its replica up: a new one takes it at once.
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	b2, err := Start(ctx, Config{DataDir: dirB, NATSURL: a.NATSURL(), HTTPListen: "127.0.0.1:0", Logger: testLogger(t), Replica: "store-b"})
	if err != nil {
		t.Fatalf("restart of replica store-b: %v", err)
	}
	t.Cleanup(func() { _ = b2.Shutdown(ctx) })
	if got := waitFragments(t, b2, "pump", n); got[n-1].Number != fa[n-1].Number {
		t.Fatalf("after restart b holds up to %d, a up to %d", got[n-1].Number, fa[n-1].Number)
	}
}

// A server whose replica claim is taken over stops consuming and says so on
// Failed: consuming on would split the fragments between two stores.
func TestReplicaClaimLost(t *testing.T) {
	srv := startServer(t, "")
	_, nc := newStream(t, srv, "pump", 1)
	origin := time.Now().Add(-time.Hour).UnixNano()
	if ev := publish(t, nc, "pump", scalarFragment(t, origin, 0, 10), "p", 1); ev.EventType != wire.EventPersisted {
		t.Fatalf("before the take-over: %+v", ev)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, ingest.ReplicaBucket(srv.bus))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, ingest.DefaultReplica, []byte(`{"id":"another"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-srv.Failed():
		if !strings.Contains(err.Error(), "--replica") {
			t.Fatalf("Failed: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a server whose replica was taken over did not report it")
	}
	// Stopped consuming: a new fragment gets no PERSISTED (it stays on the bus
	// for whoever holds the replica now); the HTTP API still answers.
	sub, err := nc.SubscribeSync(wire.NewSubjects("").Ack("pump"))
	if err != nil {
		t.Fatal(err)
	}
	msg := scalarFragment(t, origin, 1000, 10)
	if _, err := js.Publish(ctx, wire.NewSubjects("").Frag("pump"), msg); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(2 * time.Second); err == nil {
		t.Fatalf("the server consumed after losing its replica: %s", m.Data)
	}
	if code, _, _ := call(t, srv, "describeStream", map[string]string{"StreamName": "pump"}); code != 200 {
		t.Fatalf("describeStream after the take-over: %d", code)
	}
}
