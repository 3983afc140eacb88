package sdk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// AccessUnit is one picture of an H.264 stream in AVC form: its NAL units,
// each behind a 4-byte big-endian length.
type AccessUnit struct {
	Data []byte
	Key  bool // holds an IDR slice
}

// NAL unit types this splitter looks at (ITU-T H.264, table 7-1).
const (
	nalSlice = 1
	nalIDR   = 5
	nalSEI   = 6
	nalSPS   = 7
	nalPPS   = 8
	nalAUD   = 9
)

// SplitAnnexB splits an H.264 elementary stream in Annex B form (start codes,
// as `ffmpeg -f h264` and most cameras write it) into access units in AVC
// form, and builds the avcC record (CodecPrivate) from its first SPS and PPS.
// A new access unit starts at an access unit delimiter, or at an SPS, PPS,
// SEI or at a slice whose first_mb_in_slice is 0 once the current unit has a
// slice. The SPS and PPS stay in the access units too (in-band), so every
// fragment that starts at an IDR decodes on its own.
func SplitAnnexB(stream []byte) ([]AccessUnit, []byte, error) {
	var aus []AccessUnit
	var cur AccessUnit
	hasSlice := false
	var sps, pps []byte
	flush := func() {
		if len(cur.Data) > 0 {
			aus = append(aus, cur)
		}
		cur, hasSlice = AccessUnit{}, false
	}
	for _, nal := range annexBNALs(stream) {
		if len(nal) == 0 {
			continue
		}
		typ := nal[0] & 0x1f
		switch {
		case typ == nalAUD, (typ == nalSPS || typ == nalPPS || typ == nalSEI) && hasSlice:
			flush()
		case (typ == nalSlice || typ == nalIDR) && hasSlice && len(nal) > 1 && nal[1]&0x80 != 0: // first_mb_in_slice = 0
			flush()
		}
		switch typ {
		case nalSPS:
			if sps == nil {
				sps = nal
			}
		case nalPPS:
			if pps == nil {
				pps = nal
			}
		case nalSlice, nalIDR:
			hasSlice = true
			cur.Key = cur.Key || typ == nalIDR
		}
		cur.Data = binary.BigEndian.AppendUint32(cur.Data, uint32(len(nal)))
		cur.Data = append(cur.Data, nal...)
	}
	flush()
	if sps == nil || pps == nil {
		return nil, nil, errors.New("sdk: annex b: the stream has no SPS or no PPS")
	}
	if len(sps) < 4 || len(sps) > 0xffff || len(pps) > 0xffff {
		return nil, nil, fmt.Errorf("sdk: annex b: parameter sets of %d and %d bytes", len(sps), len(pps))
	}
	avcC := []byte{1, sps[1], sps[2], sps[3], 0xff, 0xe1} // 4-byte lengths, one SPS
	avcC = binary.BigEndian.AppendUint16(avcC, uint16(len(sps)))
	avcC = append(avcC, sps...)
	avcC = append(avcC, 1)
	avcC = binary.BigEndian.AppendUint16(avcC, uint16(len(pps)))
	avcC = append(avcC, pps...)
	return aus, avcC, nil
}

// annexBNALs returns the NAL units between start codes (00 00 01 or
// 00 00 00 01), without them.
func annexBNALs(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+2 < len(b); {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				out = append(out, bytes.TrimRight(b[start:i], "\x00")) // trailing zeros belong to a 4-byte start code
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 && start <= len(b) {
		out = append(out, b[start:])
	}
	return out
}
