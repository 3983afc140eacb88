package mcap

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// DefaultChunkSize is the uncompressed size at which a Writer closes a
// chunk unless told otherwise; readers such as Foxglove load whole chunks,
// so a few MiB keeps seeking cheap.
const DefaultChunkSize = 4 << 20

// WriterOptions configure a Writer.
type WriterOptions struct {
	Profile string // the Header's profile: "ros2" for ROS 2 messages
	Library string // the Header's library; default "sensorium"
	// Compression of the chunks: "zstd" (the default), "lz4" or "none".
	Compression string
	// ChunkSize: a chunk is closed once its records reach this many
	// uncompressed bytes. Default DefaultChunkSize.
	ChunkSize int
}

// Writer writes a chunked, indexed MCAP file (see the package doc). Call
// AddSchema and AddChannel before the messages that use them, then
// WriteMessage, then Close, which writes the summary and the footer.
type Writer struct {
	w    io.Writer
	o    WriterOptions
	off  uint64 // bytes written
	crc  uint32 // of every byte written, for Data End
	err  error  // the first write error: the file is unusable after it
	done bool

	schemas  []*Schema // in id order, for the summary
	channels []*Channel
	schemaOf map[uint16]*Schema
	chanOf   map[uint16]*Channel
	inFile   map[uint32]bool // schemas (id) and channels (1<<16|id) already written in a chunk

	chunk    []byte // the open chunk's uncompressed records
	start    uint64 // the open chunk's earliest and latest log time
	end      uint64
	hasMsg   bool
	index    map[uint16][]indexEntry // per channel: the open chunk's messages
	order    []uint16                // channels in the open chunk, in first-message order
	comp     []byte
	zstd     *zstd.Encoder
	lz4      *lz4.Writer
	tail     []byte // the record being written outside chunks
	chunkIdx []ChunkIndex
	stats    Statistics
}

type indexEntry struct{ time, offset uint64 }

// NewWriter writes the magic and the Header to w.
func NewWriter(w io.Writer, o WriterOptions) (*Writer, error) {
	if o.Library == "" {
		o.Library = "sensorium"
	}
	switch o.Compression {
	case "":
		o.Compression = CompressionZSTD
	case "none":
		o.Compression = CompressionNone
	}
	if o.Compression != CompressionNone && o.Compression != CompressionZSTD && o.Compression != CompressionLZ4 {
		return nil, fmt.Errorf("mcap: compression %q: want zstd, lz4 or none", o.Compression)
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	wr := &Writer{w: w, o: o, schemaOf: map[uint16]*Schema{}, chanOf: map[uint16]*Channel{}, inFile: map[uint32]bool{},
		index: map[uint16][]indexEntry{}, stats: Statistics{ChannelMessageCounts: map[uint16]uint64{}}}
	b := append([]byte(nil), Magic...)
	b, st := recordStart(b, OpHeader)
	b = appendStr(b, o.Profile)
	b = appendStr(b, o.Library)
	wr.write(recordEnd(b, st))
	return wr, wr.err
}

// write writes b to the file, counting it in the offset and the data CRC.
func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	if _, err := w.w.Write(b); err != nil {
		w.err = fmt.Errorf("mcap: write at %d: %w", w.off, err)
		return
	}
	w.off += uint64(len(b))
	w.crc = crc32.Update(w.crc, crc32.IEEETable, b)
}

// AddSchema registers a schema; its ID must be 1 or more and new. It is
// written into the chunk of the first message that uses it.
func (w *Writer) AddSchema(s Schema) error {
	if s.ID == 0 {
		return fmt.Errorf("mcap: schema %q: id 0 is reserved (no schema)", s.Name)
	}
	if w.schemaOf[s.ID] != nil {
		return fmt.Errorf("mcap: schema %d (%q) is added twice", s.ID, s.Name)
	}
	s.Data = slices.Clone(s.Data)
	w.schemaOf[s.ID] = &s
	w.schemas = append(w.schemas, &s)
	return nil
}

// AddChannel registers a channel; its schema (unless 0) must have been
// added.
func (w *Writer) AddChannel(c Channel) error {
	if w.chanOf[c.ID] != nil {
		return fmt.Errorf("mcap: channel %d (%q) is added twice", c.ID, c.Topic)
	}
	if c.SchemaID != 0 && w.schemaOf[c.SchemaID] == nil {
		return fmt.Errorf("mcap: channel %d (%q): schema %d was not added", c.ID, c.Topic, c.SchemaID)
	}
	if c.MessageEncoding == "" {
		return fmt.Errorf("mcap: channel %d (%q): empty message encoding", c.ID, c.Topic)
	}
	w.chanOf[c.ID] = &c
	w.channels = append(w.channels, &c)
	return nil
}

// WriteMessage appends a message to the open chunk, closing the chunk once
// it reaches ChunkSize. m.Data is copied.
func (w *Writer) WriteMessage(m *Message) error {
	if w.done {
		return fmt.Errorf("mcap: write after Close")
	}
	c := w.chanOf[m.ChannelID]
	if c == nil {
		return fmt.Errorf("mcap: message on channel %d, which was not added", m.ChannelID)
	}
	if c.SchemaID != 0 && !w.inFile[uint32(c.SchemaID)] {
		w.chunk = appendSchema(w.chunk, w.schemaOf[c.SchemaID])
		w.inFile[uint32(c.SchemaID)] = true
	}
	if !w.inFile[1<<16|uint32(c.ID)] {
		w.chunk = appendChannel(w.chunk, c)
		w.inFile[1<<16|uint32(c.ID)] = true
	}
	if !w.hasMsg {
		w.start, w.end, w.hasMsg = m.LogTime, m.LogTime, true
	}
	w.start, w.end = min(w.start, m.LogTime), max(w.end, m.LogTime)
	if _, ok := w.index[m.ChannelID]; !ok {
		w.order = append(w.order, m.ChannelID)
	}
	w.index[m.ChannelID] = append(w.index[m.ChannelID], indexEntry{m.LogTime, uint64(len(w.chunk))})
	w.chunk = appendMessage(w.chunk, m)
	if w.stats.MessageCount == 0 {
		w.stats.MessageStartTime, w.stats.MessageEndTime = m.LogTime, m.LogTime
	}
	w.stats.MessageCount++
	w.stats.ChannelMessageCounts[m.ChannelID]++
	w.stats.MessageStartTime, w.stats.MessageEndTime = min(w.stats.MessageStartTime, m.LogTime), max(w.stats.MessageEndTime, m.LogTime)
	if len(w.chunk) >= w.o.ChunkSize {
		w.flushChunk()
	}
	return w.err
}

// flushChunk writes the open chunk and its message indexes.
func (w *Writer) flushChunk() {
	if len(w.chunk) == 0 || w.err != nil {
		return
	}
	var records []byte
	switch w.o.Compression {
	case CompressionNone:
		records = w.chunk
	case CompressionZSTD:
		if w.zstd == nil {
			var err error
			if w.zstd, err = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest)); err != nil {
				w.err = fmt.Errorf("mcap: zstd: %w", err)
				return
			}
		}
		w.comp = w.zstd.EncodeAll(w.chunk, w.comp[:0])
		records = w.comp
	case CompressionLZ4:
		buf := bytes.NewBuffer(w.comp[:0])
		if w.lz4 == nil {
			w.lz4 = lz4.NewWriter(buf)
		} else {
			w.lz4.Reset(buf)
		}
		if _, err := w.lz4.Write(w.chunk); err != nil {
			w.err = fmt.Errorf("mcap: lz4: %w", err)
			return
		}
		if err := w.lz4.Close(); err != nil {
			w.err = fmt.Errorf("mcap: lz4: %w", err)
			return
		}
		w.comp = buf.Bytes()
		records = w.comp
	}
	if !w.hasMsg {
		w.start, w.end = 0, 0
	}
	ci := ChunkIndex{MessageStartTime: w.start, MessageEndTime: w.end, ChunkStartOffset: w.off, Compression: w.o.Compression,
		CompressedSize: uint64(len(records)), UncompressedSize: uint64(len(w.chunk)), MessageIndexOffsets: map[uint16]uint64{}}
	h := w.tail[:0]
	h, st := recordStart(h, OpChunk)
	h = binary.LittleEndian.AppendUint64(h, w.start)
	h = binary.LittleEndian.AppendUint64(h, w.end)
	h = binary.LittleEndian.AppendUint64(h, uint64(len(w.chunk)))
	h = binary.LittleEndian.AppendUint32(h, crc32.ChecksumIEEE(w.chunk))
	h = appendStr(h, w.o.Compression)
	h = binary.LittleEndian.AppendUint64(h, uint64(len(records)))
	binary.LittleEndian.PutUint64(h[st-8:], uint64(len(h)-st+len(records)))
	w.write(h)
	w.write(records)
	ci.ChunkLength = w.off - ci.ChunkStartOffset
	// One Message Index per channel of the chunk, entries in log-time
	// order (stable: equal times keep the file's order).
	idxStart := w.off
	for _, id := range w.order {
		entries := w.index[id]
		slices.SortStableFunc(entries, func(a, b indexEntry) int {
			switch {
			case a.time < b.time:
				return -1
			case a.time > b.time:
				return 1
			}
			return 0
		})
		ci.MessageIndexOffsets[id] = w.off
		h = h[:0]
		h, st = recordStart(h, OpMessageIndex)
		h = binary.LittleEndian.AppendUint16(h, id)
		h = binary.LittleEndian.AppendUint32(h, uint32(16*len(entries)))
		for _, e := range entries {
			h = binary.LittleEndian.AppendUint64(h, e.time)
			h = binary.LittleEndian.AppendUint64(h, e.offset)
		}
		w.write(recordEnd(h, st))
		delete(w.index, id)
	}
	w.tail = h
	ci.MessageIndexLength = w.off - idxStart
	w.chunkIdx = append(w.chunkIdx, ci)
	w.stats.ChunkCount++
	w.chunk, w.order, w.hasMsg = w.chunk[:0], w.order[:0], false
}

// Close writes the last chunk, Data End, the summary (Schemas, Channels,
// Chunk Indexes, Statistics), the Summary Offsets, the Footer and the
// closing magic. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.done {
		return w.err
	}
	w.done = true
	w.flushChunk()
	b, st := recordStart(nil, OpDataEnd)
	b = binary.LittleEndian.AppendUint32(b, w.crc)
	w.write(recordEnd(b, st))

	summaryStart := w.off
	var sum []byte
	type group struct {
		op         byte
		start, len uint64
	}
	var groups []group
	mark := func(op byte, from int) {
		if len(sum) > from {
			groups = append(groups, group{op, summaryStart + uint64(from), uint64(len(sum) - from)})
		}
	}
	from := len(sum)
	for _, s := range w.schemas {
		sum = appendSchema(sum, s)
	}
	mark(OpSchema, from)
	from = len(sum)
	for _, c := range w.channels {
		sum = appendChannel(sum, c)
	}
	mark(OpChannel, from)
	from = len(sum)
	for i := range w.chunkIdx {
		sum = appendChunkIndex(sum, &w.chunkIdx[i])
	}
	mark(OpChunkIndex, from)
	from = len(sum)
	w.stats.SchemaCount = uint16(len(w.schemas))
	w.stats.ChannelCount = uint32(len(w.channels))
	sum = appendStatistics(sum, &w.stats)
	mark(OpStatistics, from)
	offsetStart := summaryStart + uint64(len(sum))
	for _, g := range groups {
		sum = append(sum, OpSummaryOffset)
		sum = binary.LittleEndian.AppendUint64(sum, 17)
		sum = append(sum, g.op)
		sum = binary.LittleEndian.AppendUint64(sum, g.start)
		sum = binary.LittleEndian.AppendUint64(sum, g.len)
	}
	sum = append(sum, OpFooter)
	sum = binary.LittleEndian.AppendUint64(sum, 20)
	sum = binary.LittleEndian.AppendUint64(sum, summaryStart)
	sum = binary.LittleEndian.AppendUint64(sum, offsetStart)
	sum = binary.LittleEndian.AppendUint32(sum, crc32.ChecksumIEEE(sum))
	sum = append(sum, Magic...)
	w.write(sum)
	return w.err
}

// Offset is the number of bytes written so far.
func (w *Writer) Offset() uint64 { return w.off }
