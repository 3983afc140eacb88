package sdk_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/service/natsembed"
	"github.com/sensorium-io/sensorium/sdk"
)

// The worst case for exactly once: the server stored every fragment, but the
// spool lost every done mark (a spool copied back from before, as a power
// cut can leave one), and the server was restarted and its segments
// rotated in between. A producer on that spool re-sends all of it under the
// same producer id and sequences; the server answers each PERSISTED as a
// duplicate and stores nothing twice.
func TestSpoolResendIsDuplicateAfterServerRestart(t *testing.T) {
	const frames, size = 300, 20000 // 30 fragments of 100 ms, 600 KB: three 256 KiB segments
	base := time.Now().Add(-time.Hour).Truncate(time.Second).UnixNano()
	dir, before := t.TempDir(), t.TempDir()
	cfg := sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)}, MinFragmentDuration: 100 * time.Millisecond, Logger: quiet(),
		Spool: &sdk.SpoolConfig{Dir: dir, Budget: 64 << 20}}

	// Spool everything while no server takes it.
	offline, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), DontListen: true})
	if err != nil {
		t.Fatal(err)
	}
	onc, err := offline.Connect()
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdk.NewProducer(context.Background(), onc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < frames; i++ {
		if err := p.PutFrame(context.Background(), spoolFrame(base, 10*ms, i, size, i%10 == 0)); err != nil {
			t.Fatal(err)
		}
	}
	_ = closeNow(p)
	onc.Close()
	offline.Stop()
	if err := os.CopyFS(before, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}

	srv := startSpoolServer(t)
	send := func(dir string) *acks {
		t.Helper()
		a := &acks{}
		c := cfg
		c.Spool = &sdk.SpoolConfig{Dir: dir, Budget: 64 << 20}
		c.OnAck = a.onAck
		nc := srvConn(t, srv)
		p, err := sdk.NewProducer(context.Background(), nc, c)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
		return a
	}
	first := send(dir)
	if n := first.count(sdk.EventPersisted); n != 30 {
		t.Fatalf("%d PERSISTED, want 30", n)
	}
	srv.restart()
	again := send(before)
	dups := 0
	for _, ev := range again.events {
		if ev.EventType == sdk.EventPersisted && ev.Duplicate {
			dups++
		}
	}
	if dups != 30 || again.count(sdk.EventPersisted) != 30 {
		t.Fatalf("the re-sends: %d PERSISTED, %d of them duplicates; want 30 and 30", again.count(sdk.EventPersisted), dups)
	}
	if err := checkFrames(srv.readStream(), base, 10*ms, frames, size); err != nil {
		t.Fatal(err)
	}
	if n := srv.fragmentCount(); n != 30 {
		t.Fatalf("%d fragments stored, want 30", n)
	}
}
