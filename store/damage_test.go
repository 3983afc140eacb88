package store

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// One flipped byte anywhere in a stream's segments or indexes — after a
// clean stop or after a crash, in a sealed segment or in the newest one —
// costs at most the one fragment whose record holds it: that fragment reads
// as a *CorruptionError or is missing from the listing, every other fragment
// reads back exactly as appended, nothing reads back wrong, and the stream
// still takes appends. A torn tail is the one thing repair may cut, and a
// flipped byte with intact records after it is not a torn tail.
func TestFlippedByteAnywhere(t *testing.T) {
	const n = 10
	for _, mode := range []string{"closed", "crashed"} {
		t.Run(mode, func(t *testing.T) {
			pristine := t.TempDir()
			tweak := func(o *Options) { o.SegmentMaxFragments = 4 }
			s := newTestStore(t, pristine, nil, tweak)
			mustCreate(t, s, "a", 24)
			appendN(t, s, "a", 1, n, 1)
			if mode == "closed" {
				s.Close()
			} else { // left open, as a killed process leaves it (everything synced)
				t.Cleanup(func() { s.Close() })
			}
			var files []string
			for _, ext := range []string{"*.seg", "*.idx"} {
				m, _ := filepath.Glob(filepath.Join(pristine, "streams", "*", ext))
				files = append(files, m...)
			}
			if len(files) < 5 {
				t.Fatalf("files %v: want 3 segments and their indexes", files)
			}
			cases := 0
			for _, file := range files {
				rel, _ := filepath.Rel(pristine, file)
				size := fileSize(t, file)
				failed := 0
				for off := int64(0); off < size && failed < 3; off += 11 {
					cases++
					dir := t.TempDir()
					if err := os.CopyFS(dir, os.DirFS(pristine)); err != nil {
						t.Fatal(err)
					}
					_ = os.Chmod(filepath.Join(dir, "keyring.json"), 0o600) // CopyFS makes it 0644
					b, _ := os.ReadFile(filepath.Join(dir, rel))
					b[off] ^= 0x10
					if err := os.WriteFile(filepath.Join(dir, rel), b, 0o640); err != nil {
						t.Fatal(err)
					}
					if !checkAtMostOneLost(t, dir, tweak, n, rel, off) {
						failed++ // a few cases per file say enough
					}
				}
			}
			t.Logf("%d flipped bytes in %d files", cases, len(files))
		})
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// checkAtMostOneLost opens a damaged copy of the store and reads everything.
func checkAtMostOneLost(t *testing.T, dir string, tweak func(*Options), n int, file string, off int64) (ok bool) {
	t.Helper()
	ok = true
	errorf := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		ok = false
	}
	where := file + " byte " + strconv.FormatInt(off, 10)
	opts := Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RetentionInterval: -1}
	tweak(&opts)
	s, err := Open(opts)
	if err != nil {
		errorf("%s: Open: %v", where, err)
		return
	}
	defer s.Close()
	infos, err := s.Fragments("a", 0, 1000)
	if err != nil {
		errorf("%s: Fragments: %v", where, err)
		return
	}
	r, _ := s.NewReader("a")
	defer r.Close()
	lost := n - len(infos)
	byNumber := map[uint64]*Fragment{}
	for i := 1; i <= n; i++ {
		f := frag(i, "p1")
		byNumber[f.Number] = f
	}
	for _, info := range infos {
		want := byNumber[info.Number]
		if want == nil {
			errorf("%s: listed fragment %d was never appended", where, info.Number)
			continue
		}
		got, err := r.Read(info)
		var ce *CorruptionError
		switch {
		case errors.As(err, &ce):
			lost++
		case err != nil:
			errorf("%s: fragment %d: %v, want a CorruptionError or the fragment", where, info.Number, err)
		case !bytes.Equal(got.Payload, want.Payload) || info.ProducerTime != want.ProducerTime || info.ServerTime != want.ServerTime ||
			got.ProducerSeq != want.ProducerSeq || got.ProducerID != want.ProducerID:
			errorf("%s: fragment %d reads back wrong", where, info.Number)
		}
	}
	if lost > 1 {
		errorf("%s: %d fragments lost (listed %d of %d); repairs %+v", where, lost, len(infos), n, s.Repairs)
	}
	// The stream goes on.
	next := frag(n+1, "p1")
	if _, err := s.Append("a", next); err != nil {
		errorf("%s: append after the damage: %v", where, err)
	} else if err := s.Sync("a"); err != nil {
		errorf("%s: sync after the damage: %v", where, err)
	}
	return ok
}
