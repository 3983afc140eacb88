package mcap

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// DefaultMaxRecordSize is the largest record (and decompressed chunk) a
// Reader takes unless told otherwise: a bound on its memory that no real
// recording's chunk comes near (writers cut chunks at a few MiB).
const DefaultMaxRecordSize = 512 << 20

// Options configure a Reader.
type Options struct {
	// MaxRecordSize bounds a record's content and a chunk's uncompressed
	// records; a file that declares more is refused. Default DefaultMaxRecordSize.
	MaxRecordSize uint64
}

// Reader reads an MCAP file from start to end, message by message. Schema
// and Channel records are kept as they come (Schema, Channel); Message
// records are returned by Next; index, attachment and metadata records are
// checked and skipped. It is not safe for concurrent use.
type Reader struct {
	r   *bufio.Reader
	max uint64
	off uint64 // file offset of the next byte to read

	header   Header
	schemas  map[uint16]*Schema
	channels map[uint16]*Channel
	stats    *Statistics
	footer   *Footer

	dataCRC   uint32 // CRC of every byte so far, until Data End
	inSummary bool   // Data End was read: its CRC check is done
	sumCRC    uint32 // CRC of every byte since Data End
	sumStart  uint64 // offset where sumCRC started
	footCRC   uint32 // sumCRC through the Footer's summary_offset_start

	rec     []byte // the current record's content
	chunk   []byte // the open chunk's decompressed records; nil when none is open
	spare   []byte // the buffer chunks are decompressed into, reused
	chunkAt uint64 // file offset of the current chunk record, for errors
	pos     int    // next record in chunk
	msg     Message
	zstd    *zstd.Decoder // for chunks with a CRC: skips zstd's own checksum
	zstdSum *zstd.Decoder // for chunks without one: checks it
	lz4     *lz4.Reader
	done    bool
}

// NewReader reads the magic and the Header record of r's file.
func NewReader(r io.Reader, o Options) (*Reader, error) {
	if o.MaxRecordSize == 0 {
		o.MaxRecordSize = DefaultMaxRecordSize
	}
	rd := &Reader{r: bufio.NewReaderSize(r, 1<<20), max: o.MaxRecordSize, schemas: map[uint16]*Schema{}, channels: map[uint16]*Channel{}}
	var magic [8]byte
	if _, err := io.ReadFull(rd.r, magic[:]); err != nil {
		return nil, fmt.Errorf("mcap: read magic: %w", truncated(err))
	}
	if !bytes.Equal(magic[:], Magic) {
		return nil, fmt.Errorf("mcap: %w: the file does not begin with the MCAP magic (% x)", ErrInvalid, magic[:])
	}
	rd.consumed(magic[:])
	op, content, err := rd.readRecord()
	if err != nil {
		return nil, err
	}
	if op != OpHeader {
		return nil, fmt.Errorf("mcap: %w: the first record is opcode 0x%02x, not a Header", ErrInvalid, op)
	}
	if rd.header, err = parseHeader(content); err != nil {
		return nil, fmt.Errorf("mcap: header: %w", err)
	}
	return rd, nil
}

// Header is the file's Header record.
func (r *Reader) Header() Header { return r.header }

// Schema returns the schema of id, or nil when none has been read.
func (r *Reader) Schema(id uint16) *Schema { return r.schemas[id] }

// Channel returns the channel of id, or nil when none has been read.
func (r *Reader) Channel(id uint16) *Channel { return r.channels[id] }

// Statistics returns the Statistics record once Next has read it (it is in
// the summary, so after the last message), or nil.
func (r *Reader) Statistics() *Statistics { return r.stats }

// Footer returns the Footer once Next has returned io.EOF.
func (r *Reader) Footer() *Footer { return r.footer }

// Offset is the file offset of the next byte the Reader will read.
func (r *Reader) Offset() uint64 { return r.off }

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated file", ErrInvalid)
	}
	return err
}

// consumed accounts for bytes read from the file: offsets and CRCs.
func (r *Reader) consumed(b []byte) {
	r.off += uint64(len(b))
	if r.inSummary {
		r.sumCRC = crc32.Update(r.sumCRC, crc32.IEEETable, b)
	} else {
		r.dataCRC = crc32.Update(r.dataCRC, crc32.IEEETable, b)
	}
}

// readRecord reads the next record of the file into r.rec.
func (r *Reader) readRecord() (byte, []byte, error) {
	at := r.off
	var h [9]byte
	if _, err := io.ReadFull(r.r, h[:]); err != nil {
		return 0, nil, fmt.Errorf("mcap: record at %d: %w", at, truncated(err))
	}
	op, n := h[0], binary.LittleEndian.Uint64(h[1:])
	if op == 0 {
		return 0, nil, fmt.Errorf("mcap: record at %d: %w: opcode 0", at, ErrInvalid)
	}
	if n > r.max {
		return 0, nil, fmt.Errorf("mcap: record at %d (opcode 0x%02x): %w: %d bytes, more than the limit of %d", at, op, ErrInvalid, n, r.max)
	}
	// A Data End record is not part of the CRC it carries.
	if op == OpDataEnd && !r.inSummary {
		r.inSummary = true
	}
	r.consumed(h[:])
	if op == OpFooter {
		r.footCRC = r.sumCRC
	}
	if uint64(cap(r.rec)) < n {
		r.rec = make([]byte, n)
	}
	r.rec = r.rec[:n]
	if _, err := io.ReadFull(r.r, r.rec); err != nil {
		return 0, nil, fmt.Errorf("mcap: record at %d (opcode 0x%02x, %d bytes): %w", at, op, n, truncated(err))
	}
	if op == OpFooter && n >= 16 {
		r.footCRC = crc32.Update(r.footCRC, crc32.IEEETable, r.rec[:16])
	}
	r.consumed(r.rec)
	return op, r.rec, nil
}

// Next returns the next message in file order, io.EOF after the Footer and
// the closing magic (with every CRC checked). The message, and its Data, are
// valid until the next call.
func (r *Reader) Next() (*Message, error) {
	for {
		if r.chunk != nil {
			m, err := r.nextInChunk()
			if m != nil || err != nil {
				return m, err
			}
			continue
		}
		if r.done {
			return nil, io.EOF
		}
		at := r.off
		op, content, err := r.readRecord()
		if err != nil {
			return nil, err
		}
		switch op {
		case OpMessage:
			if r.inSummary {
				return nil, fmt.Errorf("mcap: record at %d: %w: a Message in the summary section", at, ErrInvalid)
			}
			if err := parseMessage(content, &r.msg); err != nil {
				return nil, fmt.Errorf("mcap: message at %d: %w", at, err)
			}
			if r.channels[r.msg.ChannelID] == nil {
				return nil, fmt.Errorf("mcap: message at %d: %w: channel %d has no Channel record before it", at, ErrInvalid, r.msg.ChannelID)
			}
			return &r.msg, nil
		case OpChunk:
			if err := r.openChunk(at, content); err != nil {
				return nil, err
			}
		case OpDataEnd:
			c := cursor{b: content}
			want := c.u32()
			if c.err != nil {
				return nil, fmt.Errorf("mcap: data end at %d: %w", at, c.err)
			}
			if want != 0 && want != r.dataCRC {
				return nil, fmt.Errorf("mcap: data end at %d: %w: the data section's CRC is %08x, the file says %08x", at, ErrInvalid, r.dataCRC, want)
			}
			r.sumCRC = 0
			r.sumStart = r.off
		case OpFooter:
			if err := r.finish(at, content); err != nil {
				return nil, err
			}
			r.done = true
			return nil, io.EOF
		case OpAttachment:
			if err := checkAttachment(content); err != nil {
				return nil, fmt.Errorf("mcap: attachment at %d: %w", at, err)
			}
		case OpStatistics:
			s, err := parseStatistics(content)
			if err != nil {
				return nil, fmt.Errorf("mcap: statistics at %d: %w", at, err)
			}
			r.stats = &s
		default:
			if err := r.keep(op, content); err != nil {
				return nil, fmt.Errorf("mcap: record at %d: %w", at, err)
			}
		}
	}
}

// keep files a Schema or a Channel; other records (indexes, metadata,
// private records) are skipped.
func (r *Reader) keep(op byte, content []byte) error {
	switch op {
	case OpSchema:
		s, err := parseSchema(content)
		if err != nil {
			return fmt.Errorf("schema: %w", err)
		}
		if s.ID == 0 {
			return nil // invalid by the specification, and ignored by readers
		}
		r.schemas[s.ID] = &s
	case OpChannel:
		c, err := parseChannel(content)
		if err != nil {
			return fmt.Errorf("channel: %w", err)
		}
		if c.SchemaID != 0 && r.schemas[c.SchemaID] == nil {
			return fmt.Errorf("channel %d (%q): %w: schema %d has no Schema record before it", c.ID, c.Topic, ErrInvalid, c.SchemaID)
		}
		if old := r.channels[c.ID]; old == nil || old.Topic != c.Topic || old.SchemaID != c.SchemaID || old.MessageEncoding != c.MessageEncoding {
			r.channels[c.ID] = &c
		}
	case OpHeader:
		return fmt.Errorf("%w: a second Header", ErrInvalid)
	}
	return nil
}

// checkAttachment checks an attachment record's CRC.
func checkAttachment(b []byte) error {
	c := cursor{b: b}
	c.u64()
	c.u64()
	c.str()
	c.str()
	n := c.u64()
	if c.err == nil && (len(b)-c.off < 4 || n > uint64(len(b)-c.off-4)) {
		c.fail("attachment data beyond the record")
	}
	if c.err != nil {
		return c.err
	}
	end := c.off + int(n)
	want := binary.LittleEndian.Uint32(b[end:])
	if got := crc32.ChecksumIEEE(b[:end]); want != 0 && got != want {
		return fmt.Errorf("%w: CRC %08x, the record says %08x", ErrInvalid, got, want)
	}
	return nil
}

// openChunk decompresses a Chunk record's records and checks their CRC.
func (r *Reader) openChunk(at uint64, content []byte) error {
	c := cursor{b: content}
	c.u64() // message_start_time
	c.u64() // message_end_time
	size := c.u64()
	crc := c.u32()
	comp := c.str()
	n := c.u64()
	if c.err == nil && uint64(len(content)-c.off) != n {
		c.fail(fmt.Sprintf("records of %d bytes in a record with %d left", n, len(content)-c.off))
	}
	if c.err != nil {
		return fmt.Errorf("mcap: chunk at %d: %w", at, c.err)
	}
	if size > r.max {
		return fmt.Errorf("mcap: chunk at %d: %w: %d uncompressed bytes, more than the limit of %d", at, ErrInvalid, size, r.max)
	}
	src := content[c.off:]
	out := r.spare[:0]
	var err error
	switch comp {
	case CompressionNone:
		if uint64(len(src)) != size {
			return fmt.Errorf("mcap: chunk at %d: %w: %d bytes of records, uncompressed_size says %d", at, ErrInvalid, len(src), size)
		}
		out = append(out, src...)
	case CompressionZSTD:
		// A chunk's CRC covers its decompressed records, as the frame's
		// xxhash64 does, so one check is enough: the CRC (it is always
		// computed), or zstd's when the writer left the CRC out.
		dec := &r.zstd
		if crc == 0 {
			dec = &r.zstdSum
		}
		if *dec == nil {
			if *dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(r.max), zstd.IgnoreChecksum(crc != 0)); err != nil {
				return fmt.Errorf("mcap: zstd: %w", err)
			}
		}
		if uint64(cap(out)) < size {
			out = make([]byte, 0, size)
		}
		if out, err = (*dec).DecodeAll(src, out); err != nil {
			return fmt.Errorf("mcap: chunk at %d: %w: zstd: %v", at, ErrInvalid, err)
		}
	case CompressionLZ4:
		if r.lz4 == nil {
			r.lz4 = lz4.NewReader(nil)
		}
		r.lz4.Reset(bytes.NewReader(src))
		if uint64(cap(out)) < size+1 {
			out = make([]byte, size+1)
		}
		// One byte more than declared: reading it means the data is longer.
		got, err := io.ReadFull(r.lz4, out[:size+1])
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return fmt.Errorf("mcap: chunk at %d: %w: lz4: %v", at, ErrInvalid, err)
		}
		out = out[:got]
	default:
		return fmt.Errorf("mcap: chunk at %d: %w: unknown compression %q (this reader takes zstd, lz4 and none)", at, ErrInvalid, comp)
	}
	if cap(out) > cap(r.spare) {
		r.spare = out[:0]
	}
	if uint64(len(out)) != size {
		return fmt.Errorf("mcap: chunk at %d: %w: %d bytes decompressed, uncompressed_size says %d", at, ErrInvalid, len(out), size)
	}
	if got := crc32.ChecksumIEEE(out); crc != 0 && got != crc {
		return fmt.Errorf("mcap: chunk at %d: %w: CRC of its records is %08x, the chunk says %08x", at, ErrInvalid, got, crc)
	}
	if out == nil {
		out = []byte{}
	}
	r.chunk = out
	r.chunkAt, r.pos = at, 0
	return nil
}

// nextInChunk returns the next message of the open chunk, nil when a
// Schema or Channel was read, or nil and closes the chunk at its end.
func (r *Reader) nextInChunk() (*Message, error) {
	b := r.chunk[r.pos:]
	if len(b) == 0 {
		r.spare, r.chunk = r.chunk[:0], nil
		return nil, nil
	}
	if len(b) < 9 {
		return nil, fmt.Errorf("mcap: chunk at %d: %w: truncated record at byte %d of its records", r.chunkAt, ErrInvalid, r.pos)
	}
	op, n := b[0], binary.LittleEndian.Uint64(b[1:])
	if n > uint64(len(b)-9) {
		return nil, fmt.Errorf("mcap: chunk at %d: %w: record at byte %d of its records (opcode 0x%02x) has %d bytes, %d are left", r.chunkAt, ErrInvalid, r.pos, op, n, len(b)-9)
	}
	content := b[9 : 9+n]
	at := r.pos
	r.pos += 9 + int(n)
	switch op {
	case OpMessage:
		if err := parseMessage(content, &r.msg); err != nil {
			return nil, fmt.Errorf("mcap: chunk at %d, record at %d: %w", r.chunkAt, at, err)
		}
		if r.channels[r.msg.ChannelID] == nil {
			return nil, fmt.Errorf("mcap: chunk at %d, message at %d: %w: channel %d has no Channel record before it", r.chunkAt, at, ErrInvalid, r.msg.ChannelID)
		}
		return &r.msg, nil
	case 0:
		return nil, fmt.Errorf("mcap: chunk at %d, record at %d: %w: opcode 0", r.chunkAt, at, ErrInvalid)
	case OpChunk, OpFooter, OpDataEnd, OpAttachment:
		return nil, fmt.Errorf("mcap: chunk at %d, record at %d: %w: opcode 0x%02x inside a chunk", r.chunkAt, at, ErrInvalid, op)
	}
	if err := r.keep(op, content); err != nil {
		return nil, fmt.Errorf("mcap: chunk at %d, record at %d: %w", r.chunkAt, at, err)
	}
	return nil, nil
}

// finish checks the Footer (its summary CRC) and the closing magic.
func (r *Reader) finish(at uint64, content []byte) error {
	f, err := parseFooter(content)
	if err != nil {
		return fmt.Errorf("mcap: footer at %d: %w", at, err)
	}
	r.footer = &f
	if f.SummaryCRC != 0 {
		// The CRC runs from the summary's start through the footer's
		// summary_offset_start field. A summary that does not follow
		// Data End (or a file without Data End) is not checked in one pass.
		crc, check := r.footCRC, r.inSummary && f.SummaryStart == r.sumStart
		if f.SummaryStart == 0 {
			var h [9]byte
			h[0] = OpFooter
			binary.LittleEndian.PutUint64(h[1:], uint64(len(content)))
			crc, check = crc32.Update(crc32.ChecksumIEEE(h[:]), crc32.IEEETable, content[:16]), true
		}
		if check && crc != f.SummaryCRC {
			return fmt.Errorf("mcap: footer at %d: %w: the summary's CRC is %08x, the footer says %08x", at, ErrInvalid, crc, f.SummaryCRC)
		}
	}
	var magic [8]byte
	if _, err := io.ReadFull(r.r, magic[:]); err != nil {
		return fmt.Errorf("mcap: closing magic at %d: %w", r.off, truncated(err))
	}
	if !bytes.Equal(magic[:], Magic) {
		return fmt.Errorf("mcap: closing magic at %d: %w: % x", r.off, ErrInvalid, magic[:])
	}
	r.off += 8
	return nil
}
