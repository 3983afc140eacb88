package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
	"github.com/sensorium-io/sensorium/internal/platform/vfs/faultfs"
)

// openOn opens the store in dir on fsys, reporting failure as an error: a
// power cut may leave a folder that does not open, which a scenario reports.
func openOn(t *testing.T, dir string, fsys vfs.FS, tweak func(*Options)) (*Store, error) {
	t.Helper()
	opts := Options{
		Dir:               dir,
		FS:                fsys,
		Logger:            slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelError})),
		RetentionInterval: -1,
	}
	if tweak != nil {
		tweak(&opts)
	}
	return Open(opts)
}

// verifyAll is checkAll that returns what is wrong instead of failing.
func verifyAll(s *Store, stream string, from, to int) error {
	infos, err := s.Fragments(stream, 0, 1<<30)
	if err != nil {
		return fmt.Errorf("Fragments: %w", err)
	}
	if len(infos) != to-from+1 {
		return fmt.Errorf("%d fragments, want %d (%d..%d)", len(infos), to-from+1, from, to)
	}
	r, err := s.NewReader(stream)
	if err != nil {
		return err
	}
	defer r.Close()
	for i, info := range infos {
		want := frag(from+i, "p1")
		if info.Number != want.Number {
			return fmt.Errorf("fragment %d is number %d, want %d", i, info.Number, want.Number)
		}
		got, err := r.Read(info)
		if err != nil {
			return fmt.Errorf("read %d: %w", info.Number, err)
		}
		if !bytes.Equal(got.Payload, want.Payload) {
			return fmt.Errorf("fragment %d: payload differs", info.Number)
		}
	}
	return nil
}

// appendAll appends fragments from..to and syncs, reporting errors.
func appendAll(s *Store, stream string, from, to int) error {
	for i := from; i <= to; i++ {
		if _, err := s.Append(stream, frag(i, "p1")); err != nil {
			return err
		}
	}
	return s.Sync(stream)
}

// afterCut cuts the power under the first life's store and opens the folder
// again on the real disk.
func afterCut(t *testing.T, dir string, ffs *faultfs.FS, tweak func(*Options)) (*Store, error) {
	t.Helper()
	if err := ffs.Crash(); err != nil {
		t.Fatalf("crash: %v", err)
	}
	s, err := openOn(t, dir, vfs.OS, tweak)
	if err != nil {
		return nil, fmt.Errorf("open after the power cut: %w", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, nil
}

// powerCutScenarios each exercise one directory fsync site and check, after
// a power cut, what that fsync is there to keep. Each returns nil when all
// is well, else what was lost.
var powerCutScenarios = []struct {
	site string
	run  func(t *testing.T, ffs *faultfs.FS) error
}{
	{siteStoreFolders, func(t *testing.T, ffs *faultfs.FS) error {
		// The store's folder itself is new (two levels of it): the first start.
		dir := filepath.Join(t.TempDir(), "data", "store")
		return appendCutVerify(t, dir, ffs)
	}},
	{siteStreamFolder, func(t *testing.T, ffs *faultfs.FS) error { return appendCutVerify(t, t.TempDir(), ffs) }},
	{siteSegment, func(t *testing.T, ffs *faultfs.FS) error {
		// Segments that roll over: the first one's entry is also covered by
		// the data key written after it, the later ones by nothing else.
		dir := t.TempDir()
		tweak := func(o *Options) { o.SegmentMaxBytes = 3000 }
		s, err := openOn(t, dir, ffs, tweak)
		if err != nil {
			return err
		}
		mustCreate(t, s, "a", 24)
		for i := 1; i <= 30; i += 3 {
			if err := appendAll(s, "a", i, i+2); err != nil {
				return err
			}
		}
		s2, err := afterCut(t, dir, ffs, tweak)
		if err != nil {
			return err
		}
		return verifyAll(s2, "a", 1, 30)
	}},
	{siteCatalog, func(t *testing.T, ffs *faultfs.FS) error { return appendCutVerify(t, t.TempDir(), ffs) }},
	{siteDataKeys, func(t *testing.T, ffs *faultfs.FS) error {
		// A key rotated while a segment is active: nothing else syncs the folder.
		dir := t.TempDir()
		clock := &testClock{t: time.Unix(0, base)}
		tweak := func(o *Options) { o.Now, o.KeyRotation = clock.Now, time.Minute }
		s, err := openOn(t, dir, ffs, tweak)
		if err != nil {
			return err
		}
		mustCreate(t, s, "a", 24)
		if err := appendAll(s, "a", 1, 3); err != nil {
			return err
		}
		clock.t = clock.t.Add(2 * time.Minute)
		if err := appendAll(s, "a", 4, 6); err != nil {
			return err
		}
		s2, err := afterCut(t, dir, ffs, tweak)
		if err != nil {
			return err
		}
		return verifyAll(s2, "a", 1, 6)
	}},
	{siteIndex, func(t *testing.T, ffs *faultfs.FS) error {
		// A clean stop seals the active segment: the next start must find
		// an index for every segment (FORMAT.md), not rescan.
		dir := t.TempDir()
		s, err := openOn(t, dir, ffs, nil)
		if err != nil {
			return err
		}
		mustCreate(t, s, "a", 24)
		if err := appendAll(s, "a", 1, 5); err != nil {
			return err
		}
		if err := s.Close(); err != nil {
			return err
		}
		if err := ffs.Crash(); err != nil {
			t.Fatal(err)
		}
		segs, idx := segmentFiles(t, dir)
		if len(segs) != 1 || len(idx) != 1 {
			return fmt.Errorf("after a clean stop and a power cut: segments %v, indexes %v", segs, idx)
		}
		return nil
	}},
	{siteRetention, func(t *testing.T, ffs *faultfs.FS) error {
		dir := t.TempDir()
		clock := &testClock{t: time.Unix(0, base)}
		tweak := func(o *Options) { o.Now = clock.Now }
		s, err := openOn(t, dir, ffs, tweak)
		if err != nil {
			return err
		}
		mustCreate(t, s, "a", 1)
		if err := appendAll(s, "a", 1, 5); err != nil {
			return err
		}
		clock.t = time.Unix(0, frag(5, "").ServerTime).Add(2 * time.Hour)
		if n := s.EnforceRetention(); n != 1 {
			return fmt.Errorf("retention removed %d segments, want 1", n)
		}
		s2, err := afterCut(t, dir, ffs, tweak)
		if err != nil {
			return err
		}
		if infos, err := s2.Fragments("a", 0, 100); err != nil || len(infos) != 0 {
			return fmt.Errorf("after retention and a power cut: %d fragments back (%v)", len(infos), err)
		}
		return nil
	}},
	{siteRepairTail, func(t *testing.T, ffs *faultfs.FS) error {
		// A torn tail, cut at start-up; the index write that follows fails
		// (a documented path), so no later fsync of the folder covers the
		// .broken copy's entry.
		dir := t.TempDir()
		s, err := openOn(t, dir, vfs.OS, nil)
		if err != nil {
			return err
		}
		mustCreate(t, s, "a", 24)
		if err := appendAll(s, "a", 1, 5); err != nil {
			return err
		}
		segs, _ := segmentFiles(t, dir)
		seg, _ := filepath.Glob(filepath.Join(dir, "streams", "*", segs[0]+".seg"))
		f, err := os.OpenFile(seg[0], os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		_, _ = f.Write([]byte("half a record"))
		f.Close()
		ffs.SetFault(func(op faultfs.Op, name string) error {
			if op == faultfs.OpRename && filepath.Ext(name) == indexExt {
				return faultfs.ErrInjected
			}
			return nil
		})
		if _, err := openOn(t, dir, ffs, nil); err != nil {
			return err
		}
		if err := ffs.Crash(); err != nil {
			t.Fatal(err)
		}
		if m, _ := filepath.Glob(seg[0] + ".broken-*"); len(m) != 1 {
			return fmt.Errorf("after the repair and a power cut the cut bytes are not kept: %v", m)
		}
		return nil
	}},
	{siteStreamDelete, func(t *testing.T, ffs *faultfs.FS) error {
		dir := t.TempDir()
		s, err := openOn(t, dir, ffs, nil)
		if err != nil {
			return err
		}
		mustCreate(t, s, "a", 24)
		if err := appendAll(s, "a", 1, 5); err != nil {
			return err
		}
		if err := s.DeleteStream(StreamRef{Name: "a"}, ""); err != nil {
			return err
		}
		if _, err := afterCut(t, dir, ffs, nil); err != nil {
			return err
		}
		if ents, _ := os.ReadDir(filepath.Join(dir, "streams")); len(ents) != 0 {
			return fmt.Errorf("a deleted stream's folder came back, named by no catalog entry: %s", ents[0].Name())
		}
		return nil
	}},
	{siteKeyring, func(t *testing.T, ffs *faultfs.FS) error {
		// A keyring in a folder of its own (serve --keyring): nothing else
		// syncs that folder.
		dir, secrets := t.TempDir(), t.TempDir()
		path := filepath.Join(secrets, "keyring.json")
		ring, err := LoadKeyring(ffs, path)
		if err != nil {
			return err
		}
		s, err := openOn(t, dir, ffs, func(o *Options) { o.Keyring = ring })
		if err != nil {
			return err
		}
		mustCreate(t, s, "a", 24)
		if err := appendAll(s, "a", 1, 5); err != nil {
			return err
		}
		if err := ffs.Crash(); err != nil {
			t.Fatal(err)
		}
		ring2, err := LoadKeyring(vfs.OS, path)
		if err != nil {
			return err
		}
		s2, err := openOn(t, dir, vfs.OS, func(o *Options) { o.Keyring = ring2 })
		if err != nil {
			return fmt.Errorf("open after the power cut: %w", err)
		}
		defer s2.Close()
		return verifyAll(s2, "a", 1, 5)
	}},
}

// appendCutVerify: a first start, a stream, five fragments synced, a power
// cut; all five must be there.
func appendCutVerify(t *testing.T, dir string, ffs *faultfs.FS) error {
	s, err := openOn(t, dir, ffs, nil)
	if err != nil {
		return err
	}
	mustCreate(t, s, "a", 24)
	if err := appendAll(s, "a", 1, 5); err != nil {
		return err
	}
	s2, err := afterCut(t, dir, ffs, nil)
	if err != nil {
		return err
	}
	return verifyAll(s2, "a", 1, 5)
}

// TestEveryDirSyncIsNeeded runs each scenario twice on the strict faultfs:
// as the store is, it must keep everything through the power cut; with its
// one directory fsync skipped, the same power cut must lose something. So
// every directory fsync in the store is proven needed, and the crash model
// is proven strict enough to notice a missing one.
func TestEveryDirSyncIsNeeded(t *testing.T) {
	for _, sc := range powerCutScenarios {
		t.Run(sc.site, func(t *testing.T) {
			if err := sc.run(t, faultfs.New(vfs.OS)); err != nil {
				t.Fatalf("with every fsync: %v", err)
			}
			dirSyncSkipped = sc.site
			defer func() { dirSyncSkipped = "" }()
			err := sc.run(t, faultfs.New(vfs.OS))
			if err == nil {
				t.Fatalf("without the %s directory fsync a power cut lost nothing: the fsync is not proven needed", sc.site)
			}
			t.Logf("without the %s directory fsync: %v", sc.site, err)
		})
	}
}

// The scenarios cover every site the store names.
func TestEveryDirSyncSiteHasAScenario(t *testing.T) {
	sites := []string{siteStoreFolders, siteStreamFolder, siteSegment, siteCatalog, siteDataKeys,
		siteIndex, siteRetention, siteRepairTail, siteStreamDelete, siteKeyring}
	have := map[string]bool{}
	for _, sc := range powerCutScenarios {
		have[sc.site] = true
	}
	var missing []error
	for _, s := range sites {
		if !have[s] {
			missing = append(missing, fmt.Errorf("no power-cut scenario for %s", s))
		}
	}
	if err := errors.Join(missing...); err != nil {
		t.Fatal(err)
	}
}
