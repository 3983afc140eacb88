package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

// Master keys (FORMAT.md, "Keyring"). Every stored fragment is sealed with its
// stream's current data key; data keys are stored wrapped by a master key;
// master keys live only in the keyring file (or come from the environment)
// and never in a stream's folder, so the data folder alone reveals nothing.

// KeyringEnv, when set, supplies master keys from outside instead of the
// keyring file: "id=base64key[,id=base64key…]", the first being the default.
// Keys kept in a secret manager reach the server this way.
const KeyringEnv = "SENSORIUM_MASTER_KEYS"

const (
	keyringFormat = 1
	masterKeySize = 32 // AES-256
	maxKeyIDLen   = 128
)

var keyIDRE = regexp.MustCompile(`^[A-Za-z0-9_.:/-]+$`)

// Keyring holds master keys by id.
type Keyring struct {
	keys    map[string][]byte
	Default string // the id new streams use unless they name one (KmsKeyId)
	Source  string // where the keys came from, for the start-up log (never the keys)
}

type keyringFile struct {
	Format  int              `json:"format"`
	Default string           `json:"default"`
	Keys    []keyringFileKey `json:"keys"`
}

type keyringFileKey struct {
	ID      string    `json:"id"`
	Key     string    `json:"key"` // base64, 32 bytes
	Created time.Time `json:"created"`
}

// LoadKeyring reads the keyring file at path, creating it with one fresh
// master key when it does not exist. The file must not be readable by group
// or others: a keyring anyone can read protects nothing, so it is refused
// rather than used.
func LoadKeyring(fsys vfs.FS, path string) (*Keyring, error) {
	if fsys == nil {
		fsys = vfs.OS
	}
	info, err := fsys.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKeyring(fsys, path)
	}
	if err != nil {
		return nil, fmt.Errorf("store: keyring %s: %w", path, err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("store: keyring %s has mode %04o: it must not be readable by group or others (chmod 600)", path, perm)
	}
	b, err := vfs.ReadFile(fsys, path)
	if err != nil {
		return nil, fmt.Errorf("store: read keyring %s: %w", path, err)
	}
	var f keyringFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("store: keyring %s: %w", path, err)
	}
	if f.Format != keyringFormat {
		return nil, fmt.Errorf("store: keyring %s: format %d, this build reads %d", path, f.Format, keyringFormat)
	}
	k := &Keyring{keys: map[string][]byte{}, Default: f.Default, Source: path}
	for _, e := range f.Keys {
		if err := k.add(e.ID, e.Key); err != nil {
			return nil, fmt.Errorf("store: keyring %s: %w", path, err)
		}
	}
	if _, ok := k.keys[k.Default]; !ok {
		return nil, fmt.Errorf("store: keyring %s: default key %q is not in it", path, k.Default)
	}
	return k, nil
}

func createKeyring(fsys vfs.FS, path string) (*Keyring, error) {
	key := make([]byte, masterKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("store: new master key: %w", err)
	}
	id := "local-1"
	f := keyringFile{Format: keyringFormat, Default: id,
		Keys: []keyringFileKey{{ID: id, Key: base64.StdEncoding.EncodeToString(key), Created: time.Now().UTC()}}}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := vfs.WriteFileAtomic(fsAt(fsys, siteKeyring), path, append(b, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("store: create keyring %s: %w", path, err)
	}
	return &Keyring{keys: map[string][]byte{id: key}, Default: id, Source: path + " (created)"}, nil
}

// KeyringFromEnv parses the value of KeyringEnv.
func KeyringFromEnv(v string) (*Keyring, error) {
	k := &Keyring{keys: map[string][]byte{}, Source: "$" + KeyringEnv}
	for _, part := range strings.Split(v, ",") {
		id, key, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("store: %s: want id=base64key, got an entry without '='", KeyringEnv)
		}
		if err := k.add(id, key); err != nil {
			return nil, fmt.Errorf("store: %s: %w", KeyringEnv, err)
		}
		if k.Default == "" {
			k.Default = id
		}
	}
	return k, nil
}

func (k *Keyring) add(id, b64 string) error {
	if len(id) == 0 || len(id) > maxKeyIDLen || !keyIDRE.MatchString(id) {
		return fmt.Errorf("master key id %q: want 1 to %d of A-Z a-z 0-9 _ . : / -", id, maxKeyIDLen)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) != masterKeySize {
		return fmt.Errorf("master key %q: want %d bytes in base64", id, masterKeySize)
	}
	if _, dup := k.keys[id]; dup {
		return fmt.Errorf("master key %q appears twice", id)
	}
	k.keys[id] = key
	return nil
}

// Has reports whether the keyring holds a master key of that id.
func (k *Keyring) Has(id string) bool { _, ok := k.keys[id]; return ok }

// IDs lists the master key ids, sorted.
func (k *Keyring) IDs() []string {
	ids := make([]string, 0, len(k.keys))
	for id := range k.keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// wrap seals a data key with a master key; aad binds it to its stream and id.
func (k *Keyring) wrap(master string, dataKey, aad []byte) ([]byte, error) {
	g, err := k.aead(master)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize(), g.NonceSize()+len(dataKey)+g.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return g.Seal(nonce, nonce, dataKey, aad), nil
}

// unwrap opens a data key wrapped by wrap.
func (k *Keyring) unwrap(master string, wrapped, aad []byte) ([]byte, error) {
	g, err := k.aead(master)
	if err != nil {
		return nil, err
	}
	if len(wrapped) < g.NonceSize()+g.Overhead() {
		return nil, errors.New("wrapped key too short")
	}
	return g.Open(nil, wrapped[:g.NonceSize()], wrapped[g.NonceSize():], aad)
}

func (k *Keyring) aead(master string) (cipher.AEAD, error) {
	key, ok := k.keys[master]
	if !ok {
		return nil, fmt.Errorf("master key %q is not in the keyring", master)
	}
	return newGCM(key)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// JetStreamKey derives the key the embedded NATS server encrypts its own
// JetStream files with, from the default master key: the bus then holds
// fragments at rest only in ciphertext too.
func (k *Keyring) JetStreamKey() (string, error) {
	master, ok := k.keys[k.Default]
	if !ok {
		return "", fmt.Errorf("store: default master key %q is not in the keyring", k.Default)
	}
	key, err := hkdf.Key(sha256.New, master, nil, "sensorium jetstream at-rest key v1", 32)
	if err != nil {
		return "", fmt.Errorf("store: derive the JetStream key: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(key), nil
}
