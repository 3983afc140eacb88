package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/store"
)

// soakEnv sets the number of SIGKILLs of TestSoak; without it the test does
// not run (`make soak` sets it: 50 by default, 200 for the release check).
const soakEnv = "SENSORIUM_SOAK_KILLS"

// TestSoak ingests from several producers into several streams while the
// server is SIGKILLed and restarted again and again, then checks every
// PERSISTED fragment: present exactly once, in order, with its timestamps,
// decodable; GetMedia and an Arrow query of each stream must succeed. It
// prints the counts.
func TestSoak(t *testing.T) {
	kills, _ := strconv.Atoi(os.Getenv(soakEnv))
	if kills <= 0 {
		t.Skipf("set %s (make soak) to run the soak", soakEnv)
	}
	const producers = 3
	dir := t.TempDir()
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	c := startChild(t, dir, natsAddr, httpAddr)
	ctx := context.Background()
	client := sdk.NewClient(c.http, nil)
	logs := make([]*persistedLog, producers)
	prods := make([]*sdk.Producer, producers)
	stop := make(chan struct{})
	var producing []<-chan error
	for i := range producers {
		name := fmt.Sprintf("soak-%d", i)
		if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: name, DataRetentionInHours: 24}); err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(c.url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.ReconnectBufSize(64<<20))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		logs[i] = &persistedLog{persisted: map[uint64]sdk.AckEvent{}}
		track, _ := sdk.ScalarTrack(1, "vibration", pumpDesc)
		p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{
			Stream: name, Tracks: []sdk.Track{track}, OnAck: logs[i].onAck, ProducerID: name,
			MinFragmentDuration: 200 * time.Millisecond, MaxFragmentDuration: time.Second, PersistTimeout: time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		prods[i] = p
		w, err := sdk.NewSampleWriter(p, 1, pumpDesc, sdk.SampleWriterOptions{Origin: time.Now().Add(-time.Hour).Truncate(time.Millisecond).UnixNano(), FrameSamples: 100})
		if err != nil {
			t.Fatal(err)
		}
		producing = append(producing, produceUntil(ctx, w, 3*time.Millisecond, stop, nil)) // ~100 fragments/s: data grows, restarts stay quick
	}
	total := func() int {
		n := 0
		for _, l := range logs {
			n += l.count()
		}
		return n
	}
	start := time.Now()
	for k := 0; k < kills; k++ {
		want := total() + 10*producers
		deadline := time.Now().Add(60 * time.Second)
		for total() < want {
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: stuck at %d PERSISTED", k, total())
			}
			time.Sleep(20 * time.Millisecond)
		}
		c.kill(t)
		c = startChild(t, dir, natsAddr, httpAddr)
	}
	close(stop)
	for _, done := range producing {
		if err := <-done; err != nil {
			t.Fatalf("producing: %v", err)
		}
	}
	for i, p := range prods {
		cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		if err := p.Close(cctx); err != nil {
			t.Errorf("producer %d close: %v", i, err)
		}
		cancel()
	}
	for i := range producers {
		name := fmt.Sprintf("soak-%d", i)
		checkServedByGetMedia(t, c.http, name)
		res, err := sdk.NewClient(c.http, nil).Query(ctx, sdk.QueryInput{Stream: name, Start: time.Unix(0, 0), End: time.Now()}, nil)
		if err != nil {
			t.Fatalf("query %s: %v", name, err)
		}
		for res.Next() {
		}
		if err := res.Err(); err != nil {
			t.Fatalf("query %s: %v", name, err)
		}
		res.Close()
	}
	c.stop(t)
	acked, found, lost, dup, corrupt := soakCount(t, filepath.Join(dir, "store"), logs)
	fmt.Printf("soak: %d SIGKILLs in %s, %d producers: acked %d, found %d, lost %d, duplicated %d, corrupt %d\n",
		kills, time.Since(start).Round(time.Second), producers, acked, found, lost, dup, corrupt)
	if lost+dup+corrupt > 0 {
		t.Fatalf("lost %d, duplicated %d, corrupt %d", lost, dup, corrupt)
	}
}

// soakCount compares the stores' contents with what the producers were told.
func soakCount(t *testing.T, dir string, logs []*persistedLog) (acked, found, lost, dup, corrupt int) {
	t.Helper()
	ring, err := store.LoadKeyring(nil, filepath.Join(filepath.Dir(dir), "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Options{Dir: dir, RetentionInterval: -1, Logger: testLogger(t), Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i, l := range logs {
		name := fmt.Sprintf("soak-%d", i)
		infos, err := st.Fragments(name, 0, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := st.NewReader(name)
		seen := map[uint64]bool{}
		var last uint64
		for _, info := range infos {
			f, err := r.Read(info)
			if err != nil {
				corrupt++
				continue
			}
			if _, err := decodeFrames(f.Payload); err != nil {
				corrupt++
			}
			if seen[f.ProducerSeq] || f.ProducerSeq <= last {
				dup++
			}
			seen[f.ProducerSeq], last = true, max(last, f.ProducerSeq)
			found++
		}
		r.Close()
		for seq, ev := range l.persisted {
			acked++
			if !seen[seq] {
				lost++
				t.Errorf("%s: producer sequence %d (%s) PERSISTED but not stored", name, seq, ev.FragmentNumber)
			}
		}
	}
	return
}
