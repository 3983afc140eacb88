package codecs

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// Sample slices and little-endian bytes.
//
// The plain wire format is the interleaved samples in little endian, which is
// exactly how a []int16, []int32, []float32 or []float64 lies in memory on a
// little-endian host (amd64, arm64, riscv64, wasm, loong64, …). There, encoding
// and decoding are one memmove through a byte view of the slice; on other hosts
// (s390x, big-endian mips and ppc64) the portable loops below swap each value.
//
// The byte view is sound: every bit pattern is a valid int or float, a byte has
// no alignment requirement, and the view never outlives the call that makes it.
// Both paths are tested against each other on every host.

type sample interface {
	int16 | int32 | float32 | float64
}

// hostLittleEndian decides between the two paths, once.
var hostLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// bytesOf returns the memory of v as bytes (native byte order).
func bytesOf[T sample](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*int(unsafe.Sizeof(v[0])))
}

// appendLE appends v to dst as little-endian values.
func appendLE[T sample](dst []byte, v []T) []byte {
	if hostLittleEndian {
		return append(dst, bytesOf(v)...)
	}
	return appendLEPortable(dst, v)
}

// decodeLE fills dst from src, which holds exactly len(dst) little-endian values.
func decodeLE[T sample](dst []T, src []byte) {
	if hostLittleEndian {
		copy(bytesOf(dst), src)
		return
	}
	decodeLEPortable(dst, src)
}

func appendLEPortable[T sample](dst []byte, v []T) []byte {
	switch v := any(v).(type) {
	case []int16:
		for _, x := range v {
			dst = binary.LittleEndian.AppendUint16(dst, uint16(x))
		}
	case []int32:
		for _, x := range v {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(x))
		}
	case []float32:
		for _, x := range v {
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(x))
		}
	case []float64:
		for _, x := range v {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(x))
		}
	}
	return dst
}

// decodeLEPortable re-slices src to the exact length up front, so the compiler
// drops the bounds checks inside the loops.
func decodeLEPortable[T sample](dst []T, src []byte) {
	switch d := any(dst).(type) {
	case []int16:
		src = src[:2*len(d)]
		for i := range d {
			d[i] = int16(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case []int32:
		src = src[:4*len(d)]
		for i := range d {
			d[i] = int32(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case []float32:
		src = src[:4*len(d)]
		for i := range d {
			d[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case []float64:
		src = src[:8*len(d)]
		for i := range d {
			d[i] = math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:]))
		}
	}
}
