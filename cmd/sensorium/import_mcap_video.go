package main

import "encoding/binary"

// spsSize reads the picture size from the first SPS of an avcC record
// (ITU-T H.264 7.3.2.1.1), for the video track's Matroska PixelWidth and
// PixelHeight; 0, 0 when it cannot be read.
func spsSize(avcC []byte) (int, int) {
	if len(avcC) < 8 || avcC[5]&0x1f == 0 {
		return 0, 0
	}
	n := int(binary.BigEndian.Uint16(avcC[6:]))
	if len(avcC) < 8+n || n < 4 {
		return 0, 0
	}
	// Emulation prevention bytes (00 00 03) out.
	var rbsp []byte
	nal := avcC[8 : 8+n]
	for i := 1; i < len(nal); i++ {
		if i >= 3 && nal[i] == 3 && nal[i-1] == 0 && nal[i-2] == 0 {
			continue
		}
		rbsp = append(rbsp, nal[i])
	}
	br := &spsBits{b: rbsp}
	profile := br.u(8)
	br.u(16) // constraint flags, level
	br.ue()  // seq_parameter_set_id
	chroma := uint32(1)
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		chroma = br.ue()
		if chroma == 3 {
			br.u(1)
		}
		br.ue() // bit depths
		br.ue()
		br.u(1)
		if br.u(1) == 1 { // seq_scaling_matrix_present_flag
			lists := 8
			if chroma == 3 {
				lists = 12
			}
			for i := 0; i < lists; i++ {
				if br.u(1) == 1 {
					size := 16
					if i >= 6 {
						size = 64
					}
					last, next := int32(8), int32(8)
					for j := 0; j < size; j++ {
						if next != 0 {
							next = (last + br.se() + 256) % 256
						}
						if next != 0 {
							last = next
						}
					}
				}
			}
		}
	}
	br.ue() // log2_max_frame_num_minus4
	switch br.ue() {
	case 0:
		br.ue()
	case 1:
		br.u(1)
		br.se()
		br.se()
		for k := br.ue(); k > 0 && !br.bad; k-- {
			br.se()
		}
	}
	br.ue() // max_num_ref_frames
	br.u(1) // gaps_in_frame_num_value_allowed_flag
	w := br.ue() + 1
	h := br.ue() + 1
	frameMBsOnly := br.u(1)
	if frameMBsOnly == 0 {
		br.u(1)
	}
	br.u(1)
	var cl, cr, ct, cb uint32
	if br.u(1) == 1 {
		cl, cr, ct, cb = br.ue(), br.ue(), br.ue(), br.ue()
	}
	if br.bad {
		return 0, 0
	}
	cropX, cropY := uint32(1), 2-frameMBsOnly
	if chroma == 1 || chroma == 2 {
		cropX = 2
	}
	if chroma == 1 {
		cropY *= 2
	}
	width := int(w*16) - int((cl+cr)*cropX)
	height := int(h*16*(2-frameMBsOnly)) - int((ct+cb)*cropY)
	if width <= 0 || height <= 0 {
		return 0, 0
	}
	return width, height
}

// spsBits reads bits and Exp-Golomb codes; reading past the end sets bad.
type spsBits struct {
	b   []byte
	pos int
	bad bool
}

func (r *spsBits) u(n int) uint32 {
	var v uint32
	for i := 0; i < n; i++ {
		if r.pos >= 8*len(r.b) {
			r.bad = true
			return 0
		}
		v = v<<1 | uint32(r.b[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v
}

func (r *spsBits) ue() uint32 {
	zeros := 0
	for r.u(1) == 0 && !r.bad {
		zeros++
		if zeros > 31 {
			r.bad = true
			return 0
		}
	}
	return (1<<zeros - 1) + r.u(zeros)
}

func (r *spsBits) se() int32 {
	v := r.ue()
	if v&1 == 1 {
		return int32((v + 1) / 2)
	}
	return -int32(v / 2)
}

// avcOf converts one access unit in Annex B form (start codes) to AVC form
// (each NAL behind a 4-byte big-endian length), appending to dst, and says
// whether it holds an IDR slice. CompressedVideo carries one access unit
// per message, so no splitting into access units is needed.
func avcOf(dst, annexB []byte) ([]byte, bool) {
	key := false
	for _, nal := range nalsOf(annexB) {
		if len(nal) == 0 {
			continue
		}
		if nal[0]&0x1f == 5 {
			key = true
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(nal)))
		dst = append(dst, nal...)
	}
	return dst, key
}

// nalsOf splits an Annex B byte stream at its 3- and 4-byte start codes.
func nalsOf(b []byte) [][]byte {
	var nals [][]byte
	start := -1
	for i := 0; i+2 < len(b); {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				end := i
				if end > start && b[end-1] == 0 {
					end--
				}
				nals = append(nals, b[start:end])
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 && start <= len(b) {
		nals = append(nals, b[start:])
	}
	return nals
}
