package mkv

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
)

// ItemKind says what an Item reports.
type ItemKind uint8

// Item kinds, in the order they appear within a document.
const (
	ItemEBMLHeader ItemKind = iota + 1
	ItemSegmentStart
	ItemInfo
	ItemTracks
	ItemTags
	ItemClusterStart
	ItemBlock
	ItemClusterEnd
	ItemSegmentEnd
)

var itemKindNames = [...]string{"", "EBMLHeader", "SegmentStart", "Info", "Tracks", "Tags",
	"ClusterStart", "Block", "ClusterEnd", "SegmentEnd"}

func (k ItemKind) String() string {
	if int(k) < len(itemKindNames) && k != 0 {
		return itemKindNames[k]
	}
	return "ItemKind(" + strconv.Itoa(int(k)) + ")"
}

// Item is one step of the stream: a decoded element, a container boundary
// or one frame. Only the fields of its Kind are set.
type Item struct {
	Kind ItemKind
	// Offset is the stream offset of the element's first byte; for
	// ItemClusterEnd and ItemSegmentEnd, the offset where the element ended.
	Offset int64
	// Size is the element's total length including ID and size field, or
	// UnknownSize (ItemClusterStart, ItemSegmentStart). Every frame of a
	// laced block reports the block element.
	Size   int64
	Header *EBMLHeader  // ItemEBMLHeader
	Info   *Info        // ItemInfo
	Tracks []TrackEntry // ItemTracks; shared with Reader.Tracks, do not modify
	// Tags holds, for ItemTags, the SimpleTags of all Tag elements in order,
	// nested SimpleTags flattened after their parent (TagBinary is ignored).
	Tags []SimpleTag
	// Raw is, for ItemInfo, ItemTracks and ItemTags, the element's complete
	// bytes (ID, size, body), newly allocated, for copying into a chunk.
	Raw []byte
	// Timecode is the Cluster Timecode (ItemClusterStart).
	Timecode uint64
	// Block is one frame (ItemBlock). The Block and its Data belong to the
	// Reader and are valid only until the next call to Next.
	Block *Block
	// Time is the frame's absolute time in ns (ItemBlock): (cluster
	// timecode + block timecode) × the segment's TimecodeScale.
	Time int64
	// Segment is the index, from 0, of the EBML document the item is in.
	Segment int
}

// Default limits. MaxElementSize bounds what the Reader holds in memory at
// once; the count limits keep a small element from decoding into a large
// structure (an empty TrackEntry is 2 bytes but a TrackEntry value is ~150).
const (
	defaultMaxElementSize = 64 << 20
	maxTracks             = 1024
	maxSimpleTags         = 1 << 16
	maxTagDepth           = 32
	bufferSize            = 64 << 10
)

// Option configures a Reader.
type Option func(*Reader)

// MaxElementSize sets the largest element body the Reader holds in memory
// (EBML header, Info, Tracks, Tags, one SimpleBlock or BlockGroup); larger
// ones fail with an error wrapping ErrTooLarge. The default is 64 MiB;
// n <= 0 keeps it. Clusters are streamed and may be larger.
func MaxElementSize(n int64) Option {
	return func(r *Reader) {
		if n > 0 {
			r.maxSize = n
		}
	}
}

// readState is where the Reader is in the element tree.
type readState uint8

const (
	stTop     readState = iota // between documents: EBML header or end of stream
	stHeader                   // after the EBML header: the Segment
	stSegment                  // inside a Segment
	stCluster                  // inside a Cluster, after its Timecode
	stFrames                   // handing out the frames of a laced block
)

// Reader reads a stream of Matroska documents one Item at a time. Besides a
// read buffer (64 KiB; 64 bytes for an input in memory, NewBytesReader) it
// holds at most one element body in memory (Info,
// Tracks, Tags or one block); clusters are streamed block by block and
// elements it does not decode are read and discarded. A Reader is not safe
// for concurrent use.
type Reader struct {
	br      *bufio.Reader
	off     int64 // stream offset of the next unread byte
	maxSize int64
	err     error // sticky: the first error Next returned
	st      readState

	doc    int   // index of the current EBML document, -1 before the first
	segEnd int64 // offset where the Segment ends, or UnknownSize
	info   Info
	tracks []TrackEntry

	clEnd int64  // offset where the Cluster ends, or UnknownSize
	clTC  uint64 // Cluster Timecode

	// mem and src are the whole input and its reader when it is in
	// memory (NewBytesReader): a large block's body is then a slice of mem
	// rather than a copy.
	mem []byte
	src *bytes.Reader

	blk     Block   // the frame handed out by the last ItemBlock
	buf     []byte  // body of a block larger than the read buffer, reused
	payload []byte  // frame bytes of the current block
	frames  []lace  // frame spans within payload, reused
	frameAt int     // next frame to hand out
	blkOff  int64   // offset of the current block element
	blkSize int64   // total length of the current block element
	blkTime int64   // absolute time of the current block in ns
	scratch [8]byte // small integer bodies
}

// NewReader returns a Reader that reads from r.
func NewReader(r io.Reader, opts ...Option) *Reader {
	size := bufferSize
	if l, ok := r.(interface{ Len() int }); ok {
		// An in-memory source (a fragment from the bus) needs no bigger
		// buffer than itself: 64 KiB allocated and zeroed per 4 KiB fragment
		// was a third of ingest's CPU with many small streams.
		size = min(size, max(l.Len(), 16))
	}
	return newReader(r, size, opts)
}

// memBufferSize is the read buffer of an input in memory (NewBytesReader):
// it holds element headers (at most 12 bytes) while they are peeked, and
// bodies are sliced from the input or read through it. A buffer the size
// of the input was a third of the bytes a server allocated with thousands
// of streams of 4 KiB fragments (one per fragment parsed).
const memBufferSize = 64

func newReader(r io.Reader, size int, opts []Option) *Reader {
	rd := &Reader{
		br:      bufio.NewReaderSize(r, size),
		maxSize: defaultMaxElementSize,
		doc:     -1,
		segEnd:  UnknownSize,
		clEnd:   UnknownSize,
	}
	for _, o := range opts {
		o(rd)
	}
	return rd
}

// NewBytesReader returns a Reader of b, a whole input in memory (a fragment
// from the bus, a record read from the store). It reads as NewReader does,
// but a block is handed out as a slice of b instead of being copied out: a
// frame's Data then stays valid as long as b does (rather than until the
// next call of Next) and, like b, must not be changed.
func NewBytesReader(b []byte, opts ...Option) *Reader {
	src := bytes.NewReader(b)
	rd := newReader(src, memBufferSize, opts)
	rd.mem, rd.src = b, src
	return rd
}

// Offset returns the number of bytes consumed so far.
func (r *Reader) Offset() int64 { return r.off }

// Info returns the current document's Info (zero before its Info element).
func (r *Reader) Info() Info { return r.info }

// Tracks returns the current document's tracks. The slice is shared with
// the Reader; do not modify it.
func (r *Reader) Tracks() []TrackEntry { return r.tracks }

// Track returns the current document's track with the given number, or nil.
func (r *Reader) Track(number uint64) *TrackEntry {
	for i := range r.tracks {
		if r.tracks[i].Number == number {
			return &r.tracks[i]
		}
	}
	return nil
}

// Next returns the next Item. It returns io.EOF at a clean end of stream:
// between documents, or where an unknown-size Segment may end. Malformed
// data gives a *SyntaxError, input that ends inside an element an error
// wrapping io.ErrUnexpectedEOF (a *TruncatedError); after an error, Next
// keeps returning it.
func (r *Reader) Next() (Item, error) {
	if r.err != nil {
		return Item{}, r.err
	}
	var it Item
	var err error
	switch r.st {
	case stTop:
		it, err = r.nextDocument()
	case stHeader:
		it, err = r.nextSegment()
	case stSegment:
		it, err = r.nextInSegment()
	case stCluster:
		it, err = r.nextInCluster()
	case stFrames:
		it = r.nextFrame()
	}
	if err != nil {
		r.err = err
		return Item{}, err
	}
	it.Segment = r.doc
	return it, nil
}

// timecodeScale is the scale of the current document, with the default.
func (r *Reader) timecodeScale() int64 {
	if r.info.TimecodeScale == 0 {
		return DefaultTimecodeScale
	}
	return int64(r.info.TimecodeScale)
}
