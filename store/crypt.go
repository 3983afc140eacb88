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
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/sensorium-io/sensorium/internal/vfs"
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
type dataKeys struct {
	fs     vfs.FS
	path   string
	bind   string // the stream folder's name: binds wrapped keys to this stream
	ring   *Keyring
	master string // the master key that wraps this stream's keys

	mu      sync.RWMutex
	keys    map[uint32]cipher.AEAD
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

// openDataKeys reads a stream's data keys (none yet is fine: the first
// append makes one). master is used only when the stream has no keys file.
func openDataKeys(fsys vfs.FS, dir string, ring *Keyring, master string) (*dataKeys, error) {
	d := &dataKeys{fs: fsys, path: filepath.Join(dir, dataKeysFile), bind: filepath.Base(dir), ring: ring, master: master, keys: map[uint32]cipher.AEAD{}}
	b, err := vfs.ReadFile(fsys, d.path)
	if errors.Is(err, fs.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read %s: %w", d.path, err)
	}
	var f dataKeysJSON
	if err := json.Unmarshal(b, &f); err != nil || f.Format != dataKeysFormat {
		return nil, fmt.Errorf("store: %s: not a data keys file of format %d (%v)", d.path, dataKeysFormat, err)
	}
	d.master = f.Master
	for _, k := range f.Keys {
		wrapped, err := base64.StdEncoding.DecodeString(k.Wrapped)
		if err != nil {
			return nil, fmt.Errorf("store: %s: key %d: %w", d.path, k.ID, err)
		}
		key, err := ring.unwrap(d.master, wrapped, d.wrapAAD(k.ID))
		if err != nil {
			return nil, fmt.Errorf("store: %s: unwrap data key %d with master key %q: %w", d.path, k.ID, d.master, err)
		}
		g, err := newGCM(key)
		if err != nil {
			return nil, err
		}
		d.keys[k.ID] = g
		if k.ID >= d.current {
			d.current, d.created = k.ID, k.Created
		}
	}
	return d, nil
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
// durable (keys file written and fsynced) before any record uses it.
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
	f, err := d.fileLocked()
	if err != nil {
		return 0, nil, err
	}
	wrapped, err := d.ring.wrap(d.master, key, d.wrapAAD(id))
	if err != nil {
		return 0, nil, fmt.Errorf("store: wrap data key: %w", err)
	}
	f.Keys = append(f.Keys, dataKeyJSON{ID: id, Wrapped: base64.StdEncoding.EncodeToString(wrapped), Created: now.UTC()})
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return 0, nil, err
	}
	if err := vfs.WriteFileAtomic(d.fs, d.path, append(b, '\n'), 0o600); err != nil {
		return 0, nil, fmt.Errorf("store: save data keys: %w", err)
	}
	d.keys[id], d.current, d.created = g, id, now
	return id, g, nil
}

// fileLocked re-reads the keys file's entries so that a rewrite keeps every
// wrapped key as it was (they are never re-wrapped).
func (d *dataKeys) fileLocked() (dataKeysJSON, error) {
	f := dataKeysJSON{Format: dataKeysFormat, Master: d.master}
	b, err := vfs.ReadFile(d.fs, d.path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("store: read %s: %w", d.path, err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("store: %s: %w", d.path, err)
	}
	sort.Slice(f.Keys, func(i, j int) bool { return f.Keys[i].ID < f.Keys[j].ID })
	return f, nil
}
