package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
	"github.com/sensorium-io/sensorium/internal/platform/vfs/faultfs"
)

// TestSyncStreams makes a batch of streams durable together, with the file
// system flushed whole, with that flush failing (the streams are then
// fsynced one by one), and with one stream's own fsync failing too (only
// that stream is refused and rolled back) — each time through a power cut.
func TestSyncStreams(t *testing.T) {
	errFlush := errors.New("flush failed")
	errDisk := errors.New("input/output error")
	for _, tc := range []struct {
		name      string
		rule      func(dir string) func(faultfs.Op, string) error
		wantFS    int64 // file-system flushes
		wantFails int64 // of which failed
		failing   string
	}{
		{name: "one flush", wantFS: 1},
		{name: "flush fails", wantFS: 1, wantFails: 1, rule: func(dir string) func(faultfs.Op, string) error {
			return func(op faultfs.Op, name string) error {
				if op == faultfs.OpSync && name == dir {
					return errFlush
				}
				return nil
			}
		}},
		{name: "flush and one file fail", wantFS: 1, wantFails: 1, failing: "s2", rule: func(dir string) func(faultfs.Op, string) error {
			return func(op faultfs.Op, name string) error {
				switch {
				case op == faultfs.OpSync && name == dir:
					return errFlush
				case op == faultfs.OpSync && strings.HasPrefix(filepath.Base(filepath.Dir(name)), "s2@"):
					return errDisk
				}
				return nil
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ffs := faultfs.New(vfs.OS)
			s := newTestStore(t, dir, ffs, nil)
			names := []string{"s0", "s1", "s2", "s3"}
			for _, n := range names {
				mustCreate(t, s, n, 24)
				appendN(t, s, n, 1, 2, 0) // durable before the batch
			}
			for _, n := range names {
				for i := 3; i <= 4; i++ {
					if _, err := s.Append(n, frag(i, "p1")); err != nil {
						t.Fatal(err)
					}
				}
			}
			before := s.Stats()
			if tc.rule != nil {
				ffs.SetFault(tc.rule(dir))
			}
			errs := s.SyncStreams(append(names, "missing"))
			ffs.SetFault(nil)
			for i, n := range names {
				if n == tc.failing {
					if !errors.Is(errs[i], errDisk) {
						t.Errorf("%s: %v, want %v", n, errs[i], errDisk)
					}
				} else if errs[i] != nil {
					t.Errorf("%s: %v", n, errs[i])
				}
			}
			if !errors.Is(errs[len(names)], ErrStreamNotFound) {
				t.Errorf("missing stream: %v", errs[len(names)])
			}
			after := s.Stats()
			if got := after.FileSystemSyncs - before.FileSystemSyncs; got != tc.wantFS {
				t.Errorf("%d file-system flushes, want %d", got, tc.wantFS)
			}
			if got := after.FileSystemSyncFailures - before.FileSystemSyncFailures; got != tc.wantFails {
				t.Errorf("%d failed flushes, want %d", got, tc.wantFails)
			}
			if err := ffs.Crash(); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = newTestStore(t, dir, vfs.OS, nil)
			defer s.Close()
			for _, n := range names {
				last := 4
				if n == tc.failing {
					last = 2
				}
				checkAll(t, s, n, 1, last)
			}
		})
	}
}

// TestSyncStreamsLetsItsCallerGoOn: after SyncStreams, every stream takes
// appends again, including one whose sync failed, and a second batch is
// durable.
func TestSyncStreamsLetsItsCallerGoOn(t *testing.T) {
	dir := t.TempDir()
	s := newTestStore(t, dir, nil, nil)
	var names []string
	for i := 0; i < 50; i++ {
		names = append(names, fmt.Sprintf("s%02d", i))
		mustCreate(t, s, names[i], 24)
	}
	for round := 1; round <= 3; round++ {
		for _, n := range names {
			if _, err := s.Append(n, frag(round, "p1")); err != nil {
				t.Fatal(err)
			}
		}
		for i, err := range s.SyncStreams(names) {
			if err != nil {
				t.Fatalf("%s: %v", names[i], err)
			}
		}
	}
	s.Close()
	s = newTestStore(t, dir, nil, nil)
	defer s.Close()
	for _, n := range names {
		checkAll(t, s, n, 1, 3)
	}
}

// TestPrepareKeys gives streams due for a data key their key ahead of the
// append, and leaves a live-only stream (which writes nothing) alone.
func TestPrepareKeys(t *testing.T) {
	clock := &testClock{t: time.Unix(0, base)}
	s := newTestStore(t, t.TempDir(), nil, func(o *Options) { o.Now = clock.Now })
	defer s.Close()
	mustCreate(t, s, "a", 24)
	mustCreate(t, s, "b", 24)
	mustCreate(t, s, "live", 0)
	streams := map[string]*stream{}
	for _, n := range []string{"a", "b", "live"} {
		st, err := s.stream(n)
		if err != nil {
			t.Fatal(err)
		}
		streams[n] = st
	}
	due := func(n string) bool { return streams[n].keys.due(clock.Now(), streams[n].keyRotation) }
	if !due("a") || !due("b") {
		t.Fatalf("a new stream has its data key before its first append: due a %v, b %v", due("a"), due("b"))
	}
	s.PrepareKeys([]string{"a", "b", "live", "missing"})
	if due("a") || due("b") {
		t.Fatalf("still due after PrepareKeys: a %v, b %v", due("a"), due("b"))
	}
	if !due("live") {
		t.Errorf("a live-only stream got a data key it never uses")
	}
	clock.t = clock.t.Add(s.opts.KeyRotation)
	if !due("a") {
		t.Errorf("a key older than the rotation is not due")
	}
	appendN(t, s, "a", 1, 2, 0)
	checkAll(t, s, "a", 1, 2)
}
