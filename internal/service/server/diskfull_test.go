package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/internal/platform/vfs"
	"github.com/sensorium-io/sensorium/internal/platform/vfs/faultfs"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
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

// mountTmpfs mounts a tmpfs of the given size on a new folder (root only:
// skipped elsewhere) and returns the folder and a function that resizes it.
func mountTmpfs(t *testing.T, size string) (string, func(string)) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a size-limited file system needs root (mount -t tmpfs)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir, func(size string) {
		t.Helper()
		if out, err := exec.Command("mount", "-o", "remount,size="+size, dir).CombinedOutput(); err != nil {
			t.Fatalf("resize the tmpfs: %v %s", err, out)
		}
	}
}

// A real full disk: the data folder on a small tmpfs that the producer fills.
// The bus and the store share it, as they do with the embedded server. While
// it is full nothing more is PERSISTED, no ERROR tells the producer to give a
// fragment up, and what was stored reads back intact; when space returns,
// every fragment the producer made is PERSISTED exactly once.
func TestRealDiskFullHoldsThenResumes(t *testing.T) {
	// 160 MiB: JetStream may take 75% of the free space, so the bus shrinks
	// to fit (64 MiB); the fragments fill the rest, down to the disk guard's
	// reserve (64 MiB).
	dir, resize := mountTmpfs(t, "160m")
	srv, err := Start(context.Background(), Config{DataDir: dir, NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.Shutdown(context.Background())
		}
	}()
	ctx := context.Background()
	client, nc := newStream(t, srv, "full", 24)
	log := &persistedLog{persisted: map[uint64]sdk.AckEvent{}}
	track, _ := sdk.ScalarTrack(1, "vibration", pumpDesc)
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "full", Tracks: []sdk.Track{track}, OnAck: log.onAck,
		MinFragmentDuration: time.Second, MaxFragmentDuration: time.Second, PersistTimeout: 500 * time.Millisecond,
		BufferBytes: 32 << 20, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	w, err := sdk.NewSampleWriter(p, 1, pumpDesc, sdk.SampleWriterOptions{Origin: time.Now().Add(-time.Hour).Truncate(time.Millisecond).UnixNano(),
		FrameSamples: 100, Codec: codecs.Plain})
	if err != nil {
		t.Fatal(err)
	}
	// 1,000 samples × 3 channels × 4 bytes ≈ 12 KB a fragment, uncompressed:
	// the disk fills after a few thousand.
	var sample int64
	write := func(fragments int) {
		t.Helper()
		buf := make([]float32, 0, 3*1000*fragments)
		for range 1000 * fragments {
			for ch := range 3 {
				buf = append(buf, sampleValue(sample, ch))
			}
			sample++
		}
		if err := w.WriteFloat32(ctx, buf); err != nil {
			t.Fatal(err)
		}
	}
	full := func() bool { st := srv.IngestStats(); return st.DiskFull || st.StoreFailures > 0 }
	deadline := time.Now().Add(60 * time.Second)
	for !full() {
		if time.Now().After(deadline) {
			t.Fatalf("the disk never filled: %d PERSISTED", log.count())
		}
		// Keep the producer's buffer far from full (a Block producer would
		// wait for room that only space coming back makes): the disk, not
		// the buffer, is what this test fills.
		if p.Stats().BufferedBytes > 4<<20 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		write(100)
	}
	write(50) // more while full
	time.Sleep(2 * time.Second)
	before := log.count()
	time.Sleep(time.Second)
	if n := log.count(); n != before {
		t.Fatalf("PERSISTED went on while the disk was full: %d then %d", before, n)
	}
	if len(log.errors) != 0 {
		t.Fatalf("ERROR events for a full disk: %+v", log.errors)
	}
	if frags, err := srv.Store().Fragments("full", 0, 1<<20); err != nil || len(frags) != before {
		t.Fatalf("while full: %d fragments stored for %d PERSISTED (%v)", len(frags), before, err)
	}
	checkServedByGetMedia(t, srv.HTTPURL(), "full")
	_ = client
	if st := p.Stats(); srv.IngestStats().DiskFull && st.PublishFailures == 0 {
		t.Errorf("the bus is closed, yet the producer saw no publish refused: %+v", st)
	}
	// The caller is told, with a clear code, and that the fragment is kept.
	log.mu.Lock()
	told := append([]sdk.AckEvent(nil), log.retriable...)
	log.mu.Unlock()
	if len(told) == 0 {
		t.Fatalf("the producer's caller heard nothing of the full disk")
	}
	if ev := told[0]; ev.ErrorID != wire.ErrArchival || ev.ErrorCode != "ARCHIVAL_ERROR" || !strings.Contains(ev.Message, "disk") || ev.Terminal() {
		t.Fatalf("the full disk was told as %+v, want a retriable ARCHIVAL_ERROR naming the disk", ev)
	}
	if m := metrics(t, srv); !strings.Contains(m, "sensorium_ingest_disk_full 1\n") {
		t.Errorf("/metrics does not show the disk full:\n%s", m)
	}
	t.Logf("disk full after %d fragments PERSISTED; %d fragments reported refused by the bus", before, len(told))

	resize("512m") // space returns
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatalf("after space returned: %v; ERROR events %+v", err, log.errors)
	}
	st := p.Stats()
	if int64(log.count()) != st.Fragments || log.count() <= before {
		t.Fatalf("%d fragments made, %d PERSISTED (%d before space returned)", st.Fragments, log.count(), before)
	}
	if m := metrics(t, srv); !strings.Contains(m, "sensorium_ingest_disk_full 0\n") || strings.Contains(m, "sensorium_ingest_disk_full_pauses_total 0\n") {
		t.Errorf("/metrics after space returned:\n%s", m)
	}
	for _, ev := range told {
		if _, ok := log.persisted[ev.ProducerSequence]; !ok {
			t.Fatalf("fragment %d was reported refused and never PERSISTED", ev.ProducerSequence)
		}
	}
	nc.Close()
	stopped = true
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	checkStoredExactlyOnce(t, filepath.Join(dir, "store"), "full", log)
}
