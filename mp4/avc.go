package mp4

import (
	"errors"
	"fmt"
)

// AVCConfig is what an AVCDecoderConfigurationRecord (avcC, ISO/IEC
// 14496-15 5.3.3.1) says that a writer of MP4 needs: the codecs parameter,
// the NAL unit length size of the samples, and the picture size its first
// sequence parameter set gives.
type AVCConfig struct {
	Profile, Compatibility, Level byte
	LengthSize                    int // bytes of each NAL unit's length prefix: 1, 2 or 4
	SPS, PPS                      [][]byte
	Width, Height                 int // from the first SPS, cropping applied
}

// ErrInvalidConfig wraps every error of ParseAVCConfig and
// ParseAudioSpecificConfig: the codec private data is not a valid record.
var ErrInvalidConfig = errors.New("mp4: invalid codec configuration")

func invalidConfig(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// ParseAVCConfig parses an avcC record, which must hold at least one SPS
// and one PPS (the samples carry none in band).
func ParseAVCConfig(b []byte) (*AVCConfig, error) {
	if len(b) < 7 {
		return nil, invalidConfig("avcC of %d bytes is shorter than its 7-byte header", len(b))
	}
	if b[0] != 1 {
		return nil, invalidConfig("avcC configurationVersion %d, want 1", b[0])
	}
	c := &AVCConfig{Profile: b[1], Compatibility: b[2], Level: b[3], LengthSize: int(b[4]&3) + 1}
	if c.LengthSize == 3 {
		return nil, invalidConfig("avcC NAL length size 3 is not allowed (1, 2 or 4)")
	}
	rest := b[5:]
	var err error
	if c.SPS, rest, err = parameterSets(rest, int(rest[0]&0x1f), "SPS"); err != nil {
		return nil, err
	}
	if len(rest) < 1 {
		return nil, invalidConfig("avcC ends before its PPS count")
	}
	if c.PPS, _, err = parameterSets(rest, int(rest[0]), "PPS"); err != nil {
		return nil, err
	}
	if len(c.SPS) == 0 || len(c.PPS) == 0 {
		return nil, invalidConfig("avcC has %d SPS and %d PPS; it needs at least one of each", len(c.SPS), len(c.PPS))
	}
	if c.Width, c.Height, err = SPSPictureSize(c.SPS[0]); err != nil {
		return nil, invalidConfig("avcC's SPS: %v", err)
	}
	return c, nil
}

// parameterSets reads n length-prefixed parameter sets after the count byte
// at b[0].
func parameterSets(b []byte, n int, what string) ([][]byte, []byte, error) {
	b = b[1:]
	var out [][]byte
	for i := 0; i < n; i++ {
		if len(b) < 2 {
			return nil, nil, invalidConfig("avcC ends inside %s %d's length", what, i)
		}
		l := int(be.Uint16(b))
		if l == 0 || len(b) < 2+l {
			return nil, nil, invalidConfig("avcC %s %d of %d bytes does not fit in the record", what, i, l)
		}
		out = append(out, b[2:2+l])
		b = b[2+l:]
	}
	return out, b, nil
}

// Codec is the RFC 6381 codecs parameter of the stream: avc1.PPCCLL.
func (c *AVCConfig) Codec() string {
	return fmt.Sprintf("avc1.%02x%02x%02x", c.Profile, c.Compatibility, c.Level)
}

// bits reads an H.264 RBSP (emulation prevention bytes removed) MSB first;
// reads past the end set err.
type bits struct {
	b   []byte
	pos int
	err error
}

func (r *bits) u(n int) uint32 {
	var v uint32
	for range n {
		if r.pos >= 8*len(r.b) {
			r.err = errors.New("SPS ends early")
			return 0
		}
		v = v<<1 | uint32(r.b[r.pos>>3]>>(7-r.pos&7)&1)
		r.pos++
	}
	return v
}

// ue reads an Exp-Golomb code (ue(v)); longer than 32 bits is an error.
func (r *bits) ue() uint32 {
	n := 0
	for r.u(1) == 0 {
		if n++; n > 31 || r.err != nil {
			if r.err == nil {
				r.err = errors.New("Exp-Golomb code longer than 32 bits")
			}
			return 0
		}
	}
	return 1<<n - 1 + r.u(n)
}

func (r *bits) se() int32 {
	k := r.ue()
	if k&1 == 1 {
		return int32(k/2 + 1)
	}
	return -int32(k / 2)
}

// unescape removes emulation prevention bytes (00 00 03 → 00 00) from a NAL
// unit's payload, after its header byte.
func unescape(nal []byte) []byte {
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

// SPSPictureSize returns the picture size a sequence parameter set NAL unit
// (with its header byte) gives, after frame cropping (ITU-T H.264 7.3.2.1.1
// and 7.4.2.1.1).
func SPSPictureSize(nal []byte) (width, height int, err error) {
	if len(nal) < 4 || nal[0]&0x1f != 7 {
		return 0, 0, errors.New("not an SPS NAL unit")
	}
	r := &bits{b: unescape(nal)}
	profile := r.u(8)
	r.u(16) // constraint flags, level
	r.ue()  // seq_parameter_set_id
	chroma, separate := uint32(1), false
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		if chroma = r.ue(); chroma == 3 {
			separate = r.u(1) == 1
		}
		r.ue()           // bit_depth_luma_minus8
		r.ue()           // bit_depth_chroma_minus8
		r.u(1)           // qpprime_y_zero_transform_bypass_flag
		if r.u(1) == 1 { // seq_scaling_matrix_present_flag
			lists := 8
			if chroma == 3 {
				lists = 12
			}
			for i := 0; i < lists && r.err == nil; i++ {
				if r.u(1) == 1 {
					size := 16
					if i >= 6 {
						size = 64
					}
					skipScalingList(r, size)
				}
			}
		}
	}
	r.ue()          // log2_max_frame_num_minus4
	switch r.ue() { // pic_order_cnt_type
	case 0:
		r.ue() // log2_max_pic_order_cnt_lsb_minus4
	case 1:
		r.u(1) // delta_pic_order_always_zero_flag
		r.se() // offset_for_non_ref_pic
		r.se() // offset_for_top_to_bottom_field
		n := r.ue()
		if n > 255 {
			return 0, 0, fmt.Errorf("SPS with %d reference frames in its order count cycle", n)
		}
		for i := uint32(0); i < n && r.err == nil; i++ {
			r.se()
		}
	}
	r.ue() // max_num_ref_frames
	r.u(1) // gaps_in_frame_num_value_allowed_flag
	wMBs, hMapUnits := r.ue()+1, r.ue()+1
	frameMBsOnly := r.u(1)
	if frameMBsOnly == 0 {
		r.u(1) // mb_adaptive_frame_field_flag
	}
	r.u(1) // direct_8x8_inference_flag
	var cl, cr, ct, cb uint32
	if r.u(1) == 1 { // frame_cropping_flag
		cl, cr, ct, cb = r.ue(), r.ue(), r.ue(), r.ue()
	}
	if r.err != nil {
		return 0, 0, r.err
	}
	if chroma > 3 || wMBs > 1<<12 || hMapUnits > 1<<12 {
		return 0, 0, errors.New("SPS with values out of range")
	}
	// The crop unit (7-19 to 7-22): chroma samples, and fields when not
	// frame-only.
	cropX, cropY := uint32(1), 2-frameMBsOnly
	if !separate && chroma != 0 {
		subW, subH := uint32(2), uint32(1)
		if chroma == 1 {
			subH = 2
		}
		if chroma == 3 {
			subW = 1
		}
		cropX, cropY = subW, subH*(2-frameMBsOnly)
	}
	w := int64(wMBs)*16 - int64(cropX)*(int64(cl)+int64(cr))
	h := int64(2-frameMBsOnly)*int64(hMapUnits)*16 - int64(cropY)*(int64(ct)+int64(cb))
	if w <= 0 || h <= 0 {
		return 0, 0, fmt.Errorf("SPS crops its %d×%d macroblocks to nothing", wMBs, hMapUnits)
	}
	return int(w), int(h), nil
}

func skipScalingList(r *bits, size int) {
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
