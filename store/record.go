package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// The record layout is part of the on-disk format (FORMAT.md); the constants
// below are checked against that document by TestFormatDocMatchesCode.
const (
	recordHeaderSize   = 32
	fragmentFixedSize  = 48 // fixed part of a fragment body before the producer id
	recordTypeFragment = 1
	recordVersion      = 1

	// maxRecordBody bounds what a damaged length field can make us allocate.
	maxRecordBody = 1 << 30
	// maxProducerID bounds the producer id (it is a header value on the bus).
	maxProducerID = 256
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fragmentRecord is the decoded form of a fragment record.
type fragmentRecord struct {
	KeyID         uint32
	Nonce         [12]byte
	Number        uint64
	ServerTime    int64
	ProducerTime  int64
	Duration      int64
	ProducerSeq   uint64
	ClusterOffset uint32
	ProducerID    string
	Payload       []byte // aliases the buffer it was decoded from
	// ReadSize is the fragment's size as read (Fragment.ReadSize); 0: the
	// payload's own.
	ReadSize uint32
}

// encodedSize is the total length of the record on disk.
func (r *fragmentRecord) encodedSize() int {
	return recordHeaderSize + fragmentFixedSize + len(r.ProducerID) + len(r.Payload)
}

// appendFragmentRecord appends r's encoding to dst. When r is encrypted its
// Payload is already the sealed payload (see sealRecord).
func appendFragmentRecord(dst []byte, r *fragmentRecord) []byte {
	start := len(dst)
	h := recordPrefix(r, fragmentFixedSize+len(r.ProducerID)+len(r.Payload))
	dst = append(dst, h[:]...)
	dst = append(dst, r.ProducerID...)
	dst = append(dst, r.Payload...)
	crc := crc32.Checksum(dst[start+8:], castagnoli)
	binary.LittleEndian.PutUint32(dst[start+4:], crc)
	return dst
}

// recordPrefix returns the record header and the fixed part of the fragment
// body, with a zero CRC.
func recordPrefix(r *fragmentRecord, bodyLen int) [recordHeaderSize + fragmentFixedSize]byte {
	var h [recordHeaderSize + fragmentFixedSize]byte
	le := binary.LittleEndian
	le.PutUint32(h[0:], uint32(bodyLen))
	// h[4:8] is the CRC, filled in by the caller.
	h[8] = recordTypeFragment
	h[9] = recordVersion
	le.PutUint16(h[10:], 0)
	le.PutUint32(h[12:], r.KeyID)
	copy(h[16:28], r.Nonce[:])
	le.PutUint32(h[28:], r.ReadSize)
	b := h[recordHeaderSize:]
	le.PutUint64(b[0:], r.Number)
	le.PutUint64(b[8:], uint64(r.ServerTime))
	le.PutUint64(b[16:], uint64(r.ProducerTime))
	le.PutUint64(b[24:], uint64(r.Duration))
	le.PutUint64(b[32:], r.ProducerSeq)
	le.PutUint32(b[40:], r.ClusterOffset)
	le.PutUint16(b[44:], uint16(len(r.ProducerID)))
	le.PutUint16(b[46:], 0)
	return h
}

// Reasons a record is rejected. They are wrapped in a *CorruptionError.
var (
	errShortHeader = errors.New("record header cut short")
	errZeroHeader  = errors.New("all-zero record header")
	errBadLength   = errors.New("record length out of range")
	errBadChecksum = errors.New("record checksum mismatch")
	errBadType     = errors.New("unknown record type or version")
	errBadFragment = errors.New("malformed fragment record")
	errShortRecord = errors.New("record body cut short")
)

// parseRecordHeader validates the fixed header and returns the body length.
func parseRecordHeader(h []byte) (bodyLen int, crc uint32, err error) {
	if len(h) < recordHeaderSize {
		return 0, 0, errShortHeader
	}
	if isZero(h[:recordHeaderSize]) {
		return 0, 0, errZeroHeader
	}
	le := binary.LittleEndian
	n := le.Uint32(h[0:])
	if n < fragmentFixedSize || n > maxRecordBody {
		return 0, 0, errBadLength
	}
	if h[8] != recordTypeFragment || h[9] != recordVersion {
		return 0, 0, errBadType
	}
	return int(n), le.Uint32(h[4:]), nil
}

// decodeFragmentRecord decodes a whole record (header and body) held in rec,
// verifying its checksum. The payload aliases rec.
func decodeFragmentRecord(rec []byte) (fragmentRecord, error) {
	var r fragmentRecord
	bodyLen, crc, err := parseRecordHeader(rec)
	if err != nil {
		return r, err
	}
	if len(rec) != recordHeaderSize+bodyLen {
		return r, errShortRecord
	}
	if crc32.Checksum(rec[8:], castagnoli) != crc {
		return r, errBadChecksum
	}
	le := binary.LittleEndian
	r.KeyID = le.Uint32(rec[12:])
	copy(r.Nonce[:], rec[16:28])
	r.ReadSize = le.Uint32(rec[28:])
	b := rec[recordHeaderSize:]
	r.Number = le.Uint64(b[0:])
	r.ServerTime = int64(le.Uint64(b[8:]))
	r.ProducerTime = int64(le.Uint64(b[16:]))
	r.Duration = int64(le.Uint64(b[24:]))
	r.ProducerSeq = le.Uint64(b[32:])
	r.ClusterOffset = le.Uint32(b[40:])
	pidLen := int(le.Uint16(b[44:]))
	if pidLen > maxProducerID || fragmentFixedSize+pidLen > len(b) {
		return r, errBadFragment
	}
	r.ProducerID = string(b[fragmentFixedSize : fragmentFixedSize+pidLen])
	r.Payload = b[fragmentFixedSize+pidLen:]
	if int(r.ClusterOffset) > len(r.Payload) {
		return r, errBadFragment
	}
	return r, nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// CorruptionError reports damaged data: which file, where, and why. Readers get
// it for a damaged fragment (the others stay readable); start-up repair uses it
// to decide what to cut.
type CorruptionError struct {
	Path   string
	Offset int64
	Err    error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("store: corrupt data in %s at offset %d: %v", e.Path, e.Offset, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }
