package store

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

// segment is one segment file and what the store knows of it.
type segment struct {
	path    string // the .seg file
	idxPath string // its .idx sidecar, valid once sealed
	sealed  bool   // immutable: its index file is written

	// Guarded by stream.mu. For the active segment entries holds every index
	// entry (durable or not); for a sealed one entries is nil and the index
	// cache serves them, unless its index was damaged and rebuilt from the
	// segment (rebuildIndex): then entries holds them.
	sum     segmentSummary
	entries []FragmentInfo
}

// stream is the data of one stream: its segments and write state.
//
// Lock order: wmu before mu. wmu serialises writers (append, sync, roll,
// retention) so that an fsync can run without blocking readers; mu guards the
// state readers see.
type stream struct {
	s   *Store
	dir string
	log *slog.Logger

	wmu sync.Mutex
	// Guarded by wmu: only writers use them.
	w       *segmentWriter // the active segment's writer; nil when none is open
	dedupe  *dedupeState   // keys of durable fragments
	pending []dedupeKey    // keys appended since the last sync
	recent  *recentKeys    // key → fragment number of recent fragments, to answer duplicates
	aadBuf  []byte         // the record's additional authenticated data

	keys *dataKeys // safe for concurrent use

	// idxMu serialises rebuilding a damaged index (rebuildIndex) with
	// retention's removal of segments, so that a rebuilt index is never
	// written for a segment that is gone. Lock order: wmu, idxMu, mu.
	idxMu sync.Mutex

	mu       sync.RWMutex
	info     StreamInfo
	segments []*segment // ascending; only the last may be unsealed
	// last is the newest appended fragment (durable or not); hasLast is false
	// for a stream that never had one. Written under wmu and mu.
	last    FragmentInfo
	hasLast bool
	// durable is the number of the newest fragment on disk after fsync;
	// readers see fragments up to it and no further.
	durable     uint64
	durableLast FragmentInfo // the fragment numbered durable
	hasDurable  bool
	changed     chan struct{} // closed and replaced whenever durable advances or the stream goes away
	live        *liveRing     // retention 0: fragments held in memory for live readers only
	deleted     bool

	fsOnce sync.Once // onFS: is dir on the file system SyncStreams flushes whole
	onFS   bool

	// segmentMaxAge and keyRotation are the store's, shortened by up to a
	// quarter by a hash of the stream's name: a new segment and a new data
	// key each cost a few fsyncs, and streams started together would
	// otherwise all pay them in the same batch every hour, stalling ingest
	// for seconds at 10,000 streams.
	segmentMaxAge, keyRotation time.Duration
}

// spread shortens d by up to a quarter, by a hash of name.
func spread(d time.Duration, name string) time.Duration {
	h := fnv.New32a()
	h.Write([]byte(name))
	return d - time.Duration(float64(d)/4*float64(h.Sum32()%1024)/1024)
}

type dedupeKey struct {
	producer string
	seq      uint64
	number   uint64
	server   int64
}

// RepairReport says what start-up repair found and did.
type RepairReport struct {
	Stream  string
	Segment string
	Offset  int64  // where valid data ended (or the damage inside starts)
	Dropped int64  // bytes cut from the end (or skipped inside)
	Reason  string // why the tail was not valid
	Saved   string // where the cut bytes were kept, if anywhere
	// Inside is damage followed by valid records: its bytes (Dropped of
	// them, from Offset) are left in the segment and skipped, nothing is cut.
	Inside bool
}

func (s *Store) openStream(info StreamInfo, dir string) (*stream, []RepairReport, error) {
	st := &stream{
		s:       s,
		dir:     dir,
		log:     s.log.With("stream", info.Name),
		info:    info,
		dedupe:  newDedupeState(),
		recent:  newRecentKeys(recentKeysCap),
		changed: make(chan struct{}),

		segmentMaxAge: spread(s.opts.SegmentMaxAge, info.Name),
		keyRotation:   spread(s.opts.KeyRotation, info.Name),
	}
	if err := mkdirDurable(s.fs, siteStreamFolder, dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("store: create stream dir %s: %w", dir, err)
	}
	master := info.KMSKeyID
	if !s.opts.Keyring.Has(master) {
		// A copy of a stream created on another node of a cluster whose
		// keyring differs: its data keys are wrapped by this node's default
		// master key (docs/CLUSTER.md, "Keys"). A stream created here always
		// names a key of this keyring.
		st.log.Warn("store: the stream's master key is not in this node's keyring; wrapping its data keys with the default master key",
			"kms_key_id", master, "default", s.opts.Keyring.Default)
		master = s.opts.Keyring.Default
	}
	keys, err := openDataKeys(s.fs, dir, s.opts.Keyring, master, st.log)
	if err != nil {
		return nil, nil, err
	}
	st.keys = keys
	ents, err := s.fs.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("store: list %s: %w", dir, err)
	}
	var firsts []uint64
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") { // an atomic write that did not finish
			_ = s.fs.Remove(filepath.Join(dir, name))
			continue
		}
		if n, ok := parseSegmentName(name); ok {
			firsts = append(firsts, n)
		}
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	var reports []RepairReport
	for i, first := range firsts {
		seg := &segment{
			path:    filepath.Join(dir, segmentName(first)+segmentExt),
			idxPath: filepath.Join(dir, segmentName(first)+indexExt),
		}
		lastOne := i == len(firsts)-1
		reps, err := st.loadSegment(seg, lastOne)
		if err != nil {
			return nil, nil, err
		}
		reports = append(reports, reps...)
		if seg.sum.count == 0 {
			if lastOne {
				// An active segment with no records: nothing to keep.
				_ = s.fs.Remove(seg.path)
			}
			continue
		}
		st.segments = append(st.segments, seg)
	}
	if n := len(st.segments); n > 0 {
		lastSeg := st.segments[n-1]
		if !lastSeg.sealed {
			// The next append starts a new segment, so the newest one found is
			// sealed now (FORMAT.md, Start-up). Should that fail, the segment is
			// still served from memory and the first append tries again.
			if err := st.sealIdle(lastSeg); err != nil {
				st.log.Warn("store: cannot seal the newest segment at start-up; the first append retries", "segment", lastSeg.path, "err", err)
			}
		}
		e, err := st.entriesOf(lastSeg)
		if err != nil {
			return nil, nil, err
		}
		st.last, st.hasLast = e[len(e)-1], true
		st.durable, st.durableLast, st.hasDurable = st.last.Number, st.last, true
	}
	return st, reports, nil
}

// loadSegment fills seg's summary: from its index when it is sealed and the
// index is sound, else by scanning (and, for the last segment, repairing) it.
func (st *stream) loadSegment(seg *segment, isLast bool) ([]RepairReport, error) {
	fsys := st.s.fs
	segInfo, err := fsys.Stat(seg.path)
	if err != nil {
		return nil, fmt.Errorf("store: stat %s: %w", seg.path, err)
	}
	ih, ierr := readIndexHeader(fsys, seg.idxPath)
	if ierr == nil && ih.sum.size == segInfo.Size() {
		d, derr := readIndexDedupe(fsys, seg.idxPath)
		if derr == nil {
			seg.sealed, seg.sum = true, ih.sum
			st.dedupe = d // cumulative: it supersedes what earlier segments said
			return nil, nil
		}
		ierr = derr
	}
	if ierr != nil && !errors.Is(ierr, fs.ErrNotExist) {
		st.log.Warn("store: index unusable, rebuilding it from its segment", "index", seg.idxPath, "err", ierr)
	}
	_ = fsys.Remove(seg.idxPath) // stale or damaged; rebuilt below when sealed

	first, _ := parseSegmentName(filepath.Base(seg.path))
	var entries []FragmentInfo
	scan, err := scanSegment(fsys, seg.path, first, func(r scannedRecord) {
		e := FragmentInfo{
			Number: r.Rec.Number, ServerTime: r.Rec.ServerTime, ProducerTime: r.Rec.ProducerTime,
			Duration: r.Rec.Duration, Size: r.PayloadLen, offset: r.Offset, recordLen: uint32(r.Length),
		}
		if r.Rec.KeyID != 0 { // the size of a fragment is its plaintext's
			e.Size -= gcmOverhead
		}
		if r.Rec.ReadSize != 0 { // or what readers get of it
			e.Size = int(r.Rec.ReadSize)
		}
		entries = append(entries, e)
		if r.Rec.ProducerID != "" {
			st.dedupe.add(r.Rec.ProducerID, r.Rec.ProducerSeq, r.Rec.ServerTime)
			st.recent.add(r.Rec.ProducerID, r.Rec.ProducerSeq, r.Rec.Number)
		}
	})
	if err != nil {
		return nil, err
	}
	var reps []RepairReport
	for _, d := range scan.damaged {
		// Damage inside, not a torn write: valid records follow it, and they
		// may have been acknowledged. Nothing is cut; the fragment (or header)
		// in the damaged span is lost, its neighbours are served.
		reps = append(reps, RepairReport{Stream: st.info.Name, Segment: seg.path, Offset: d.Err.Offset,
			Dropped: d.next - d.Err.Offset, Reason: d.Err.Err.Error(), Inside: true})
		st.log.Error("store: segment is damaged; the records around the damage are served, the damaged span is skipped",
			"segment", seg.path, "offset", d.Err.Offset, "bytes", d.next-d.Err.Offset, "err", d.Err)
	}
	validEnd := scan.end
	if cerr := scan.tail; cerr != nil {
		rep := RepairReport{Stream: st.info.Name, Segment: seg.path, Offset: validEnd, Dropped: scan.fileSize - validEnd, Reason: cerr.Err.Error()}
		if !isLast {
			// Only the newest segment was being written: what ends an older
			// one early is damage, and the file is kept as it is.
			st.log.Error("store: segment is damaged at its end; the fragments before the damage are served", "segment", seg.path, "offset", validEnd, "err", cerr)
		} else if err := st.cutTail(seg.path, validEnd, scan.fileSize, &rep); err != nil {
			return reps, err
		}
		reps = append(reps, rep)
	}
	seg.entries = entries
	seg.sum = summarize(entries, validEnd)
	if !isLast && len(entries) > 0 {
		// The whole file, damage included, is what the index describes: it
		// stays sound across restarts and the segment is not scanned again.
		seg.sum.size = scan.fileSize
		if err := writeIndexFile(fsys, seg.idxPath, entries, scan.fileSize, st.dedupe); err != nil {
			return reps, err
		}
		seg.sealed, seg.entries = true, nil
	}
	return reps, nil
}

// cutTail saves the bytes after validEnd beside the segment (as etcd keeps a
// .broken copy) and truncates the segment there. Those bytes were never
// acknowledged: acknowledgement follows fsync, and fsync follows the write of
// every byte before them. The bus still holds the fragments and redelivers them.
func (st *stream) cutTail(path string, validEnd, fileSize int64, rep *RepairReport) error {
	fsys := st.s.fs
	f, err := fsys.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("store: repair %s: %w", path, err)
	}
	defer f.Close()
	saved := fmt.Sprintf("%s.broken-%d", path, validEnd)
	switch ok, err := saveTail(fsys, f, validEnd, fileSize, saved); {
	case err != nil:
		st.log.Warn("store: could not keep a copy of a torn tail", "segment", path, "err", err)
	case ok:
		rep.Saved = saved
	}
	if validEnd < segmentHeaderSize {
		validEnd = 0 // not even a header: the file is removed by the caller
	}
	if err := f.Truncate(validEnd); err != nil {
		return fmt.Errorf("store: repair %s: truncate to %d: %w", path, validEnd, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("store: repair %s: fsync: %w", path, err)
	}
	st.log.Warn("store: cut a torn tail from a segment", "segment", path, "offset", validEnd,
		"dropped_bytes", rep.Dropped, "reason", rep.Reason, "saved", rep.Saved)
	return nil
}

// saveTail copies the bytes of f from off to size into path, durably, unless
// they are all zero (a preallocated or never-written tail holds nothing to
// inspect). It streams: a tail may be as large as a segment.
func saveTail(fsys vfs.FS, f vfs.File, off, size int64, path string) (bool, error) {
	buf := make([]byte, min(size-off, 1<<20))
	zero := true
	for p := off; p < size && zero; p += int64(len(buf)) {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-p)], p)
		if err != nil && !errors.Is(err, io.EOF) {
			return false, err
		}
		zero = isZero(buf[:n])
	}
	if zero {
		return false, nil
	}
	tmp := path + ".tmp"
	out, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return false, err
	}
	_, err = io.Copy(out, io.NewSectionReader(f, off, size-off))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err != nil {
		_ = fsys.Remove(tmp)
		return false, err
	}
	return true, syncDirAt(fsys, siteRepairTail, filepath.Dir(path))
}

// entriesOf returns a segment's index entries: the live slice of the active
// segment, or the sealed segment's entries from the cache. A sealed index
// whose entries turn out damaged is rebuilt from its segment (rebuildIndex),
// so a flipped byte in an index costs no fragment.
func (st *stream) entriesOf(seg *segment) ([]FragmentInfo, error) {
	st.mu.RLock()
	if !seg.sealed || seg.entries != nil {
		e := seg.entries
		st.mu.RUnlock()
		return e, nil
	}
	path := seg.idxPath
	st.mu.RUnlock()
	e, err := st.s.cache.get(path)
	var ce *CorruptionError
	if errors.As(err, &ce) {
		return st.rebuildIndex(seg, ce)
	}
	return e, err
}

// rebuildIndex replaces a sealed segment's damaged index entries with ones
// scanned from the segment. The entries stay in memory with the segment (it
// never reads its index again while the store runs); the index file is
// rewritten with them and its own producer table when that is sound, so that
// the next start finds a sound index. Start-up checks an index's header and
// producer table, not every entry: this is where a damaged entry is found.
func (st *stream) rebuildIndex(seg *segment, damage *CorruptionError) ([]FragmentInfo, error) {
	st.idxMu.Lock()
	defer st.idxMu.Unlock()
	st.mu.RLock()
	e, gone := seg.entries, !slices.Contains(st.segments, seg)
	st.mu.RUnlock()
	switch {
	case e != nil:
		return e, nil // another reader rebuilt it meanwhile
	case gone:
		return nil, fs.ErrNotExist // retention removed it: no entries, as for any removed segment
	}
	st.log.Error("store: index entries damaged; rebuilding them from the segment", "index", seg.idxPath, "err", damage)
	first, _ := parseSegmentName(filepath.Base(seg.path))
	var entries []FragmentInfo
	scan, err := scanSegment(st.s.fs, seg.path, first, func(r scannedRecord) {
		e := FragmentInfo{Number: r.Rec.Number, ServerTime: r.Rec.ServerTime, ProducerTime: r.Rec.ProducerTime,
			Duration: r.Rec.Duration, Size: r.PayloadLen, offset: r.Offset, recordLen: uint32(r.Length)}
		if r.Rec.KeyID != 0 {
			e.Size -= gcmOverhead
		}
		if r.Rec.ReadSize != 0 {
			e.Size = int(r.Rec.ReadSize)
		}
		entries = append(entries, e)
	})
	if err != nil {
		return nil, fmt.Errorf("store: rebuild index %s: %w", seg.idxPath, err)
	}
	if entries == nil {
		entries = []FragmentInfo{} // non-nil: rebuilt, even if empty
	}
	if d, derr := readIndexDedupe(st.s.fs, seg.idxPath); derr == nil {
		if werr := writeIndexFile(st.s.fs, seg.idxPath, entries, scan.fileSize, d); werr != nil {
			st.log.Warn("store: cannot rewrite a damaged index; its entries are served from memory", "index", seg.idxPath, "err", werr)
		}
	} else {
		// Without its producer table the index cannot be rewritten as it was;
		// removed, it is rebuilt from the segment (and the dedupe state from
		// the segments) at the next start.
		st.log.Warn("store: damaged index removed; the next start rebuilds it", "index", seg.idxPath, "err", derr)
		_ = st.s.fs.Remove(seg.idxPath)
	}
	st.s.cache.drop(seg.idxPath)
	st.mu.Lock()
	seg.entries = entries
	st.mu.Unlock()
	return entries, nil
}

// notifyLocked wakes every waiter. Call with mu held for writing.
func (st *stream) notifyLocked() {
	close(st.changed)
	st.changed = make(chan struct{})
}

// recentKeys maps the keys of the newest fragments to their numbers, so that a
// duplicate can be answered with the number it was stored under. Older
// duplicates are still recognised (dedupeState) but answered without a number.
type recentKeys struct {
	m    map[recentKey]uint64
	ring []recentKey
	next int
	max  int // the ring's length once full
}

type recentKey struct {
	producer string
	seq      uint64
}

const recentKeysCap = 4096

// newRecentKeys remembers up to n keys. Its map and ring grow as keys come:
// sized for n up front they took 260 KB per stream, most of a server's
// memory (and of its start-up time) at 10,000 streams.
func newRecentKeys(n int) *recentKeys {
	return &recentKeys{m: map[recentKey]uint64{}, max: n}
}

func (r *recentKeys) add(producer string, seq, number uint64) {
	k := recentKey{producer, seq}
	if len(r.ring) < r.max {
		r.ring = append(r.ring, k)
	} else {
		delete(r.m, r.ring[r.next])
		r.ring[r.next] = k
		r.next = (r.next + 1) % len(r.ring)
	}
	r.m[k] = number
}

func (r *recentKeys) get(producer string, seq uint64) (uint64, bool) {
	n, ok := r.m[recentKey{producer, seq}]
	return n, ok
}

// now returns the store's clock in ns.
func (st *stream) now() int64 { return st.s.now().UnixNano() }
