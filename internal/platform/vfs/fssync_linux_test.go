package vfs

import (
	"os"
	"path/filepath"
	"testing"
)

func TestKernelAtLeast(t *testing.T) {
	for _, tc := range []struct {
		release string
		want    bool
	}{
		{"5.8.0", true},
		{"5.7.19", false},
		{"5.10.0-28-amd64", true},
		{"6.1.0-18-amd64", true},
		{"4.19.0", false},
		{"5.8", true},
		{"5", false},
		{"", false},
		{"x.y", false},
		{"6.18.44-fc-v1294", true},
	} {
		if got := kernelAtLeast(tc.release, 5, 8); got != tc.want {
			t.Errorf("kernelAtLeast(%q, 5, 8) = %v, want %v", tc.release, got, tc.want)
		}
	}
}

func TestOpenFileSystem(t *testing.T) {
	dir := t.TempDir()
	fsys, err := OS.(FileSystemSyncer).OpenFileSystem(dir)
	if err != nil {
		t.Skipf("no trusted syncfs here: %v", err)
	}
	defer fsys.Close()
	path := filepath.Join(dir, "a")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Sync(); err != nil {
		t.Fatal(err)
	}
	if !fsys.Holds(path) {
		t.Errorf("a file in the folder is not on its file system")
	}
	if fsys.Holds("/proc/self/status") {
		t.Errorf("/proc is on the folder's file system")
	}
}
