package server

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/sdk"
)

// TestBusThatLostItsTailIsMovedPastTheStore restarts a server on a bus that
// lost its last messages while the store kept the fragments numbered from
// them: what a power cut does, since nats-server fsyncs its files on a
// timer and the store per batch. Here the nats/ folder is put back as it was
// before the last fragments (the same state, made exactly). New fragments
// must take new numbers: were a number reused, the store would take the new
// fragment for a redelivery of the stored one and acknowledge a fragment it
// never stored.
func TestBusThatLostItsTailIsMovedPastTheStore(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	start := func() *Server {
		t.Helper()
		srv, err := Start(ctx, Config{DataDir: dir, NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("start server: %v", err)
		}
		return srv
	}
	stop := func(srv *Server) {
		t.Helper()
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	origin := int64(1_700_000_000_000_000_000)
	frame := 0
	produce := func(srv *Server, producer string, from, to uint64) []string {
		t.Helper()
		nc, err := nats.Connect(srv.NATSURL())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		var numbers []string
		for seq := from; seq <= to; seq++ {
			ev := publish(t, nc, "tail", scalarFragment(t, origin, int64(frame)*100, 1), producer, seq)
			frame++
			if ev.EventType != wire.EventPersisted || ev.Duplicate {
				t.Fatalf("%s/%d: %+v, want a new PERSISTED", producer, seq, ev)
			}
			numbers = append(numbers, ev.FragmentNumber)
		}
		return numbers
	}

	srv := start()
	if _, err := sdk.NewClient(srv.HTTPURL(), nil).CreateStream(ctx, sdk.CreateStreamInput{StreamName: "tail", DataRetentionInHours: 24}); err != nil {
		t.Fatal(err)
	}
	acked := produce(srv, "before", 1, 3)
	stop(srv)
	natsDir := filepath.Join(dir, "nats")
	older := filepath.Join(t.TempDir(), "nats")
	if err := os.CopyFS(older, os.DirFS(natsDir)); err != nil {
		t.Fatal(err)
	}

	srv = start()
	acked = append(acked, produce(srv, "lost-from-the-bus", 1, 4)...)
	stop(srv)
	if err := os.RemoveAll(natsDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(older, natsDir); err != nil {
		t.Fatal(err)
	}

	srv = start() // the bus now ends 4 messages below the store
	defer stop(srv)
	after := produce(srv, "after", 1, 3)
	last, _ := strconv.ParseUint(acked[len(acked)-1], 10, 64)
	for _, n := range after {
		if v, _ := strconv.ParseUint(n, 10, 64); v <= last {
			t.Errorf("a fragment after the bus lost its tail got number %s, not above the stored %d", n, last)
		}
	}
	acked = append(acked, after...)
	frags, _, err := sdk.NewClient(srv.HTTPURL(), nil).ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName("tail")})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, f := range frags {
		stored[f.FragmentNumber] = true
	}
	for _, n := range acked {
		if !stored[n] {
			t.Errorf("fragment %s was PERSISTED but is not stored", n)
		}
	}
	if len(frags) != len(acked) {
		t.Errorf("%d fragments stored, %d PERSISTED", len(frags), len(acked))
	}
}
