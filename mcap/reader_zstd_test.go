package mcap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// A zstd chunk is checked once: by its CRC, or, when the writer left the
// CRC out (0), by the zstd frame's own checksum, which then must not be
// skipped.
func TestZstdChunkChecks(t *testing.T) {
	b := writeFile(t, "zstd", 200, 40)
	s, err := ReadSummary(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	c := s.Chunks[0]
	crcAt := int(c.ChunkStartOffset) + 9 + 24               // opcode, length; start, end, uncompressed size
	frameSumAt := int(c.ChunkStartOffset+c.ChunkLength) - 2 // in the frame's last 4 bytes: its checksum
	dataEndCRC := int(s.Footer.SummaryStart) - 4
	if b[dataEndCRC-9] != OpDataEnd {
		t.Fatalf("no Data End record before the summary")
	}
	damage := func(noCRC bool) []byte {
		d := bytes.Clone(b)
		binary.LittleEndian.PutUint32(d[dataEndCRC:], 0) // the data section's CRC would see any change
		if noCRC {
			binary.LittleEndian.PutUint32(d[crcAt:], 0)
		}
		d[frameSumAt] ^= 0x40
		return d
	}
	if err := readAll(damage(true)); !errors.Is(err, ErrInvalid) {
		t.Errorf("a chunk without a CRC whose zstd checksum is wrong: %v, want an ErrInvalid", err)
	}
	// With the CRC, the records are checked by it, and the frame's checksum
	// (which covers the same records) is not computed.
	if err := readAll(damage(false)); err != nil {
		t.Errorf("a chunk whose CRC matches, its zstd checksum damaged: %v", err)
	}
	d := damage(false)
	d[frameSumAt] ^= 0x40 // undone: the CRC alone is zeroed below
	binary.LittleEndian.PutUint32(d[crcAt:], 0)
	if err := readAll(d); err != nil {
		t.Errorf("a sound chunk without a CRC: %v", err)
	}
}
