// Package faultfs wraps a vfs.FS to make the disk misbehave on purpose: writes
// and fsyncs that fail (a full disk, a dying device) and crashes that throw away
// every write not yet fsynced, as a power failure does. The store's tests use it
// to prove that acknowledged data survives what the page cache would hide.
package faultfs

import (
	"errors"
	"io/fs"
	"os"
	"sync"
	"syscall"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

// ErrInjected is returned by an operation a rule made fail.
var ErrInjected = errors.New("faultfs: injected fault")

// ErrNoSpace is what a full disk answers; WriteErr can return it.
var ErrNoSpace = syscall.ENOSPC

// Op names an operation a rule can fail.
type Op int

// Operations.
const (
	OpWrite Op = iota + 1
	OpSync
	OpOpen
	OpRename
	OpTruncate
)

// FS is a fault-injecting file system. The zero value is not usable; use New.
type FS struct {
	inner vfs.FS

	mu     sync.Mutex
	fail   func(op Op, name string) error // nil: no faults
	synced map[string]int64               // path → length at the last successful fsync
}

// New wraps inner.
func New(inner vfs.FS) *FS {
	return &FS{inner: inner, synced: map[string]int64{}}
}

// SetFault installs a rule consulted before every operation; a non-nil error
// fails it. nil removes the rule.
func (f *FS) SetFault(rule func(op Op, name string) error) {
	f.mu.Lock()
	f.fail = rule
	f.mu.Unlock()
}

func (f *FS) check(op Op, name string) error {
	f.mu.Lock()
	rule := f.fail
	f.mu.Unlock()
	if rule == nil {
		return nil
	}
	return rule(op, name)
}

// Crash simulates a power failure: every file this FS wrote to is cut back to
// its length at its last successful fsync (0 when never synced). It models an
// append-only writer, which is what the store is; open handles must not be used
// afterwards.
func (f *FS) Crash() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for path, n := range f.synced {
		if n < 0 {
			continue
		}
		if err := os.Truncate(path, n); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	f.synced = map[string]int64{}
	return errors.Join(errs...)
}

func (f *FS) noteWrite(name string) {
	f.mu.Lock()
	if _, ok := f.synced[name]; !ok {
		f.synced[name] = 0
	}
	f.mu.Unlock()
}

func (f *FS) noteSync(name string, size int64) {
	f.mu.Lock()
	f.synced[name] = size
	f.mu.Unlock()
}

// OpenFile implements vfs.FS.
func (f *FS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	if err := f.check(OpOpen, name); err != nil {
		return nil, err
	}
	inner, err := f.inner.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	if flag&(os.O_WRONLY|os.O_RDWR) != 0 {
		f.mu.Lock()
		if _, ok := f.synced[name]; !ok {
			// An existing file's current content counts as synced: it was there before.
			if st, err := inner.Stat(); err == nil {
				f.synced[name] = st.Size()
			}
		}
		f.mu.Unlock()
	}
	return &file{File: inner, fs: f, name: name}, nil
}

// Remove implements vfs.FS.
func (f *FS) Remove(name string) error {
	f.mu.Lock()
	delete(f.synced, name)
	f.mu.Unlock()
	return f.inner.Remove(name)
}

// RemoveAll implements vfs.FS.
func (f *FS) RemoveAll(name string) error { return f.inner.RemoveAll(name) }

// Rename implements vfs.FS.
func (f *FS) Rename(oldname, newname string) error {
	if err := f.check(OpRename, newname); err != nil {
		return err
	}
	if err := f.inner.Rename(oldname, newname); err != nil {
		return err
	}
	f.mu.Lock()
	if n, ok := f.synced[oldname]; ok {
		f.synced[newname] = n
		delete(f.synced, oldname)
	}
	f.mu.Unlock()
	return nil
}

// MkdirAll implements vfs.FS.
func (f *FS) MkdirAll(name string, perm fs.FileMode) error { return f.inner.MkdirAll(name, perm) }

// ReadDir implements vfs.FS.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) { return f.inner.ReadDir(name) }

// Stat implements vfs.FS.
func (f *FS) Stat(name string) (fs.FileInfo, error) { return f.inner.Stat(name) }

// SyncDir implements vfs.FS.
func (f *FS) SyncDir(name string) error {
	if err := f.check(OpSync, name); err != nil {
		return err
	}
	return f.inner.SyncDir(name)
}

type file struct {
	vfs.File
	fs   *FS
	name string
}

func (w *file) Write(p []byte) (int, error) {
	if err := w.fs.check(OpWrite, w.name); err != nil {
		return 0, err
	}
	w.fs.noteWrite(w.name)
	return w.File.Write(p)
}

func (w *file) Sync() error {
	if err := w.fs.check(OpSync, w.name); err != nil {
		return err
	}
	if err := w.File.Sync(); err != nil {
		return err
	}
	st, err := w.File.Stat()
	if err != nil {
		return err
	}
	w.fs.noteSync(w.name, st.Size())
	return nil
}

func (w *file) Truncate(size int64) error {
	if err := w.fs.check(OpTruncate, w.name); err != nil {
		return err
	}
	return w.File.Truncate(size)
}
