package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
	"github.com/sensorium-io/sensorium/internal/platform/vfs/faultfs"
)

// catalogFixture makes a store with three streams (one with data), stops it
// cleanly and returns its folder: a and b are in the snapshot, c only in
// the journal.
func catalogFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s := newTestStore(t, dir, nil, nil)
	mustCreate(t, s, "a", 24)
	mustCreate(t, s, "b", 1)
	compactCatalog(t, s)
	mustCreate(t, s, "c", 0)
	appendN(t, s, "a", 1, 5, 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// compactCatalog writes a snapshot and starts new journals, as a change
// finding the journal past its bound does.
func compactCatalog(t *testing.T, s *Store) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.saveCatalogLocked(); err != nil {
		t.Fatal(err)
	}
}

// checkCatalogHealed opens dir and checks the fixture's catalog came back
// whole, its data readable, and both copies of the snapshot and of the
// journal on disk sound and identical.
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
	checkJournalsAgree(t, dir)
}

// checkJournalsAgree checks both journal copies are identical and sound to
// their end, and returns the primary's bytes.
func checkJournalsAgree(t *testing.T, dir string) []byte {
	t.Helper()
	p, b := readJournals(t, dir)
	if !bytes.Equal(p, b) {
		t.Fatalf("the two copies of the catalog journal differ: %d and %d bytes", len(p), len(b))
	}
	sc, err := scanJournal(catalogJournalFile, p)
	if err != nil || sc.stop != nil {
		t.Fatalf("the catalog journal is not sound: %v %v", err, sc.stop)
	}
	return p
}

func readJournals(t *testing.T, dir string) (primary, backup []byte) {
	t.Helper()
	p, err := os.ReadFile(filepath.Join(dir, catalogJournalFile))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, catalogJournalBackupFile))
	if err != nil {
		t.Fatal(err)
	}
	return p, b
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
	damage(t, filepath.Join(dir, catalogBackupFile), func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"retentionHours": 1,`), []byte(`"retentionHours": 7,`), 1)
	})
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
			compactCatalog(t, s)
			old, err := os.ReadFile(filepath.Join(dir, stale))
			if err != nil {
				t.Fatal(err)
			}
			mustCreate(t, s, "c", 0)
			compactCatalog(t, s)
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

// seedCatalog makes dir a stopped store holding n streams named
// seed-00000 …, written straight into the catalog (and their folders made),
// so that a benchmark starts from a large catalog without n creations.
func seedCatalog(tb testing.TB, dir string, n int) {
	tb.Helper()
	s, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler), RetentionInterval: -1})
	if err != nil {
		tb.Fatal(err)
	}
	master := s.opts.Keyring.Default
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	created := time.Unix(0, base).UTC()
	streams := make([]catalogStream, n)
	for i := range streams {
		name := fmt.Sprintf("seed-%05d", i)
		rel := streamDirName(name, created)
		if err := os.MkdirAll(filepath.Join(dir, "streams", rel), 0o750); err != nil {
			tb.Fatal(err)
		}
		streams[i] = catalogStream{Name: name, ARN: ARN("us-east-1", "000000000000", name, created), KMSKeyID: master,
			Version: NewVersion(), Status: StatusActive, CreationTime: created, RetentionHours: 24,
			Tags: map[string]string{"site": "north", "line": fmt.Sprint(i % 17)}, Dir: rel}
	}
	b, err := encodeCatalog(1, streams)
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range []string{catalogFile, catalogBackupFile} {
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o640); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkCreateStream creates streams in a store that already holds
// 10,000: a creation's cost must not depend on the catalog's size.
func BenchmarkCreateStream(b *testing.B) {
	const existing = 10000
	dir := b.TempDir()
	seedCatalog(b, dir, existing)
	s, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler), RetentionInterval: -1, MaxStreams: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	i, journal := 0, s.catalog.sizes[0]
	for b.Loop() {
		if _, err := s.CreateStream(CreateStreamInput{Name: fmt.Sprintf("new-%07d", i), RetentionHours: 24}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/create")
	b.ReportMetric(existing, "streams")
	if grown := s.catalog.sizes[0] - journal; grown > 0 { // no compaction came in between
		b.ReportMetric(float64(grown)/float64(b.N), "journal-B/create")
	}
}

// catalogState renders every stream the store holds, one line each, for
// comparing a catalog before and after a restart.
func catalogState(t *testing.T, s *Store) string {
	t.Helper()
	all, err := s.AllStreams()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, in := range all {
		fmt.Fprintf(&b, "%s %s %s %s %s %s %s %d %v\n", in.Name, in.ARN, in.DeviceName, in.MediaType, in.KMSKeyID,
			in.Version, in.CreationTime.UTC().Format(time.RFC3339Nano), in.RetentionHours, in.Tags)
	}
	return b.String()
}

// catalogStep applies one step of a scenario: "create NAME", "tag NAME K=V",
// "untag NAME K", "retain NAME +H" or "retain NAME -H", "media NAME TYPE",
// "delete NAME", "compact" or "reopen".
func catalogStep(t *testing.T, s **Store, dir, step string) {
	t.Helper()
	f := strings.Fields(step)
	var err error
	switch ref := (StreamRef{}); f[0] {
	case "create":
		_, err = (*s).CreateStream(CreateStreamInput{Name: f[1], RetentionHours: 24, DeviceName: "gw-" + f[1]})
	case "tag":
		k, v, _ := strings.Cut(f[2], "=")
		err = (*s).TagStream(StreamRef{Name: f[1]}, map[string]string{k: v})
	case "untag":
		err = (*s).UntagStream(StreamRef{Name: f[1]}, []string{f[2]})
	case "retain", "media":
		ref.Name = f[1]
		var in StreamInfo
		if in, err = (*s).DescribeStream(ref); err != nil {
			break
		}
		if f[0] == "media" {
			err = (*s).UpdateStream(ref, in.Version, nil, &f[2])
			break
		}
		var h int
		fmt.Sscan(f[2][1:], &h)
		err = (*s).UpdateDataRetention(ref, in.Version, f[2][0] == '+', h)
	case "delete":
		err = (*s).DeleteStream(StreamRef{Name: f[1]}, "")
	case "compact":
		compactCatalog(t, *s)
	case "reopen":
		if err := (*s).Close(); err != nil {
			t.Fatal(err)
		}
		*s = newTestStore(t, dir, nil, nil)
	default:
		t.Fatalf("unknown step %q", step)
	}
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// Creations, updates and deletions, recorded in the journal, in snapshots or
// both, come back whole after a restart, and leave both journal copies equal.
func TestCatalogJournalRoundTrip(t *testing.T) {
	cases := []struct {
		name  string
		steps []string
	}{
		{"journal only", []string{"create a", "create b", "tag a site=north", "retain b +6", "create c", "delete b", "media a audio/L16"}},
		{"snapshot only", []string{"create a", "create b", "tag a site=north", "delete b", "compact"}},
		{"snapshot then journal", []string{"create a", "create b", "compact", "tag a k=v", "delete b", "create b", "retain b -20", "untag a k"}},
		{"across restarts", []string{"create a", "reopen", "create b", "tag b x=1", "reopen", "delete a", "compact", "reopen", "create a", "retain a +1"}},
		{"delete all", []string{"create a", "create b", "delete a", "delete b"}},
		{"a name reused", []string{"create a", "tag a old=1", "delete a", "create a", "compact", "delete a", "create a"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := newTestStore(t, dir, nil, nil)
			for _, step := range c.steps {
				catalogStep(t, &s, dir, step)
			}
			want := catalogState(t, s)
			catalogStep(t, &s, dir, "reopen")
			defer s.Close()
			if got := catalogState(t, s); got != want {
				t.Fatalf("after a restart:\n%s\nbefore:\n%s", got, want)
			}
			checkJournalsAgree(t, dir)
		})
	}
}

// journalFixture makes a stopped store whose journal holds, after the
// snapshot (a), the records of: create b, tag a, create c. It returns the
// folder, the journal's bytes and where its last record (create c) starts.
func journalFixture(t *testing.T) (dir string, journal []byte, last int) {
	t.Helper()
	dir = t.TempDir()
	s := newTestStore(t, dir, nil, nil)
	mustCreate(t, s, "a", 24)
	compactCatalog(t, s)
	mustCreate(t, s, "b", 1)
	if err := s.TagStream(StreamRef{Name: "a"}, map[string]string{"site": "north"}); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "c", 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	journal = checkJournalsAgree(t, dir)
	sc, err := scanJournal(catalogJournalFile, journal)
	if err != nil || len(sc.recs) != 3 {
		t.Fatalf("the fixture's journal: %d records, %v", len(sc.recs), err)
	}
	return dir, journal, int(sc.recs[2].start)
}

func writeJournals(t *testing.T, dir string, primary, backup []byte) {
	t.Helper()
	for f, b := range map[string][]byte{catalogJournalFile: primary, catalogJournalBackupFile: backup} {
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

// loadNames runs start-up's catalog load on dir and returns the names, or
// the error. A stream named a must have the tag site=north if it has tags.
func loadNames(t *testing.T, dir string) (string, error) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	entries, _, err := openCatalog(vfs.OS, dir, log)
	if err != nil {
		return "", err
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
		if e.Name == "a" && len(e.Tags) > 0 && e.Tags["site"] != "north" {
			return "", fmt.Errorf("stream a lost its tag: %v", e.Tags)
		}
	}
	return strings.Join(names, ","), nil
}

// A power cut during an append leaves the record torn in the copy being
// written: cut at every byte of the last record (or its bytes zeroed, as a
// file grown but not written), start-up keeps every complete record, cuts
// the tail and makes both copies equal.
func TestCatalogJournalTornTail(t *testing.T) {
	dir, full, last := journalFixture(t)
	type variant struct {
		name            string
		primary, backup func(cut int) []byte
		want            string
	}
	variants := []variant{
		{"primary torn, backup without the record",
			func(cut int) []byte { return full[:cut] }, func(int) []byte { return full[:last] }, "a,b"},
		{"primary whole, backup torn",
			func(int) []byte { return full }, func(cut int) []byte { return full[:cut] }, "a,b,c"},
		{"primary zeroed from the cut, backup without the record",
			func(cut int) []byte { return append(bytes.Clone(full[:cut]), make([]byte, len(full)-cut)...) },
			func(int) []byte { return full[:last] }, "a,b"},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			for cut := last; cut < len(full); cut++ {
				writeJournals(t, dir, v.primary(cut), v.backup(cut))
				got, err := loadNames(t, dir)
				if err != nil {
					t.Fatalf("cut at %d: %v", cut, err)
				}
				if got != v.want {
					t.Fatalf("cut at %d: streams %s, want %s", cut, got, v.want)
				}
				j := checkJournalsAgree(t, dir)
				if want := full[:last]; v.want == "a,b,c" {
					want = full
					if !bytes.Equal(j, want) {
						t.Fatalf("cut at %d: the journal was not healed to the whole of it", cut)
					}
				} else if !bytes.Equal(j, want) {
					t.Fatalf("cut at %d: the journal is %d bytes, want the %d before the torn record", cut, len(j), len(want))
				}
			}
		})
	}
	// The repaired folder opens as a store, and takes new records.
	s := newTestStore(t, dir, nil, nil)
	mustCreate(t, s, "d", 1)
	s.Close()
	if got, err := loadNames(t, dir); err != nil || got != "a,b,d" {
		t.Fatalf("after the repair and a new stream: %s, %v", got, err)
	}
}

// A flipped byte anywhere in one journal copy: the other copy wins and the
// damaged one is rewritten from it.
func TestCatalogJournalOneCopyDamaged(t *testing.T) {
	// Where to flip, in a fixture's journal (record lengths vary by a few
	// bytes: creation times are written without trailing zeros).
	at := []struct {
		name string
		off  func(full []byte, recs []journalRecord) int
	}{
		{"magic", func([]byte, []journalRecord) int { return 2 }},
		{"header base", func([]byte, []journalRecord) int { return 16 }},
		{"header checksum", func([]byte, []journalRecord) int { return 29 }},
		{"first record length", func(_ []byte, r []journalRecord) int { return int(r[0].start) }},
		{"first record checksum", func(_ []byte, r []journalRecord) int { return int(r[0].start) + 5 }},
		{"first record generation", func(_ []byte, r []journalRecord) int { return int(r[0].start) + 8 }},
		{"first record type", func(_ []byte, r []journalRecord) int { return int(r[0].start) + 16 }},
		{"first record body", func(_ []byte, r []journalRecord) int { return int(r[0].start) + 40 }},
		{"second record reserved", func(_ []byte, r []journalRecord) int { return int(r[1].start) + 18 }},
		{"last record body", func(_ []byte, r []journalRecord) int { return int(r[2].start) + 60 }},
		{"last byte", func(full []byte, _ []journalRecord) int { return len(full) - 1 }},
	}
	for _, file := range []string{catalogJournalFile, catalogJournalBackupFile} {
		for _, a := range at {
			t.Run(file+"/"+a.name, func(t *testing.T) {
				dir, full, _ := journalFixture(t)
				sc, _ := scanJournal(catalogJournalFile, full)
				off := a.off(full, sc.recs)
				damage(t, filepath.Join(dir, file), func(b []byte) []byte { b[off] ^= 0x10; return b })
				checkJournalHealed(t, dir, full)
			})
		}
		t.Run(file+"/missing", func(t *testing.T) {
			dir, full, _ := journalFixture(t)
			damage(t, filepath.Join(dir, file), func([]byte) []byte { return nil })
			checkJournalHealed(t, dir, full)
		})
	}
}

// checkJournalHealed opens dir as a store: journalFixture's streams are
// there, and both journal copies are full again.
func checkJournalHealed(t *testing.T, dir string, full []byte) {
	t.Helper()
	s := newTestStore(t, dir, nil, nil)
	defer s.Close()
	if got := strings.Count(catalogState(t, s), "\n"); got != 3 {
		t.Fatalf("%d streams, want 3:\n%s", got, catalogState(t, s))
	}
	if in, err := s.DescribeStream(StreamRef{Name: "a"}); err != nil || in.Tags["site"] != "north" {
		t.Fatalf("stream a: %+v, %v", in, err)
	}
	if j := checkJournalsAgree(t, dir); !bytes.Equal(j, full) {
		t.Fatalf("the healed journal is %d bytes, want %d", len(j), len(full))
	}
}

// Both journal copies unusable, or the copy that reaches furthest damaged
// inside: start-up stops and says which files and why, rather than start
// without changes that were acknowledged.
func TestCatalogJournalBothCopiesDamaged(t *testing.T) {
	cases := []struct {
		name            string
		primary, backup func(b []byte, last int) []byte
		want            []string
	}{
		{"both headers", func(b []byte, _ int) []byte { b[0] ^= 1; return b }, func(b []byte, _ int) []byte { b[20] ^= 1; return b },
			[]string{"no sound copy of the catalog journal", "not a catalog journal header"}},
		{"a header and a missing copy", func(b []byte, _ int) []byte { b[0] ^= 1; return b }, func([]byte, int) []byte { return nil },
			[]string{"no sound copy of the catalog journal", "missing"}},
		{"both inside", func(b []byte, _ int) []byte { b[journalHeaderSize+30] ^= 1; return b },
			func(b []byte, last int) []byte { b[last-10] ^= 1; return b },
			[]string{"damaged inside", "records after the damage are in neither copy"}},
		{"inside, and the other copy missing", func(b []byte, _ int) []byte { b[journalHeaderSize+30] ^= 1; return b },
			func([]byte, int) []byte { return nil }, []string{"damaged inside", "missing"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, _, last := journalFixture(t)
			damage(t, filepath.Join(dir, catalogJournalFile), func(b []byte) []byte { return c.primary(b, last) })
			damage(t, filepath.Join(dir, catalogJournalBackupFile), func(b []byte) []byte { return c.backup(b, last) })
			_, err := openOn(t, dir, nil, nil)
			if err == nil {
				t.Fatal("the store opened")
			}
			for _, want := range append(c.want, catalogJournalFile, catalogJournalBackupFile) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

// A journal without a snapshot to follow: start-up stops instead of
// replaying the changes onto an empty catalog.
func TestCatalogJournalWithoutSnapshot(t *testing.T) {
	dir, _, _ := journalFixture(t)
	for _, f := range []string{catalogFile, catalogBackupFile} {
		damage(t, filepath.Join(dir, f), func([]byte) []byte { return nil })
	}
	_, err := openOn(t, dir, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "neither") || !strings.Contains(err.Error(), catalogJournalFile) {
		t.Fatalf("open without a snapshot: %v", err)
	}
}

// A compaction writes the snapshot (primary, then backup) and then resets
// each journal (primary, then backup). A power cut at any point between
// leaves files as built here; each opens with every stream, and start-up
// leaves both journals empty after the newest snapshot.
func TestCatalogJournalCompactionCrash(t *testing.T) {
	type files struct{ snap, snapBackup, journal, journalBackup []byte }
	cases := []struct {
		name string
		pick func(old, new files) files
	}{
		{"after the primary snapshot", func(o, n files) files { return files{n.snap, o.snapBackup, o.journal, o.journalBackup} }},
		{"after both snapshots", func(o, n files) files { return files{n.snap, n.snapBackup, o.journal, o.journalBackup} }},
		{"after the primary journal's reset", func(o, n files) files { return files{n.snap, n.snapBackup, n.journal, o.journalBackup} }},
		{"after both resets", func(o, n files) files { return n }},
	}
	read := func(dir string) files {
		var f files
		for p, name := range map[*[]byte]string{&f.snap: catalogFile, &f.snapBackup: catalogBackupFile,
			&f.journal: catalogJournalFile, &f.journalBackup: catalogJournalBackupFile} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			*p = b
		}
		return f
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, _, _ := journalFixture(t)
			old := read(dir)
			s := newTestStore(t, dir, nil, nil)
			want := catalogState(t, s)
			compactCatalog(t, s)
			s.Close()
			n := read(dir)
			f := c.pick(old, n)
			for p, name := range map[*[]byte]string{&f.snap: catalogFile, &f.snapBackup: catalogBackupFile,
				&f.journal: catalogJournalFile, &f.journalBackup: catalogJournalBackupFile} {
				if err := os.WriteFile(filepath.Join(dir, name), *p, 0o640); err != nil {
					t.Fatal(err)
				}
			}
			s = newTestStore(t, dir, nil, nil)
			if got := catalogState(t, s); got != want {
				t.Fatalf("after the power cut:\n%s\nwant:\n%s", got, want)
			}
			mustCreate(t, s, "d", 1)
			want = catalogState(t, s)
			s.Close()
			if got := read(dir); !bytes.Equal(got.snap, n.snap) || !bytes.Equal(got.snapBackup, n.snap) {
				t.Fatal("the snapshot copies were not healed to the compaction's")
			}
			s = newTestStore(t, dir, nil, nil)
			defer s.Close()
			if got := catalogState(t, s); got != want {
				t.Fatalf("after a new stream and a restart:\n%s\nwant:\n%s", got, want)
			}
			if sc, err := scanJournal(catalogJournalFile, checkJournalsAgree(t, dir)); err != nil || len(sc.recs) != 1 {
				t.Fatalf("the journal after the compaction holds %d records (%v), want the one of d", len(sc.recs), err)
			}
		})
	}
}

// The journal is compacted once it outgrows max(1 MiB, the snapshot): the
// change that finds it so writes a snapshot instead, the journal starts
// again, and everything survives a restart.
func TestCatalogJournalCompactsWhenLong(t *testing.T) {
	dir := t.TempDir()
	s := newTestStore(t, dir, nil, nil)
	mustCreate(t, s, "a", 24)
	snapshot := func() []byte {
		b, err := os.ReadFile(filepath.Join(dir, catalogFile))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first := snapshot()
	compactions := 0
	for i := 0; i < 120; i++ {
		tags := map[string]string{}
		for k := range MaxTagsPerStream {
			tags[fmt.Sprintf("%03d-%s", k, strings.Repeat("k", MaxTagKeyLen-4))] = fmt.Sprintf("%d-%s", i, strings.Repeat("v", MaxTagValueLen-4))
		}
		before, snap := s.catalog.sizes[0], snapshot()
		if err := s.TagStream(StreamRef{Name: "a"}, tags); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(snap, snapshot()) {
			compactions++
			if before <= journalMinCompact || s.catalog.sizes[0] != journalHeaderSize {
				t.Fatalf("a snapshot written with the journal at %d bytes (bound %d); the journal is %d bytes after",
					before, journalMinCompact, s.catalog.sizes[0])
			}
		} else if before > journalMinCompact {
			t.Fatalf("the journal at %d bytes, past its bound, and no snapshot", before)
		}
	}
	if compactions < 2 || bytes.Equal(first, snapshot()) {
		t.Fatalf("%d compactions in 120 changes of ~20 KB", compactions)
	}
	want := catalogState(t, s)
	s.Close()
	s = newTestStore(t, dir, nil, nil)
	defer s.Close()
	if got := catalogState(t, s); got != want {
		t.Fatalf("after a restart:\n%s\nwant:\n%s", got, want)
	}
}

// A creation appends one record of a size that does not depend on how many
// streams the catalog holds, and leaves the snapshot alone.
func TestCatalogCreateWritesOneRecord(t *testing.T) {
	growth := func(seeded int) int64 {
		dir := t.TempDir()
		if seeded > 0 {
			seedCatalog(t, dir, seeded)
		}
		clock := &testClock{t: time.Unix(0, base)}
		s := newTestStore(t, dir, nil, func(o *Options) { o.Now = clock.Now })
		defer s.Close()
		snap, err := os.ReadFile(filepath.Join(dir, catalogFile))
		if err != nil {
			t.Fatal(err)
		}
		before := s.catalog.sizes
		mustCreate(t, s, "new-stream", 24)
		after, err := os.ReadFile(filepath.Join(dir, catalogFile))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(snap, after) {
			t.Fatalf("with %d streams, a creation rewrote the snapshot", seeded)
		}
		for i, p := range []string{catalogJournalFile, catalogJournalBackupFile} {
			fi, err := os.Stat(filepath.Join(dir, p))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != s.catalog.sizes[i] || s.catalog.sizes[i]-before[i] != s.catalog.sizes[0]-before[0] {
				t.Fatalf("%s is %d bytes, the store counts %d", p, fi.Size(), s.catalog.sizes[i])
			}
		}
		return s.catalog.sizes[0] - before[0]
	}
	small, large := growth(0), growth(300)
	if small != large || small > 1024 {
		t.Fatalf("a creation appended %d bytes to an empty catalog's journal and %d to one of 300 streams", small, large)
	}
}

// A store written before the journal (a snapshot only) opens, gets its
// journals, and records its next changes in them.
func TestCatalogWithoutJournalOpens(t *testing.T) {
	dir := t.TempDir()
	seedCatalog(t, dir, 3)
	s := newTestStore(t, dir, nil, nil)
	if got := strings.Count(catalogState(t, s), "\n"); got != 3 {
		t.Fatalf("%d streams from the snapshot, want 3", got)
	}
	if j := checkJournalsAgree(t, dir); len(j) != journalHeaderSize {
		t.Fatalf("a new journal of %d bytes", len(j))
	}
	mustCreate(t, s, "a", 1)
	if err := s.DeleteStream(StreamRef{Name: "seed-00001"}, ""); err != nil {
		t.Fatal(err)
	}
	want := catalogState(t, s)
	s.Close()
	s = newTestStore(t, dir, nil, nil)
	defer s.Close()
	if got := catalogState(t, s); got != want || !strings.Contains(got, "a arn") || strings.Contains(got, "seed-00001") {
		t.Fatalf("after a restart:\n%s\nwant:\n%s", got, want)
	}
}

// A journal append that fails is undone: the change did not happen, in
// memory or on disk, and the next one is recorded. When the undo fails too,
// the next change writes a snapshot instead of appending after the debris.
func TestCatalogJournalAppendFails(t *testing.T) {
	for _, undoFails := range []bool{false, true} {
		t.Run(fmt.Sprintf("undo fails %v", undoFails), func(t *testing.T) {
			dir := t.TempDir()
			ffs := faultfs.New(vfs.OS)
			s := newTestStore(t, dir, ffs, nil)
			mustCreate(t, s, "a", 1)
			sizes := s.catalog.sizes
			snap, err := os.ReadFile(filepath.Join(dir, catalogFile))
			if err != nil {
				t.Fatal(err)
			}
			ffs.SetFault(func(op faultfs.Op, name string) error {
				switch base := filepath.Base(name); {
				case op == faultfs.OpWrite && base == catalogJournalBackupFile,
					op == faultfs.OpTruncate && base == catalogJournalFile && undoFails:
					return faultfs.ErrInjected
				}
				return nil
			})
			if _, err := s.CreateStream(CreateStreamInput{Name: "b", RetentionHours: 1}); !errors.Is(err, faultfs.ErrInjected) {
				t.Fatalf("a creation whose journal append fails: %v", err)
			}
			ffs.SetFault(nil)
			if _, err := s.DescribeStream(StreamRef{Name: "b"}); !errors.Is(err, ErrStreamNotFound) {
				t.Fatalf("the failed creation left a stream: %v", err)
			}
			if s.catalog.broken != undoFails {
				t.Fatalf("journal broken %v", s.catalog.broken)
			}
			if !undoFails {
				p, b := readJournals(t, dir)
				if int64(len(p)) != sizes[0] || int64(len(b)) != sizes[1] {
					t.Fatalf("the journals are %d and %d bytes after the undo, were %d and %d", len(p), len(b), sizes[0], sizes[1])
				}
			}
			mustCreate(t, s, "c", 1)
			after, err := os.ReadFile(filepath.Join(dir, catalogFile))
			if err != nil {
				t.Fatal(err)
			}
			if rewrote := !bytes.Equal(snap, after); rewrote != undoFails {
				t.Fatalf("snapshot rewritten: %v", rewrote)
			}
			s.Close()
			if got, err := loadNames(t, dir); err != nil || got != "a,c" {
				t.Fatalf("after a restart: %s, %v", got, err)
			}
			checkJournalsAgree(t, dir)
		})
	}
}

// TestCatalogJournalDocMatchesCode keeps FORMAT.md's table of journal
// constants (three columns, so TestFormatDocMatchesCode leaves it to this
// test) in step with the code.
func TestCatalogJournalDocMatchesCode(t *testing.T) {
	doc, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	code := map[string]string{
		"journalMagic":            journalMagic,
		"journalVersion":          fmt.Sprint(journalVersion),
		"journalHeaderSize":       fmt.Sprint(journalHeaderSize),
		"journalRecordHeaderSize": fmt.Sprint(journalRecordHeaderSize),
		"journalPut":              fmt.Sprint(journalPut),
		"journalDelete":           fmt.Sprint(journalDelete),
		"journalMaxBody":          fmt.Sprint(journalMaxBody),
		"journalMinCompact":       fmt.Sprint(journalMinCompact),
	}
	rows := regexp.MustCompile(`(?m)^\| (journal\w+) \| (\S+) \| [^|]+ \|$`).FindAllSubmatch(doc, -1)
	seen := map[string]bool{}
	for _, r := range rows {
		name, val := string(r[1]), string(r[2])
		want, ok := code[name]
		switch {
		case !ok:
			t.Errorf("FORMAT.md names %s, which the test does not know", name)
		case val != want:
			t.Errorf("FORMAT.md says %s = %s; the code has %s", name, val, want)
		}
		seen[name] = true
	}
	for name := range code {
		if !seen[name] {
			t.Errorf("FORMAT.md does not document %s", name)
		}
	}
}

// Pages of ListStreams, from the kept order of names, agree with a sort of
// every stream the store holds, through creations and deletions.
func TestListStreamsPagesAgreeWithASort(t *testing.T) {
	s := newTestStore(t, t.TempDir(), nil, nil)
	defer s.Close()
	names := []string{"pump-10", "pump-2", "pump", "pum", "pump-1", "valve-1", "a", "pumpz", "pump-3", "q", "pump-11", "valve-2"}
	for _, n := range names {
		mustCreate(t, s, n, 1)
	}
	for _, n := range []string{"pump-2", "a", "valve-2"} {
		if err := s.DeleteStream(StreamRef{Name: n}, ""); err != nil {
			t.Fatal(err)
		}
	}
	mustCreate(t, s, "pump-2", 1)
	live := []string{}
	for _, n := range names {
		if n != "a" && n != "valve-2" {
			live = append(live, n)
		}
	}
	sort.Strings(live)
	for _, prefix := range []string{"", "p", "pump", "pump-", "pump-1", "valve", "x", "pump-11"} {
		var want []string
		for _, n := range live {
			if strings.HasPrefix(n, prefix) {
				want = append(want, n)
			}
		}
		for limit := 1; limit <= len(live)+1; limit++ {
			var got []string
			token := ""
			for pages := 0; pages <= len(live)+1; pages++ {
				page, next, err := s.ListStreams(prefix, limit, token)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > limit {
					t.Fatalf("prefix %q limit %d: a page of %d", prefix, limit, len(page))
				}
				for _, in := range page {
					got = append(got, in.Name)
				}
				if token = next; token == "" {
					break
				}
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("prefix %q limit %d: listed %v, want %v", prefix, limit, got, want)
			}
		}
	}
	if !slices.IsSorted(s.names) || len(s.names) != len(s.streams) {
		t.Fatalf("names %v, %d streams", s.names, len(s.streams))
	}
}

// BenchmarkCatalogReads times ListStreams and DescribeStream in a store of
// 10,000 streams.
func BenchmarkCatalogReads(b *testing.B) {
	const existing = 10000
	dir := b.TempDir()
	seedCatalog(b, dir, existing)
	s, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler), RetentionInterval: -1, MaxStreams: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.Run("ListStreams first 100", func(b *testing.B) {
		for b.Loop() {
			if page, _, err := s.ListStreams("", 100, ""); err != nil || len(page) != 100 {
				b.Fatal(len(page), err)
			}
		}
	})
	b.Run("ListStreams 100 after a token", func(b *testing.B) {
		token := ListToken("seed-05000")
		for b.Loop() {
			if page, _, err := s.ListStreams("seed-0", 100, token); err != nil || len(page) != 100 {
				b.Fatal(len(page), err)
			}
		}
	})
	b.Run("DescribeStream", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.DescribeStream(StreamRef{Name: "seed-07777"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
