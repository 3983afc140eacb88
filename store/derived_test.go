package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

func readAllDerived(t *testing.T, s *Store, stream, name string) ([][]byte, error) {
	t.Helper()
	var got [][]byte
	err := s.ReadDerived(stream, name, func(b []byte) error {
		got = append(got, append([]byte(nil), b...))
		return nil
	})
	return got, err
}

func TestDerivedFiles(t *testing.T) {
	dir := t.TempDir()
	s := newTestStore(t, dir, vfs.OS, nil)
	defer s.Close()
	info := mustCreate(t, s, "pump", 24)
	secret := []byte("min 3.14159 max 2.71828 the signal itself")
	blocks := [][]byte{secret, {}, bytes.Repeat([]byte{7}, 5000)}
	if err := s.AppendDerived(StreamRef{Name: "pump"}, "summary-1", blocks[0], blocks[1]); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendDerived(StreamRef{Name: "pump"}, "summary-1", blocks[2]); err != nil {
		t.Fatal(err)
	}
	got, err := readAllDerived(t, s, "pump", "summary-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d blocks, want 3", len(got))
	}
	for i := range blocks {
		if !bytes.Equal(got[i], blocks[i]) {
			t.Fatalf("block %d differs", i)
		}
	}
	path := filepath.Join(dir, "streams", streamDirName(info.Name, info.CreationTime), derivedDir, "summary-1")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the derived file is not where FORMAT.md says: %v", err)
	}
	if bytes.Contains(raw, []byte("3.14159")) {
		t.Fatal("a derived block is in clear text on disk")
	}

	// A missing file has no blocks; names are listed by prefix, in order.
	if got, err := readAllDerived(t, s, "pump", "nothing"); err != nil || len(got) != 0 {
		t.Fatalf("missing file: %d blocks, %v", len(got), err)
	}
	if err := s.AppendDerived(StreamRef{Name: "pump"}, "summary-0", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if names, err := s.ListDerived("pump", "summary-"); err != nil || len(names) != 2 || names[0] != "summary-0" {
		t.Fatalf("ListDerived: %v %v", names, err)
	}

	// A torn tail: the whole blocks before it are read, then ErrDerivedTorn.
	if err := os.WriteFile(path, raw[:len(raw)-3], 0o640); err != nil {
		t.Fatal(err)
	}
	got, err = readAllDerived(t, s, "pump", "summary-1")
	if !errors.Is(err, ErrDerivedTorn) || len(got) != 2 {
		t.Fatalf("torn tail: %d blocks, %v; want 2 and ErrDerivedTorn", len(got), err)
	}
	// A flipped bit in a block's body: torn there too (the CRC).
	flipped := append([]byte(nil), raw...)
	flipped[derivedHeaderSize+derivedSealPrefix+2] ^= 1
	if err := os.WriteFile(path, flipped, 0o640); err != nil {
		t.Fatal(err)
	}
	if got, err = readAllDerived(t, s, "pump", "summary-1"); !errors.Is(err, ErrDerivedTorn) || len(got) != 0 {
		t.Fatalf("damaged first block: %d blocks, %v", len(got), err)
	}
	// A block moved to another file does not open there.
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), "other"), raw, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err = readAllDerived(t, s, "pump", "other"); err == nil || errors.Is(err, ErrDerivedTorn) {
		t.Fatalf("a block read under another name: %v, want a decryption error", err)
	}

	if err := s.RemoveDerived("pump", "summary-0"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveDerived("pump", "summary-0"); err != nil {
		t.Fatalf("removing a removed file: %v", err)
	}
	for _, bad := range []string{"", "../keys.json", "a/b", ".hidden"} {
		if err := s.AppendDerived(StreamRef{Name: "pump"}, bad, []byte("x")); err == nil {
			t.Errorf("AppendDerived(%q) took a name that is not a plain file name", bad)
		}
	}

	// Deleting the stream deletes its derived files; a stream made again
	// under the name has none.
	if err := s.DeleteStream(StreamRef{Name: "pump"}, ""); err != nil {
		t.Fatal(err)
	}
	for time.Now().UnixMilli() <= info.CreationTime.UnixMilli() {
		// an ARN is the name and the creation's ms: the next ms's is another
	}
	again := mustCreate(t, s, "pump", 24)
	if names, err := s.ListDerived("pump", ""); err != nil || len(names) != 0 {
		t.Fatalf("a new stream under a deleted one's name has derived files %v (%v)", names, err)
	}
	// Blocks computed from the deleted stream, named by its ARN, are refused:
	// the new stream never gets them.
	if again.ARN == info.ARN {
		t.Fatalf("the stream made again has the deleted one's ARN %s", info.ARN)
	}
	if err := s.AppendDerived(StreamRef{ARN: info.ARN}, "summary-1", []byte("old")); !errors.Is(err, ErrStreamNotFound) {
		t.Fatalf("appending for the deleted stream's ARN: %v, want ErrStreamNotFound", err)
	}
	if names, _ := s.ListDerived("pump", ""); len(names) != 0 {
		t.Fatalf("the deleted stream's blocks reached the new one: %v", names)
	}
	if err := s.AppendDerived(StreamRef{ARN: again.ARN}, "summary-1", []byte("new")); err != nil {
		t.Fatalf("appending for the new stream's ARN: %v", err)
	}
	if _, err := s.ListDerived("unknown", ""); !errors.Is(err, ErrStreamNotFound) {
		t.Fatalf("unknown stream: %v", err)
	}
}
