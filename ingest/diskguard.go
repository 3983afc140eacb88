package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The disk guard. When the disk fills up, the store's writes fail cleanly: it
// rolls back, the ingester holds the fragments and retries, nothing is
// acknowledged that is not on disk. JetStream's do not: a write that fails
// with "no space left on device" leaves its file store with a sticky error,
// and every later publish fails with it, space or no space, until the NATS
// server restarts (measured with nats-server 2.15 on a full tmpfs:
// TestRealDiskFullHoldsThenResumes). With the embedded server the bus and the
// store share the data folder's disk, so a full disk would stop ingest for
// good.
//
// So the ingester watches the free space of the store's disk, and when it
// falls below a reserve it closes the bus to new fragments before JetStream
// runs out: it lowers the bus stream's MaxBytes to 1. With DiscardNew every
// publish past the limit is refused (the producer keeps the fragment and
// retries; PutMedia answers ERROR) and nothing already in the bus is removed
// (JetStream enforces a lowered limit on old messages only under
// DiscardOld). A limit on the message count would not do: it frees up as the
// store applies the backlog, and the bus would keep taking fragments one by
// one. The store goes on applying what the bus holds, within the reserve.
// When the free space is back above twice the reserve, the limit is lifted.
// A restart lifts it too (EnsureBus applies the configured limits), and the
// guard closes the bus again if the disk is still full.

// DefaultDiskReserve is the free space below which the bus takes no new
// fragments: room for JetStream's own files, what the bus accepts between
// two checks, and the store's catch-up.
const DefaultDiskReserve = 64 << 20

const diskGuardInterval = 100 * time.Millisecond

// guardDisk runs until ctx is done.
func (in *Ingester) guardDisk(ctx context.Context) {
	path, reserve := in.opts.DiskPath, in.opts.DiskReserve
	if _, ok := freeBytes(path); !ok || reserve <= 0 || in.opts.Stream == nil || in.opts.NC == nil {
		return // not measurable here, or turned off
	}
	js, err := jetstream.New(in.opts.NC)
	if err != nil {
		in.log.Warn("ingest: disk guard off", "err", err)
		return
	}
	open := in.opts.Stream.CachedInfo().Config.MaxBytes // as EnsureBus configured it
	paused := false
	var lastApply time.Time
	t := time.NewTicker(diskGuardInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		free, ok := freeBytes(path)
		if !ok {
			continue
		}
		switch {
		case free < reserve && (!paused || time.Since(lastApply) > 5*time.Second):
			// Re-applied now and then: another replica on the same bus may have
			// lifted it.
			if err := in.setBusMaxBytes(ctx, js, closedBusBytes); err != nil {
				in.log.Error("ingest: disk guard: cannot close the bus to new fragments", "err", err)
				continue
			}
			if !paused {
				in.log.Error("ingest: the disk is nearly full: the bus takes no new fragments until space returns; producers keep theirs and retry",
					"path", path, "free_bytes", free, "reserve_bytes", reserve)
				in.stats.DiskFullPauses.Add(1)
			}
			paused, lastApply = true, time.Now()
			in.stats.DiskFull.Store(true)
		case paused && free >= 2*reserve:
			if err := in.setBusMaxBytes(ctx, js, open); err != nil {
				in.log.Error("ingest: disk guard: cannot reopen the bus", "err", err)
				continue
			}
			in.log.Warn("ingest: disk space is back: the bus takes fragments again", "path", path, "free_bytes", free)
			paused = false
			in.stats.DiskFull.Store(false)
		}
	}
}

// closedBusBytes is the bus's MaxBytes while the disk guard keeps it
// closed: smaller than any message (0 would mean no limit).
const closedBusBytes = 1

// setBusMaxBytes sets the bus stream's MaxBytes.
func (in *Ingester) setBusMaxBytes(ctx context.Context, js jetstream.JetStream, n int64) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := in.opts.Stream.Info(cctx)
	if err != nil {
		return fmt.Errorf("bus stream info: %w", err)
	}
	cfg := info.Config
	if cfg.MaxBytes == n {
		return nil
	}
	cfg.MaxBytes = n
	if _, err := js.UpdateStream(cctx, cfg); err != nil {
		return fmt.Errorf("update bus stream %s: %w", cfg.Name, err)
	}
	return nil
}
