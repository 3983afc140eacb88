package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// catalogFixture makes a store with three streams (one with data), stops it
// cleanly and returns its folder.
func catalogFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s := newTestStore(t, dir, nil, nil)
	mustCreate(t, s, "a", 24)
	mustCreate(t, s, "b", 1)
	mustCreate(t, s, "c", 0)
	appendN(t, s, "a", 1, 5, 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// checkCatalogHealed opens dir and checks the fixture's catalog came back
// whole, its data readable, and both copies on disk sound and identical.
func checkCatalogHealed(t *testing.T, dir string) {
	t.Helper()
	s := newTestStore(t, dir, nil, nil)
	defer s.Close()
	list, _, err := s.ListStreams("", 100, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range list {
		names = append(names, st.Name)
	}
	if got := strings.Join(names, ","); got != "a,b,c" {
		t.Fatalf("streams %q, want a,b,c", got)
	}
	if info, _ := s.DescribeStream(StreamRef{Name: "b"}); info.RetentionHours != 1 {
		t.Fatalf("stream b: retention %d, want 1", info.RetentionHours)
	}
	checkAll(t, s, "a", 1, 5)
	p, err := os.ReadFile(filepath.Join(dir, catalogFile))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, catalogBackupFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p, b) {
		t.Fatal("the two copies of the catalog differ after start-up")
	}
	if _, _, err := decodeCatalog(p); err != nil {
		t.Fatalf("the healed catalog is not sound: %v", err)
	}
}

// One copy of the catalog torn, truncated, with a flipped byte or missing:
// start-up takes the other and rewrites the bad one.
func TestCatalogSurvivesOneDamagedCopy(t *testing.T) {
	damages := []struct {
		name string
		do   func(b []byte) []byte // nil result: remove the file
	}{
		{"flip a byte at the start", func(b []byte) []byte { b[0] ^= 0x20; return b }},
		{"flip a byte in the middle", func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b }},
		{"flip a byte near the end", func(b []byte) []byte { b[len(b)-20] ^= 0x04; return b }},
		{"flip a digit of the generation", func(b []byte) []byte {
			i := bytes.Index(b, []byte(`"generation": `)) + len(`"generation": `)
			b[i]++
			return b
		}},
		{"change a retention, JSON still valid", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"retentionHours": 1,`), []byte(`"retentionHours": 7,`), 1)
		}},
		{"truncate to half", func(b []byte) []byte { return b[:len(b)/2] }},
		{"truncate to nothing", func(b []byte) []byte { return b[:0] }},
		{"remove", func([]byte) []byte { return nil }},
	}
	for _, file := range []string{catalogFile, catalogBackupFile} {
		for _, d := range damages {
			t.Run(file+"/"+d.name, func(t *testing.T) {
				dir := catalogFixture(t)
				damage(t, filepath.Join(dir, file), d.do)
				checkCatalogHealed(t, dir)
			})
		}
	}
}

func damage(t *testing.T, path string, do func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if b = do(b); b == nil {
		err = os.Remove(path)
	} else {
		err = os.WriteFile(path, b, 0o640)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// Both copies bad: start-up stops, and says which files and why.
func TestCatalogBothCopiesDamaged(t *testing.T) {
	dir := catalogFixture(t)
	damage(t, filepath.Join(dir, catalogFile), func(b []byte) []byte { return b[:len(b)/3] })
	damage(t, filepath.Join(dir, catalogBackupFile), func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b })
	_, err := openOn(t, dir, nil, nil)
	if err == nil {
		t.Fatal("the store opened with both copies of its catalog damaged")
	}
	for _, want := range []string{catalogFile, catalogBackupFile, "not JSON", "checksum mismatch"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// A power cut between the two rewrites leaves one copy a generation behind:
// the newer wins, whichever file holds it.
func TestCatalogNewerCopyWins(t *testing.T) {
	for _, stale := range []string{catalogFile, catalogBackupFile} {
		t.Run(stale+" older", func(t *testing.T) {
			dir := t.TempDir()
			s := newTestStore(t, dir, nil, nil)
			mustCreate(t, s, "a", 24)
			mustCreate(t, s, "b", 1)
			old, err := os.ReadFile(filepath.Join(dir, stale))
			if err != nil {
				t.Fatal(err)
			}
			mustCreate(t, s, "c", 0)
			appendN(t, s, "a", 1, 5, 0)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, stale), old, 0o640); err != nil {
				t.Fatal(err)
			}
			checkCatalogHealed(t, dir)
		})
	}
}

// A catalog written by the previous version (format 1, one copy, no
// checksum) opens, and start-up writes both copies in format 2.
func TestCatalogFormat1Opens(t *testing.T) {
	dir := t.TempDir()
	v1, err := os.ReadFile(filepath.Join("testdata", "catalog-v1", "catalog.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, catalogFile), v1, 0o640); err != nil {
		t.Fatal(err)
	}
	s := newTestStore(t, dir, nil, nil)
	info, err := s.DescribeStream(StreamRef{Name: "pump-1"})
	if err != nil {
		t.Fatal(err)
	}
	if info.RetentionHours != 24 || info.Tags["site"] != "north" || info.Version != "Ab3dEf6hIj9k" || info.MediaType != "application/x-sensorium" {
		t.Fatalf("pump-1 from a format 1 catalog: %+v", info)
	}
	if _, err := s.DescribeStream(StreamRef{Name: "pump-2"}); err != nil {
		t.Fatal(err)
	}
	appendN(t, s, "pump-1", 1, 3, 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{catalogFile, catalogBackupFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(`"format": 2,`)) {
			t.Fatalf("%s was not rewritten in format 2", f)
		}
		if _, _, err := decodeCatalog(b); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	s = newTestStore(t, dir, nil, nil)
	defer s.Close()
	checkAll(t, s, "pump-1", 1, 3)
}
