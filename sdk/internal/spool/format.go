package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// The constants below are part of the on-disk format (sdk/SPOOL.md);
// TestFormatConstants checks the document against them.
const (
	// SegmentMagic starts every segment file.
	SegmentMagic = "SNSPOOL1"
	// DoneMagic starts the done log.
	DoneMagic = "SNSPDON1"
	// RecordHeaderSize is a record's length and CRC-32C.
	RecordHeaderSize = 8
	// RecordFixedSize is the fixed part of a record's body: type, sequence,
	// start, end, frames.
	RecordFixedSize = 1 + 8 + 8 + 8 + 4
	// DoneEntrySize is one entry of the done log.
	DoneEntrySize = 16
	// MaxRecordBody bounds a record's body: a fragment is at most 8 MiB.
	MaxRecordBody = 64 << 20

	recordFragment = 1 // the only record type
)

// Done kinds: why a sequence needs no re-send.
type DoneKind uint8

// Done kinds (part of the format).
const (
	Persisted DoneKind = 1 // the server stored it
	Refused   DoneKind = 2 // the server refused it (a terminal ERROR)
	Dropped   DoneKind = 3 // the producer gave it up (a full budget)
	kindFloor DoneKind = 4 // every sequence below this one is done
	kindHigh  DoneKind = 5 // the highest sequence ever appended
	kindEnd   DoneKind = 6 // the producer end time (ns) of that sequence's fragment
	kindFrom  DoneKind = 7 // with the kindTo entry after it: every sequence from this one…
	kindTo    DoneKind = 8 // …to this one is done (a compacted done log)
)

func (k DoneKind) String() string {
	switch k {
	case Persisted:
		return "persisted"
	case Refused:
		return "refused"
	case Dropped:
		return "dropped"
	case kindFloor:
		return "floor"
	case kindHigh:
		return "high"
	case kindEnd:
		return "end"
	case kindFrom:
		return "from"
	case kindTo:
		return "to"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record is one fragment in the spool.
type Record struct {
	Seq        uint64 // the producer sequence: with the producer id, the server's dedupe key
	Start, End int64  // producer time span, ns
	Frames     int
	Data       []byte // the fragment's MKV document
	// Bytes is the fragment's size: len(Data), or what it was for a record
	// returned without its data.
	Bytes int
}

// Size is the record's bytes on disk.
func (r *Record) Size() int64 { return RecordHeaderSize + RecordFixedSize + int64(len(r.Data)) }

// appendRecord encodes r after dst.
func appendRecord(dst []byte, r *Record) []byte {
	return append(appendRecordHead(dst, r), r.Data...)
}

// appendRecordHead encodes r's length, CRC and fixed fields after dst: the
// record is that and r.Data. The CRC covers the data without copying it.
func appendRecordHead(dst []byte, r *Record) []byte {
	le := binary.LittleEndian
	start := len(dst)
	dst = le.AppendUint32(dst, uint32(RecordFixedSize+len(r.Data)))
	dst = le.AppendUint32(dst, 0) // CRC, below
	dst = append(dst, recordFragment)
	dst = le.AppendUint64(dst, r.Seq)
	dst = le.AppendUint64(dst, uint64(r.Start))
	dst = le.AppendUint64(dst, uint64(r.End))
	dst = le.AppendUint32(dst, uint32(r.Frames))
	crc := crc32.Update(crc32.Checksum(dst[start+RecordHeaderSize:], castagnoli), castagnoli, r.Data)
	le.PutUint32(dst[start+4:], crc)
	return dst
}

// errTorn says a record cannot be read whole: a torn write, or damage.
var errTorn = errors.New("torn or damaged record")

// recordHead is a record's header and fixed fields.
type recordHead struct {
	bodyLen    int
	crc        uint32
	seq        uint64
	start, end int64
	frames     int
}

// parseHead decodes the header and the fixed fields in b (at least
// RecordHeaderSize+RecordFixedSize bytes); the CRC is checked by the caller,
// over the whole body.
func parseHead(b []byte) (recordHead, error) {
	le := binary.LittleEndian
	h := recordHead{bodyLen: int(le.Uint32(b)), crc: le.Uint32(b[4:])}
	if h.bodyLen < RecordFixedSize || h.bodyLen > MaxRecordBody {
		return h, fmt.Errorf("%w: body length %d", errTorn, h.bodyLen)
	}
	body := b[RecordHeaderSize:]
	if body[0] != recordFragment {
		return h, fmt.Errorf("%w: record type %d", errTorn, body[0])
	}
	h.seq = le.Uint64(body[1:])
	h.start = int64(le.Uint64(body[9:]))
	h.end = int64(le.Uint64(body[17:]))
	h.frames = int(le.Uint32(body[25:]))
	if h.seq == 0 {
		return h, fmt.Errorf("%w: sequence 0", errTorn)
	}
	return h, nil
}

func appendDone(dst []byte, kind DoneKind, seq uint64) []byte {
	le := binary.LittleEndian
	start := len(dst)
	dst = append(dst, byte(kind), 0, 0, 0)
	dst = le.AppendUint64(dst, seq)
	return le.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

func parseDone(b []byte) (DoneKind, uint64, bool) {
	le := binary.LittleEndian
	if crc32.Checksum(b[:12], castagnoli) != le.Uint32(b[12:]) || b[1]|b[2]|b[3] != 0 {
		return 0, 0, false
	}
	k := DoneKind(b[0])
	if k < Persisted || k > kindTo {
		return 0, 0, false
	}
	return k, le.Uint64(b[4:]), true
}

func crc32Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
