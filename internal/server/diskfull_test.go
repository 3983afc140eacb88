package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/vfs"
	"github.com/sensorium-io/sensorium/internal/vfs/faultfs"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/store"
)

// When the disk fills, the server keeps durability first: nothing is
// acknowledged PERSISTED that is not on disk, nothing already stored is
// damaged, the fragments wait in the bus (and the producer's buffer), the
// failure shows in the log and in /metrics — and when space returns every
// fragment becomes PERSISTED exactly once. (An ERROR event would tell the
// producer to give the fragment up: wrong for a condition that passes.)
func TestDiskFullHoldsThenResumes(t *testing.T) {
	dir := t.TempDir()
	ffs := faultfs.New(vfs.OS)
	srv, err := Start(context.Background(), Config{DataDir: dir, NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: testLogger(t),
		StoreOptions: func(o *store.Options) { o.FS = ffs }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	ctx := context.Background()
	client, nc := newStream(t, srv, "full", 24)
	log := &persistedLog{persisted: map[uint64]sdk.AckEvent{}}
	track, _ := sdk.ScalarTrack(1, "vibration", pumpDesc)
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "full", Tracks: []sdk.Track{track}, OnAck: log.onAck,
		MinFragmentDuration: 100 * time.Millisecond, MaxFragmentDuration: 100 * time.Millisecond, PersistTimeout: 500 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	w, err := sdk.NewSampleWriter(p, 1, pumpDesc, sdk.SampleWriterOptions{Origin: time.Now().Add(-time.Hour).Truncate(time.Millisecond).UnixNano(), FrameSamples: 100})
	if err != nil {
		t.Fatal(err)
	}
	write := func(samples int, from int64) {
		t.Helper()
		buf := make([]float32, 3*samples)
		for i := range samples {
			for ch := range 3 {
				buf[3*i+ch] = sampleValue(from+int64(i), ch)
			}
		}
		if err := w.WriteFloat32(ctx, buf); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitPersisted := func(n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for log.count() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d PERSISTED, want %d", log.count(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	write(1000, 0) // 10 fragments
	waitPersisted(10)

	ffs.SetFault(func(op faultfs.Op, name string) error {
		if op == faultfs.OpWrite && filepath.Ext(name) == ".seg" {
			return syscall.ENOSPC
		}
		return nil
	})
	write(1000, 1000)
	time.Sleep(1500 * time.Millisecond)
	if n := log.count(); n != 10 {
		t.Fatalf("%d fragments PERSISTED while the disk was full, want the 10 from before", n)
	}
	if len(log.errors) != 0 {
		t.Fatalf("ERROR events for a full disk: %+v", log.errors)
	}
	if m := metrics(t, srv); !strings.Contains(m, "sensorium_ingest_store_failures_total") || strings.Contains(m, "sensorium_ingest_store_failures_total 0\n") {
		t.Errorf("/metrics does not show the store failures")
	}
	frags, _, err := client.ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName("full"), MaxResults: 100})
	if err != nil || len(frags) != 10 {
		t.Fatalf("while full: %d fragments listed, %v", len(frags), err)
	}

	ffs.SetFault(nil) // space returns
	waitPersisted(20)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	checkStoredExactlyOnce(t, filepath.Join(dir, "store"), "full", log)
}

func metrics(t *testing.T, srv *Server) string {
	t.Helper()
	resp, err := http.Get(srv.HTTPURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
