package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// copyDir copies a store's folder as a crash would leave it (the store
// that wrote it still open).
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o750)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A fragment stored in a writer's own form (Fragment.ReadSize, as the
// server's packed PCM is) keeps the size readers get, in the index and in
// its record: after a clean restart (sealed index), after a crash (the
// active segment scanned again), and Options.Expand gives readers the
// fragment as read while ReadStored gives it as stored.
func TestReadSizeAndExpand(t *testing.T) {
	dir := t.TempDir()
	expand := func(dst, payload []byte, co uint32) ([]byte, uint32, bool, error) {
		if !bytes.HasPrefix(payload, []byte("packed:")) {
			return nil, 0, false, nil
		}
		dst = append(dst, payload[len("packed:"):]...)
		return append(dst, payload[len("packed:"):]...), co, true, nil // "unpacks" to the rest twice
	}
	s := newTestStore(t, dir, nil, func(o *Options) { o.Expand = expand })
	mustCreate(t, s, "a", 1)
	packed := frag(1, "p")
	body := bytes.Clone(packed.Payload)
	packed.Payload = append([]byte("packed:"), body...)
	packed.ReadSize = 2 * len(body)
	plain := frag(2, "p")
	for _, f := range []*Fragment{packed, plain} {
		if _, err := s.Append("a", f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync("a"); err != nil {
		t.Fatal(err)
	}
	want := []int{2 * len(body), len(plain.Payload)}
	sizes := func(s *Store) []int {
		t.Helper()
		infos, err := s.Fragments("a", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		var out []int
		for _, in := range infos {
			out = append(out, in.Size)
		}
		return out
	}
	check := func(when string, s *Store) {
		t.Helper()
		if got := sizes(s); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Fatalf("%s: sizes %v, want %v", when, got, want)
		}
		infos, _ := s.Fragments("a", 0, 10)
		rd, err := s.NewReader("a")
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		f, err := rd.Read(infos[0])
		if err != nil || !bytes.Equal(f.Payload, append(bytes.Clone(body), body...)) {
			t.Fatalf("%s: Read gave %d bytes (%v), want the expanded %d", when, len(f.Payload), err, 2*len(body))
		}
		f, err = rd.ReadStored(infos[0])
		if err != nil || !bytes.Equal(f.Payload, packed.Payload) {
			t.Fatalf("%s: ReadStored gave %d bytes (%v), want the stored %d", when, len(f.Payload), err, len(packed.Payload))
		}
		if f, err = rd.Read(infos[1]); err != nil || !bytes.Equal(f.Payload, plain.Payload) {
			t.Fatalf("%s: a fragment Expand leaves alone changed: %v", when, err)
		}
	}
	check("written", s)

	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	c := newTestStore(t, crashed, nil, func(o *Options) { o.Expand = expand })
	check("after a crash", c)
	c.Close()

	s.Close()
	s = newTestStore(t, dir, nil, func(o *Options) { o.Expand = expand })
	defer s.Close()
	check("after a clean restart", s)
}

// Records of a megabyte and more are written straight from their payload
// (segmentWriter.writeRecord) between buffered small ones: each reads back
// as written, before and after a crash's rescan (which checks every
// record's CRC) and after a clean restart.
func TestLargeRecordsWrittenDirectly(t *testing.T) {
	dir := t.TempDir()
	s := newTestStore(t, dir, nil, nil)
	mustCreate(t, s, "a", 1)
	var want [][]byte
	for i, size := range []int{100, 3 << 20, 200, 5 << 20, 1 << 20, 300} {
		f := frag(i+1, "p")
		f.Payload = bytes.Repeat([]byte{byte(i + 1), 7, byte(i * 3)}, size/3+1)[:size]
		want = append(want, f.Payload)
		if _, err := s.Append("a", f); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			if err := s.Sync("a"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Sync("a"); err != nil {
		t.Fatal(err)
	}
	check := func(when string, s *Store) {
		t.Helper()
		infos, err := s.Fragments("a", 0, 10)
		if err != nil || len(infos) != len(want) {
			t.Fatalf("%s: %d fragments (%v), want %d", when, len(infos), err, len(want))
		}
		rd, err := s.NewReader("a")
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		for i, in := range infos {
			f, err := rd.Read(in)
			if err != nil || !bytes.Equal(f.Payload, want[i]) || in.Size != len(want[i]) {
				t.Fatalf("%s: fragment %d: %d bytes, size %d (%v), want %d", when, i, len(f.Payload), in.Size, err, len(want[i]))
			}
		}
	}
	check("written", s)
	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	c := newTestStore(t, crashed, nil, nil)
	check("after a crash", c)
	c.Close()
	s.Close()
	s = newTestStore(t, dir, nil, nil)
	defer s.Close()
	check("after a clean restart", s)
}
