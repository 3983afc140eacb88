package store

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

// walkBytes calls fn with the contents of every file under dir.
func walkBytes(t *testing.T, dir string, fn func(path string, b []byte)) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fn(path, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The payload of every stored fragment is ciphertext: a known pattern in
// the payloads appears in no file of the store, sealed segments and index
// included, and everything reads back after a restart.
func TestEncryptedAtRest(t *testing.T) {
	dir := t.TempDir()
	s := newTestStore(t, dir, nil, func(o *Options) { o.SegmentMaxFragments = 4 })
	mustCreate(t, s, "a", 24)
	appendN(t, s, "a", 1, 10, 3)
	if err := s.Sync("a"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	pattern := []byte("fragment-7") // in the payload of frag(7) (see frag)
	walkBytes(t, dir, func(path string, b []byte) {
		if bytes.Contains(b, pattern) {
			t.Errorf("%s holds plaintext payload bytes", path)
		}
	})
	s = newTestStore(t, dir, nil, nil)
	defer s.Close()
	checkAll(t, s, "a", 1, 10)
	infos, _ := s.Fragments("a", 0, 100)
	for i, info := range infos {
		if want := len(frag(i+1, "p1").Payload); info.Size != want {
			t.Errorf("fragment %d: size %d, want the plaintext's %d", info.Number, info.Size, want)
		}
	}
}

// A payload changed on disk — with its CRC fixed up, as an attacker would —
// fails to decrypt: that fragment is a clean CorruptionError and the others
// stay readable.
func TestTamperedPayloadIsCorruption(t *testing.T) {
	dir := t.TempDir()
	s := newTestStore(t, dir, nil, nil)
	mustCreate(t, s, "a", 24)
	appendN(t, s, "a", 1, 5, 1)
	infos, _ := s.Fragments("a", 0, 100)
	victim := infos[2]
	segs, _ := filepath.Glob(filepath.Join(dir, "streams", "*", "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	s.Close()
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	rec := b[victim.offset : victim.offset+int64(victim.recordLen)]
	rec[len(rec)-20] ^= 0x40 // a byte of the sealed payload
	binary.LittleEndian.PutUint32(rec[4:], crc32.Checksum(rec[8:], castagnoli))
	if err := os.WriteFile(segs[0], b, 0o640); err != nil {
		t.Fatal(err)
	}
	s = newTestStore(t, dir, nil, nil)
	defer s.Close()
	r, _ := s.NewReader("a")
	defer r.Close()
	infos, _ = s.Fragments("a", 0, 100)
	for _, info := range infos {
		_, err := r.Read(info)
		var ce *CorruptionError
		switch {
		case info.Number == victim.Number && (!errors.As(err, &ce) || !errors.Is(err, errDecrypt)):
			t.Errorf("tampered fragment %d: %v, want a CorruptionError for decryption", info.Number, err)
		case info.Number != victim.Number && err != nil:
			t.Errorf("fragment %d: %v", info.Number, err)
		}
	}
}

// Data keys rotate on the clock: one stream ends up with several key ids,
// and every fragment stays readable, also after a restart.
func TestDataKeyRotation(t *testing.T) {
	dir := t.TempDir()
	clock := &testClock{t: time.Unix(1_800_000_000, 0)}
	tweak := func(o *Options) { o.Now = clock.Now; o.KeyRotation = time.Minute }
	s := newTestStore(t, dir, nil, tweak)
	mustCreate(t, s, "a", 24)
	for i := 1; i <= 12; i++ {
		appendN(t, s, "a", i, i, 1)
		clock.t = clock.t.Add(25 * time.Second) // a new key every third fragment or so
	}
	st, _ := s.stream("a")
	if n := st.keys.count(); n < 4 {
		t.Fatalf("%d data keys after 5 minutes with a 1-minute rotation", n)
	}
	s.Close()
	s = newTestStore(t, dir, nil, tweak)
	defer s.Close()
	checkAll(t, s, "a", 1, 12)
	st, _ = s.stream("a")
	ids := map[uint32]bool{}
	r, _ := s.NewReader("a")
	defer r.Close()
	infos, _ := s.Fragments("a", 0, 100)
	for _, info := range infos {
		rec, _, err := readRecord(mustOpen(t, st.segmentPathOf(info.Number)), "", info.offset, int(info.recordLen), nil)
		if err != nil {
			t.Fatal(err)
		}
		ids[rec.KeyID] = true
	}
	if len(ids) < 4 {
		t.Errorf("records sealed under %d key ids, want at least 4", len(ids))
	}
}

func mustOpen(t *testing.T, path string) vfs.File {
	t.Helper()
	f, err := vfs.OS.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// A stream names its master key at creation (KmsKeyId); an unknown one is
// refused with ErrInvalidArgument, and an empty one takes the default.
func TestStreamMasterKey(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)), base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	ring, err := KeyringFromEnv("site-a=" + k1 + ",site-b=" + k2)
	if err != nil {
		t.Fatal(err)
	}
	s := newTestStore(t, dir, nil, func(o *Options) { o.Keyring = ring })
	defer s.Close()
	if _, err := s.CreateStream(CreateStreamInput{Name: "x", RetentionHours: 1, KMSKeyID: "arn:aws:kms:us-east-1:1:key/nope"}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("unknown KmsKeyId: %v", err)
	}
	def, err := s.CreateStream(CreateStreamInput{Name: "d", RetentionHours: 1})
	if err != nil || def.KMSKeyID != "site-a" {
		t.Fatalf("default stream: %+v, %v", def, err)
	}
	if _, err := s.CreateStream(CreateStreamInput{Name: "b", RetentionHours: 1, KMSKeyID: "site-b"}); err != nil {
		t.Fatal(err)
	}
	appendN(t, s, "b", 1, 2, 1)
	st, _ := s.stream("b")
	b, _ := os.ReadFile(st.keys.path)
	if !strings.Contains(string(b), `"master": "site-b"`) {
		t.Errorf("keys file does not name its master: %s", b)
	}
	// Without site-b the stream cannot be opened: its keys are unreadable.
	s.Close()
	onlyA, _ := KeyringFromEnv("site-a=" + k1)
	if _, err := Open(Options{Dir: dir, Keyring: onlyA, RetentionInterval: -1}); err == nil || !strings.Contains(err.Error(), "site-b") {
		t.Errorf("opening without the stream's master key: %v", err)
	}
}

func TestKeyringFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keyring.json")
	k, err := LoadKeyring(nil, path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("new keyring has mode %v", fi.Mode().Perm())
	}
	again, err := LoadKeyring(nil, path)
	if err != nil || again.Default != k.Default || !bytes.Equal(again.keys[k.Default], k.keys[k.Default]) {
		t.Fatalf("reloaded keyring differs: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyring(nil, path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable keyring: %v", err)
	}
	for _, bad := range []string{"", "a", "a=short", "=" + base64.StdEncoding.EncodeToString(make([]byte, 32)), "a=" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + ",a=" + base64.StdEncoding.EncodeToString(make([]byte, 32))} {
		if _, err := KeyringFromEnv(bad); err == nil {
			t.Errorf("KeyringFromEnv(%q) accepted", bad)
		} else if strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(make([]byte, 32))) {
			t.Errorf("the error repeats the key: %v", err)
		}
	}
}

// The data keys are kept twice: one copy damaged or gone costs nothing (it
// is rewritten from the other at the next start); a key damaged in both is
// an error that names the stream, not unreadable data discovered later.
func TestDataKeysSurviveOneDamagedCopy(t *testing.T) {
	clock := &testClock{t: time.Unix(1_800_000_000, 0)}
	tweak := func(o *Options) { o.Now = clock.Now; o.KeyRotation = time.Minute }
	setup := func(t *testing.T) (dir, primary, backup string) {
		dir = t.TempDir()
		s := newTestStore(t, dir, nil, tweak)
		mustCreate(t, s, "a", 24)
		for i := 1; i <= 6; i++ {
			appendN(t, s, "a", i, i, 1)
			clock.t = clock.t.Add(40 * time.Second)
		}
		st, _ := s.stream("a")
		primary, backup = st.keys.path, st.keys.backupPath()
		s.Close()
		return dir, primary, backup
	}
	flip := func(t *testing.T, path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(b, []byte(`"wrapped": "`)) + 20 // inside the first wrapped key
		b[i] ^= 0x01
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, primary, backup string)
	}{
		{"primary flipped", func(t *testing.T, p, _ string) { flip(t, p) }},
		{"backup flipped", func(t *testing.T, _, b string) { flip(t, b) }},
		{"primary gone", func(t *testing.T, p, _ string) { os.Remove(p) }},
		{"backup gone (a store from before the backup)", func(t *testing.T, _, b string) { os.Remove(b) }},
		{"primary not JSON", func(t *testing.T, p, _ string) { os.WriteFile(p, []byte("{garbage"), 0o600) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, primary, backup := setup(t)
			good, _ := os.ReadFile(primary)
			if bytes.Contains([]byte(tc.name), []byte("primary")) {
				good, _ = os.ReadFile(backup)
			}
			tc.damage(t, primary, backup)
			s := newTestStore(t, dir, nil, tweak)
			checkAll(t, s, "a", 1, 6)
			s.Close()
			for _, p := range []string{primary, backup} {
				if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, good) {
					t.Errorf("%s was not healed: %v", filepath.Base(p), err)
				}
			}
		})
	}
	t.Run("both flipped", func(t *testing.T) {
		dir, primary, backup := setup(t)
		flip(t, primary)
		flip(t, backup)
		if _, err := Open(Options{Dir: dir, RetentionInterval: -1}); err == nil || !strings.Contains(err.Error(), "unwrap data key 1") {
			t.Fatalf("Open with the first key damaged in both copies: %v", err)
		}
	})
}
