package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
)

// What a run writes is measured two ways, because neither alone is enough:
//
//   - The growth of the data folders (apparent file sizes) is what stays on
//     disk. It sees the store's files, but hardly the bus's: JetStream deletes
//     a fragment once every node's consumer has acknowledged it, and a
//     message block is removed once it is empty.
//   - The kernel's per-process I/O accounting (/proc/self/io) counts every
//     byte the process dirtied in files (write_bytes) — store, JetStream's
//     message blocks, its Raft logs and consumer state alike — and, in
//     cancelled_write_bytes, the part that was dropped before writeback
//     because its file was deleted or truncated first. It cannot tell the
//     store's writes from JetStream's, nor one node's from another (all run
//     in this process); runs are sequential, so a run's difference is its own.
//
// The bus's writes are then the process's less what the store kept, on the
// assumption that the store writes (nearly) only what it keeps: its segments
// are append-only while retention is far away. The raw JetStream peers,
// which delete nothing, check that figure: their folders' growth and their
// write_bytes are both JetStream's alone.

// dataFolders are the folders one run writes: JetStream's and the store's.
type dataFolders struct{ bus, store []string }

// diskSample is one reading of the folders' sizes and the process's I/O
// counters.
type diskSample struct {
	bus, store         int64 // apparent sizes of the files under the folders
	written, cancelled int64 // /proc/self/io write_bytes and cancelled_write_bytes
	io                 bool  // /proc/self/io was readable
}

// diskUse is what a run wrote (two samples' difference).
type diskUse struct {
	busKept, storeKept int64 // growth of the bus and store folders
	written            int64 // bytes the process dirtied in files
	cancelled          int64 // of which dropped before reaching the disk
	io                 bool  // written and cancelled were measured
}

func (d dataFolders) sample() (diskSample, error) {
	var s diskSample
	for _, dirs := range []struct {
		dirs []string
		sum  *int64
	}{{d.bus, &s.bus}, {d.store, &s.store}} {
		for _, dir := range dirs.dirs {
			n, err := folderSize(dir)
			if err != nil {
				return s, err
			}
			*dirs.sum += n
		}
	}
	var err error
	s.written, s.cancelled, err = processIO()
	s.io = err == nil
	return s, nil
}

func (s diskSample) since(before diskSample) diskUse {
	return diskUse{busKept: s.bus - before.bus, storeKept: s.store - before.store,
		written: s.written - before.written, cancelled: s.cancelled - before.cancelled, io: s.io && before.io}
}

// settled waits until the bus holds nothing (every replica has applied and
// acknowledged every fragment, so JetStream has deleted them) and the
// process has stopped writing, then returns what was written since before.
func (d dataFolders) settled(ctx context.Context, nc *nats.Conn, before diskSample) (diskUse, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return diskUse{}, err
	}
	prefix := wire.NewSubjects("").BusStream()
	if err := waitFor(2*time.Minute, 50*time.Millisecond, func() error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		held := uint64(0)
		names := js.StreamNames(cctx)
		for name := range names.Name() {
			if !strings.HasPrefix(name, prefix) {
				continue
			}
			s, err := js.Stream(cctx, name)
			if err != nil {
				return err
			}
			held += s.CachedInfo().State.Msgs
		}
		if err := names.Err(); err != nil {
			return err
		}
		if held > 0 {
			return fmt.Errorf("the bus still holds %d fragments", held)
		}
		return nil
	}); err != nil {
		return diskUse{}, err
	}
	waitQuiet()
	after, err := d.sample()
	if err != nil {
		return diskUse{}, err
	}
	return after.since(before), nil
}

// waitQuiet waits until the process has written nothing to files for half
// a second (JetStream flushes its blocks and consumer state after the acks,
// followers catch up), at most 10 s.
func waitQuiet() {
	last, _, err := processIO()
	if err != nil {
		return
	}
	still := 0
	for deadline := time.Now().Add(10 * time.Second); still < 5 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		w, _, _ := processIO()
		if w == last {
			still++
		} else {
			still, last = 0, w
		}
	}
}

// folderSize sums the apparent sizes of the regular files under dir; files
// removed while it walks (JetStream deletes blocks) count as gone.
func folderSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	return n, err
}

// processIO reads this process's write_bytes and cancelled_write_bytes
// (Linux task I/O accounting: bytes dirtied in the page cache, whole pages).
func processIO() (written, cancelled int64, err error) {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		switch k {
		case "write_bytes":
			written, err = strconv.ParseInt(v, 10, 64)
			found++
		case "cancelled_write_bytes":
			cancelled, err = strconv.ParseInt(v, 10, 64)
			found++
		}
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/self/io: %s: %w", k, err)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if found != 2 {
		return 0, 0, errors.New("/proc/self/io: no write_bytes (kernel without task I/O accounting)")
	}
	return written, cancelled, nil
}

// waitFor calls check every interval until it returns nil, or returns its
// last error once timeout has passed.
func waitFor(timeout, interval time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %w", timeout, err)
		}
		time.Sleep(interval)
	}
}
