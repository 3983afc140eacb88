package mcap

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// Summary is what a file's summary section holds: the index readers seek by.
type Summary struct {
	Footer     Footer
	Schemas    map[uint16]*Schema
	Channels   map[uint16]*Channel
	Chunks     []ChunkIndex
	Statistics *Statistics
}

// ReadSummary reads the Footer and the summary section of a file of size
// bytes, checking the summary's CRC. A file without a summary gives a
// Summary with only the Footer.
func ReadSummary(r io.ReaderAt, size int64) (*Summary, error) {
	const tail = 9 + 20 + 8 // footer record and magic
	if size < int64(len(Magic))+tail {
		return nil, fmt.Errorf("mcap: read summary: %w: %d bytes is too short", ErrInvalid, size)
	}
	end := make([]byte, tail)
	if _, err := r.ReadAt(end, size-tail); err != nil {
		return nil, fmt.Errorf("mcap: read footer: %w", err)
	}
	if !bytes.Equal(end[29:], Magic) {
		return nil, fmt.Errorf("mcap: read footer: %w: the file does not end with the MCAP magic", ErrInvalid)
	}
	if end[0] != OpFooter || binary.LittleEndian.Uint64(end[1:]) != 20 {
		return nil, fmt.Errorf("mcap: read footer at %d: %w: not a Footer record", size-tail, ErrInvalid)
	}
	f, _ := parseFooter(end[9:29])
	s := &Summary{Footer: f, Schemas: map[uint16]*Schema{}, Channels: map[uint16]*Channel{}}
	footAt := uint64(size - tail)
	if f.SummaryStart == 0 {
		if f.SummaryCRC != 0 {
			if got := crc32.ChecksumIEEE(end[:25]); got != f.SummaryCRC {
				return nil, fmt.Errorf("mcap: footer: %w: summary CRC %08x, the footer says %08x", ErrInvalid, got, f.SummaryCRC)
			}
		}
		return s, nil
	}
	if f.SummaryStart < uint64(len(Magic)) || f.SummaryStart > footAt {
		return nil, fmt.Errorf("mcap: footer: %w: summary_start %d outside the file", ErrInvalid, f.SummaryStart)
	}
	sum := make([]byte, footAt-f.SummaryStart)
	if _, err := r.ReadAt(sum, int64(f.SummaryStart)); err != nil {
		return nil, fmt.Errorf("mcap: read summary at %d: %w", f.SummaryStart, err)
	}
	if f.SummaryCRC != 0 {
		got := crc32.Update(crc32.ChecksumIEEE(sum), crc32.IEEETable, end[:25])
		if got != f.SummaryCRC {
			return nil, fmt.Errorf("mcap: summary at %d: %w: CRC %08x, the footer says %08x", f.SummaryStart, ErrInvalid, got, f.SummaryCRC)
		}
	}
	for off := 0; off < len(sum); {
		if len(sum)-off < 9 {
			return nil, fmt.Errorf("mcap: summary record at %d: %w: truncated", f.SummaryStart+uint64(off), ErrInvalid)
		}
		op, n := sum[off], binary.LittleEndian.Uint64(sum[off+1:])
		if n > uint64(len(sum)-off-9) {
			return nil, fmt.Errorf("mcap: summary record at %d: %w: %d bytes beyond the summary", f.SummaryStart+uint64(off), ErrInvalid, n)
		}
		content := sum[off+9 : off+9+int(n)]
		at := f.SummaryStart + uint64(off)
		off += 9 + int(n)
		var err error
		switch op {
		case OpSchema:
			var sc Schema
			if sc, err = parseSchema(content); err == nil && sc.ID != 0 {
				s.Schemas[sc.ID] = &sc
			}
		case OpChannel:
			var c Channel
			if c, err = parseChannel(content); err == nil {
				s.Channels[c.ID] = &c
			}
		case OpChunkIndex:
			var ci ChunkIndex
			if ci, err = parseChunkIndex(content); err == nil {
				s.Chunks = append(s.Chunks, ci)
			}
		case OpStatistics:
			var st Statistics
			if st, err = parseStatistics(content); err == nil {
				s.Statistics = &st
			}
		}
		if err != nil {
			return nil, fmt.Errorf("mcap: summary record at %d (opcode 0x%02x): %w", at, op, err)
		}
	}
	return s, nil
}
