package store

import (
	"container/list"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

// FragmentInfo is what the index knows of one stored fragment.
type FragmentInfo struct {
	Number       uint64 // unique, strictly increasing within a stream
	ServerTime   int64  // ns since the Unix epoch: when the bus accepted it
	ProducerTime int64  // ns since the Unix epoch: its first frame
	Duration     int64  // ns
	Size         int    // payload bytes (the MKV fragment)

	offset    int64  // record offset in its segment
	recordLen uint32 // whole record length
}

// ProducerEnd is the producer time just after the fragment.
func (f *FragmentInfo) ProducerEnd() int64 { return f.ProducerTime + f.Duration }

// Index file layout (FORMAT.md): a 128-byte header that also summarises the
// segment (so start-up reads headers only), fixed 64-byte entries each with its
// own CRC, then the producer table (the dedupe state as of the seal).
const (
	indexMagic      = "SNSRIDX1"
	indexVersion    = 1
	indexHeaderSize = 128
	indexEntrySize  = 64
)

func appendIndexEntry(dst []byte, e *FragmentInfo) []byte {
	var b [indexEntrySize]byte
	le := binary.LittleEndian
	le.PutUint64(b[0:], e.Number)
	le.PutUint64(b[8:], uint64(e.ServerTime))
	le.PutUint64(b[16:], uint64(e.ProducerTime))
	le.PutUint64(b[24:], uint64(e.Duration))
	le.PutUint64(b[32:], uint64(e.offset))
	le.PutUint32(b[40:], e.recordLen)
	le.PutUint32(b[44:], uint32(e.Size))
	le.PutUint32(b[60:], crc32.Checksum(b[:60], castagnoli))
	return append(dst, b[:]...)
}

func decodeIndexEntry(b []byte) (FragmentInfo, error) {
	le := binary.LittleEndian
	if le.Uint32(b[60:]) != crc32.Checksum(b[:60], castagnoli) {
		return FragmentInfo{}, errBadChecksum
	}
	return FragmentInfo{
		Number:       le.Uint64(b[0:]),
		ServerTime:   int64(le.Uint64(b[8:])),
		ProducerTime: int64(le.Uint64(b[16:])),
		Duration:     int64(le.Uint64(b[24:])),
		offset:       int64(le.Uint64(b[32:])),
		recordLen:    le.Uint32(b[40:]),
		Size:         int(le.Uint32(b[44:])),
	}, nil
}

// segmentSummary is what the store keeps in memory of every segment.
type segmentSummary struct {
	count                       int
	first, last                 uint64 // fragment numbers
	size                        int64  // bytes of the segment file
	firstProducer, lastProducer int64
	maxProducerEnd              int64
	firstServer, lastServer     int64
}

func (s *segmentSummary) add(e *FragmentInfo, size int64) {
	if s.count == 0 {
		s.first, s.firstProducer, s.firstServer = e.Number, e.ProducerTime, e.ServerTime
	}
	s.count++
	s.last, s.lastProducer, s.lastServer = e.Number, e.ProducerTime, e.ServerTime
	s.maxProducerEnd = max(s.maxProducerEnd, e.ProducerEnd())
	s.size = size
}

func summarize(entries []FragmentInfo, size int64) segmentSummary {
	var s segmentSummary
	for i := range entries {
		s.add(&entries[i], size)
	}
	s.size = size
	return s
}

// indexHeader is the decoded index file header.
type indexHeader struct {
	sum     segmentSummary
	prodOff uint64
	prodLen uint32
	prodCRC uint32
}

// writeIndexFile writes path atomically from entries and the dedupe state.
func writeIndexFile(fsys vfs.FS, path string, entries []FragmentInfo, segSize int64, d *dedupeState) error {
	buf := make([]byte, indexHeaderSize, indexHeaderSize+len(entries)*indexEntrySize+256)
	for i := range entries {
		buf = appendIndexEntry(buf, &entries[i])
	}
	prodOff := len(buf)
	buf = appendDedupe(buf, d)
	prod := buf[prodOff:]
	sum := summarize(entries, segSize)
	h := buf[:indexHeaderSize]
	copy(h, indexMagic)
	le := binary.LittleEndian
	le.PutUint16(h[8:], indexVersion)
	le.PutUint32(h[12:], uint32(sum.count))
	le.PutUint64(h[16:], sum.first)
	le.PutUint64(h[24:], sum.last)
	le.PutUint64(h[32:], uint64(sum.size))
	le.PutUint64(h[40:], uint64(sum.firstProducer))
	le.PutUint64(h[48:], uint64(sum.lastProducer))
	le.PutUint64(h[56:], uint64(sum.maxProducerEnd))
	le.PutUint64(h[64:], uint64(sum.firstServer))
	le.PutUint64(h[72:], uint64(sum.lastServer))
	le.PutUint64(h[80:], uint64(prodOff))
	le.PutUint32(h[88:], uint32(len(prod)))
	le.PutUint32(h[92:], crc32.Checksum(prod, castagnoli))
	le.PutUint32(h[124:], crc32.Checksum(h[:124], castagnoli))
	return vfs.WriteFileAtomic(fsAt(fsys, siteIndex), path, buf, 0o640)
}

func parseIndexHeader(h []byte) (indexHeader, error) {
	if len(h) < indexHeaderSize || string(h[:8]) != indexMagic {
		return indexHeader{}, errors.New("not an index file (bad magic)")
	}
	le := binary.LittleEndian
	if le.Uint32(h[124:]) != crc32.Checksum(h[:124], castagnoli) {
		return indexHeader{}, errBadChecksum
	}
	if v := le.Uint16(h[8:]); v != indexVersion {
		return indexHeader{}, fmt.Errorf("index format version %d is not supported", v)
	}
	ih := indexHeader{
		sum: segmentSummary{
			count:          int(le.Uint32(h[12:])),
			first:          le.Uint64(h[16:]),
			last:           le.Uint64(h[24:]),
			size:           int64(le.Uint64(h[32:])),
			firstProducer:  int64(le.Uint64(h[40:])),
			lastProducer:   int64(le.Uint64(h[48:])),
			maxProducerEnd: int64(le.Uint64(h[56:])),
			firstServer:    int64(le.Uint64(h[64:])),
			lastServer:     int64(le.Uint64(h[72:])),
		},
		prodOff: le.Uint64(h[80:]),
		prodLen: le.Uint32(h[88:]),
		prodCRC: le.Uint32(h[92:]),
	}
	if ih.prodOff != uint64(indexHeaderSize)+uint64(ih.sum.count)*indexEntrySize {
		return indexHeader{}, errors.New("index header is inconsistent")
	}
	return ih, nil
}

// openIndex reads and checks an index file's header and that the file is as
// long as the header says.
func openIndex(fsys vfs.FS, path string) (vfs.File, indexHeader, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, indexHeader{}, err
	}
	h := make([]byte, indexHeaderSize)
	if _, err := io.ReadFull(f, h); err != nil {
		f.Close()
		return nil, indexHeader{}, &CorruptionError{Path: path, Err: errShortHeader}
	}
	ih, err := parseIndexHeader(h)
	if err != nil {
		f.Close()
		return nil, ih, &CorruptionError{Path: path, Err: err}
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, ih, err
	}
	if uint64(st.Size()) != ih.prodOff+uint64(ih.prodLen) {
		f.Close()
		return nil, ih, &CorruptionError{Path: path, Err: errors.New("index file size does not match its header")}
	}
	return f, ih, nil
}

// readIndexHeader returns the summary of a sealed segment from its index.
func readIndexHeader(fsys vfs.FS, path string) (indexHeader, error) {
	f, ih, err := openIndex(fsys, path)
	if err != nil {
		return ih, err
	}
	f.Close()
	return ih, nil
}

// readIndexEntries reads every entry of an index file.
func readIndexEntries(fsys vfs.FS, path string) ([]FragmentInfo, error) {
	f, ih, err := openIndex(fsys, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	body := make([]byte, ih.sum.count*indexEntrySize)
	if _, err := f.ReadAt(body, indexHeaderSize); err != nil {
		return nil, fmt.Errorf("store: read index %s: %w", path, err)
	}
	entries := make([]FragmentInfo, ih.sum.count)
	for i := range entries {
		e, err := decodeIndexEntry(body[i*indexEntrySize:])
		if err != nil {
			return nil, &CorruptionError{Path: path, Offset: int64(indexHeaderSize + i*indexEntrySize), Err: err}
		}
		entries[i] = e
	}
	return entries, nil
}

// readIndexDedupe reads the producer table of an index file.
func readIndexDedupe(fsys vfs.FS, path string) (*dedupeState, error) {
	f, ih, err := openIndex(fsys, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	prod := make([]byte, ih.prodLen)
	if _, err := f.ReadAt(prod, int64(ih.prodOff)); err != nil {
		return nil, fmt.Errorf("store: read index %s: %w", path, err)
	}
	if crc32.Checksum(prod, castagnoli) != ih.prodCRC {
		return nil, &CorruptionError{Path: path, Offset: int64(ih.prodOff), Err: errBadChecksum}
	}
	d, err := decodeDedupe(prod)
	if err != nil {
		return nil, &CorruptionError{Path: path, Offset: int64(ih.prodOff), Err: err}
	}
	return d, nil
}

// indexCache keeps the entries of recently used sealed segments in memory, up
// to a bound on the number of entries, so that a store holding years of
// fragments does not hold every index entry. Sealed entries never change, so a
// cached slice is shared read-only.
type indexCache struct {
	fs  vfs.FS
	max int

	mu    sync.Mutex
	total int
	lru   *list.List // of *cacheItem, most recent at the front
	items map[string]*list.Element
}

type cacheItem struct {
	path    string
	entries []FragmentInfo
}

func newIndexCache(fsys vfs.FS, maxEntries int) *indexCache {
	return &indexCache{fs: fsys, max: maxEntries, lru: list.New(), items: map[string]*list.Element{}}
}

func (c *indexCache) get(path string) ([]FragmentInfo, error) {
	c.mu.Lock()
	if el, ok := c.items[path]; ok {
		c.lru.MoveToFront(el)
		e := el.Value.(*cacheItem).entries
		c.mu.Unlock()
		return e, nil
	}
	c.mu.Unlock()
	entries, err := readIndexEntries(c.fs, path)
	if err != nil {
		return nil, err
	}
	c.put(path, entries)
	return entries, nil
}

func (c *indexCache) put(path string, entries []FragmentInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[path]; ok {
		c.lru.MoveToFront(el)
		return
	}
	c.items[path] = c.lru.PushFront(&cacheItem{path: path, entries: entries})
	c.total += len(entries)
	for c.total > c.max && c.lru.Len() > 1 {
		el := c.lru.Back()
		it := el.Value.(*cacheItem)
		c.lru.Remove(el)
		delete(c.items, it.path)
		c.total -= len(it.entries)
	}
}

func (c *indexCache) drop(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[path]; ok {
		c.total -= len(el.Value.(*cacheItem).entries)
		c.lru.Remove(el)
		delete(c.items, path)
	}
}
