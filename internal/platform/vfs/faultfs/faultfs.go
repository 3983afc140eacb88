// Package faultfs wraps a vfs.FS to make the disk misbehave on purpose: writes
// and fsyncs that fail (a full disk, a dying device) and power cuts that throw
// away everything not made durable. The store's tests use it to prove that
// acknowledged data survives what the page cache would hide.
//
// # Power cuts (Crash)
//
// The model is strict, as Pebble's strict MemFS is: at a crash, only what an
// fsync made durable survives.
//
//   - A file's bytes are durable up to its length at its last File.Sync.
//   - A directory's entries (creations, renames, removals in it) are durable as
//     of its last SyncDir. A file created since is gone, even if its own bytes
//     were fsynced; a rename since reverts (the old name comes back with the
//     bytes it had durably, the new name goes or shows what it held before); a
//     removal since is undone (the file comes back with its durable bytes).
//   - A directory made by MkdirAll is itself an entry of its parent: it
//     vanishes, with all it holds, unless the parent was synced after.
//
// What was on disk before this FS first touched a directory counts as durable
// (it was there before the process started). Entries this FS did not make and
// never saw (another component writing in the same folder, such as the
// embedded NATS server) are left alone.
//
// Limits of the model, all of which the store respects: files are written
// append-only (a rewrite inside the fsynced length is not undone); a truncate
// below the synced length counts as durable at once (the store fsyncs right
// after one); O_TRUNC on an existing file drops its durable bytes at once.
// Crash needs the inner FS to be the real disk (it repairs files in place).
//
// After Crash the FS is powered off: every operation through it, and through
// any file opened from it, fails with ErrPowerCut. A restarted process uses a
// new FS (New) on the same folder.
package faultfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

// ErrInjected is returned by an operation a rule made fail.
var ErrInjected = errors.New("faultfs: injected fault")

// ErrPowerCut is returned by every operation after Crash: the process that
// used this FS lost its power.
var ErrPowerCut = errors.New("faultfs: the power was cut")

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

	// life is held for reading by every operation and for writing by Crash,
	// so that a crash is one instant: no write lands half before, half after.
	life sync.RWMutex
	dead bool // guarded by life

	rule sync.Mutex
	fail func(op Op, name string) error // guarded by rule; nil: no faults

	// mu guards the durability model below and serialises the namespace
	// operations (create, rename, remove, mkdir, sync of a directory) with
	// the model's update, so the two never disagree.
	mu    sync.Mutex
	paths map[string]*node // current path → what is there, for every path this FS has seen
}

// node is a file or directory, followed across renames (an inode).
type node struct {
	dir    bool
	path   string // where it is now; "" once removed
	synced int64  // file: its length at the last fsync (at first sight, for a file that was there before)
	saved  []byte // file: its durable bytes, kept when it left the namespace while a durable entry still names it
	refs   int    // how many durable directory listings name it

	captured bool             // dir: durable is known
	durable  map[string]*node // dir: its entries as of its last SyncDir (or first sight)
}

// New wraps inner.
func New(inner vfs.FS) *FS {
	return &FS{inner: inner, paths: map[string]*node{}}
}

// SetFault installs a rule consulted before every operation; a non-nil error
// fails it. nil removes the rule.
func (f *FS) SetFault(rule func(op Op, name string) error) {
	f.rule.Lock()
	f.fail = rule
	f.rule.Unlock()
}

func (f *FS) check(op Op, name string) error {
	f.rule.Lock()
	rule := f.fail
	f.rule.Unlock()
	if rule == nil {
		return nil
	}
	return rule(op, name)
}

// enter starts an operation: it holds off Crash until leave, and fails once
// the power is cut.
func (f *FS) enter() error {
	f.life.RLock()
	if f.dead {
		f.life.RUnlock()
		return ErrPowerCut
	}
	return nil
}

func (f *FS) leave() { f.life.RUnlock() }

// dirLocked returns the node of the existing directory path, its durable
// listing captured: at first sight, what is in it now counts as durable.
// f.mu held.
func (f *FS) dirLocked(path string) (*node, error) {
	n := f.paths[path]
	if n != nil && n.captured {
		return n, nil
	}
	ents, err := f.inner.ReadDir(path)
	if err != nil {
		return nil, err
	}
	if n == nil {
		n = &node{dir: true, path: path}
		f.paths[path] = n
	}
	n.captured, n.durable = true, make(map[string]*node, len(ents))
	for _, e := range ents {
		c := f.childLocked(path, e)
		n.durable[e.Name()] = c
		c.refs++
	}
	return n, nil
}

// childLocked returns the node at dir/e, making one (durable as it is now)
// for an entry seen for the first time. f.mu held.
func (f *FS) childLocked(dir string, e fs.DirEntry) *node {
	p := filepath.Join(dir, e.Name())
	if c := f.paths[p]; c != nil {
		return c
	}
	c := &node{dir: e.IsDir(), path: p}
	if !c.dir {
		if info, err := e.Info(); err == nil {
			c.synced = info.Size()
		}
	}
	f.paths[p] = c
	return c
}

// captureTreeLocked captures every directory under root (inclusive), so that
// a removal or rename of the tree can be undone. f.mu held.
func (f *FS) captureTreeLocked(root string) error {
	n, err := f.dirLocked(root)
	if err != nil {
		return err
	}
	for name, c := range n.durable {
		if c.dir && c.path == filepath.Join(root, name) {
			if err := f.captureTreeLocked(c.path); err != nil {
				return err
			}
		}
	}
	// Entries made since the capture are in paths but not in durable.
	for p, c := range f.paths {
		if c.dir && filepath.Dir(p) == root && !c.captured {
			if err := f.captureTreeLocked(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// detachLocked forgets the file or tree at path, which has left the
// namespace (removed, or replaced by a rename). keepLocked ran before, so a
// file a durable listing still names has its durable bytes in memory.
// f.mu held.
func (f *FS) detachLocked(path string) {
	for p, n := range f.paths {
		if p == path || strings.HasPrefix(p, path+string(filepath.Separator)) {
			n.path = ""
			delete(f.paths, p)
		}
	}
}

func readPrefix(fsys vfs.FS, path string, n int64) ([]byte, error) {
	if n == 0 {
		return []byte{}, nil
	}
	fh, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(fh, b); err != nil {
		return nil, err
	}
	return b, nil
}

// Crash simulates a power failure: the disk is put back to what was durable
// (see the package doc), and this FS is powered off.
func (f *FS) Crash() error {
	f.life.Lock()
	defer f.life.Unlock()
	if f.dead {
		return nil
	}
	f.dead = true
	f.mu.Lock()
	defer f.mu.Unlock()

	// The tops of the model: captured directories whose parent is not.
	var roots []*node
	for p, n := range f.paths {
		if !n.dir || !n.captured {
			continue
		}
		if parent := f.paths[filepath.Dir(p)]; parent == nil || !parent.captured {
			roots = append(roots, n)
		}
	}
	sort.Slice(roots, func(i, j int) bool { return roots[i].path < roots[j].path })

	// First gather the bytes of every durable file that is no longer where
	// its durable entry says: the rebuild below may remove where it is now.
	moved := map[*node][]byte{}
	var errs []error
	var gather func(n *node, at string)
	gather = func(n *node, at string) {
		for name, c := range n.durable {
			cp := filepath.Join(at, name)
			switch {
			case c.dir && c.captured:
				gather(c, cp)
			case c.dir:
			case c.path == cp:
			case c.path == "":
				moved[c] = c.saved
			default:
				if _, ok := moved[c]; !ok {
					b, err := readPrefix(f.inner, c.path, c.synced)
					if err != nil {
						errs = append(errs, err)
					}
					moved[c] = b
				}
			}
		}
	}
	for _, r := range roots {
		gather(r, r.path)
	}
	for _, r := range roots {
		errs = append(errs, f.rebuildLocked(r, r.path, moved))
	}
	f.paths = map[string]*node{}
	return errors.Join(errs...)
}

// rebuildLocked makes the directory at path hold exactly n's durable entries.
func (f *FS) rebuildLocked(n *node, path string, moved map[*node][]byte) error {
	var errs []error
	ents, err := f.inner.ReadDir(path)
	if errors.Is(err, fs.ErrNotExist) {
		err = f.inner.MkdirAll(path, 0o750)
	}
	if err != nil {
		return fmt.Errorf("faultfs: crash: %s: %w", path, err)
	}
	for _, e := range ents {
		cp := filepath.Join(path, e.Name())
		cur := f.paths[cp]
		if cur == nil || n.durable[e.Name()] == cur {
			continue // never seen by this FS (not ours to judge), or durable
		}
		if err := f.inner.RemoveAll(cp); err != nil {
			errs = append(errs, err)
		}
	}
	for name, c := range n.durable {
		cp := filepath.Join(path, name)
		if c.dir {
			if c.captured {
				errs = append(errs, f.rebuildLocked(c, cp, moved))
			} else if err := f.inner.MkdirAll(cp, 0o750); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if c.path == cp {
			if info, err := f.inner.Stat(cp); err == nil && info.Size() > c.synced {
				errs = append(errs, os.Truncate(cp, c.synced))
			}
			continue
		}
		errs = append(errs, writeFile(f.inner, cp, moved[c]))
	}
	return errors.Join(errs...)
}

func writeFile(fsys vfs.FS, path string, b []byte) error {
	fh, err := fsys.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = fh.Write(b)
	return errors.Join(err, fh.Close())
}

// OpenFile implements vfs.FS.
func (f *FS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	if err := f.enter(); err != nil {
		return nil, err
	}
	defer f.leave()
	if err := f.check(OpOpen, name); err != nil {
		return nil, err
	}
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC) == 0 {
		inner, err := f.inner.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return &file{File: inner, fs: f, name: name}, nil
	}
	name = filepath.Clean(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.dirLocked(filepath.Dir(name)); err != nil {
		return nil, err
	}
	inner, err := f.inner.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	n := f.paths[name]
	if n == nil { // created now (or made behind this FS's back: not durable either way)
		n = &node{path: name}
		f.paths[name] = n
	} else if flag&os.O_TRUNC != 0 {
		n.synced = 0
	}
	return &file{File: inner, fs: f, name: name, node: n}, nil
}

// Remove implements vfs.FS.
func (f *FS) Remove(name string) error {
	if err := f.enter(); err != nil {
		return err
	}
	defer f.leave()
	name = filepath.Clean(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.dirLocked(filepath.Dir(name)); err != nil {
		return err
	}
	if n := f.paths[name]; n != nil && n.dir {
		if err := f.captureTreeLocked(name); err != nil {
			return err
		}
	}
	if err := f.keepLocked(name); err != nil {
		return err
	}
	if err := f.inner.Remove(name); err != nil {
		return err
	}
	f.detachLocked(name)
	return nil
}

// RemoveAll implements vfs.FS.
func (f *FS) RemoveAll(name string) error {
	if err := f.enter(); err != nil {
		return err
	}
	defer f.leave()
	name = filepath.Clean(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.dirLocked(filepath.Dir(name)); err != nil {
		return err
	}
	if n := f.paths[name]; n != nil && n.dir {
		if err := f.captureTreeLocked(name); err != nil {
			return err
		}
	}
	if err := f.keepLocked(name); err != nil {
		return err
	}
	if err := f.inner.RemoveAll(name); err != nil {
		return err
	}
	f.detachLocked(name)
	return nil
}

// keepLocked reads into memory the durable bytes of every file at or under
// name that a durable entry names, before it leaves the disk. f.mu held.
func (f *FS) keepLocked(name string) error {
	for p, n := range f.paths {
		if (p == name || strings.HasPrefix(p, name+string(filepath.Separator))) && !n.dir && n.refs > 0 && n.saved == nil {
			b, err := readPrefix(f.inner, p, n.synced)
			if err != nil {
				return fmt.Errorf("faultfs: keep %s: %w", p, err)
			}
			n.saved = b
		}
	}
	return nil
}

// Rename implements vfs.FS.
func (f *FS) Rename(oldname, newname string) error {
	if err := f.enter(); err != nil {
		return err
	}
	defer f.leave()
	if err := f.check(OpRename, newname); err != nil {
		return err
	}
	oldname, newname = filepath.Clean(oldname), filepath.Clean(newname)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.dirLocked(filepath.Dir(oldname)); err != nil {
		return err
	}
	if _, err := f.dirLocked(filepath.Dir(newname)); err != nil {
		return err
	}
	n := f.paths[oldname]
	if n != nil && n.dir {
		if err := f.captureTreeLocked(oldname); err != nil {
			return err
		}
	}
	if err := f.keepLocked(newname); err != nil { // the file a rename replaces
		return err
	}
	if err := f.inner.Rename(oldname, newname); err != nil {
		return err
	}
	f.detachLocked(newname)
	// Move oldname and everything under it to newname.
	var keys []string
	for p := range f.paths {
		if p == oldname || strings.HasPrefix(p, oldname+string(filepath.Separator)) {
			keys = append(keys, p)
		}
	}
	for _, p := range keys {
		c := f.paths[p]
		delete(f.paths, p)
		c.path = newname + strings.TrimPrefix(p, oldname)
		f.paths[c.path] = c
	}
	return nil
}

// MkdirAll implements vfs.FS.
func (f *FS) MkdirAll(name string, perm fs.FileMode) error {
	if err := f.enter(); err != nil {
		return err
	}
	defer f.leave()
	name = filepath.Clean(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	// The deepest directory that exists is the one whose listing changes.
	var made []string
	top := name
	for {
		if _, err := f.inner.Stat(top); err == nil {
			break
		}
		made = append(made, top)
		parent := filepath.Dir(top)
		if parent == top {
			break
		}
		top = parent
	}
	if len(made) == 0 {
		return nil
	}
	if _, err := f.dirLocked(top); err != nil {
		return err
	}
	if err := f.inner.MkdirAll(name, perm); err != nil {
		return err
	}
	for _, p := range made {
		if f.paths[p] == nil {
			f.paths[p] = &node{dir: true, path: p, captured: true, durable: map[string]*node{}}
		}
	}
	return nil
}

// ReadDir implements vfs.FS.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := f.enter(); err != nil {
		return nil, err
	}
	defer f.leave()
	return f.inner.ReadDir(name)
}

// Stat implements vfs.FS.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	if err := f.enter(); err != nil {
		return nil, err
	}
	defer f.leave()
	return f.inner.Stat(name)
}

// SyncDir implements vfs.FS: the directory's entries as they are now become
// its durable listing.
func (f *FS) SyncDir(name string) error {
	if err := f.enter(); err != nil {
		return err
	}
	defer f.leave()
	if err := f.check(OpSync, name); err != nil {
		return err
	}
	name = filepath.Clean(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.inner.SyncDir(name); err != nil {
		return err
	}
	n, err := f.dirLocked(name)
	if err != nil {
		return err
	}
	ents, err := f.inner.ReadDir(name)
	if err != nil {
		return err
	}
	now := make(map[string]*node, len(ents))
	for _, e := range ents {
		c := f.childLocked(name, e)
		now[e.Name()] = c
		c.refs++
	}
	for _, c := range n.durable {
		c.refs--
		if c.refs == 0 {
			c.saved = nil // no durable entry names it any more
		}
	}
	n.durable = now
	return nil
}

type file struct {
	vfs.File
	fs   *FS
	name string
	node *node // nil when opened read-only
}

func (w *file) Read(p []byte) (int, error) {
	if err := w.fs.enter(); err != nil {
		return 0, err
	}
	defer w.fs.leave()
	return w.File.Read(p)
}

func (w *file) ReadAt(p []byte, off int64) (int, error) {
	if err := w.fs.enter(); err != nil {
		return 0, err
	}
	defer w.fs.leave()
	return w.File.ReadAt(p, off)
}

func (w *file) Write(p []byte) (int, error) {
	if err := w.fs.enter(); err != nil {
		return 0, err
	}
	defer w.fs.leave()
	if err := w.fs.check(OpWrite, w.name); err != nil {
		return 0, err
	}
	return w.File.Write(p)
}

func (w *file) Sync() error {
	if err := w.fs.enter(); err != nil {
		return err
	}
	defer w.fs.leave()
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
	if w.node != nil {
		w.fs.mu.Lock()
		w.node.synced = st.Size()
		if w.node.saved != nil { // removed while open, and still durably named
			b := make([]byte, st.Size())
			if _, err := w.File.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
				w.fs.mu.Unlock()
				return err
			}
			w.node.saved = b
		}
		w.fs.mu.Unlock()
	}
	return nil
}

func (w *file) Truncate(size int64) error {
	if err := w.fs.enter(); err != nil {
		return err
	}
	defer w.fs.leave()
	if err := w.fs.check(OpTruncate, w.name); err != nil {
		return err
	}
	if err := w.File.Truncate(size); err != nil {
		return err
	}
	if w.node != nil {
		w.fs.mu.Lock()
		if size < w.node.synced {
			w.node.synced = size
		}
		w.fs.mu.Unlock()
	}
	return nil
}

func (w *file) Close() error {
	// Closing after a power cut is harmless: the process is gone, and the
	// caller's cleanup must not touch the disk, which Close does not.
	return w.File.Close()
}

// OpenFileSystem implements vfs.FileSystemSyncer. Its Sync makes the files
// below dir durable at their current length, as fsyncing each would (a rule
// fails it with OpSync on dir). It does not make directory entries durable,
// which a real syncfs does: a caller that relied on that would be caught by
// a crash test, which is the point.
func (f *FS) OpenFileSystem(dir string) (vfs.FileSystem, error) {
	return &fsHandle{fs: f, dir: filepath.Clean(dir)}, nil
}

type fsHandle struct {
	fs  *FS
	dir string
}

func (h *fsHandle) Holds(path string) bool {
	rel, err := filepath.Rel(h.dir, filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func (h *fsHandle) Sync() error {
	f := h.fs
	if err := f.enter(); err != nil {
		return err
	}
	defer f.leave()
	if err := f.check(OpSync, h.dir); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for path, n := range f.paths {
		if n.dir || n.path != path || n.saved != nil || !h.Holds(path) {
			continue
		}
		st, err := f.inner.Stat(path)
		if err != nil {
			continue // gone behind the model's back: nothing to make durable
		}
		n.synced = st.Size()
	}
	return nil
}

func (h *fsHandle) Close() error { return nil }
