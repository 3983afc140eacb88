package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

// The catalog is kept twice, catalog.json and catalog.backup.json, as the
// data keys are: it is the one file without which start-up cannot name a
// single stream. Each copy carries a generation and a CRC-32C, so a copy
// that is torn or has a flipped byte is told from a sound one, and of two
// sound copies the newer wins (a power cut between the two rewrites leaves
// them one generation apart). Start-up heals a copy that is missing,
// damaged or behind (FORMAT.md, "Catalog").
const (
	catalogFile       = "catalog.json"
	catalogBackupFile = "catalog.backup.json"
	catalogFormat     = 2
	catalogFormatV1   = 1 // one copy, no checksum: still read
)

type catalogStream struct {
	Name           string            `json:"name"`
	ARN            string            `json:"arn"`
	DeviceName     string            `json:"deviceName,omitempty"`
	MediaType      string            `json:"mediaType,omitempty"`
	KMSKeyID       string            `json:"kmsKeyId,omitempty"`
	Version        string            `json:"version"`
	Status         string            `json:"status"`
	CreationTime   time.Time         `json:"creationTime"`
	RetentionHours int               `json:"retentionHours"`
	Tags           map[string]string `json:"tags,omitempty"`
	Dir            string            `json:"dir"` // relative to the store's streams folder
}

// catalogOnDisk is one copy as read: format 1 has neither generation nor checksum.
type catalogOnDisk struct {
	Format     int             `json:"format"`
	Generation uint64          `json:"generation"`
	CRC        string          `json:"crc32c"`
	Streams    json.RawMessage `json:"streams"`
}

// catalogCRC is the CRC-32C of the generation (decimal) and a newline
// followed by the streams array exactly as written.
func catalogCRC(gen uint64, streams []byte) uint32 {
	c := crc32.Update(0, castagnoli, strconv.AppendUint(nil, gen, 10))
	c = crc32.Update(c, castagnoli, []byte{'\n'})
	return crc32.Update(c, castagnoli, streams)
}

// encodeCatalog lays a copy out by hand, so the checksummed bytes are
// exactly the "streams" value a reader gets back as raw JSON.
func encodeCatalog(gen uint64, streams []catalogStream) ([]byte, error) {
	if streams == nil {
		streams = []catalogStream{}
	}
	arr, err := json.MarshalIndent(streams, "  ", "  ")
	if err != nil {
		return nil, fmt.Errorf("store: encode catalog: %w", err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\n  \"format\": %d,\n  \"generation\": %d,\n  \"crc32c\": \"%08x\",\n  \"streams\": ", catalogFormat, gen, catalogCRC(gen, arr))
	b.Write(arr)
	b.WriteString("\n}\n")
	return b.Bytes(), nil
}

// decodeCatalog checks and decodes one copy.
func decodeCatalog(b []byte) (gen uint64, streams []catalogStream, err error) {
	var d catalogOnDisk
	if err := json.Unmarshal(b, &d); err != nil {
		return 0, nil, fmt.Errorf("not JSON: %w", err)
	}
	switch d.Format {
	case catalogFormat:
		want, err := strconv.ParseUint(d.CRC, 16, 32)
		if err != nil || uint32(want) != catalogCRC(d.Generation, d.Streams) {
			return 0, nil, fmt.Errorf("checksum mismatch (crc32c %q)", d.CRC)
		}
	case catalogFormatV1: // written before the second copy existed: nothing to check
	default:
		return 0, nil, fmt.Errorf("format %d; this build reads %d and %d", d.Format, catalogFormatV1, catalogFormat)
	}
	if err := json.Unmarshal(d.Streams, &streams); err != nil {
		return 0, nil, fmt.Errorf("streams: %w", err)
	}
	return d.Generation, streams, nil
}

// catalogCopy is what start-up found in one file.
type catalogCopy struct {
	path    string
	found   bool
	err     error // found but unusable
	gen     uint64
	streams []catalogStream
	raw     []byte
}

// loadCatalog reads both copies, returns the newer sound one and its
// generation, and rewrites a copy that is missing, damaged or behind. No
// file at all is a new store; no sound copy is an error naming both.
func loadCatalog(fsys vfs.FS, primary, backup string, log *slog.Logger) ([]catalogStream, uint64, error) {
	copies := []*catalogCopy{{path: primary}, {path: backup}}
	for _, c := range copies {
		b, err := vfs.ReadFile(fsys, c.path)
		if errors.Is(err, fs.ErrNotExist) {
			c.err = errors.New("missing")
			continue
		}
		c.found, c.raw = true, b
		if err != nil {
			c.err = fmt.Errorf("read: %w", err)
			continue
		}
		c.gen, c.streams, c.err = decodeCatalog(b)
	}
	if !copies[0].found && !copies[1].found {
		return nil, 0, nil
	}
	var best *catalogCopy
	for _, c := range copies {
		if c.err == nil && (best == nil || c.gen > best.gen) {
			best = c
		}
	}
	if best == nil {
		return nil, 0, fmt.Errorf("store: no sound copy of the catalog: %s: %v; %s: %v (restore one from a backup, or remove both to start an empty catalog)",
			primary, copies[0].err, backup, copies[1].err)
	}
	want, err := encodeCatalog(best.gen, best.streams)
	if err != nil {
		return nil, 0, err
	}
	for _, c := range copies {
		if bytes.Equal(c.raw, want) {
			continue
		}
		if log != nil && c != best {
			log.Warn("store: rewriting a missing, damaged or older copy of the catalog", "file", c.path, "err", c.err,
				"generation", c.gen, "sound_generation", best.gen)
		}
		if err := vfs.WriteFileAtomic(fsAt(fsys, siteCatalog), c.path, want, 0o640); err != nil {
			// The sound copy still serves; the next change rewrites both.
			if log != nil {
				log.Warn("store: cannot rewrite a copy of the catalog", "file", c.path, "err", err)
			}
		}
	}
	return best.streams, best.gen, nil
}

// saveCatalog writes both copies, primary first, each atomically: a power
// cut between the two leaves the primary one generation ahead, which
// start-up prefers and copies over the backup.
func saveCatalog(fsys vfs.FS, primary, backup string, gen uint64, streams []catalogStream) error {
	sort.Slice(streams, func(i, j int) bool { return streams[i].Name < streams[j].Name })
	b, err := encodeCatalog(gen, streams)
	if err != nil {
		return err
	}
	for _, path := range []string{primary, backup} {
		if err := vfs.WriteFileAtomic(fsAt(fsys, siteCatalog), path, b, 0o640); err != nil {
			return fmt.Errorf("store: save catalog: %w", err)
		}
	}
	return nil
}
