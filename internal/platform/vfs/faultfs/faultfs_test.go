package faultfs

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

// tree lists every file under dir as "path=content", and every directory as
// "path/", relative to dir.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			out = append(out, rel+"/")
			return nil
		}
		b, err := os.ReadFile(p)
		out = append(out, rel+"="+string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// A power cut keeps exactly what an fsync made durable: bytes up to a file's
// last Sync, entries as of their directory's last SyncDir.
func TestCrashKeepsOnlyDurable(t *testing.T) {
	type step func(t *testing.T, f *FS, dir string)
	write := func(name, data string, sync bool) step {
		return func(t *testing.T, f *FS, dir string) {
			t.Helper()
			fh, err := f.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fh.Write([]byte(data)); err != nil {
				t.Fatal(err)
			}
			if sync {
				if err := fh.Sync(); err != nil {
					t.Fatal(err)
				}
			}
			if err := fh.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	syncDir := func(name string) step {
		return func(t *testing.T, f *FS, dir string) {
			t.Helper()
			if err := f.SyncDir(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	rename := func(from, to string) step {
		return func(t *testing.T, f *FS, dir string) {
			t.Helper()
			if err := f.Rename(filepath.Join(dir, from), filepath.Join(dir, to)); err != nil {
				t.Fatal(err)
			}
		}
	}
	remove := func(name string) step {
		return func(t *testing.T, f *FS, dir string) {
			t.Helper()
			if err := f.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	removeAll := func(name string) step {
		return func(t *testing.T, f *FS, dir string) {
			t.Helper()
			if err := f.RemoveAll(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	mkdir := func(name string) step {
		return func(t *testing.T, f *FS, dir string) {
			t.Helper()
			if err := f.MkdirAll(filepath.Join(dir, name), 0o750); err != nil {
				t.Fatal(err)
			}
		}
	}
	foreign := func(name, data string) step { // written behind the FS's back
		return func(t *testing.T, f *FS, dir string) {
			t.Helper()
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o640); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []struct {
		name   string
		before string // files there before the FS is made: "name=content" …
		steps  []step
		want   string
	}{
		{"unsynced bytes are cut", "", []step{write("a", "12", true), syncDir("."), write("a", "34", false)}, "a=12"},
		{"a create without a dir sync vanishes", "", []step{write("a", "12", true)}, ""},
		{"a create with a dir sync stays", "", []step{write("a", "12", true), syncDir(".")}, "a=12"},
		{"a dir sync without a file sync keeps an empty file", "", []step{write("a", "12", false), syncDir(".")}, "a="},
		{"what was there before is durable", "a=old", nil, "a=old"},
		{"an unsynced rename reverts", "a=A", []step{rename("a", "b")}, "a=A"},
		{"an unsynced rename over a file brings both back", "a=A b=B", []step{rename("a", "b")}, "a=A b=B"},
		{"a synced rename stays", "a=A b=B", []step{rename("a", "b"), syncDir(".")}, "b=A"},
		{"atomic write, dir not synced: the old content", "c=old", []step{write("c.tmp", "new", true), rename("c.tmp", "c")}, "c=old"},
		{"atomic write, dir synced: the new content", "c=old", []step{write("c.tmp", "new", true), rename("c.tmp", "c"), syncDir(".")}, "c=new"},
		{"an unsynced remove comes back", "a=A", []step{remove("a")}, "a=A"},
		{"a synced remove stays", "a=A", []step{remove("a"), syncDir(".")}, ""},
		{"an unsynced remove of a grown file brings back its synced bytes", "", []step{write("a", "12", true), syncDir("."), write("a", "34", false), remove("a")}, "a=12"},
		{"a new folder without a parent sync vanishes with its files", "", []step{mkdir("d"), write("d/a", "1", true), syncDir("d")}, ""},
		{"a new folder with both syncs stays", "", []step{mkdir("d"), syncDir("."), write("d/a", "1", true), syncDir("d")}, "d/ d/a=1"},
		{"a new folder synced, its file's entry not", "", []step{mkdir("d"), syncDir("."), write("d/a", "1", true)}, "d/"},
		{"an unsynced RemoveAll comes back", "", []step{mkdir("d"), syncDir("."), write("d/a", "1", true), syncDir("d"), removeAll("d")}, "d/ d/a=1"},
		{"a synced RemoveAll stays", "", []step{mkdir("d"), syncDir("."), write("d/a", "1", true), syncDir("d"), removeAll("d"), syncDir(".")}, ""},
		{"files the FS never made are left alone", "", []step{write("a", "1", true), foreign("n", "nats")}, "n=nats"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, kv := range strings.Fields(tc.before) {
				name, data, _ := strings.Cut(kv, "=")
				if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			f := New(vfs.OS)
			for _, s := range tc.steps {
				s(t, f, dir)
			}
			if err := f.Crash(); err != nil {
				t.Fatal(err)
			}
			if got := tree(t, dir); got != tc.want {
				t.Fatalf("after the crash: %q, want %q", got, tc.want)
			}
		})
	}
}

// After the power cut the process is gone: nothing it still tries reaches
// the disk, not even through a file it had open.
func TestNothingAfterThePowerCut(t *testing.T) {
	dir := t.TempDir()
	f := New(vfs.OS)
	fh, err := f.OpenFile(filepath.Join(dir, "a"), os.O_WRONLY|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if err := f.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := f.Crash(); err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write([]byte("late")); !errors.Is(err, ErrPowerCut) {
		t.Fatalf("write after the cut: %v", err)
	}
	if err := vfs.WriteFileAtomic(f, filepath.Join(dir, "b"), []byte("late"), 0o640); !errors.Is(err, ErrPowerCut) {
		t.Fatalf("atomic write after the cut: %v", err)
	}
	if got := tree(t, dir); got != "a=" {
		t.Fatalf("after the cut: %q", got)
	}
}

// WriteFileAtomic is durable through a power cut right after it returns.
func TestWriteFileAtomicSurvivesACut(t *testing.T) {
	dir := t.TempDir()
	f := New(vfs.OS)
	p := filepath.Join(dir, "x")
	for _, v := range []string{"one", "two"} {
		if err := vfs.WriteFileAtomic(f, p, []byte(v), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Crash(); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, dir); got != "x=two" {
		t.Fatalf("after the cut: %q", got)
	}
}
