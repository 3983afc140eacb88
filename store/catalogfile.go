package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

// The catalog is a snapshot (catalog.json) and a journal of the changes
// since (catalog.journal), each kept twice (catalog.backup.json,
// catalog.backup.journal), as the data keys are: it is the one file without
// which start-up cannot name a single stream. Each snapshot copy carries a
// generation and a CRC-32C, so a copy that is torn or has a flipped byte is
// told from a sound one, and of two sound copies the newer wins (a power cut
// between the two rewrites leaves them one generation apart); each journal
// record carries its generation and a CRC-32C too. Start-up heals a copy
// that is missing, damaged or behind (FORMAT.md, "Catalog").
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

// catalogSnapshot is the snapshot start-up took.
type catalogSnapshot struct {
	found   bool // false: neither file is there
	gen     uint64
	size    int64 // of one copy as written
	streams []catalogStream
}

// loadSnapshot reads both copies, returns the newer sound one, and rewrites
// a copy that is missing, damaged or behind. No file at all is a new store
// (found false); no sound copy is an error naming both.
func loadSnapshot(fsys vfs.FS, primary, backup string, log *slog.Logger) (catalogSnapshot, error) {
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
		return catalogSnapshot{}, nil
	}
	var best *catalogCopy
	for _, c := range copies {
		if c.err == nil && (best == nil || c.gen > best.gen) {
			best = c
		}
	}
	if best == nil {
		return catalogSnapshot{}, fmt.Errorf("store: no sound copy of the catalog: %s: %v; %s: %v (restore one from a backup, or remove both and the catalog journals to start an empty catalog)",
			primary, copies[0].err, backup, copies[1].err)
	}
	want, err := encodeCatalog(best.gen, best.streams)
	if err != nil {
		return catalogSnapshot{}, err
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
			// The sound copy still serves; the next snapshot rewrites both.
			if log != nil {
				log.Warn("store: cannot rewrite a copy of the catalog", "file", c.path, "err", err)
			}
		}
	}
	return catalogSnapshot{found: true, gen: best.gen, size: int64(len(want)), streams: best.streams}, nil
}

// writeSnapshot writes both copies, primary first, each atomically, and
// returns the size of one: a power cut between the two leaves the primary
// one generation ahead, which start-up prefers and copies over the backup.
func writeSnapshot(fsys vfs.FS, paths [2]string, gen uint64, streams []catalogStream) (int64, error) {
	sort.Slice(streams, func(i, j int) bool { return streams[i].Name < streams[j].Name })
	b, err := encodeCatalog(gen, streams)
	if err != nil {
		return 0, err
	}
	for _, path := range paths {
		if err := vfs.WriteFileAtomic(fsAt(fsys, siteCatalog), path, b, 0o640); err != nil {
			return 0, fmt.Errorf("store: save catalog: %w", err)
		}
	}
	return int64(len(b)), nil
}

// The journal: every change since the snapshot, one record each, appended
// to catalog.journal and catalog.backup.journal and fsynced before the
// change is acknowledged (FORMAT.md, "Catalog journal"). A change then costs
// one small record per copy, not two rewrites of the whole catalog; the
// snapshot is rewritten only when the journal has grown past the snapshot's
// own size (at least journalMinCompact), so its cost is amortised over as
// many changes as the catalog holds streams.
const (
	catalogJournalFile       = "catalog.journal"
	catalogJournalBackupFile = "catalog.backup.journal"

	journalMagic            = "SNSRCJL1"
	journalVersion          = 1
	journalHeaderSize       = 32
	journalRecordHeaderSize = 20
	journalPut              = 1 // body: the stream's catalog entry, JSON
	journalDelete           = 2 // body: the stream's name
	journalMaxBody          = 1 << 20

	// journalMinCompact is the least journal size that calls for a new
	// snapshot: below it replaying the journal at start-up costs little,
	// whatever the catalog's size.
	journalMinCompact = 1 << 20
)

// Why a journal record or header is rejected; wrapped in a *CorruptionError.
var (
	errJournalHeader = errors.New("not a catalog journal header of this format (magic, version, reserved bytes or checksum)")
	errJournalOrder  = errors.New("record generation not above the previous record's")
	errJournalBody   = errors.New("malformed catalog journal record body")
)

// catalogChange is one change to the catalog: the new entry of a stream
// (put), or the removal of a stream's entry by name (put nil).
type catalogChange struct {
	put  *catalogStream
	name string // of the stream removed; unused for a put
}

// journalRecord is one sound record as read.
type journalRecord struct {
	gen        uint64
	change     catalogChange
	start, end int64 // its bytes in the file
}

func appendJournalHeader(dst []byte, base uint64) []byte {
	h := make([]byte, journalHeaderSize)
	copy(h, journalMagic)
	binary.LittleEndian.PutUint16(h[8:], journalVersion)
	binary.LittleEndian.PutUint64(h[16:], base)
	binary.LittleEndian.PutUint32(h[28:], crc32.Checksum(h[:28], castagnoli))
	return append(dst, h...)
}

// parseJournalHeader returns the generation of the snapshot the journal follows.
func parseJournalHeader(b []byte) (base uint64, err error) {
	if len(b) < journalHeaderSize {
		return 0, errJournalHeader
	}
	h := b[:journalHeaderSize]
	if string(h[:8]) != journalMagic || binary.LittleEndian.Uint16(h[8:]) != journalVersion ||
		binary.LittleEndian.Uint16(h[10:]) != 0 || binary.LittleEndian.Uint32(h[12:]) != 0 ||
		binary.LittleEndian.Uint32(h[24:]) != 0 ||
		binary.LittleEndian.Uint32(h[28:]) != crc32.Checksum(h[:28], castagnoli) {
		return 0, errJournalHeader
	}
	return binary.LittleEndian.Uint64(h[16:]), nil
}

// appendJournalRecord appends the record of change c at generation gen.
func appendJournalRecord(dst []byte, gen uint64, c catalogChange) ([]byte, error) {
	typ, body := byte(journalDelete), []byte(c.name)
	if c.put != nil {
		b, err := json.Marshal(c.put)
		if err != nil {
			return dst, fmt.Errorf("store: encode catalog entry %s: %w", c.put.Name, err)
		}
		typ, body = journalPut, b
	}
	if len(body) == 0 || len(body) > journalMaxBody {
		return dst, fmt.Errorf("store: catalog journal record of %d bytes (1 to %d)", len(body), journalMaxBody)
	}
	at := len(dst)
	var h [journalRecordHeaderSize]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(len(body)))
	binary.LittleEndian.PutUint64(h[8:], gen)
	h[16] = typ
	dst = append(append(dst, h[:]...), body...)
	binary.LittleEndian.PutUint32(dst[at+4:], crc32.Checksum(dst[at+8:], castagnoli))
	return dst, nil
}

// parseJournalRecord decodes the record at the start of b and returns it
// with its length.
func parseJournalRecord(b []byte) (gen uint64, c catalogChange, n int, err error) {
	if len(b) < journalRecordHeaderSize {
		return 0, c, 0, errShortHeader
	}
	l := binary.LittleEndian.Uint32(b[0:])
	if l == 0 || l > journalMaxBody {
		return 0, c, 0, errBadLength
	}
	if b[16] != journalPut && b[16] != journalDelete || b[17]|b[18]|b[19] != 0 {
		return 0, c, 0, errBadType
	}
	n = journalRecordHeaderSize + int(l)
	if len(b) < n {
		return 0, c, 0, errShortRecord
	}
	if binary.LittleEndian.Uint32(b[4:]) != crc32.Checksum(b[8:n], castagnoli) {
		return 0, c, 0, errBadChecksum
	}
	gen, body := binary.LittleEndian.Uint64(b[8:]), b[journalRecordHeaderSize:n]
	if b[16] == journalDelete {
		return gen, catalogChange{name: string(body)}, n, nil
	}
	var e catalogStream
	if err := json.Unmarshal(body, &e); err != nil || e.Name == "" {
		return 0, c, 0, errJournalBody
	}
	return gen, catalogChange{put: &e}, n, nil
}

// journalScan is what one copy of the journal holds.
type journalScan struct {
	base uint64
	recs []journalRecord // the sound prefix, in order
	// stop is why reading ended before the end of the file (nil: it did
	// not). inside tells damage followed by a sound record (bytes changed
	// after they were written) from a torn tail (an append a power cut cut
	// short, never acknowledged).
	stop   *CorruptionError
	inside bool
}

// scanJournal reads a whole journal file; err is set only for a header
// that is not one.
func scanJournal(path string, b []byte) (journalScan, error) {
	base, err := parseJournalHeader(b)
	if err != nil {
		return journalScan{}, &CorruptionError{Path: path, Err: err}
	}
	sc := journalScan{base: base}
	last := uint64(0)
	for off := journalHeaderSize; off < len(b); {
		gen, c, n, err := parseJournalRecord(b[off:])
		if err == nil && len(sc.recs) > 0 && gen <= last {
			err = errJournalOrder
		}
		if err != nil {
			sc.stop = &CorruptionError{Path: path, Offset: int64(off), Err: err}
			sc.inside = soundRecordAfter(b, off+1, last)
			break
		}
		sc.recs = append(sc.recs, journalRecord{gen: gen, change: c, start: int64(off), end: int64(off + n)})
		last, off = gen, off+n
	}
	return sc, nil
}

// soundRecordAfter reports whether a sound record of a generation above
// last starts anywhere in b from offset from: then the bad bytes before it
// are damage, not a torn tail (appends are fsynced one after the other, so
// nothing follows a torn one).
func soundRecordAfter(b []byte, from int, last uint64) bool {
	for off := from; off+journalRecordHeaderSize <= len(b); off++ {
		if gen, _, _, err := parseJournalRecord(b[off:]); err == nil && gen > last {
			return true
		}
	}
	return false
}

// catalogJournal is the catalog on disk as a running store writes it: the
// two snapshot copies and the two journal copies. Guarded by Store.mu.
type catalogJournal struct {
	fsys      vfs.FS
	log       *slog.Logger
	snapshots [2]string // catalog.json, catalog.backup.json
	paths     [2]string // catalog.journal, catalog.backup.journal

	// gen is the last generation written or attempted: every attempt takes
	// the next, so that after a failed one a copy that may hold it is
	// superseded.
	gen          uint64
	sizes        [2]int64 // each journal copy's length: where its next record goes
	snapshotSize int64    // of the last snapshot, which bounds the journal
	// broken: a journal copy may hold bytes past sizes (an append that
	// failed and could not be cut back, a reset or heal that failed), so
	// nothing may be appended after them; the next change writes a
	// snapshot and a new journal instead.
	broken bool
	buf    []byte // the record being appended, reused
}

// openCatalog reads the catalog at start-up: the newer sound snapshot,
// then the journal records above its generation, in order. It cuts a torn
// journal tail, heals a journal copy that is missing, damaged or behind
// from the other, and writes the empty catalog of a new store. The entries
// come back sorted by name.
func openCatalog(fsys vfs.FS, dir string, log *slog.Logger) ([]catalogStream, *catalogJournal, error) {
	j := &catalogJournal{
		fsys: fsys, log: log,
		snapshots: [2]string{filepath.Join(dir, catalogFile), filepath.Join(dir, catalogBackupFile)},
		paths:     [2]string{filepath.Join(dir, catalogJournalFile), filepath.Join(dir, catalogJournalBackupFile)},
	}
	snap, err := loadSnapshot(fsys, j.snapshots[0], j.snapshots[1], log)
	if err != nil {
		return nil, nil, err
	}
	if !snap.found {
		// A journal follows a snapshot: without one it would replay
		// changes onto a catalog that is not there.
		for _, p := range j.paths {
			if _, err := fsys.Stat(p); !errors.Is(err, fs.ErrNotExist) {
				return nil, nil, fmt.Errorf("store: catalog journal %s is there but neither %s nor %s is (restore one from a backup, or remove the journals too to start an empty catalog)",
					p, j.snapshots[0], j.snapshots[1])
			}
		}
		if snap.size, err = writeSnapshot(fsys, j.snapshots, 0, nil); err != nil {
			return nil, nil, err
		}
	}
	j.gen, j.snapshotSize = snap.gen, snap.size
	byName := make(map[string]catalogStream, len(snap.streams))
	for _, e := range snap.streams {
		byName[e.Name] = e
	}
	recs, err := j.load(snap.gen)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range recs {
		if r.change.put != nil {
			byName[r.change.put.Name] = *r.change.put
		} else {
			delete(byName, r.change.name)
		}
		j.gen = r.gen
	}
	out := make([]catalogStream, 0, len(byName))
	for _, e := range byName {
		out = append(out, e)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, j, nil
}

// journalCopy is what start-up found in one journal file.
type journalCopy struct {
	path  string
	found bool
	raw   []byte
	err   error // found but unusable: unreadable, not a journal, or ahead of the snapshot
	sc    journalScan
	recs  []journalRecord // the sound records above the snapshot
	reach uint64          // the generation replay reaches with this copy
}

// load reads both journal copies, returns the records to replay over the
// snapshot of generation snap, and rewrites each copy that differs from the
// sound records of the copy that reaches further, so both hold exactly
// those.
func (j *catalogJournal) load(snap uint64) ([]journalRecord, error) {
	copies := [2]*journalCopy{{path: j.paths[0]}, {path: j.paths[1]}}
	var best *journalCopy
	for _, c := range copies {
		c.raw, c.err = vfs.ReadFile(j.fsys, c.path)
		if errors.Is(c.err, fs.ErrNotExist) {
			c.err = nil
			continue
		}
		c.found = true
		if c.err != nil {
			c.err = fmt.Errorf("read: %w", c.err)
			continue
		}
		if c.sc, c.err = scanJournal(c.path, c.raw); c.err != nil {
			continue
		}
		if c.sc.base > snap {
			c.err = fmt.Errorf("it follows catalog generation %d, newer than the newest sound copy of the catalog (%d)", c.sc.base, snap)
			continue
		}
		c.reach = snap
		for _, r := range c.sc.recs {
			if r.gen > snap {
				c.recs = append(c.recs, r)
				c.reach = r.gen
			}
		}
		// Of two copies that reach as far, a torn or sound one beats a
		// damaged one, then the primary.
		if best == nil || c.reach > best.reach || c.reach == best.reach && best.sc.inside && !c.sc.inside {
			best = c
		}
	}
	if best == nil && (copies[0].found || copies[1].found) {
		return nil, fmt.Errorf("store: no sound copy of the catalog journal: %s: %s; %s: %s (restore the catalog from a backup; removing both journals starts from the catalog's last snapshot, losing the changes since)",
			copies[0].path, copies[0].describe(), copies[1].path, copies[1].describe())
	}
	if best != nil && best.sc.inside {
		return nil, fmt.Errorf("store: catalog journal damaged: %s: %s; %s: %s; records after the damage are in neither copy (restore the catalog from a backup)",
			copies[0].path, copies[0].describe(), copies[1].path, copies[1].describe())
	}
	var recs []journalRecord
	want := appendJournalHeader(nil, snap)
	if best != nil {
		recs = best.recs
		for _, r := range recs {
			want = append(want, best.raw[r.start:r.end]...)
		}
	}
	for i, c := range copies {
		j.sizes[i] = int64(len(want))
		if c.found && bytes.Equal(c.raw, want) {
			continue
		}
		switch {
		case !c.found:
			j.log.Info("store: creating a copy of the catalog journal", "file", c.path)
		case c.err != nil || c.sc.stop != nil || c.reach < best.reach:
			j.log.Warn("store: rewriting a damaged, torn or older copy of the catalog journal", "file", c.path,
				"problem", c.describe(), "generation", c.reach, "sound_generation", best.reach)
		default: // records the snapshot already holds (a stop between a snapshot and the journal's reset)
			j.log.Info("store: dropping catalog journal records the snapshot holds", "file", c.path)
		}
		if err := vfs.WriteFileAtomic(fsAt(j.fsys, siteCatalog), c.path, want, 0o640); err != nil {
			// The next change writes a snapshot and new journals instead
			// of appending after what could not be cut.
			j.broken = true
			j.log.Warn("store: cannot rewrite a copy of the catalog journal", "file", c.path, "err", err)
		}
	}
	return recs, nil
}

func (c *journalCopy) describe() string {
	switch {
	case !c.found:
		return "missing"
	case c.err != nil:
		return c.err.Error()
	case c.sc.stop != nil && c.sc.inside:
		return fmt.Sprintf("damaged inside (%v), sound records follow", c.sc.stop)
	case c.sc.stop != nil:
		return fmt.Sprintf("torn tail (%v)", c.sc.stop)
	}
	return fmt.Sprintf("sound to generation %d", c.reach)
}

// compactionDue reports whether the next change should write a snapshot
// instead of a record: the journal has grown past the snapshot (at least
// journalMinCompact), or cannot be appended to.
func (j *catalogJournal) compactionDue() bool {
	return j.broken || j.sizes[0] > max(journalMinCompact, j.snapshotSize)
}

// append makes one change durable: its record is appended to the primary
// journal, fsynced, then to the backup, fsynced. On error the change did
// not happen: the copies are cut back to where they were (when that fails
// too, the journal is broken and the next change writes a snapshot).
func (j *catalogJournal) append(c catalogChange) error {
	if j.broken {
		return fmt.Errorf("store: catalog journal %s: a failed write could not be undone; a snapshot must come first", j.paths[0])
	}
	j.gen++
	rec, err := appendJournalRecord(j.buf[:0], j.gen, c)
	if err != nil {
		return err
	}
	j.buf = rec[:0]
	for i, p := range j.paths {
		if err := appendFileAt(j.fsys, p, j.sizes[i], rec); err != nil {
			for k := 0; k <= i; k++ {
				if cerr := truncateDurably(j.fsys, j.paths[k], j.sizes[k]); cerr != nil {
					j.broken = true
					j.log.Warn("store: cannot cut back a failed catalog journal append; the next change writes a snapshot", "file", j.paths[k], "err", cerr)
				}
			}
			return fmt.Errorf("store: catalog journal %s: %w", p, err)
		}
	}
	for i := range j.sizes {
		j.sizes[i] += int64(len(rec))
	}
	return nil
}

// appendFileAt appends b to the file at path, which must be size bytes
// long, and fsyncs it.
func appendFileAt(fsys vfs.FS, path string, size int64, b []byte) error {
	f, err := fsys.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() != size {
		err = fmt.Errorf("%d bytes long, not the %d this store wrote", fi.Size(), size)
	}
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// truncateDurably cuts the file at path to size bytes, durably.
func truncateDurably(fsys vfs.FS, path string, size int64) error {
	f, err := fsys.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// compact writes a snapshot of streams (the whole catalog) at a new
// generation, then starts both journals afresh after it. A stop between
// the two leaves journal records the snapshot already holds, which start-up
// skips (their generations are not above it) and drops. An error means the
// snapshot was not written; a journal that could not be reset afterwards
// only breaks the journal (the next change compacts again), since the
// snapshot already holds everything.
func (j *catalogJournal) compact(streams []catalogStream) error {
	j.gen++
	size, err := writeSnapshot(j.fsys, j.snapshots, j.gen, streams)
	if err != nil {
		return err
	}
	j.snapshotSize = size
	hdr := appendJournalHeader(nil, j.gen)
	j.broken = false
	for i, p := range j.paths {
		if err := vfs.WriteFileAtomic(fsAt(j.fsys, siteCatalog), p, hdr, 0o640); err != nil {
			j.broken = true
			j.log.Warn("store: cannot start a new catalog journal after a snapshot; the next change writes a snapshot again", "file", p, "err", err)
			continue
		}
		j.sizes[i] = int64(len(hdr))
	}
	return nil
}

// catalogEntry is st's entry as the catalog files hold it.
func (s *Store) catalogEntry(st *stream) (catalogStream, error) {
	st.mu.RLock()
	in := st.info
	st.mu.RUnlock()
	rel, err := filepath.Rel(filepath.Join(s.dir, "streams"), st.dir)
	if err != nil {
		return catalogStream{}, fmt.Errorf("store: stream dir %s: %w", st.dir, err)
	}
	return catalogStream{
		Name: in.Name, ARN: in.ARN, DeviceName: in.DeviceName, MediaType: in.MediaType, KMSKeyID: in.KMSKeyID,
		Version: in.Version, Status: in.Status, CreationTime: in.CreationTime, RetentionHours: in.RetentionHours,
		Tags: in.Tags, Dir: rel,
	}, nil
}

// putCatalogLocked makes st's entry, as it now is in memory, durable. An
// error means it was not recorded: the caller puts the entry back as it
// was. s.mu held.
func (s *Store) putCatalogLocked(st *stream) error {
	e, err := s.catalogEntry(st)
	if err != nil {
		return err
	}
	return s.changeCatalogLocked(catalogChange{put: &e})
}

// deleteCatalogLocked makes the removal of the entry of name, already gone
// from s.streams, durable. s.mu held.
func (s *Store) deleteCatalogLocked(name string) error {
	return s.changeCatalogLocked(catalogChange{name: name})
}

// changeCatalogLocked records one change the caller has already made in
// memory: one journal record, or, when the journal is due for compaction,
// a snapshot of the whole catalog, which holds the change too. s.mu held.
func (s *Store) changeCatalogLocked(c catalogChange) error {
	if s.catalog.compactionDue() {
		err := s.saveCatalogLocked()
		if err == nil || s.catalog.broken {
			return err
		}
		// A large write failed (a full disk?): a small record may still
		// fit, and the next change tries the snapshot again.
		s.log.Warn("store: cannot write a catalog snapshot; appending to the journal past its bound", "err", err)
	}
	return s.catalog.append(c)
}

// saveCatalogLocked writes a snapshot of the whole catalog from the streams
// in memory and starts new journals after it. s.mu held.
func (s *Store) saveCatalogLocked() error {
	out := make([]catalogStream, 0, len(s.streams))
	for _, st := range s.streams {
		e, err := s.catalogEntry(st)
		if err != nil {
			return err
		}
		out = append(out, e)
	}
	return s.catalog.compact(out)
}
