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
	// Order is the picture's place in presentation order, counted from 0
	// over the stream, derived from its picture order count; -1 when
	// SplitAnnexB could not derive it (a slice header it cannot read). In a
	// stream without B-frames it is the access unit's index. For a constant
	// frame rate, its presentation time is origin + Order × frame duration
	// (see PutH264).
	Order int
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
// form, in decode order, and builds the avcC record (CodecPrivate) from its
// first SPS and PPS. A new access unit starts at an access unit delimiter, or
// at an SPS, PPS, SEI or at a slice whose first_mb_in_slice is 0 once the
// current unit has a slice. The SPS and PPS stay in the access units too
// (in-band), so every fragment that starts at an IDR decodes on its own.
// Each access unit's Order is its place in presentation order, from the
// picture order counts of its first slice (all three pic_order_cnt_types;
// memory_management_control_operation 5, which encoders rarely use, is not
// looked for).
func SplitAnnexB(stream []byte) ([]AccessUnit, []byte, error) {
	var aus []AccessUnit
	var cur AccessUnit
	hasSlice := false
	var firstSPS, firstPPS []byte
	var first *sps
	st := pocState{spss: map[uint32]*sps{}, ppss: map[uint32]uint32{}}
	// The order count of each access unit's picture, from its first slice.
	var pocs []int64
	var idrs []bool
	var pocErr error
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
			s, err := parseSPS(nal)
			switch {
			case err != nil && firstSPS == nil:
				return nil, nil, fmt.Errorf("sdk: annex b: %w", err) // the avcC record needs it
			case err != nil:
				pocErr = err
			default:
				st.spss[s.id] = s
			}
			if firstSPS == nil {
				firstSPS, first = nal, s
			}
		case nalPPS:
			id, spsID, err := parsePPS(nal)
			if err != nil {
				pocErr = err
			}
			st.ppss[id] = spsID
			if firstPPS == nil {
				firstPPS = nal
			}
		case nalSlice, nalIDR:
			if !hasSlice && pocErr == nil { // the first slice of a picture
				poc, idr, err := st.poc(nal)
				pocs, idrs, pocErr = append(pocs, poc), append(idrs, idr || len(pocs) == 0), err
			}
			hasSlice = true
			cur.Key = cur.Key || typ == nalIDR
		}
		cur.Data = binary.BigEndian.AppendUint32(cur.Data, uint32(len(nal)))
		cur.Data = append(cur.Data, nal...)
	}
	if !hasSlice && len(aus) > 0 { // NAL units after the last picture (an SEI, end of stream) belong to it
		aus[len(aus)-1].Data = append(aus[len(aus)-1].Data, cur.Data...)
		cur = AccessUnit{}
	}
	flush()
	if firstSPS == nil || firstPPS == nil {
		return nil, nil, errors.New("sdk: annex b: the stream has no SPS or no PPS")
	}
	if len(firstSPS) > 0xffff || len(firstPPS) > 0xffff {
		return nil, nil, fmt.Errorf("sdk: annex b: parameter sets of %d and %d bytes", len(firstSPS), len(firstPPS))
	}
	// Every access unit holds one picture, so pocs has one count per unit
	// when all slice headers were read.
	if pocErr == nil && len(pocs) == len(aus) {
		for i, o := range presentationOrder(pocs, idrs) {
			aus[i].Order = o
		}
	} else {
		for i := range aus {
			aus[i].Order = -1
		}
	}
	return aus, appendAVCC(nil, firstSPS, firstPPS, first), nil
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
