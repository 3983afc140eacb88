package sdk

import (
	"errors"
	"fmt"
	"slices"
)

// The few H.264 syntax elements SplitAnnexB reads (ITU-T H.264, 7.3): the
// SPS fields the avcC record repeats, and what it takes to compute each
// picture's order count (8.2.1), which says where a picture comes in
// presentation order when the stream has B-frames.

var errH264Truncated = errors.New("sdk: h264: truncated")

// rbsp returns a NAL unit's payload without its header byte and without the
// emulation prevention bytes (00 00 03 → 00 00).
func rbsp(nal []byte) []byte {
	out := make([]byte, 0, len(nal))
	zeros := 0
	for _, c := range nal[1:] {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}

// bitReader reads big-endian bits and Exp-Golomb codes; past the end it
// records errH264Truncated and returns zeros.
type bitReader struct {
	b   []byte
	pos int // in bits
	err error
}

func (r *bitReader) u(n int) uint32 {
	var v uint32
	for i := 0; i < n; i++ {
		if r.pos >= 8*len(r.b) {
			r.err = errH264Truncated
			return 0
		}
		v = v<<1 | uint32(r.b[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v
}

func (r *bitReader) flag() bool { return r.u(1) == 1 }

// ue reads ue(v); a code longer than 32 bits is corrupt.
func (r *bitReader) ue() uint32 {
	zeros := 0
	for r.u(1) == 0 {
		if zeros++; zeros > 31 || r.err != nil {
			r.err = errH264Truncated
			return 0
		}
	}
	return 1<<zeros - 1 + r.u(zeros)
}

func (r *bitReader) se() int32 {
	k := r.ue()
	if k&1 == 1 {
		return int32(k/2 + 1)
	}
	return -int32(k / 2)
}

// sps is what SplitAnnexB needs of a sequence parameter set.
type sps struct {
	profile, compat, level       byte
	id                           uint32
	chromaFormat                 uint32 // chroma_format_idc: 1 (4:2:0) unless a High profile says otherwise
	separateColourPlane          bool
	bitDepthLuma, bitDepthChroma uint32 // minus 8
	log2MaxFrameNum              uint32
	pocType                      uint32
	log2MaxPocLsb                uint32
	deltaPicOrderAlwaysZero      bool
	offsetForNonRefPic           int32
	offsetsForRefFrame           []int32
	frameMbsOnly                 bool
}

// highProfile says whether an SPS of this profile_idc carries
// chroma_format_idc and the bit depths (7.3.2.1.1).
func highProfile(p byte) bool {
	switch p {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135, 144: // 144: High 4:4:4, since replaced by 244
		return true
	}
	return false
}

func parseSPS(nal []byte) (*sps, error) {
	b := rbsp(nal)
	if len(b) < 4 {
		return nil, errH264Truncated
	}
	s := &sps{profile: b[0], compat: b[1], level: b[2], chromaFormat: 1}
	r := &bitReader{b: b, pos: 24}
	s.id = r.ue()
	if highProfile(s.profile) {
		s.chromaFormat = r.ue()
		if s.chromaFormat == 3 {
			s.separateColourPlane = r.flag()
		}
		s.bitDepthLuma, s.bitDepthChroma = r.ue(), r.ue()
		r.u(1)        // qpprime_y_zero_transform_bypass_flag
		if r.flag() { // seq_scaling_matrix_present_flag
			lists := 8
			if s.chromaFormat == 3 {
				lists = 12
			}
			for i := 0; i < lists; i++ {
				if r.flag() {
					size := 64
					if i < 6 {
						size = 16
					}
					skipScalingList(r, size)
				}
			}
		}
	}
	s.log2MaxFrameNum = r.ue() + 4
	s.pocType = r.ue()
	switch s.pocType {
	case 0:
		s.log2MaxPocLsb = r.ue() + 4
	case 1:
		s.deltaPicOrderAlwaysZero = r.flag()
		s.offsetForNonRefPic = r.se()
		r.se() // offset_for_top_to_bottom_field: the top field's count is enough
		n := r.ue()
		if n > 255 {
			return nil, fmt.Errorf("sdk: h264: SPS with %d reference frames in its order count cycle", n)
		}
		for i := uint32(0); i < n; i++ {
			s.offsetsForRefFrame = append(s.offsetsForRefFrame, r.se())
		}
	}
	r.ue() // max_num_ref_frames
	r.u(1) // gaps_in_frame_num_value_allowed_flag
	r.ue() // pic_width_in_mbs_minus1
	r.ue() // pic_height_in_map_units_minus1
	s.frameMbsOnly = r.flag()
	switch {
	case r.err != nil:
		return nil, fmt.Errorf("sdk: h264: SPS: %w", r.err)
	case s.chromaFormat > 3 || s.bitDepthLuma > 6 || s.bitDepthChroma > 6 || s.log2MaxFrameNum > 16 || s.pocType > 2 || s.log2MaxPocLsb > 16:
		return nil, errors.New("sdk: h264: SPS with values out of range")
	}
	return s, nil
}

func skipScalingList(r *bitReader, size int) {
	last, next := int32(8), int32(8)
	for j := 0; j < size && r.err == nil; j++ {
		if next != 0 {
			next = (last + r.se() + 256) % 256
		}
		if next != 0 {
			last = next
		}
	}
}

// parsePPS returns a picture parameter set's id and the id of its SPS.
func parsePPS(nal []byte) (id, spsID uint32, err error) {
	r := &bitReader{b: rbsp(nal)}
	id, spsID = r.ue(), r.ue()
	if r.err != nil {
		return 0, 0, fmt.Errorf("sdk: h264: PPS: %w", r.err)
	}
	return id, spsID, nil
}

// pocState computes picture order counts across the slices of a stream, in
// decode order (8.2.1). Memory management operation 5, which also resets
// them, is not looked for (encoders rarely use it; x264 never does).
type pocState struct {
	spss map[uint32]*sps
	ppss map[uint32]uint32 // PPS id → SPS id
	// type 0
	prevMsb, prevLsb int64
	// types 1 and 2
	prevFrameNum, prevFrameNumOffset int64
}

// poc returns the order count of the picture whose first slice is nal, and
// whether the picture is an IDR (order counts start again from it).
func (st *pocState) poc(nal []byte) (int64, bool, error) {
	idr := nal[0]&0x1f == nalIDR
	ref := nal[0]>>5&3 != 0
	r := &bitReader{b: rbsp(nal)}
	r.ue() // first_mb_in_slice
	r.ue() // slice_type
	spsID, ok := st.ppss[r.ue()]
	if !ok {
		return 0, false, errors.New("sdk: h264: a slice names a PPS the stream has not sent")
	}
	s, ok := st.spss[spsID]
	if !ok {
		return 0, false, errors.New("sdk: h264: a PPS names an SPS the stream has not sent")
	}
	if s.separateColourPlane {
		r.u(2)
	}
	frameNum := int64(r.u(int(s.log2MaxFrameNum)))
	field := false
	if !s.frameMbsOnly {
		if field = r.flag(); field {
			r.u(1) // bottom_field_flag
		}
	}
	if idr {
		r.ue() // idr_pic_id
	}
	// The top field's (or the frame's) count is enough to order pictures;
	// the bottom field's deltas that follow are not read.
	var lsb, delta int64
	switch s.pocType {
	case 0:
		lsb = int64(r.u(int(s.log2MaxPocLsb)))
	case 1:
		if !s.deltaPicOrderAlwaysZero {
			delta = int64(r.se()) // delta_pic_order_cnt[0]
		}
	}
	if r.err != nil {
		return 0, false, fmt.Errorf("sdk: h264: slice header: %w", r.err)
	}

	if s.pocType == 0 {
		if idr {
			st.prevMsb, st.prevLsb = 0, 0
		}
		maxLsb := int64(1) << s.log2MaxPocLsb
		msb := st.prevMsb
		switch {
		case lsb < st.prevLsb && st.prevLsb-lsb >= maxLsb/2:
			msb += maxLsb
		case lsb > st.prevLsb && lsb-st.prevLsb > maxLsb/2:
			msb -= maxLsb
		}
		if ref {
			st.prevMsb, st.prevLsb = msb, lsb
		}
		return msb + lsb, idr, nil
	}
	maxFrameNum := int64(1) << s.log2MaxFrameNum
	offset := st.prevFrameNumOffset
	switch {
	case idr:
		offset = 0
	case st.prevFrameNum > frameNum:
		offset += maxFrameNum
	}
	st.prevFrameNum, st.prevFrameNumOffset = frameNum, offset
	if s.pocType == 2 {
		switch {
		case idr:
			return 0, true, nil
		case !ref:
			return 2*(offset+frameNum) - 1, false, nil
		}
		return 2 * (offset + frameNum), false, nil
	}
	// Type 1: the count expected from the cycle of reference frame offsets.
	n := int64(len(s.offsetsForRefFrame))
	abs := int64(0)
	if n != 0 {
		abs = offset + frameNum
	}
	if !ref && abs > 0 {
		abs--
	}
	var expected int64
	if abs > 0 {
		var perCycle int64
		for _, o := range s.offsetsForRefFrame {
			perCycle += int64(o)
		}
		cycles, in := (abs-1)/n, (abs-1)%n
		expected = cycles * perCycle
		for _, o := range s.offsetsForRefFrame[:in+1] {
			expected += int64(o)
		}
	}
	if !ref {
		expected += int64(s.offsetForNonRefPic)
	}
	return expected + delta, idr, nil
}

// presentationOrder numbers access units in presentation order from their
// order counts: a stream's pictures are ranked by count between one IDR and
// the next, since the counts start again at every IDR.
func presentationOrder(pocs []int64, idrs []bool) []int {
	order := make([]int, len(pocs))
	for start := 0; start < len(pocs); {
		end := start + 1
		for end < len(pocs) && !idrs[end] {
			end++
		}
		idx := make([]int, end-start)
		for i := range idx {
			idx[i] = start + i
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			switch {
			case pocs[a] < pocs[b]:
				return -1
			case pocs[a] > pocs[b]:
				return 1
			}
			return 0
		})
		for rank, i := range idx {
			order[i] = start + rank
		}
		start = end
	}
	return order
}

// appendAVCC appends the AVCDecoderConfigurationRecord (ISO/IEC 14496-15,
// 5.3.3.1) of one SPS and one PPS, with 4-byte NAL lengths. The High
// profiles the standard names (profile_idc 100, 110, 122, 144) carry
// chroma_format and the bit depths after the PPS, their reserved bits all
// 1s, and no SPS extension; so does 244 (High 4:4:4 Predictive, which
// replaced 144), as ffmpeg and GPAC write it.
func appendAVCC(dst []byte, spsNAL, ppsNAL []byte, s *sps) []byte {
	dst = append(dst, 1, s.profile, s.compat, s.level, 0xfc|3, 0xe0|1) // version, profile, compat, level, lengthSizeMinusOne 3, one SPS
	dst = append(dst, byte(len(spsNAL)>>8), byte(len(spsNAL)))
	dst = append(dst, spsNAL...)
	dst = append(dst, 1, byte(len(ppsNAL)>>8), byte(len(ppsNAL)))
	dst = append(dst, ppsNAL...)
	switch s.profile {
	case 100, 110, 122, 144, 244:
		dst = append(dst, 0xfc|byte(s.chromaFormat), 0xf8|byte(s.bitDepthLuma), 0xf8|byte(s.bitDepthChroma), 0)
	}
	return dst
}
