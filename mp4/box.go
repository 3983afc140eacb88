package mp4

import "encoding/binary"

// Boxes are appended to a byte slice: a box starts with a size placeholder
// that endBox fills in once its children are written, so that nesting needs
// no size computed ahead.

var be = binary.BigEndian

// startBox appends a box header (size to be patched, type) and returns the
// box's offset in dst.
func startBox(dst []byte, typ string) ([]byte, int) {
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	return append(dst, typ...), at
}

// startFullBox appends the header of a full box: version and 24-bit flags.
func startFullBox(dst []byte, typ string, version byte, flags uint32) ([]byte, int) {
	dst, at := startBox(dst, typ)
	return append(dst, version, byte(flags>>16), byte(flags>>8), byte(flags)), at
}

// endBox writes the size of the box that starts at at.
func endBox(dst []byte, at int) []byte {
	be.PutUint32(dst[at:], uint32(len(dst)-at))
	return dst
}

func u16(dst []byte, v uint16) []byte { return be.AppendUint16(dst, v) }
func u32(dst []byte, v uint32) []byte { return be.AppendUint32(dst, v) }
func u64(dst []byte, v uint64) []byte { return be.AppendUint64(dst, v) }

func zeros(dst []byte, n int) []byte {
	for range n {
		dst = append(dst, 0)
	}
	return dst
}

// unityMatrix is the identity transformation of mvhd and tkhd (16.16 and
// 2.30 fixed point).
var unityMatrix = [9]uint32{0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000}

func appendMatrix(dst []byte) []byte {
	for _, v := range unityMatrix {
		dst = u32(dst, v)
	}
	return dst
}
