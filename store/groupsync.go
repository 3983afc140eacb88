package store

import (
	"errors"
	"sync"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

// syncWorkers is how many streams SyncStreams fsyncs at once when it
// fsyncs them one by one.
const syncWorkers = 32

// SyncStreams makes everything appended to the named streams durable and
// visible to readers, as Sync does for each, and returns each one's outcome
// (errs[i] for names[i]; a stream that had nothing to sync gets nil).
//
// A batch of many slow streams holds a fragment or two for each of hundreds
// of streams, each in its own segment file, and an fsync per file costs a
// flush of the disk each: measured here, a quarter to half a millisecond
// apiece, and PERSISTED p99 reached seconds at 1,000 streams. So where the
// file system can be flushed whole and trusted to report a failed write-back
// (vfs.FileSystemSyncer: syncfs(2) on Linux 5.8 and later), SyncStreams
// writes every stream's buffered records and flushes the file system once.
// If that flush fails, it cannot say whose file failed, so the streams are
// then fsynced one by one, each getting its own file's verdict, as they are
// where no such flush exists (several at once: file systems join concurrent
// fsyncs in one journal commit). Options.PerFileSync turns the flush off.
//
// The flush makes durable everything else written to the file system as
// well; a store that shares its file system with a heavy writer waits for
// that writer's data too (FORMAT.md, "Power cuts").
func (s *Store) SyncStreams(names []string) []error {
	errs := make([]error, len(names))
	sts := make([]*stream, len(names))
	for i, name := range names {
		sts[i], errs[i] = s.stream(name)
	}
	// The caller is the one goroutine that appends; anyone else takes one
	// stream's wmu at a time, or only tries (openFiles), so holding many
	// here cannot deadlock.
	var dirty []int
	for i, st := range sts {
		if st == nil {
			continue
		}
		st.wmu.Lock()
		defer st.wmu.Unlock()
		if st.dirtyLocked() {
			dirty = append(dirty, i)
		}
	}
	if len(dirty) > 1 && s.fsSync != nil {
		dirty = s.syncFileSystem(sts, dirty, errs)
	}
	if len(dirty) == 1 {
		errs[dirty[0]] = sts[dirty[0]].syncLocked()
		return errs
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < min(syncWorkers, len(dirty)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = sts[i].syncLocked()
			}
		}()
	}
	for _, i := range dirty {
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}

// syncFileSystem writes the dirty streams' buffers and flushes the file
// system once. It returns the streams still to be synced one by one: those
// on another file system, or all of them if the flush failed. wmu held for
// each.
func (s *Store) syncFileSystem(sts []*stream, dirty []int, errs []error) (rest []int) {
	var flushed []int
	for _, i := range dirty {
		st := sts[i]
		if !st.onStoreFileSystem() || st.w.dirPending {
			// A new segment's directory entry needs its own fsync: the
			// fault file system's model of a flush (and a cautious
			// reading of syncfs) makes only files' data durable.
			rest = append(rest, i)
			continue
		}
		if err := st.w.flush(); err != nil {
			st.rollbackLocked()
			errs[i] = err
			continue
		}
		flushed = append(flushed, i)
	}
	t0 := time.Now()
	err := s.fsSync.Sync()
	s.metrics.observeFsync(time.Since(t0))
	s.metrics.fileSystemSyncs.Add(1)
	if err != nil {
		s.metrics.fileSystemSyncFailures.Add(1)
		s.log.Warn("store: the file system flush failed; fsyncing the batch's segment files one by one to find whose write failed", "streams", len(flushed), "err", err)
		return append(rest, flushed...)
	}
	for _, i := range flushed {
		st := sts[i]
		st.w.synced = st.w.size
		st.syncedLocked()
	}
	return rest
}

// onStoreFileSystem reports whether the stream's folder is on the file
// system the store flushes whole (a folder mounted below the store's is
// not), checked once.
func (st *stream) onStoreFileSystem() bool {
	st.fsOnce.Do(func() { st.onFS = st.s.fsSync.Holds(st.dir) })
	return st.onFS
}

// openFileSystemSync opens the handle SyncStreams flushes the store's file
// system with, or returns nil where there is none to trust.
func openFileSystemSync(opts *Options) vfs.FileSystem {
	fss, ok := opts.FS.(vfs.FileSystemSyncer)
	if !ok || opts.PerFileSync {
		return nil
	}
	h, err := fss.OpenFileSystem(opts.Dir)
	if err != nil {
		if !errors.Is(err, errors.ErrUnsupported) {
			opts.Logger.Warn("store: cannot flush the file system whole; fsyncing each stream's files", "err", err)
		}
		return nil
	}
	return h
}

// PrepareKeys gives each named stream whose data key is due for rotation
// (or that has none yet) its new key now, several streams at once, so that
// the appends that follow find their keys ready. A new data key is written
// to two files, atomically and durably — four fsyncs — and appends run one
// stream after another: every stream's first fragment after a start (and
// each rotation) waited for all the others' keys. An error is left for the
// append to meet and report. Streams unknown or deleted are skipped.
func (s *Store) PrepareKeys(names []string) {
	now := s.now()
	var due []*stream
	for _, name := range names {
		st, err := s.stream(name)
		if err != nil {
			continue
		}
		st.mu.RLock()
		live := st.info.RetentionHours == 0 // stores nothing, seals nothing
		st.mu.RUnlock()
		if live {
			continue
		}
		if st.keys.due(now, st.keyRotation) {
			due = append(due, st)
		}
	}
	if len(due) == 0 {
		return
	}
	var wg sync.WaitGroup
	next := make(chan *stream)
	for w := 0; w < min(syncWorkers, len(due)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for st := range next {
				_, _, _ = st.keys.forAppend(now, st.keyRotation)
			}
		}()
	}
	for _, st := range due {
		next <- st
	}
	close(next)
	wg.Wait()
}
