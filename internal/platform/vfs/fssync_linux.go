package vfs

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// syncfsReportsErrors is whether the kernel's syncfs(2) returns write-back
// errors: from Linux 5.8 it does (commit 735e4ae5ba28, "vfs: track per-sb
// writeback errors and report them to syncfs"); before, it returned 0 after
// a failed write-back, and a flush that hides a lost write is no flush.
var syncfsReportsErrors = sync.OnceValue(func() bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	return kernelAtLeast(unix.ByteSliceToString(u.Release[:]), 5, 8)
})

// kernelAtLeast parses a release such as "6.1.0-18-amd64" or "5.10.0".
func kernelAtLeast(release string, major, minor int) bool {
	ma, rest, ok := leadingNumber(release)
	if !ok || ma != major {
		return ok && ma > major
	}
	if len(rest) == 0 || rest[0] != '.' {
		return false
	}
	mi, _, ok := leadingNumber(rest[1:])
	return ok && mi >= minor
}

// leadingNumber splits the decimal number at the start of s from the rest.
func leadingNumber(s string) (int, string, bool) {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	v, err := strconv.Atoi(s[:n])
	return v, s[n:], err == nil
}

func (osFS) OpenFileSystem(dir string) (FileSystem, error) {
	if !syncfsReportsErrors() {
		return nil, fmt.Errorf("vfs: syncfs on a kernel before 5.8 does not report write-back errors: %w", errors.ErrUnsupported)
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("vfs: stat %s: %w", dir, err)
	}
	return &linuxFS{f: f, dev: uint64(st.Dev)}, nil
}

type linuxFS struct {
	f   *os.File // the folder, held open: syncfs reports the write-back errors since it was opened
	dev uint64
}

func (l *linuxFS) Sync() error {
	if err := unix.Syncfs(int(l.f.Fd())); err != nil {
		return fmt.Errorf("vfs: syncfs %s: %w", l.f.Name(), err)
	}
	return nil
}

func (l *linuxFS) Holds(path string) bool {
	var st syscall.Stat_t
	return syscall.Stat(path, &st) == nil && uint64(st.Dev) == l.dev
}

func (l *linuxFS) Close() error { return l.f.Close() }
