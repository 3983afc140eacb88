package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/sdk"
)

// diskDsync measures what the disk under the scratch folder takes
// sequentially when every write must be on it before the next starts:
// 4 MiB writes to a file opened with O_DSYNC, as `dd bs=4M oflag=dsync`
// does. It is the ceiling of an ingest path that acknowledges only what is
// durable, measured in the same run as the path (issue 15, goal 2: SDK →
// PERSISTED ≥ 0.9× of it for 256 KiB fragments). The file is the size of
// the ingest run, so the disk's cache cannot hold it all.
func (b *bench) diskDsync(total int) (float64, error) {
	path := filepath.Join(b.scratch("dsync"), "dd.bin")
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return 0, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_DSYNC, 0o640)
	if err != nil {
		return 0, fmt.Errorf("disk: %w", err)
	}
	defer os.Remove(path)
	defer f.Close()
	block := make([]byte, 4<<20)
	for i := range block {
		block[i] = byte(i*7 + i>>12) // not zeros: some disks compress
	}
	t0 := time.Now()
	written := 0
	for written < total {
		n, err := f.Write(block)
		if err != nil {
			return 0, fmt.Errorf("disk: write %s: %w", path, err)
		}
		written += n
	}
	return float64(written) / time.Since(t0).Seconds(), nil
}

// sdkMemoryBus is the SDK → PERSISTED run with the bus in memory (serve
// --bus-storage memory): every byte is then written to the disk once, by
// the store, instead of once by JetStream and once by the store. It shows
// how near the store's own path comes to the disk when the bus does not
// share it. Returns acknowledged payload bytes/s.
func (b *bench) sdkMemoryBus() (float64, error) {
	dir := b.scratch("sensorium-membus")
	srv, err := server.Start(context.Background(), server.Config{DataDir: dir, NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		Logger: quiet, BusStorage: "memory"})
	if err != nil {
		return 0, err
	}
	defer srv.Shutdown(context.Background())
	ctx := context.Background()
	if _, err := sdk.NewClient(srv.HTTPURL(), nil).CreateStream(ctx, sdk.CreateStreamInput{StreamName: "bench", DataRetentionInHours: 1}); err != nil {
		return 0, err
	}
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	elapsed, _, err := b.produce(ctx, nc, "bench", b.fragments)
	if err != nil {
		return 0, err
	}
	return float64(srv.IngestStats().PersistedBytes) / elapsed.Seconds(), nil
}
