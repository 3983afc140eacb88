package mkv

import "math/bits"

// EBML variable-length integers (RFC 8794, section 4). The first byte's
// leading zeros give the length: 1xxxxxxx is one byte, 01xxxxxx two, and so
// on. Element IDs keep the marker bit; sizes and the track number in a block
// drop it.
//
// The parse functions share one convention so that the streaming reader can
// peek exactly as many bytes as an element header needs, never more (a live
// GetMedia stream must not block waiting for bytes that are not part of the
// element it is reading): they return the length n; n == 0 means the bytes
// can never start a valid VINT, n > len(b) means b is too short and n bytes
// are needed.

const (
	maxIDLen   = 4 // EBMLMaxIDLength we accept and write
	maxSizeLen = 8 // EBMLMaxSizeLength we accept and write
)

// vintLen is the total length announced by a VINT's first byte, 0 for 0x00.
func vintLen(first byte) int {
	if first == 0 {
		return 0
	}
	return bits.LeadingZeros8(first) + 1
}

// parseID reads an element ID. IDs longer than 4 bytes, and IDs whose value
// bits are all zeros or all ones (reserved by RFC 8794), are invalid.
func parseID(b []byte) (id uint32, n int) {
	if len(b) == 0 {
		return 0, 1
	}
	n = vintLen(b[0])
	if n == 0 || n > maxIDLen {
		return 0, 0
	}
	if n > len(b) {
		return 0, n
	}
	for _, c := range b[:n] {
		id = id<<8 | uint32(c)
	}
	value := id & (1<<(7*n) - 1) // the ID without its marker bit
	if value == 0 || value == 1<<(7*n)-1 {
		return 0, 0
	}
	return id, n
}

// parseSize reads an element data size. unknown is true for the reserved
// all-ones value, which means "unknown size" at any length.
func parseSize(b []byte) (size uint64, n int, unknown bool) {
	v, n := parseVint(b)
	if n == 0 || n > len(b) {
		return 0, n, false
	}
	if v == 1<<(7*n)-1 {
		return 0, n, true
	}
	return v, n, false
}

// parseVint reads an unsigned VINT of up to 8 bytes without its marker bit.
func parseVint(b []byte) (v uint64, n int) {
	if len(b) == 0 {
		return 0, 1
	}
	n = vintLen(b[0])
	if n == 0 {
		return 0, 0
	}
	if n > len(b) {
		return 0, n
	}
	v = uint64(b[0]) & (0xFF >> n)
	for _, c := range b[1:n] {
		v = v<<8 | uint64(c)
	}
	return v, n
}

// parseSignedVint reads the signed VINT of EBML lacing: the unsigned value
// minus the bias 2^(7n-1)-1, so that small magnitudes stay short.
func parseSignedVint(b []byte) (v int64, n int) {
	u, n := parseVint(b)
	if n == 0 || n > len(b) {
		return 0, n
	}
	return int64(u) - (1<<(7*n-1) - 1), n
}

// idLen is the encoded length of an element ID (IDs carry their marker bit,
// so the length follows from the magnitude).
func idLen(id uint32) int {
	switch {
	case id <= 0xFF:
		return 1
	case id <= 0xFFFF:
		return 2
	case id <= 0xFFFFFF:
		return 3
	}
	return 4
}

func appendID(dst []byte, id uint32) []byte {
	for i := idLen(id) - 1; i >= 0; i-- {
		dst = append(dst, byte(id>>(8*i)))
	}
	return dst
}

// sizeLen is the length of the shortest VINT for v. The all-ones value of
// each length is reserved ("unknown size"), hence v < 2^(7n)-1 rather than <=.
func sizeLen(v uint64) int {
	for n := 1; n < maxSizeLen; n++ {
		if v < 1<<(7*n)-1 {
			return n
		}
	}
	return maxSizeLen
}

// appendVint appends v as the shortest VINT that is not the reserved
// all-ones pattern. v must be below 2^56-1.
func appendVint(dst []byte, v uint64) []byte {
	n := sizeLen(v)
	v |= 1 << (7 * n)
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, byte(v>>(8*i)))
	}
	return dst
}

// putVint writes v as a VINT of exactly len(dst) bytes.
func putVint(dst []byte, v uint64) {
	n := len(dst)
	v |= 1 << (7 * n)
	for i := n - 1; i >= 0; i-- {
		dst[i] = byte(v)
		v >>= 8
	}
}

// unknownSizeVint is the 8-byte reserved value that marks an unknown size;
// the 8-byte form is what libmatroska, ffmpeg and KVS producers write.
const unknownSizeVint = "\x01\xFF\xFF\xFF\xFF\xFF\xFF\xFF"
