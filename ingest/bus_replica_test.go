package ingest

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/service/natsembed"
)

// claimer is one "process": its own connection to a shared NATS server.
func claimer(t *testing.T, ns *natsembed.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// embeddedBus starts an embedded NATS server (not listening) with opts'
// storage limit and returns a connection to it; both end with the test.
func embeddedBus(t *testing.T, opts natsembed.Options) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	if opts.StoreDir == "" {
		opts.StoreDir = t.TempDir()
	}
	opts.DontListen = true
	ns, err := natsembed.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func quietLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func TestReplicaClaim(t *testing.T) {
	ns, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), DontListen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	ctx := context.Background()
	cfg := BusConfig{Consumer: "r1"}

	nc1, js1 := claimer(t, ns)
	c1, err := ClaimReplica(ctx, nc1, js1, cfg, quietLog(t))
	if err != nil {
		t.Fatal(err)
	}

	// A live holder: a second process is refused and told what to do.
	nc2, js2 := claimer(t, ns)
	if _, err := ClaimReplica(ctx, nc2, js2, cfg, quietLog(t)); !errors.Is(err, ErrReplicaInUse) {
		t.Fatalf("second claim of a held replica: %v, want ErrReplicaInUse", err)
	}
	// Another name is another replica.
	c2, err := ClaimReplica(ctx, nc2, js2, BusConfig{Consumer: "r2"}, quietLog(t))
	if err != nil {
		t.Fatalf("claim of another replica name: %v", err)
	}

	// Released: the next process gets it at once.
	if err := c1.Release(ctx); err != nil {
		t.Fatal(err)
	}
	nc3, js3 := claimer(t, ns)
	c3, err := ClaimReplica(ctx, nc3, js3, cfg, quietLog(t))
	if err != nil {
		t.Fatalf("claim after release: %v", err)
	}

	// A holder that died without releasing (its connection is gone, the key
	// is still there) is taken over, and the old claim is marked lost.
	nc3.Close()
	nc4, js4 := claimer(t, ns)
	c4, err := ClaimReplica(ctx, nc4, js4, cfg, quietLog(t))
	if err != nil {
		t.Fatalf("claim over a dead holder: %v", err)
	}
	if c4.Holder.ID == c3.Holder.ID {
		t.Fatal("same claim id twice")
	}

	// A holder whose key is taken over while it runs learns it from Lost.
	select {
	case <-c2.Lost():
		t.Fatal("claim r2 lost with nobody taking it")
	default:
	}
	kv, err := js4.KeyValue(ctx, ReplicaBucket(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "r2", []byte(`{"id":"someone-else"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c2.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("a claim taken over by another process was not reported lost")
	}
	// Releasing a lost claim leaves the new holder's key alone.
	if err := c2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "r2"); err != nil || string(e.Value()) != `{"id":"someone-else"}` {
		t.Fatalf("after releasing a lost claim the key is %v, %v", e, err)
	}
	if err := c4.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestValidateReplica(t *testing.T) {
	for _, ok := range []string{"store", "store-b", "R_2", DefaultReplica} {
		if err := ValidateReplica(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a.b", "a b", "a*", "a>", "a/b", strings.Repeat("a", 65)} {
		if err := ValidateReplica(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A NATS server with less storage than the default bus asks for (a gateway
// with a small disk) still gets a bus: a smaller one, which it can hold.
func TestBusShrinksToFitStorage(t *testing.T) {
	_, js := embeddedBus(t, natsembed.Options{MaxStore: 300 << 20})
	ctx := context.Background()
	for range 2 { // created, then updated at the next start
		bs, _, err := EnsureBus(ctx, js, BusConfig{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := bs.CachedInfo().Config.MaxBytes; got > 300<<20 || got < 100<<20 {
			t.Fatalf("bus MaxBytes %d MiB on a server with 300 MiB of storage", got>>20)
		}
	}
	if _, _, err := EnsureBus(ctx, js, BusConfig{MaxBytes: 16 << 20, Consumer: "other"}, 0); err != nil {
		t.Fatalf("a bus already small enough: %v", err)
	}
}

// A bus that ends below the store's fragments (a power cut took its tail)
// is moved past them when nothing left in it is still wanted, and left to
// the operator when another store replica has not applied what it holds.
func TestBusBelowTheStore(t *testing.T) {
	_, js := embeddedBus(t, natsembed.Options{})
	ctx := context.Background()
	cfg := BusConfig{Logger: quietLog(t)}
	if _, _, err := EnsureBus(ctx, js, cfg, 0); err != nil {
		t.Fatal(err)
	}
	subjects := wire.NewSubjects("")
	subj := subjects.Frag("s")
	for range 3 {
		if _, err := js.Publish(ctx, subj, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	// The store holds fragment 10; the bus ends at 3, its messages unapplied
	// by a second replica.
	other := BusConfig{Consumer: "other", Logger: quietLog(t)}
	if _, _, err := EnsureBus(ctx, js, other, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := EnsureBus(ctx, js, cfg, 10); err == nil || !strings.Contains(err.Error(), "consumer other has not applied") {
		t.Fatalf("a bus below the store with another replica's messages in it: %v, want a refusal naming the replica", err)
	}
	if err := js.DeleteConsumer(ctx, subjects.BusShard(0), "other"); err != nil {
		t.Fatal(err)
	}
	bs, _, err := EnsureBus(ctx, js, cfg, 10)
	if err != nil {
		t.Fatalf("a bus below the store, nothing in it wanted: %v", err)
	}
	if st := bs.CachedInfo().State; st.LastSeq != 10 || st.FirstSeq != 11 {
		t.Fatalf("bus moved to first %d last %d, want 11 and 10", st.FirstSeq, st.LastSeq)
	}
	ack, err := js.Publish(ctx, subj, []byte("y"))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Sequence != 11 {
		t.Fatalf("the next message got sequence %d, want 11", ack.Sequence)
	}
}
