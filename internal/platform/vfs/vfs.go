// Package vfs is the store's seam to the file system. Every file the store
// touches goes through an FS, so that tests can inject disk-full errors, failed
// fsyncs and torn writes (package vfs/faultfs) instead of hoping about them.
//
// It also holds the durability helpers (write a small file atomically, fsync a
// directory) so that they are written once.
package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// File is an open file. It is the subset of *os.File the store uses.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.Closer
	Sync() error
	Truncate(size int64) error
	Stat() (fs.FileInfo, error)
	Seek(offset int64, whence int) (int64, error)
	Name() string
}

// FS is a file system.
type FS interface {
	// OpenFile opens name with os.OpenFile semantics.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	Remove(name string) error
	RemoveAll(name string) error
	Rename(oldname, newname string) error
	MkdirAll(name string, perm fs.FileMode) error
	ReadDir(name string) ([]fs.DirEntry, error)
	Stat(name string) (fs.FileInfo, error)
	// SyncDir fsyncs a directory, making creations, renames and removals in it durable.
	SyncDir(name string) error
}

// OS is the real file system.
var OS FS = osFS{}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // an *os.File inside a non-nil interface would hide the nil
	}
	return f, nil
}
func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) RemoveAll(name string) error                  { return os.RemoveAll(name) }
func (osFS) Rename(oldname, newname string) error         { return os.Rename(oldname, newname) }
func (osFS) MkdirAll(name string, perm fs.FileMode) error { return os.MkdirAll(name, perm) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error)   { return os.ReadDir(name) }
func (osFS) Stat(name string) (fs.FileInfo, error)        { return os.Stat(name) }
func (osFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	return errors.Join(serr, cerr)
}

// WriteFileAtomic makes path hold data or leave it as it was, across crashes:
// write a temp file beside it, fsync it, rename it over path, fsync the directory.
func WriteFileAtomic(fsys FS, path string, data []byte, perm fs.FileMode) error {
	tmp := path + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("vfs: create %s: %w", tmp, err)
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = fsys.Remove(tmp)
		return fmt.Errorf("vfs: write %s: %w", tmp, werr)
	}
	if err := fsys.Rename(tmp, path); err != nil {
		_ = fsys.Remove(tmp)
		return fmt.Errorf("vfs: rename %s: %w", tmp, err)
	}
	if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("vfs: sync dir of %s: %w", path, err)
	}
	return nil
}

// ReadFile reads a whole (small) file.
func ReadFile(fsys FS, path string) ([]byte, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// MkdirAllDurable is MkdirAll whose result survives a power cut: a new
// directory is an entry in its parent, durable only once the parent is
// fsynced, so every parent of a directory it made is fsynced before it
// returns. Files later made inside are then durable with their own
// directory's fsync alone.
func MkdirAllDurable(fsys FS, path string, perm fs.FileMode) error {
	path = filepath.Clean(path)
	var made []string // missing directories, deepest first
	for p := path; ; p = filepath.Dir(p) {
		if _, err := fsys.Stat(p); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("vfs: stat %s: %w", p, err)
		}
		made = append(made, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	if len(made) == 0 {
		return nil
	}
	if err := fsys.MkdirAll(path, perm); err != nil {
		return fmt.Errorf("vfs: mkdir %s: %w", path, err)
	}
	for _, p := range made {
		if err := fsys.SyncDir(filepath.Dir(p)); err != nil {
			return fmt.Errorf("vfs: sync dir %s after creating %s: %w", filepath.Dir(p), p, err)
		}
	}
	return nil
}
