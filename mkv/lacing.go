package mkv

// Block header and lacing (Matroska, "Block Structure" and "Block Lacing").
// A block body is: track number (VINT), int16 big-endian timecode relative
// to the cluster, one flags byte, then either one frame or, when the lacing
// bits are set, a frame count minus one and the frame sizes in one of three
// encodings, followed by the frames back to back. Every size is checked
// against the bytes that remain, so a crafted block can neither read out of
// bounds nor make the reader allocate.

// lace is one frame's span within a block's payload.
type lace struct{ start, end int }

// maxLaces: the count byte holds frames minus one.
const maxLaces = 256

// parseBlockHeader returns the block's track, timecode and flags and the
// header length n; msg is non-empty when the header is malformed.
func parseBlockHeader(b []byte) (track uint64, tc int16, flags byte, n int, msg string) {
	track, n = parseVint(b)
	if n == 0 {
		return 0, 0, 0, 0, "invalid track number VINT in block"
	}
	if n+3 > len(b) {
		return 0, 0, 0, 0, "block shorter than its header"
	}
	tc = int16(uint16(b[n])<<8 | uint16(b[n+1]))
	return track, tc, b[n+2], n + 3, ""
}

// splitLaces appends the frame spans of a block to frames, given the bytes
// after the flags and the lacing bits. It returns the payload the spans
// index into.
func splitLaces(frames []lace, b []byte, lacing byte) ([]lace, []byte, string) {
	if lacing == lacingNone {
		return append(frames, lace{0, len(b)}), b, ""
	}
	if len(b) == 0 {
		return nil, nil, "laced block without a frame count"
	}
	count := int(b[0]) + 1
	b = b[1:]
	var sizes [maxLaces]int // on the stack: no allocation per block
	var hdr int
	var msg string
	switch lacing {
	case lacingXiph:
		hdr, msg = xiphSizes(b, sizes[:count-1])
	case lacingEBML:
		hdr, msg = ebmlSizes(b, sizes[:count-1])
	case lacingFixed:
		if len(b)%count != 0 {
			return nil, nil, "fixed-size lacing: payload not divisible by the frame count"
		}
		for i := range sizes[:count-1] {
			sizes[i] = len(b) / count
		}
	}
	if msg != "" {
		return nil, nil, msg
	}
	payload := b[hdr:]
	start := 0
	for _, s := range sizes[:count-1] {
		if s > len(payload)-start {
			return nil, nil, "laced frame sizes exceed the block"
		}
		frames = append(frames, lace{start, start + s})
		start += s
	}
	// The last frame takes what remains.
	return append(frames, lace{start, len(payload)}), payload, ""
}

// xiphSizes decodes Xiph lacing: each size is a run of 255 bytes plus one
// byte below 255, summed. It returns the bytes used.
func xiphSizes(b []byte, sizes []int) (int, string) {
	pos, total := 0, 0
	for i := range sizes {
		s := 0
		for {
			if pos >= len(b) {
				return 0, "Xiph lacing: sizes run past the block"
			}
			c := b[pos]
			pos++
			s += int(c)
			if c != 255 {
				break
			}
		}
		total += s
		if total > len(b) {
			return 0, "Xiph lacing: frame sizes exceed the block"
		}
		sizes[i] = s
	}
	return pos, ""
}

// ebmlSizes decodes EBML lacing: the first size as an unsigned VINT, each
// next one as a signed VINT difference from the previous size.
func ebmlSizes(b []byte, sizes []int) (int, string) {
	if len(sizes) == 0 {
		return 0, ""
	}
	first, pos := parseVint(b)
	if pos == 0 || pos > len(b) {
		return 0, "EBML lacing: invalid first frame size"
	}
	if first > uint64(len(b)) {
		return 0, "EBML lacing: frame sizes exceed the block"
	}
	prev, total := int64(first), int64(first)
	sizes[0] = int(first)
	for i := 1; i < len(sizes); i++ {
		d, n := parseSignedVint(b[pos:])
		if n == 0 || n > len(b)-pos {
			return 0, "EBML lacing: invalid frame size difference"
		}
		pos += n
		prev += d
		total += prev
		if prev < 0 || total > int64(len(b)) {
			return 0, "EBML lacing: frame size out of range"
		}
		sizes[i] = int(prev)
	}
	return pos, ""
}
