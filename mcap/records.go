package mcap

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Magic begins and ends every MCAP file: 0x89 "MCAP" then the major version
// '0' and "\r\n".
var Magic = []byte{0x89, 'M', 'C', 'A', 'P', '0', '\r', '\n'}

// Opcodes of the records the specification defines. 0x80–0xFF are private
// records, which readers skip.
const (
	OpHeader          byte = 0x01
	OpFooter          byte = 0x02
	OpSchema          byte = 0x03
	OpChannel         byte = 0x04
	OpMessage         byte = 0x05
	OpChunk           byte = 0x06
	OpMessageIndex    byte = 0x07
	OpChunkIndex      byte = 0x08
	OpAttachment      byte = 0x09
	OpAttachmentIndex byte = 0x0A
	OpStatistics      byte = 0x0B
	OpMetadata        byte = 0x0C
	OpMetadataIndex   byte = 0x0D
	OpSummaryOffset   byte = 0x0E
	OpDataEnd         byte = 0x0F
)

// Compression names of the Chunk record's compression field.
const (
	CompressionNone = ""
	CompressionZSTD = "zstd"
	CompressionLZ4  = "lz4"
)

// ErrInvalid is wrapped by every error about a file that breaks the
// specification (a bad magic, a truncated record, a CRC that does not match).
var ErrInvalid = errors.New("not a valid MCAP file")

// Header is the first record: the profile ("ros2", "" …) and the writing library.
type Header struct {
	Profile string
	Library string
}

// Footer is the last record before the closing magic.
type Footer struct {
	SummaryStart       uint64
	SummaryOffsetStart uint64
	SummaryCRC         uint32
}

// Schema describes the messages of the channels that refer to it: Encoding
// is the schema language ("ros2msg", "protobuf", "jsonschema" …, or "" for
// none) and Data the schema in it.
type Schema struct {
	ID       uint16
	Name     string
	Encoding string
	Data     []byte
}

// Channel is a topic's stream of messages in one MessageEncoding ("cdr",
// "protobuf", "json" …) with the schema SchemaID (0: none).
type Channel struct {
	ID              uint16
	SchemaID        uint16
	Topic           string
	MessageEncoding string
	Metadata        map[string]string
}

// Message is one timestamped message. Times are ns since an epoch the
// recorder chose (the Unix epoch for ROS 2 recordings).
type Message struct {
	ChannelID   uint16
	Sequence    uint32
	LogTime     uint64
	PublishTime uint64
	Data        []byte
}

// ChunkIndex locates a chunk and its message indexes.
type ChunkIndex struct {
	MessageStartTime    uint64
	MessageEndTime      uint64
	ChunkStartOffset    uint64
	ChunkLength         uint64
	MessageIndexOffsets map[uint16]uint64
	MessageIndexLength  uint64
	Compression         string
	CompressedSize      uint64
	UncompressedSize    uint64
}

// Statistics counts what a file holds.
type Statistics struct {
	MessageCount         uint64
	SchemaCount          uint16
	ChannelCount         uint32
	AttachmentCount      uint32
	MetadataCount        uint32
	ChunkCount           uint32
	MessageStartTime     uint64
	MessageEndTime       uint64
	ChannelMessageCounts map[uint16]uint64
}

// cursor reads the fields of one record's content; the first error sticks,
// so a parser reads every field and checks err once.
type cursor struct {
	b   []byte
	off int
	err error
}

func (c *cursor) fail(what string) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: %s at byte %d of the record's %d", ErrInvalid, what, c.off, len(c.b))
	}
}

func (c *cursor) u8() byte {
	if c.err != nil || len(c.b)-c.off < 1 {
		c.fail("truncated uint8")
		return 0
	}
	v := c.b[c.off]
	c.off++
	return v
}

func (c *cursor) u16() uint16 {
	if c.err != nil || len(c.b)-c.off < 2 {
		c.fail("truncated uint16")
		return 0
	}
	v := binary.LittleEndian.Uint16(c.b[c.off:])
	c.off += 2
	return v
}

func (c *cursor) u32() uint32 {
	if c.err != nil || len(c.b)-c.off < 4 {
		c.fail("truncated uint32")
		return 0
	}
	v := binary.LittleEndian.Uint32(c.b[c.off:])
	c.off += 4
	return v
}

func (c *cursor) u64() uint64 {
	if c.err != nil || len(c.b)-c.off < 8 {
		c.fail("truncated uint64")
		return 0
	}
	v := binary.LittleEndian.Uint64(c.b[c.off:])
	c.off += 8
	return v
}

// bytes32 reads a uint32 length and that many bytes, aliasing the record.
func (c *cursor) bytes32() []byte {
	n := c.u32()
	if c.err != nil {
		return nil
	}
	if uint64(len(c.b)-c.off) < uint64(n) {
		c.fail(fmt.Sprintf("length %d beyond the record", n))
		return nil
	}
	v := c.b[c.off : c.off+int(n)]
	c.off += int(n)
	return v
}

func (c *cursor) str() string { return string(c.bytes32()) }

// strMap reads a Map<string, string>.
func (c *cursor) strMap() map[string]string {
	inner := cursor{b: c.bytes32()}
	if c.err != nil {
		return nil
	}
	m := map[string]string{}
	for inner.err == nil && inner.off < len(inner.b) {
		k := inner.str()
		m[k] = inner.str()
	}
	if inner.err != nil {
		c.fail("bad map<string,string>")
	}
	return m
}

// u16u64Map reads a Map<uint16, uint64>.
func (c *cursor) u16u64Map() map[uint16]uint64 {
	inner := cursor{b: c.bytes32()}
	if c.err != nil {
		return nil
	}
	if len(inner.b)%10 != 0 {
		c.fail("map<uint16,uint64> length not a multiple of 10")
		return nil
	}
	m := make(map[uint16]uint64, len(inner.b)/10)
	for inner.off < len(inner.b) {
		k := inner.u16()
		m[k] = inner.u64()
	}
	return m
}

func parseHeader(b []byte) (Header, error) {
	c := cursor{b: b}
	h := Header{Profile: c.str(), Library: c.str()}
	return h, c.err
}

func parseFooter(b []byte) (Footer, error) {
	c := cursor{b: b}
	f := Footer{SummaryStart: c.u64(), SummaryOffsetStart: c.u64(), SummaryCRC: c.u32()}
	return f, c.err
}

func parseSchema(b []byte) (Schema, error) {
	c := cursor{b: b}
	s := Schema{ID: c.u16(), Name: c.str(), Encoding: c.str()}
	s.Data = append([]byte(nil), c.bytes32()...)
	return s, c.err
}

func parseChannel(b []byte) (Channel, error) {
	c := cursor{b: b}
	ch := Channel{ID: c.u16(), SchemaID: c.u16(), Topic: c.str(), MessageEncoding: c.str(), Metadata: c.strMap()}
	return ch, c.err
}

// parseMessage fills m; m.Data aliases b.
func parseMessage(b []byte, m *Message) error {
	if len(b) < 22 {
		return fmt.Errorf("%w: message record of %d bytes, at least 22", ErrInvalid, len(b))
	}
	m.ChannelID = binary.LittleEndian.Uint16(b)
	m.Sequence = binary.LittleEndian.Uint32(b[2:])
	m.LogTime = binary.LittleEndian.Uint64(b[6:])
	m.PublishTime = binary.LittleEndian.Uint64(b[14:])
	m.Data = b[22:]
	return nil
}

func parseChunkIndex(b []byte) (ChunkIndex, error) {
	c := cursor{b: b}
	ci := ChunkIndex{MessageStartTime: c.u64(), MessageEndTime: c.u64(), ChunkStartOffset: c.u64(), ChunkLength: c.u64(),
		MessageIndexOffsets: c.u16u64Map(), MessageIndexLength: c.u64(), Compression: c.str(), CompressedSize: c.u64(), UncompressedSize: c.u64()}
	return ci, c.err
}

func parseStatistics(b []byte) (Statistics, error) {
	c := cursor{b: b}
	s := Statistics{MessageCount: c.u64(), SchemaCount: c.u16(), ChannelCount: c.u32(), AttachmentCount: c.u32(), MetadataCount: c.u32(),
		ChunkCount: c.u32(), MessageStartTime: c.u64(), MessageEndTime: c.u64(), ChannelMessageCounts: c.u16u64Map()}
	return s, c.err
}

// Appenders of record contents, in the specification's field order.

func appendStr(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendBytes32(b []byte, v []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// recordStart appends an opcode and a placeholder length; recordEnd fills
// the length in.
func recordStart(b []byte, op byte) ([]byte, int) {
	b = append(b, op, 0, 0, 0, 0, 0, 0, 0, 0)
	return b, len(b)
}

func recordEnd(b []byte, start int) []byte {
	binary.LittleEndian.PutUint64(b[start-8:], uint64(len(b)-start))
	return b
}

func appendSchema(b []byte, s *Schema) []byte {
	b, st := recordStart(b, OpSchema)
	b = binary.LittleEndian.AppendUint16(b, s.ID)
	b = appendStr(b, s.Name)
	b = appendStr(b, s.Encoding)
	b = appendBytes32(b, s.Data)
	return recordEnd(b, st)
}

func appendStrMap(b []byte, m map[string]string) []byte {
	keys := sortedKeys(m)
	n := 0
	for _, k := range keys {
		n += 8 + len(k) + len(m[k])
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	for _, k := range keys {
		b = appendStr(b, k)
		b = appendStr(b, m[k])
	}
	return b
}

func appendU16U64Map(b []byte, m map[uint16]uint64) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(10*len(m)))
	for _, k := range sortedKeys(m) {
		b = binary.LittleEndian.AppendUint16(b, k)
		b = binary.LittleEndian.AppendUint64(b, m[k])
	}
	return b
}

func appendChannel(b []byte, c *Channel) []byte {
	b, st := recordStart(b, OpChannel)
	b = binary.LittleEndian.AppendUint16(b, c.ID)
	b = binary.LittleEndian.AppendUint16(b, c.SchemaID)
	b = appendStr(b, c.Topic)
	b = appendStr(b, c.MessageEncoding)
	b = appendStrMap(b, c.Metadata)
	return recordEnd(b, st)
}

func appendMessage(b []byte, m *Message) []byte {
	b = append(b, OpMessage)
	b = binary.LittleEndian.AppendUint64(b, uint64(22+len(m.Data)))
	b = binary.LittleEndian.AppendUint16(b, m.ChannelID)
	b = binary.LittleEndian.AppendUint32(b, m.Sequence)
	b = binary.LittleEndian.AppendUint64(b, m.LogTime)
	b = binary.LittleEndian.AppendUint64(b, m.PublishTime)
	return append(b, m.Data...)
}

func appendChunkIndex(b []byte, ci *ChunkIndex) []byte {
	b, st := recordStart(b, OpChunkIndex)
	b = binary.LittleEndian.AppendUint64(b, ci.MessageStartTime)
	b = binary.LittleEndian.AppendUint64(b, ci.MessageEndTime)
	b = binary.LittleEndian.AppendUint64(b, ci.ChunkStartOffset)
	b = binary.LittleEndian.AppendUint64(b, ci.ChunkLength)
	b = appendU16U64Map(b, ci.MessageIndexOffsets)
	b = binary.LittleEndian.AppendUint64(b, ci.MessageIndexLength)
	b = appendStr(b, ci.Compression)
	b = binary.LittleEndian.AppendUint64(b, ci.CompressedSize)
	b = binary.LittleEndian.AppendUint64(b, ci.UncompressedSize)
	return recordEnd(b, st)
}

func appendStatistics(b []byte, s *Statistics) []byte {
	b, st := recordStart(b, OpStatistics)
	b = binary.LittleEndian.AppendUint64(b, s.MessageCount)
	b = binary.LittleEndian.AppendUint16(b, s.SchemaCount)
	b = binary.LittleEndian.AppendUint32(b, s.ChannelCount)
	b = binary.LittleEndian.AppendUint32(b, s.AttachmentCount)
	b = binary.LittleEndian.AppendUint32(b, s.MetadataCount)
	b = binary.LittleEndian.AppendUint32(b, s.ChunkCount)
	b = binary.LittleEndian.AppendUint64(b, s.MessageStartTime)
	b = binary.LittleEndian.AppendUint64(b, s.MessageEndTime)
	b = appendU16U64Map(b, s.ChannelMessageCounts)
	return recordEnd(b, st)
}
