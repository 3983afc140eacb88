package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/internal/service/natsembed"
	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/store"
)

// TestPlacementKeepsTheVersion: moving a stream's copies (SetReplicas, as
// re-placement and growing an under-replicated stream do) leaves the
// stream's version alone, so that a user's update with the CurrentVersion
// just read still succeeds; an update of what DescribeStream shows changes
// it.
func TestPlacementKeepsTheVersion(t *testing.T) {
	ctx := context.Background()
	ns, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), DontListen: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Stop()
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "catalog-test"})
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "nodes-test"})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	reg, err := StartRegistry(ctx, RegistryOptions{KV: nodes, NC: nc, Self: NodeInfo{Name: "a", Started: time.Now()}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	ring, err := store.LoadKeyring(nil, filepath.Join(t.TempDir(), "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := OpenCatalog(ctx, CatalogOptions{KV: kv, NC: nc, Registry: reg, Keyring: ring, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	info, err := cat.CreateStream(ctx, store.CreateStreamInput{Name: "s", RetentionHours: 24})
	if err != nil {
		t.Fatal(err)
	}
	e, ok, err := cat.Lookup(ctx, "s")
	if err != nil || !ok {
		t.Fatalf("lookup: %v, %v", ok, err)
	}
	if err := cat.SetReplicas(ctx, "s", e.Replicas, []string{"a", "b", "c"}); err != nil {
		t.Fatal(err)
	}
	// The catalog's view follows the bucket through its watcher.
	poll.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
		moved, _, err := cat.Lookup(ctx, "s")
		if err != nil {
			return err
		}
		if len(moved.Replicas) != 3 {
			return fmt.Errorf("replicas %v, want 3", moved.Replicas)
		}
		if moved.Version != info.Version {
			t.Fatalf("after SetReplicas: version %s, was %s", moved.Version, info.Version)
		}
		return nil
	})
	if err := cat.UpdateDataRetention(ctx, store.StreamRef{Name: "s"}, info.Version, true, 24); err != nil {
		t.Fatalf("update with the version read before the move: %v", err)
	}
	poll.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
		after, _, err := cat.Lookup(ctx, "s")
		if err != nil {
			return err
		}
		if after.Version == info.Version || after.RetentionHours != 48 {
			return fmt.Errorf("after an update: version %s (was %s), retention %d", after.Version, info.Version, after.RetentionHours)
		}
		return nil
	})
}
