package spool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

// Options configure a spool.
type Options struct {
	Dir string
	// Budget bounds the bytes of the segment files. Append refuses a record
	// that would exceed it; the caller drops or waits (DropOldestSegment).
	Budget int64
	// SegmentBytes is the size at which a segment file is closed and a new
	// one started; default Budget/32 within [1 MiB, 64 MiB], at most
	// Budget/4. A record
	// larger than it gets a segment of its own. Space is freed a whole
	// segment at a time.
	SegmentBytes int64
	FS           vfs.FS // default vfs.OS
	// OnSync is called (from the flusher goroutine) after each group fsync,
	// so that the caller can publish what just became durable.
	OnSync func()
}

// Meta is what the spool belongs to, kept in meta.json.
type Meta struct {
	Format     int    `json:"format"`
	ProducerID string `json:"producer_id"`
	Stream     string `json:"stream"`
	// FirstSequence is the first sequence the spool's producer used.
	FirstSequence uint64 `json:"first_sequence"`
}

// formatVersion is Meta.Format.
const formatVersion = 1

// Repair reports what Open cut from a segment: a torn tail (a write that a
// crash or power cut interrupted; never fsynced, so never sent) or damage.
type Repair struct {
	File    string
	Offset  int64 // where the cut began
	Dropped int64 // bytes cut
	Reason  string
}

// Stats are the spool's counters.
type Stats struct {
	Live      int   // records not done: what a restart would re-send
	DiskBytes int64 // bytes of the segment files
	Segments  int
}

// Spool is an open spool. Its methods are safe for concurrent use.
type Spool struct {
	o  Options
	fs vfs.FS

	mu       sync.Mutex
	segs     []*segment // oldest first; the last one is active while w is open
	w        vfs.File   // the active segment's writer; nil until the next Append opens one
	diskSize int64      // bytes of all segment files
	live     int
	done     seqSet // done sequences at or above floor
	floor    uint64 // every sequence below it is done
	high     uint64 // highest sequence ever appended
	highEnd  int64  // its producer end time
	doneF    vfs.File
	doneN    int    // entries in the done log
	buf      []byte // Append's encoding buffer (of records under 64 KiB, and heads)
	err      error  // sticky: after a failed write or fsync the spool takes nothing more

	// Group commit: written is the highest sequence written, synced the
	// highest made durable; the flusher fsyncs what lies between.
	written, synced uint64
	toSync          []vfs.File // rotated segment files (and replaced done logs) to fsync and close
	dirDirty        bool       // a segment file was created since the last fsync of the folder
	doneDirty       bool       // done entries were written since the last fsync of the done log
	wake            chan struct{}
	syncedCh        chan struct{} // closed and replaced after each group fsync
	stop            chan struct{}
	flusherDone     chan struct{}
	closed          bool
	unlock          func() error
}

// segment is one segment file.
type segment struct {
	path    string
	first   uint64 // from the file name
	present seqSet // sequences of its records
	live    int    // records not done
	size    int64
}

const (
	metaFile = "meta.json"
	lockFile = "LOCK"
	doneFile = "done.log"
	segExt   = ".seg"
)

func segmentName(first uint64) string { return fmt.Sprintf("%020d%s", first, segExt) }

// Open opens the spool in o.Dir, creating it with fresh when it holds none,
// and returns the metadata it holds. It repairs torn tails (reported), drops
// done records' segments, and makes every record durable before it returns,
// so that a record found after a crash may be sent at once.
func Open(o Options, fresh Meta) (*Spool, Meta, []Repair, error) {
	if o.FS == nil {
		o.FS = vfs.OS
	}
	if o.Budget <= 0 {
		return nil, Meta{}, nil, errors.New("spool: a budget is required")
	}
	if o.SegmentBytes <= 0 {
		// Small enough that a full budget frees a small part of itself, and
		// at least four segments whatever the budget.
		o.SegmentBytes = min(max(o.Budget/32, 1<<20), 64<<20, o.Budget/4)
	}
	s := &Spool{o: o, fs: o.FS, wake: make(chan struct{}, 1), syncedCh: make(chan struct{}),
		stop: make(chan struct{}), flusherDone: make(chan struct{})}
	if err := vfs.MkdirAllDurable(s.fs, o.Dir, 0o755); err != nil {
		return nil, Meta{}, nil, fmt.Errorf("spool: %w", err)
	}
	unlock, err := lockDir(s.path(lockFile))
	if err != nil {
		return nil, Meta{}, nil, err
	}
	s.unlock = unlock
	meta, reps, err := s.load(fresh)
	if err != nil {
		_ = unlock()
		return nil, Meta{}, nil, err
	}
	s.written, s.synced = s.high, s.high
	go s.flusher()
	return s, meta, reps, nil
}

// load reads the metadata, the done log and the segments.
func (s *Spool) load(fresh Meta) (Meta, []Repair, error) {
	meta, err := s.loadMeta(fresh)
	if err != nil {
		return Meta{}, nil, err
	}
	if meta.FirstSequence > 0 {
		s.high = meta.FirstSequence - 1
	}
	if err := s.loadDone(); err != nil {
		return Meta{}, nil, err
	}
	reps, err := s.loadSegments()
	if err != nil {
		return Meta{}, nil, err
	}
	// The done log first (it keeps the highest sequence and its end), then
	// the segments it makes useless.
	if err := s.compactLocked(); err != nil {
		return Meta{}, nil, err
	}
	if err := s.removeDoneSegmentsLocked(); err != nil {
		return Meta{}, nil, err
	}
	return meta, reps, nil
}

func (s *Spool) path(name string) string { return filepath.Join(s.o.Dir, name) }

func (s *Spool) loadMeta(fresh Meta) (Meta, error) {
	b, err := vfs.ReadFile(s.fs, s.path(metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		fresh.Format = formatVersion
		b, _ := json.MarshalIndent(fresh, "", "  ")
		if err := vfs.WriteFileAtomic(s.fs, s.path(metaFile), append(b, '\n'), 0o644); err != nil {
			return Meta{}, fmt.Errorf("spool: %w", err)
		}
		return fresh, nil
	}
	if err != nil {
		return Meta{}, fmt.Errorf("spool: read %s: %w", s.path(metaFile), err)
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("spool: %s: %w", s.path(metaFile), err)
	}
	if m.Format != formatVersion || m.ProducerID == "" {
		return Meta{}, fmt.Errorf("spool: %s: format %d with producer id %q is not a spool this SDK reads (format %d)", s.path(metaFile), m.Format, m.ProducerID, formatVersion)
	}
	return m, nil
}

// loadDone reads the done log; a torn last entry is ignored (it was never
// fsynced, and a done mark that is lost only costs a re-send the server
// answers as a duplicate).
func (s *Spool) loadDone() error {
	b, err := vfs.ReadFile(s.fs, s.path(doneFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("spool: read %s: %w", s.path(doneFile), err)
	}
	if len(b) < len(DoneMagic) || string(b[:len(DoneMagic)]) != DoneMagic {
		return nil // torn at creation: it is rewritten below
	}
	var from uint64
	for b = b[len(DoneMagic):]; len(b) >= DoneEntrySize; b = b[DoneEntrySize:] {
		kind, seq, ok := parseDone(b[:DoneEntrySize])
		if !ok {
			break
		}
		switch kind {
		case kindFrom:
			from = seq
		case kindTo:
			s.done.addRange(from, seq)
			s.high = max(s.high, seq)
		case kindFloor:
			s.floor = max(s.floor, seq)
		case kindHigh:
			s.high = max(s.high, seq)
		case kindEnd:
			s.highEnd = int64(seq)
		default:
			s.done.add(seq)
			s.high = max(s.high, seq)
		}
	}
	s.done.dropBelow(s.floor)
	if s.floor > 0 {
		s.high = max(s.high, s.floor-1)
	}
	return nil
}

func (s *Spool) isDone(seq uint64) bool { return seq < s.floor || s.done.contains(seq) }

// loadSegments scans every segment file and cuts torn tails.
func (s *Spool) loadSegments() ([]Repair, error) {
	ents, err := s.fs.ReadDir(s.o.Dir)
	if err != nil {
		return nil, fmt.Errorf("spool: read %s: %w", s.o.Dir, err)
	}
	var reps []Repair
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, segExt) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, segExt), 10, 64)
		if err != nil {
			continue
		}
		seg := &segment{path: s.path(name), first: first}
		rep, err := s.scanSegment(seg)
		if err != nil {
			return nil, err
		}
		if rep != nil {
			reps = append(reps, *rep)
		}
		s.segs = append(s.segs, seg)
		s.diskSize += seg.size
		s.live += seg.live
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].first < s.segs[j].first })
	return reps, nil
}

// removeDoneSegmentsLocked deletes the segments whose records are all done
// but the active one.
func (s *Spool) removeDoneSegmentsLocked() error {
	for i := 0; i < len(s.segs); i++ {
		if s.segs[i].live == 0 && s.segs[i] != s.activeLocked() {
			if err := s.removeLocked(i); err != nil {
				return err
			}
			i--
		}

	}
	return nil
}

// scanSegment reads a segment's record heads, checks every CRC, cuts the
// file at the first record that does not check (keeping the cut bytes in a
// .broken file beside it) and makes the rest durable.
func (s *Spool) scanSegment(seg *segment) (*Repair, error) {
	f, err := s.fs.OpenFile(seg.path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", seg.path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("spool: stat %s: %w", seg.path, err)
	}
	size := fi.Size()
	var rep *Repair
	off := int64(0)
	magic := make([]byte, len(SegmentMagic))
	if _, err := f.ReadAt(magic, 0); err != nil || string(magic) != SegmentMagic {
		rep = &Repair{File: seg.path, Offset: 0, Dropped: size, Reason: "no segment header"}
	} else {
		off = int64(len(SegmentMagic))
		var buf []byte
		for off < size {
			h, body, err := readRecordAt(f, off, size, &buf, true)
			if err != nil {
				rep = &Repair{File: seg.path, Offset: off, Dropped: size - off, Reason: err.Error()}
				break
			}
			_ = body
			seg.present.add(h.seq)
			if !s.isDone(h.seq) {
				seg.live++
			}
			if h.seq >= s.high {
				s.high, s.highEnd = h.seq, h.end
			}
			off += RecordHeaderSize + int64(h.bodyLen)
		}
	}
	if rep != nil {
		if err := s.cut(f, seg.path, rep); err != nil {
			return nil, err
		}
		if off == 0 { // not even a header: rewrite it
			if _, err := f.Write([]byte(SegmentMagic)); err != nil {
				return nil, fmt.Errorf("spool: repair %s: %w", seg.path, err)
			}
			off = int64(len(SegmentMagic))
		}
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("spool: sync %s: %w", seg.path, err)
	}
	seg.size = off
	return rep, nil
}

// cut saves the bytes from rep.Offset on beside the segment and truncates it
// there.
func (s *Spool) cut(f vfs.File, path string, rep *Repair) error {
	tail := make([]byte, rep.Dropped)
	n, _ := f.ReadAt(tail, rep.Offset)
	if n > 0 {
		_ = vfs.WriteFileAtomic(s.fs, path+".broken", tail[:n], 0o644) // best effort: evidence, not data
	}
	if err := f.Truncate(rep.Offset); err != nil {
		return fmt.Errorf("spool: truncate %s at %d: %w", path, rep.Offset, err)
	}
	if _, err := f.Seek(rep.Offset, io.SeekStart); err != nil {
		return fmt.Errorf("spool: seek %s: %w", path, err)
	}
	return nil
}

// readRecordAt reads the record at off of a file of size bytes. With
// withBody it reads (into *buf) and checks the whole body; else only the
// fixed fields, unchecked.
func readRecordAt(f io.ReaderAt, off, size int64, buf *[]byte, withBody bool) (recordHead, []byte, error) {
	var head [RecordHeaderSize + RecordFixedSize]byte
	if size-off < int64(len(head)) {
		return recordHead{}, nil, fmt.Errorf("%w: %d bytes left for a record", errTorn, size-off)
	}
	if _, err := f.ReadAt(head[:], off); err != nil {
		return recordHead{}, nil, fmt.Errorf("read record at %d: %w", off, err)
	}
	h, err := parseHead(head[:])
	if err != nil {
		return h, nil, err
	}
	if off+RecordHeaderSize+int64(h.bodyLen) > size {
		return h, nil, fmt.Errorf("%w: a %d-byte record at %d runs past the end (%d)", errTorn, h.bodyLen, off, size)
	}
	if !withBody {
		return h, nil, nil
	}
	if cap(*buf) < h.bodyLen {
		*buf = make([]byte, h.bodyLen)
	}
	body := (*buf)[:h.bodyLen]
	if _, err := f.ReadAt(body, off+RecordHeaderSize); err != nil {
		return h, nil, fmt.Errorf("read record at %d: %w", off, err)
	}
	if crc32Checksum(body) != h.crc {
		return h, nil, fmt.Errorf("%w: CRC mismatch at %d", errTorn, off)
	}
	return h, body, nil
}

// compactLocked rewrites the done log with the floor (the oldest live
// sequence), the highest sequence and the done sequences above the floor,
// atomically, and reopens it for appending.
func (s *Spool) compactLocked() error {
	s.floor = s.firstLiveLocked()
	s.done.dropBelow(s.floor)
	b := []byte(DoneMagic)
	b = appendDone(b, kindFloor, s.floor)
	b = appendDone(b, kindHigh, s.high)
	b = appendDone(b, kindEnd, uint64(s.highEnd))
	for _, v := range s.done.iv {
		b = appendDone(appendDone(b, kindFrom, v.lo), kindTo, v.hi)
	}
	n := 3 + 2*len(s.done.iv)
	if s.doneF != nil {
		// The flusher may be fsyncing it right now: it closes it after.
		s.toSync = append(s.toSync, s.doneF)
		s.doneF = nil
	}
	if err := vfs.WriteFileAtomic(s.fs, s.path(doneFile), b, 0o644); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	f, err := s.fs.OpenFile(s.path(doneFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("spool: open %s: %w", s.path(doneFile), err)
	}
	s.doneF, s.doneN, s.doneDirty = f, n, false
	return nil
}

// firstLiveLocked is the oldest sequence not done, or high+1.
func (s *Spool) firstLiveLocked() uint64 {
	for _, seg := range s.segs {
		if seg.live == 0 {
			continue
		}
		for _, v := range seg.present.iv {
			if x := s.done.nextAbsent(max(v.lo, s.floor)); x <= v.hi {
				return x
			}
		}
	}
	return s.high + 1
}

// FirstLive is the oldest sequence still to be sent, if any.
func (s *Spool) FirstLive() (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live == 0 {
		return 0, false
	}
	return s.firstLiveLocked(), true
}

// High is the highest sequence ever appended (FirstSequence-1 for a new
// spool), and the producer time its fragment ends at (0 for a new spool): a
// restarted producer continues above both.
func (s *Spool) High() (seq uint64, end int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.high, s.highEnd
}

// Stats returns the spool's counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Live: s.live, DiskBytes: s.diskSize, Segments: len(s.segs)}
}

// Err is the sticky error of a failed write or fsync, if any.
func (s *Spool) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Room reports whether a record of size bytes fits the budget now.
func (s *Spool) Room(size int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.roomLocked(size)
}

func (s *Spool) roomLocked(size int64) bool {
	extra := size
	if s.w == nil || s.activeLocked().size+size > s.o.SegmentBytes {
		extra += int64(len(SegmentMagic)) // a new segment's header
	}
	return s.diskSize+extra <= s.o.Budget
}

func (s *Spool) activeLocked() *segment {
	if s.w == nil || len(s.segs) == 0 {
		return nil
	}
	return s.segs[len(s.segs)-1]
}

// ErrFull is Append's answer when the record does not fit the budget.
var ErrFull = errors.New("spool: budget full")

// Append writes r (not yet durable: the flusher fsyncs it, and Synced says
// when). Sequences must increase. It refuses a record that does not fit the
// budget with ErrFull.
func (s *Spool) Append(r *Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errors.New("spool: closed")
	case s.err != nil:
		return s.err
	case r.Seq <= s.high:
		return fmt.Errorf("spool: append sequence %d after %d", r.Seq, s.high)
	case !s.roomLocked(r.Size()):
		return ErrFull
	}
	if act := s.activeLocked(); act == nil || act.size+r.Size() > s.o.SegmentBytes && act.present.iv != nil {
		if err := s.rotateLocked(r.Seq); err != nil {
			return err
		}
	}
	act := s.activeLocked()
	if err := s.writeRecordLocked(r); err != nil {
		// A full disk: take back whatever part of the record was written, so
		// that the segment ends with a whole record and later appends may
		// succeed once there is space. Only if that fails is the spool done.
		err = fmt.Errorf("spool: write %s: %w", act.path, err)
		if terr := s.w.Truncate(act.size); terr != nil {
			s.err = errors.Join(err, fmt.Errorf("spool: truncate %s after a failed write: %w", act.path, terr))
			return s.err
		}
		if _, serr := s.w.Seek(act.size, io.SeekStart); serr != nil {
			s.err = errors.Join(err, fmt.Errorf("spool: seek %s after a failed write: %w", act.path, serr))
			return s.err
		}
		return err
	}
	act.size += r.Size()
	s.diskSize += r.Size()
	act.present.add(r.Seq)
	act.live++
	s.live++
	s.high, s.highEnd, s.written = r.Seq, r.End, r.Seq
	s.kickFlusher()
	return nil
}

// writeRecordLocked writes r to the active segment: a small one in one
// write from s.buf, a large one as its head and then its data, which is
// not copied.
func (s *Spool) writeRecordLocked(r *Record) error {
	if len(r.Data) < 64<<10 {
		s.buf = appendRecord(s.buf[:0], r)
		_, err := s.w.Write(s.buf)
		return err
	}
	s.buf = appendRecordHead(s.buf[:0], r)
	if _, err := s.w.Write(s.buf); err != nil {
		return err
	}
	_, err := s.w.Write(r.Data)
	return err
}

// rotateLocked closes the active segment (the flusher fsyncs it) and
// starts a new one whose first record is seq.
func (s *Spool) rotateLocked(seq uint64) error {
	if err := s.closeActiveLocked(); err != nil {
		return err
	}
	_ = s.removeDoneSegmentsLocked() // any that could not go before
	path := s.path(segmentName(seq))
	f, err := s.fs.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("spool: create %s: %w", path, err) // a later append tries again
	}
	if _, err := f.Write([]byte(SegmentMagic)); err != nil {
		f.Close()
		_ = s.fs.Remove(path)
		return fmt.Errorf("spool: write %s: %w", path, err)
	}
	s.segs = append(s.segs, &segment{path: path, first: seq, size: int64(len(SegmentMagic))})
	s.diskSize += int64(len(SegmentMagic))
	s.w, s.dirDirty = f, true
	return nil
}

// closeActiveLocked hands the active segment's writer to the flusher and
// deletes the segment if nothing in it is live.
func (s *Spool) closeActiveLocked() error {
	if s.w == nil {
		return nil
	}
	s.toSync = append(s.toSync, s.w)
	s.w = nil
	if last := s.segs[len(s.segs)-1]; last.live == 0 {
		_ = s.removeLocked(len(s.segs) - 1) // or at the next rotation
	}
	return nil
}

func (s *Spool) removeLocked(i int) error {
	seg := s.segs[i]
	if seg.present.contains(s.high) && s.doneF != nil && s.err == nil {
		// The done log keeps what the segment no longer will: where the
		// producer's sequences and time have got to.
		var e [2 * DoneEntrySize]byte
		if _, err := s.doneF.Write(appendDone(appendDone(e[:0], kindHigh, s.high), kindEnd, uint64(s.highEnd))); err != nil {
			s.err = fmt.Errorf("spool: write %s: %w", s.path(doneFile), err)
			return s.err
		}
		s.doneN += 2
		s.doneDirty = true
	}
	if err := s.fs.Remove(seg.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("spool: remove %s: %w", seg.path, err)
	}
	s.diskSize -= seg.size
	s.segs = append(s.segs[:i], s.segs[i+1:]...)
	return nil
}

// segmentOfLocked finds the segment holding seq.
func (s *Spool) segmentOfLocked(seq uint64) (int, *segment) {
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].first > seq }) - 1
	if i < 0 || !s.segs[i].present.contains(seq) {
		return -1, nil
	}
	return i, s.segs[i]
}

// Live reports whether seq is a record of the spool still to be sent.
func (s *Spool) Live(seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, seg := s.segmentOfLocked(seq)
	return seg != nil && !s.isDone(seq)
}

// Done records that seq needs no re-send. A segment whose records are all
// done is deleted (but the active one). Done marks are written at once and
// fsynced with the next group: one lost in a crash costs a re-send that the
// server answers as a duplicate.
func (s *Spool) Done(seq uint64, kind DoneKind) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.doneLocked(seq, kind)
}

func (s *Spool) doneLocked(seq uint64, kind DoneKind) error {
	if s.closed || seq < s.floor || !s.done.add(seq) {
		return nil
	}
	if s.err == nil {
		var e [DoneEntrySize]byte
		if _, err := s.doneF.Write(appendDone(e[:0], kind, seq)); err != nil {
			s.err = fmt.Errorf("spool: write %s: %w", s.path(doneFile), err)
		}
		s.doneN++
		s.doneDirty = true
	}
	i, seg := s.segmentOfLocked(seq)
	if seg == nil {
		return s.err
	}
	seg.live--
	s.live--
	if seg.live == 0 && seg != s.activeLocked() {
		// A segment that cannot go yet (on Windows, while a reader has it
		// open) goes at the next rotation; it only holds space meanwhile.
		_ = s.removeLocked(i)
	}
	if s.doneN > 4096 && s.doneN > 4*(3+2*len(s.done.iv)) && s.err == nil {
		if err := s.compactLocked(); err != nil {
			s.err = err
		}
	}
	s.kickFlusher()
	return s.err
}

// DropOldestSegment gives up every live record of the oldest segment that
// holds any, marks them Dropped and deletes the segment: space is freed a
// segment at a time. It returns the records it dropped (without their
// data), none when nothing is live.
func (s *Spool) DropOldestSegment() ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var seg *segment
	for _, g := range s.segs {
		if g.live > 0 {
			seg = g
			break
		}
	}
	if seg == nil {
		return nil, nil
	}
	if seg == s.activeLocked() {
		if err := s.closeActiveLocked(); err != nil {
			return nil, err
		}
	}
	f, err := s.fs.OpenFile(seg.path, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", seg.path, err)
	}
	defer f.Close()
	var out []Record
	for off := int64(len(SegmentMagic)); off < seg.size; {
		h, _, err := readRecordAt(f, off, seg.size, nil, false)
		if err != nil {
			return out, fmt.Errorf("spool: %s: %w", seg.path, err)
		}
		off += RecordHeaderSize + int64(h.bodyLen)
		if s.isDone(h.seq) {
			continue
		}
		out = append(out, Record{Seq: h.seq, Start: h.start, End: h.end, Frames: h.frames, Bytes: h.bodyLen - RecordFixedSize})
		if err := s.doneLocked(h.seq, Dropped); err != nil {
			return out, err
		}
	}
	return out, nil
}

// Synced is the highest sequence made durable: every record at or below it
// may be sent.
func (s *Spool) Synced() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced
}

// WaitSynced waits until seq is durable, ctx ends, or a write fails.
func (s *Spool) WaitSynced(ctx context.Context, seq uint64) error {
	for {
		s.mu.Lock()
		synced, err, ch := s.synced, s.err, s.syncedCh
		s.mu.Unlock()
		if synced >= seq {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Spool) kickFlusher() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// flusher is the group commit: each round fsyncs everything written since
// the last, as one batch, however many records that is.
func (s *Spool) flusher() {
	defer close(s.flusherDone)
	for {
		select {
		case <-s.stop:
			return
		case <-s.wake:
		}
		s.syncOnce()
	}
}

// syncOnce fsyncs the rotated segments, the active one, the folder and the
// done log as needed, then publishes the new synced sequence.
func (s *Spool) syncOnce() {
	s.mu.Lock()
	target, files, w, dir, doneF := s.written, s.toSync, s.w, s.dirDirty, s.doneF
	if target > s.synced && doneF != nil && s.err == nil {
		// How far the sequences have got goes into the done log, fsynced in
		// this round, before any of them may be published: a segment whose
		// records are all done is deleted, and a power cut can keep that
		// deletion (ext4 commits it with another file's fsync) while losing
		// the done marks that said how far it went. The next process must
		// never number its fragments from below one the server has stored,
		// or the server would answer them as duplicates and drop them.
		var e [2 * DoneEntrySize]byte
		if _, err := doneF.Write(appendDone(appendDone(e[:0], kindHigh, target), kindEnd, uint64(s.highEnd))); err != nil {
			s.err = fmt.Errorf("spool: write %s: %w", s.path(doneFile), err)
		} else {
			s.doneN += 2
			s.doneDirty = true
		}
	}
	if !s.doneDirty {
		doneF = nil
	}
	s.toSync, s.dirDirty, s.doneDirty = nil, false, false
	if target <= s.synced {
		w = nil
	}
	s.mu.Unlock()
	var errs []error
	for _, f := range files {
		errs = append(errs, f.Sync(), f.Close())
	}
	if w != nil {
		errs = append(errs, w.Sync())
	}
	if dir {
		errs = append(errs, s.fs.SyncDir(s.o.Dir))
	}
	if doneF != nil {
		errs = append(errs, doneF.Sync())
	}
	err := errors.Join(errs...)
	s.mu.Lock()
	if err != nil && s.err == nil {
		s.err = fmt.Errorf("spool: fsync: %w", err)
	}
	if err == nil && target > s.synced {
		s.synced = target
	}
	close(s.syncedCh)
	s.syncedCh = make(chan struct{})
	s.mu.Unlock()
	if s.o.OnSync != nil {
		s.o.OnSync()
	}
}

// Close fsyncs what was written and closes the files. Live records stay for
// the next Open.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	close(s.stop)
	<-s.flusherDone
	s.syncOnce()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	if s.w != nil {
		errs = append(errs, s.w.Close())
		s.w = nil
	}
	if s.doneF != nil {
		errs = append(errs, s.doneF.Close())
		s.doneF = nil
	}
	if s.err != nil {
		errs = append(errs, s.err)
	}
	errs = append(errs, s.unlock())
	return errors.Join(errs...)
}
