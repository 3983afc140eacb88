package store

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Derived files (FORMAT.md, "Derived files"): data that a reader of the
// stream computes from its fragments and keeps beside them — the query
// service's per-second summaries — so that it need not decode the fragments
// again. They live in the stream's folder under derived/, so they go with
// the stream when it is deleted, and a stream made again under the same
// name starts without them. Each block is sealed with the stream's current
// data key, as fragments are: a summary says as much about the signal as
// the samples do.
//
// Derived files are never fsynced. Whoever writes them can make them again
// from the fragments, so a power cut may lose or tear their tails: a reader
// stops at the first block that is incomplete or fails its CRC (a block
// being appended looks the same), and the writer, which alone knows what
// the file should hold, decides whether to cut or rebuild it.

const (
	derivedDir        = "derived"
	derivedHeaderSize = 8  // body length (u32), CRC-32C of the body (u32)
	derivedSealPrefix = 16 // key id (u32), nonce (12 bytes)
	// MaxDerivedBlock bounds one block's plain bytes.
	MaxDerivedBlock = 1 << 20
)

// ErrDerivedTorn is returned by ReadDerived, after the blocks before it, when
// a file ends in bytes that are not a whole valid block: a tail torn by a
// crash, or a block being appended at this moment.
var ErrDerivedTorn = errors.New("derived file ends in an incomplete or damaged block")

// derivedPath is the path of a stream's derived file name, which must be a
// plain file name (letters, digits, '.', '-', '_').
func (st *stream) derivedPath(name string) (string, error) {
	if name == "" || len(name) > 200 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != "" || name[0] == '.' {
		return "", fmt.Errorf("store: derived file name %q: only letters, digits, '.', '-' and '_'", name)
	}
	return filepath.Join(st.dir, derivedDir, name), nil
}

// derivedAAD binds a sealed block to its stream folder and file name.
func (st *stream) derivedAAD(name string, keyID uint32) []byte {
	aad := []byte("sensorium derived v1|" + filepath.Base(st.dir) + "|" + name + "|")
	return binary.LittleEndian.AppendUint32(aad, keyID)
}

// AppendDerived appends blocks to the derived file name of the stream ref
// names, making it (and the derived folder) if need be. The blocks reach the
// file in one write, unsynced. A caller that computed the blocks from one
// incarnation of a stream names it by ARN: a stream deleted and made again
// under the same name meanwhile is then ErrStreamNotFound, and the new one
// never gets the old one's blocks.
func (s *Store) AppendDerived(ref StreamRef, name string, blocks ...[]byte) error {
	st, err := s.resolve(ref)
	if err != nil {
		return err
	}
	// Under the stream's write lock, which deletion takes to close the
	// stream before it removes its folder: a write either lands before the
	// folder goes, or finds the stream deleted and makes no folder again.
	st.wmu.Lock()
	defer st.wmu.Unlock()
	st.mu.RLock()
	deleted, streamName := st.deleted, st.info.Name
	st.mu.RUnlock()
	if deleted {
		return refuse(ErrStreamNotFound, "stream %s not found (it was deleted)", streamName)
	}
	path, err := st.derivedPath(name)
	if err != nil {
		return err
	}
	keyID, g, err := st.keys.forAppend(s.now(), st.keyRotation)
	if err != nil {
		return err
	}
	aad := st.derivedAAD(name, keyID)
	var out []byte
	for _, b := range blocks {
		if len(b) > MaxDerivedBlock {
			return fmt.Errorf("store: derived block of %d bytes (at most %d)", len(b), MaxDerivedBlock)
		}
		start := len(out)
		out = append(out, make([]byte, derivedHeaderSize+derivedSealPrefix)...)
		body := out[start+derivedHeaderSize:]
		binary.LittleEndian.PutUint32(body[0:4], keyID)
		if _, err := rand.Read(body[4:16]); err != nil {
			return fmt.Errorf("store: nonce: %w", err)
		}
		out = g.Seal(out, body[4:16], b, aad)
		body = out[start+derivedHeaderSize:]
		binary.LittleEndian.PutUint32(out[start:], uint32(len(body)))
		binary.LittleEndian.PutUint32(out[start+4:], crc32.Checksum(body, castagnoli))
	}
	f, err := s.fs.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if errors.Is(err, fs.ErrNotExist) {
		if err = s.fs.MkdirAll(filepath.Dir(path), 0o750); err == nil {
			f, err = s.fs.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		}
	}
	if err != nil {
		return fmt.Errorf("store: open derived file %s: %w", path, err)
	}
	if _, err := f.Write(out); err != nil {
		f.Close()
		return fmt.Errorf("store: append to derived file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store: close derived file %s: %w", path, err)
	}
	return nil
}

// ReadDerived calls fn with each block of the stream's derived file name, in
// order, opened; the block is valid only during the call. A file that does
// not exist has no blocks. It returns ErrDerivedTorn (wrapped) after the
// last whole block if bytes follow that are not one, and fn's error if fn
// fails.
func (s *Store) ReadDerived(streamName, name string, fn func(block []byte) error) error {
	st, err := s.stream(streamName)
	if err != nil {
		return err
	}
	path, err := st.derivedPath(name)
	if err != nil {
		return err
	}
	f, err := s.fs.OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: open derived file %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("store: read derived file %s: %w", path, err)
	}
	var plain []byte
	for off := 0; off < len(data); {
		if len(data)-off < derivedHeaderSize {
			return fmt.Errorf("store: derived file %s at %d: %w", path, off, ErrDerivedTorn)
		}
		n := int(binary.LittleEndian.Uint32(data[off:]))
		crc := binary.LittleEndian.Uint32(data[off+4:])
		if n < derivedSealPrefix+gcmOverhead || n > MaxDerivedBlock+derivedSealPrefix+gcmOverhead || len(data)-off-derivedHeaderSize < n {
			return fmt.Errorf("store: derived file %s at %d: %w", path, off, ErrDerivedTorn)
		}
		body := data[off+derivedHeaderSize : off+derivedHeaderSize+n]
		if crc32.Checksum(body, castagnoli) != crc {
			return fmt.Errorf("store: derived file %s at %d: %w", path, off, ErrDerivedTorn)
		}
		keyID := binary.LittleEndian.Uint32(body[0:4])
		g, ok := st.keys.get(keyID)
		if !ok {
			return fmt.Errorf("store: derived file %s at %d: data key %d is not in %s", path, off, keyID, st.keys.path)
		}
		plain, err = g.Open(plain[:0], body[4:16], body[derivedSealPrefix:], st.derivedAAD(name, keyID))
		if err != nil {
			return fmt.Errorf("store: derived file %s at %d: %w", path, off, errDecrypt)
		}
		if err := fn(plain); err != nil {
			return err
		}
		off += derivedHeaderSize + n
	}
	return nil
}

// ListDerived returns the names of the stream's derived files that begin
// with prefix, in ascending order.
func (s *Store) ListDerived(streamName, prefix string) ([]string, error) {
	st, err := s.stream(streamName)
	if err != nil {
		return nil, err
	}
	ents, err := s.fs.ReadDir(filepath.Join(st.dir, derivedDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: list derived files of %s: %w", streamName, err)
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, prefix) && !e.IsDir() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// RemoveDerived removes the stream's derived file name; one that does not
// exist is no error.
func (s *Store) RemoveDerived(streamName, name string) error {
	st, err := s.stream(streamName)
	if err != nil {
		return err
	}
	path, err := st.derivedPath(name)
	if err != nil {
		return err
	}
	if err := s.fs.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: remove derived file %s: %w", path, err)
	}
	return nil
}
