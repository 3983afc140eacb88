package store

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

// Encryption at rest (FORMAT.md, "Encryption"). A fragment record's payload
// is sealed with AES-256-GCM under the stream's current data key; the record
// header names the key and carries the nonce, and everything else in the
// header and the fixed fields is authenticated with it, so a payload cannot
// be moved to another fragment or stream unnoticed. The fixed fields stay in
// clear text: start-up rebuilds indexes from them without any key.

const (
	dataKeysFile   = "keys.json"
	dataKeysFormat = 1
	gcmOverhead    = 16 // the tag
)

// recordAAD is what a record's seal authenticates besides the payload: the
// header from byte 8 (type, version, flags, key id, nonce, reserved), the
// fixed fragment fields and the producer id. The length and CRC (bytes 0–7)
// are left out: they describe the sealed bytes.
func recordAAD(dst []byte, r *fragmentRecord) []byte {
	h := recordPrefix(r, 0)
	dst = append(dst, h[8:]...)
	return append(dst, r.ProducerID...)
}

// sealRecord encrypts r.Payload in place of it (into buf), under key id with
// a fresh random nonce. Random 96-bit nonces are safe far beyond the number
// of records one data key seals before it rotates.
func sealRecord(r *fragmentRecord, id uint32, g cipher.AEAD, buf, aad []byte) ([]byte, []byte, error) {
	r.KeyID = id
	if _, err := rand.Read(r.Nonce[:]); err != nil {
		return buf, aad, fmt.Errorf("store: nonce: %w", err)
	}
	aad = recordAAD(aad[:0], r)
	buf = g.Seal(buf[:0], r.Nonce[:], r.Payload, aad)
	r.Payload = buf
	return buf, aad, nil
}

// errDecrypt is a sealed payload that does not open: the wrong key, or bytes
// changed on disk.
var errDecrypt = errors.New("payload does not decrypt: damaged, or sealed with another key")

// dataKeys are one stream's data keys, unwrapped, by id. Appends use the
// newest; reads any.
//
// The keys file is the one file of a stream whose loss loses everything in
// it: a flipped bit in a wrapped key fails its authentication, and every
// record sealed under that key is then unreadable for good. So it is kept
// twice, keys.json and keys.backup.json, each written atomically, the
// primary first; a key is used only once both hold it. Opening takes every
// key that unwraps from either copy, and rewrites a copy that was damaged or
// missing.
type dataKeys struct {
	fs     vfs.FS
	path   string // the primary copy; backupPath() is the other
	bind   string // the stream folder's name: binds wrapped keys to this stream
	ring   *Keyring
	master string // the master key that wraps this stream's keys

	mu      sync.RWMutex
	keys    map[uint32]cipher.AEAD
	wrapped map[uint32]dataKeyJSON // as stored: a rewrite never re-wraps a key
	current uint32
	created time.Time // of current
}

type dataKeysJSON struct {
	Format int           `json:"format"`
	Master string        `json:"master"`
	Keys   []dataKeyJSON `json:"keys"`
}

type dataKeyJSON struct {
	ID      uint32    `json:"id"`
	Wrapped string    `json:"wrapped"` // base64: nonce, sealed key, tag
	Created time.Time `json:"created"`
}

const dataKeysBackupFile = "keys.backup.json"

func (d *dataKeys) backupPath() string {
	return filepath.Join(filepath.Dir(d.path), dataKeysBackupFile)
}

// openDataKeys reads a stream's data keys (none yet is fine: the first
// append makes one). master is used only when the stream has no keys file.
func openDataKeys(fsys vfs.FS, dir string, ring *Keyring, master string, log *slog.Logger) (*dataKeys, error) {
	d := &dataKeys{fs: fsys, path: filepath.Join(dir, dataKeysFile), bind: filepath.Base(dir), ring: ring, master: master,
		keys: map[uint32]cipher.AEAD{}, wrapped: map[uint32]dataKeyJSON{}}
	type copyOf struct {
		path  string
		f     dataKeysJSON
		found bool
		err   error // the file is there but unusable
	}
	copies := []*copyOf{{path: d.path}, {path: d.backupPath()}}
	for _, c := range copies {
		b, err := vfs.ReadFile(fsys, c.path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		c.found = true
		if err != nil {
			c.err = fmt.Errorf("read: %w", err)
			continue
		}
		if err := json.Unmarshal(b, &c.f); err != nil || c.f.Format != dataKeysFormat || c.f.Master == "" {
			c.err = fmt.Errorf("not a data keys file of format %d (%v)", dataKeysFormat, err)
		}
	}
	if !copies[0].found && !copies[1].found {
		return d, nil
	}
	masters := map[string]bool{}
	for _, c := range copies {
		if c.found && c.err == nil {
			masters[c.f.Master] = true
			d.master = c.f.Master
		}
	}
	if len(masters) != 1 {
		return nil, fmt.Errorf("store: %s: neither copy of the data keys is readable, or they name different master keys (%v; %v)", dir, copies[0].err, copies[1].err)
	}
	failed := map[uint32]error{} // keys that did not unwrap from a copy
	for _, c := range copies {
		if !c.found || c.err != nil {
			continue
		}
		for _, k := range c.f.Keys {
			if _, ok := d.keys[k.ID]; ok {
				continue
			}
			g, err := d.unwrapEntry(k)
			if err != nil {
				failed[k.ID] = fmt.Errorf("%s: %w", c.path, err)
				continue
			}
			delete(failed, k.ID)
			d.keys[k.ID], d.wrapped[k.ID] = g, k
			if k.ID >= d.current {
				d.current, d.created = k.ID, k.Created
			}
		}
	}
	for id, err := range failed {
		return nil, fmt.Errorf("store: %s: unwrap data key %d with master key %q: %w", dir, id, d.master, err)
	}
	// Heal: a copy that was missing, damaged or short of a key is rewritten.
	for _, c := range copies {
		if c.found && c.err == nil && sameKeys(c.f.Keys, d.wrapped) {
			continue
		}
		if log != nil {
			log.Warn("store: rewriting a damaged or missing copy of a stream's data keys", "file", c.path, "err", c.err)
		}
		if err := d.writeCopyLocked(c.path); err != nil && log != nil {
			log.Warn("store: cannot rewrite a copy of a stream's data keys", "file", c.path, "err", err)
		}
	}
	return d, nil
}

// sameKeys reports whether a copy's entries are exactly the keys in use.
func sameKeys(entries []dataKeyJSON, keys map[uint32]dataKeyJSON) bool {
	if len(entries) != len(keys) {
		return false
	}
	for _, e := range entries {
		if k, ok := keys[e.ID]; !ok || k.Wrapped != e.Wrapped {
			return false
		}
	}
	return true
}

func (d *dataKeys) unwrapEntry(k dataKeyJSON) (cipher.AEAD, error) {
	wrapped, err := base64.StdEncoding.DecodeString(k.Wrapped)
	if err != nil {
		return nil, err
	}
	key, err := d.ring.unwrap(d.master, wrapped, d.wrapAAD(k.ID))
	if err != nil {
		return nil, err
	}
	return newGCM(key)
}

func (d *dataKeys) wrapAAD(id uint32) []byte {
	return binary.LittleEndian.AppendUint32([]byte("sensorium data key v1|"+d.bind+"|"), id)
}

// get returns the data key of id.
func (d *dataKeys) get(id uint32) (cipher.AEAD, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	g, ok := d.keys[id]
	return g, ok
}

// count is how many data keys the stream has had.
func (d *dataKeys) count() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.keys)
}

// forAppend returns the key new records use, making a new one first when
// there is none or the current one is older than rotate. A new key is
// durable (both copies written and fsynced) before any record uses it.
// due reports whether forAppend would make a new key.
func (d *dataKeys) due(now time.Time, rotate time.Duration) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.keys[d.current] == nil || now.Sub(d.created) >= rotate
}

func (d *dataKeys) forAppend(now time.Time, rotate time.Duration) (uint32, cipher.AEAD, error) {
	d.mu.RLock()
	id, g, created := d.current, d.keys[d.current], d.created
	d.mu.RUnlock()
	if g != nil && now.Sub(created) < rotate {
		return id, g, nil
	}
	return d.rotate(now)
}

func (d *dataKeys) rotate(now time.Time) (uint32, cipher.AEAD, error) {
	key := make([]byte, masterKeySize)
	if _, err := rand.Read(key); err != nil {
		return 0, nil, fmt.Errorf("store: new data key: %w", err)
	}
	g, err := newGCM(key)
	if err != nil {
		return 0, nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	id := d.current + 1
	wrapped, err := d.ring.wrap(d.master, key, d.wrapAAD(id))
	if err != nil {
		return 0, nil, fmt.Errorf("store: wrap data key: %w", err)
	}
	d.wrapped[id] = dataKeyJSON{ID: id, Wrapped: base64.StdEncoding.EncodeToString(wrapped), Created: now.UTC()}
	for _, path := range []string{d.path, d.backupPath()} {
		if err := d.writeCopyLocked(path); err != nil {
			delete(d.wrapped, id)
			return 0, nil, fmt.Errorf("store: save data keys: %w", err)
		}
	}
	d.keys[id], d.current, d.created = g, id, now
	return id, g, nil
}

// writeCopyLocked writes one copy of the keys file from the wrapped keys in
// memory, atomically. mu held (or d not yet shared).
func (d *dataKeys) writeCopyLocked(path string) error {
	f := dataKeysJSON{Format: dataKeysFormat, Master: d.master}
	for _, k := range d.wrapped {
		f.Keys = append(f.Keys, k)
	}
	sort.Slice(f.Keys, func(i, j int) bool { return f.Keys[i].ID < f.Keys[j].ID })
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return vfs.WriteFileAtomic(fsAt(d.fs, siteDataKeys), path, append(b, '\n'), 0o600)
}
