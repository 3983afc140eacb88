package codecs

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/sensorium-io/sensorium/signals"
)

// FLAC decoding, for the audio tracks that producers other than the SDK
// write as A_FLAC (ffmpeg, GStreamer): a query returns their samples as
// Arrow columns, as it does for PCM. The decoder follows RFC 9639; it checks
// every frame's header CRC-8 and whole-frame CRC-16, so a corrupt block is
// an error wrapping ErrCorrupt and never wrong samples. Encoding FLAC is not
// needed: the store keeps what the producer sent.

// FLACInfo is what a FLAC stream's STREAMINFO block says.
type FLACInfo struct {
	MinBlock, MaxBlock int // samples per channel of a frame
	SampleRate         int // Hz
	Channels           int // 1 to 8
	BitsPerSample      int // 4 to 32
	TotalSamples       uint64
}

// SampleType is the column type that holds the stream's samples: int16 up
// to 16 bits, int32 above (24-bit samples keep their 24-bit values).
func (i FLACInfo) SampleType() signals.SampleType {
	if i.BitsPerSample <= 16 {
		return signals.Int16
	}
	return signals.Int32
}

// ParseFLACHeader reads the "fLaC" marker and the metadata blocks that start
// a FLAC stream — a .flac file, or the CodecPrivate of a Matroska A_FLAC
// track — and returns the STREAMINFO and the length of the header (where the
// first frame of a file starts).
func ParseFLACHeader(b []byte) (FLACInfo, int, error) {
	if len(b) < 4 || string(b[:4]) != "fLaC" {
		return FLACInfo{}, 0, fmt.Errorf("codecs: flac: %w: no fLaC marker", ErrCorrupt)
	}
	var info FLACInfo
	off, seen := 4, false
	for {
		if len(b)-off < 4 {
			return FLACInfo{}, 0, fmt.Errorf("codecs: flac: %w: metadata block header cut at byte %d", ErrCorrupt, off)
		}
		last, typ := b[off]&0x80 != 0, b[off]&0x7f
		n := int(b[off+1])<<16 | int(b[off+2])<<8 | int(b[off+3])
		off += 4
		if n > len(b)-off {
			return FLACInfo{}, 0, fmt.Errorf("codecs: flac: %w: metadata block of %d bytes in %d", ErrCorrupt, n, len(b)-off)
		}
		switch {
		case !seen && typ != 0:
			return FLACInfo{}, 0, fmt.Errorf("codecs: flac: %w: the first metadata block is type %d, not STREAMINFO", ErrCorrupt, typ)
		case typ == 0 && seen:
			return FLACInfo{}, 0, fmt.Errorf("codecs: flac: %w: two STREAMINFO blocks", ErrCorrupt)
		case typ == 0:
			if n != 34 {
				return FLACInfo{}, 0, fmt.Errorf("codecs: flac: %w: STREAMINFO of %d bytes, not 34", ErrCorrupt, n)
			}
			s := b[off : off+34]
			info.MinBlock = int(binary.BigEndian.Uint16(s[0:]))
			info.MaxBlock = int(binary.BigEndian.Uint16(s[2:]))
			v := binary.BigEndian.Uint64(s[10:])
			info.SampleRate = int(v >> 44)
			info.Channels = int(v>>41&7) + 1
			info.BitsPerSample = int(v>>36&31) + 1
			info.TotalSamples = v & (1<<36 - 1)
			if info.SampleRate == 0 || info.BitsPerSample < 4 || info.MinBlock < 16 || info.MaxBlock < info.MinBlock {
				return FLACInfo{}, 0, fmt.Errorf("codecs: flac: %w: STREAMINFO says %d Hz, %d bits, blocks of %d to %d", ErrCorrupt, info.SampleRate, info.BitsPerSample, info.MinBlock, info.MaxBlock)
			}
			seen = true
		}
		off += n
		if last {
			return info, off, nil
		}
	}
}

// FLACDecoder decodes the frames of one FLAC stream. It keeps its buffers
// from frame to frame: use one per goroutine.
type FLACDecoder struct {
	info FLACInfo
	ch   [8][]int64 // the current frame, one slice per channel
	n    int        // samples per channel in ch
}

// NewFLACDecoder returns a decoder of frames of a stream with this STREAMINFO.
func NewFLACDecoder(info FLACInfo) *FLACDecoder { return &FLACDecoder{info: info} }

// Decode decodes the frame at the start of b and returns its length in
// bytes; its samples are then those of Samples. A frame must have the
// stream's channel count and sample size.
func (d *FLACDecoder) Decode(b []byte) (int, error) {
	d.n = 0 // a frame that fails leaves no samples behind
	h, err := parseFLACFrameHeader(b, d.info)
	if err != nil {
		return 0, err
	}
	if h.channels != d.info.Channels || h.bps != d.info.BitsPerSample {
		return 0, fmt.Errorf("codecs: flac frame: %w: %d channels of %d bits in a stream of %d of %d", ErrCorrupt, h.channels, h.bps, d.info.Channels, d.info.BitsPerSample)
	}
	r := flacBits{b: b, pos: h.size}
	for c := range h.channels {
		bps := h.bps
		if h.side == c {
			bps++ // the side channel holds a difference: one bit more
		}
		d.ch[c] = resizeSlice(d.ch[c], h.block)
		if err := r.subframe(d.ch[c], bps); err != nil {
			return 0, fmt.Errorf("codecs: flac frame: channel %d: %w", c, err)
		}
	}
	if pad := r.n % 8; pad > 0 && r.cache>>(64-pad) != 0 {
		return 0, fmt.Errorf("codecs: flac frame: %w: padding bits before the CRC-16 are not zero", ErrCorrupt)
	}
	end := r.bytePos()
	if len(b)-end < 2 {
		return 0, fmt.Errorf("codecs: flac frame: %w: no room for the CRC-16", ErrCorrupt)
	}
	if got, want := crc16FLAC(b[:end]), binary.BigEndian.Uint16(b[end:]); got != want && !flacSkipCRC {
		return 0, fmt.Errorf("codecs: flac frame: %w: CRC-16 %04x, the frame says %04x", ErrCorrupt, got, want)
	}
	decorrelate(d.ch[:h.channels], h.assignment)
	// Residuals may be escaped to 31 bits: a frame whose CRCs hold can still
	// say samples that its bit depth cannot, which the columns would wrap.
	lo, hi := int64(-1)<<(h.bps-1), int64(1)<<(h.bps-1)
	for c := range h.channels {
		for _, v := range d.ch[c][:h.block] {
			if v < lo || v >= hi {
				return 0, fmt.Errorf("codecs: flac frame: %w: channel %d holds %d, outside %d bits", ErrCorrupt, c, v, h.bps)
			}
		}
	}
	d.n = h.block
	return end + 2, nil
}

// Samples returns the samples per channel of the last frame decoded.
func (d *FLACDecoder) Samples() int { return d.n }

// AppendInterleaved appends the last frame's samples to dst, interleaved and
// little endian, as the column type of SampleType (int16 or int32) lays them.
func (d *FLACDecoder) AppendInterleaved(dst []byte) []byte {
	chans := d.ch[:d.info.Channels]
	if d.info.SampleType() == signals.Int16 {
		for i := range d.n {
			for _, c := range chans {
				dst = binary.LittleEndian.AppendUint16(dst, uint16(int16(c[i])))
			}
		}
		return dst
	}
	for i := range d.n {
		for _, c := range chans {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(int32(c[i])))
		}
	}
	return dst
}

type flacFrameHeader struct {
	size       int // bytes, CRC-8 included
	block      int // samples per channel
	channels   int
	bps        int
	assignment int // 0–7 independent, 8 left/side, 9 side/right, 10 mid/side
	side       int // which channel is the side one; -1 for none
}

func parseFLACFrameHeader(b []byte, info FLACInfo) (flacFrameHeader, error) {
	bad := func(format string, a ...any) (flacFrameHeader, error) {
		return flacFrameHeader{}, fmt.Errorf("codecs: flac frame header: %w: %s", ErrCorrupt, fmt.Sprintf(format, a...))
	}
	if len(b) < 6 {
		return bad("%d bytes", len(b))
	}
	if b[0] != 0xff || b[1]&0xfe != 0xf8 {
		return bad("no frame sync code (%02x %02x)", b[0], b[1])
	}
	bsCode, srCode := int(b[2]>>4), int(b[2]&15)
	assign, ssCode := int(b[3]>>4), int(b[3]>>1&7)
	if b[3]&1 != 0 {
		return bad("reserved bit set")
	}
	off := 4
	// The frame or sample number, coded as UTF-8 extended to 36 bits: only
	// its length matters here.
	lead := bits.LeadingZeros8(^b[off])
	variable := b[1]&1 != 0 // blocking strategy: sample numbers (36 bits, 7 bytes) or frame numbers (31 bits, 6)
	switch {
	case lead == 0:
		off++
	case lead == 1 || lead > 7 || lead == 7 && !variable:
		return bad("bad frame number lead byte %02x", b[off])
	default:
		if len(b) < off+lead {
			return bad("frame number cut")
		}
		for _, c := range b[off+1 : off+lead] {
			if c&0xc0 != 0x80 {
				return bad("bad frame number byte %02x", c)
			}
		}
		off += lead
	}
	h := flacFrameHeader{assignment: assign, side: -1}
	switch {
	case bsCode == 0:
		return bad("reserved block size code")
	case bsCode == 1:
		h.block = 192
	case bsCode <= 5:
		h.block = 576 << (bsCode - 2)
	case bsCode == 6:
		if len(b) < off+1 {
			return bad("block size cut")
		}
		h.block = int(b[off]) + 1
		off++
	case bsCode == 7:
		if len(b) < off+2 {
			return bad("block size cut")
		}
		h.block = int(binary.BigEndian.Uint16(b[off:])) + 1
		off += 2
		if h.block > 65535 {
			return bad("block of 65536 samples (at most 65535)")
		}
	default:
		h.block = 256 << (bsCode - 8)
	}
	switch srCode {
	case 12:
		off++
	case 13, 14:
		off += 2
	case 15:
		return bad("invalid sample rate code")
	}
	switch {
	case assign < 8:
		h.channels = assign + 1
	case assign == 8:
		h.channels, h.side = 2, 1
	case assign == 9:
		h.channels, h.side = 2, 0
	case assign == 10:
		h.channels, h.side = 2, 1
	default:
		return bad("reserved channel assignment %d", assign)
	}
	switch ssCode {
	case 0:
		h.bps = info.BitsPerSample
	case 3:
		return bad("reserved sample size code")
	default:
		h.bps = [...]int{1: 8, 2: 12, 4: 16, 5: 20, 6: 24, 7: 32}[ssCode]
	}
	if h.block > info.MaxBlock {
		return bad("block of %d samples in a stream of at most %d", h.block, info.MaxBlock)
	}
	if len(b) < off+1 {
		return bad("CRC-8 cut")
	}
	if got := crc8FLAC(b[:off]); got != b[off] && !flacSkipCRC {
		return bad("CRC-8 %02x, the header says %02x", got, b[off])
	}
	h.size = off + 1
	return h, nil
}

func decorrelate(ch [][]int64, assignment int) {
	switch assignment {
	case 8: // left, side = left − right
		for i, s := range ch[1] {
			ch[1][i] = ch[0][i] - s
		}
	case 9: // side, right
		for i, s := range ch[0] {
			ch[0][i] = s + ch[1][i]
		}
	case 10: // mid, side
		for i, s := range ch[1] {
			m := ch[0][i]<<1 | s&1
			ch[0][i], ch[1][i] = (m+s)>>1, (m-s)>>1
		}
	}
}

// errFLACShort is a frame that ends before its subframes do.
var errFLACShort = fmt.Errorf("%w: the frame ends inside a subframe", ErrCorrupt)

// flacBits reads a FLAC frame's bits, most significant first. cache holds
// the next n bits left-aligned.
type flacBits struct {
	b     []byte
	pos   int // next byte to load into cache
	cache uint64
	n     uint
}

func (r *flacBits) refill() {
	for r.n <= 56 && r.pos < len(r.b) {
		r.cache |= uint64(r.b[r.pos]) << (56 - r.n)
		r.pos++
		r.n += 8
	}
}

// read returns the next k bits, k ≤ 56.
func (r *flacBits) read(k uint) (uint64, error) {
	if r.n < k {
		r.refill()
		if r.n < k {
			return 0, errFLACShort
		}
	}
	v := r.cache >> (64 - k) // k = 0: Go shifts an unsigned value to 0
	r.cache <<= k
	r.n -= k
	return v, nil
}

// signed reads k bits as a two's complement number, 1 ≤ k ≤ 56.
func (r *flacBits) signed(k uint) (int64, error) {
	v, err := r.read(k)
	return int64(v<<(64-k)) >> (64 - k), err
}

// unary counts zero bits up to the next one bit, which it consumes.
func (r *flacBits) unary() (uint64, error) {
	var q uint64
	for {
		if r.n == 0 {
			r.refill()
			if r.n == 0 {
				return 0, errFLACShort
			}
		}
		z := uint(bits.LeadingZeros64(r.cache))
		if z < r.n {
			r.cache <<= z + 1
			r.n -= z + 1
			return q + uint64(z), nil
		}
		q += uint64(r.n)
		r.cache, r.n = 0, 0
	}
}

// bytePos is the offset of the byte after the bits read, once the padding
// to a byte boundary is skipped.
func (r *flacBits) bytePos() int { return r.pos - int(r.n/8) }

// subframe decodes one channel of bps bits into dst (one frame's length).
func (r *flacBits) subframe(dst []int64, bps int) error {
	head, err := r.read(8)
	if err != nil {
		return err
	}
	if head&0x80 != 0 {
		return fmt.Errorf("%w: subframe padding bit set", ErrCorrupt)
	}
	typ := int(head >> 1 & 63)
	wasted := 0
	if head&1 != 0 {
		k, err := r.unary()
		if err != nil {
			return err
		}
		if k+1 >= uint64(bps) {
			return fmt.Errorf("%w: %d wasted bits of %d", ErrCorrupt, k+1, bps)
		}
		wasted = int(k) + 1
		bps -= wasted
	}
	if bps < 1 || bps > 33 {
		return fmt.Errorf("%w: %d-bit subframe", ErrCorrupt, bps)
	}
	k := uint(bps)
	switch {
	case typ == 0: // constant
		v, err := r.signed(k)
		if err != nil {
			return err
		}
		for i := range dst {
			dst[i] = v
		}
	case typ == 1: // verbatim
		for i := range dst {
			if dst[i], err = r.signed(k); err != nil {
				return err
			}
		}
	case typ >= 8 && typ <= 12: // fixed predictor
		order := typ - 8
		if err := r.warmup(dst, order, k); err != nil {
			return err
		}
		if err := r.residual(dst, order); err != nil {
			return err
		}
		restoreFixed(dst, order)
	case typ >= 32: // linear predictor
		order := typ - 31
		if err := r.warmup(dst, order, k); err != nil {
			return err
		}
		p, err := r.read(4)
		if err != nil {
			return err
		}
		if p == 15 {
			return fmt.Errorf("%w: invalid LPC precision", ErrCorrupt)
		}
		shift, err := r.signed(5)
		if err != nil {
			return err
		}
		if shift < 0 {
			return fmt.Errorf("%w: negative LPC shift", ErrCorrupt)
		}
		var coef [32]int64
		for j := range order {
			if coef[j], err = r.signed(uint(p) + 1); err != nil {
				return err
			}
		}
		if err := r.residual(dst, order); err != nil {
			return err
		}
		restoreLPC(dst, coef[:order], uint(shift))
	default:
		return fmt.Errorf("%w: reserved subframe type %d", ErrCorrupt, typ)
	}
	if wasted > 0 {
		for i := range dst {
			dst[i] <<= wasted
		}
	}
	return nil
}

func (r *flacBits) warmup(dst []int64, order int, k uint) error {
	if order > len(dst) {
		return fmt.Errorf("%w: predictor order %d for a block of %d", ErrCorrupt, order, len(dst))
	}
	var err error
	for i := range order {
		if dst[i], err = r.signed(k); err != nil {
			return err
		}
	}
	return nil
}

// residual reads the Rice-coded residual of dst[order:].
func (r *flacBits) residual(dst []int64, order int) error {
	head, err := r.read(6)
	if err != nil {
		return err
	}
	method, partOrder := head>>4, uint(head&15)
	if method > 1 {
		return fmt.Errorf("%w: reserved residual coding method %d", ErrCorrupt, method)
	}
	paramBits, escape := uint(4), uint64(15)
	if method == 1 {
		paramBits, escape = 5, 31
	}
	block := len(dst)
	per := block >> partOrder
	if per<<partOrder != block || per < order {
		return fmt.Errorf("%w: %d partitions of a block of %d with predictor order %d", ErrCorrupt, 1<<partOrder, block, order)
	}
	i := order
	for p := range 1 << partOrder {
		end := (p + 1) * per
		k, err := r.read(paramBits)
		if err != nil {
			return err
		}
		if k == escape {
			nb, err := r.read(5)
			if err != nil {
				return err
			}
			for ; i < end; i++ {
				if nb == 0 {
					dst[i] = 0
				} else if dst[i], err = r.signed(uint(nb)); err != nil {
					return err
				}
			}
			continue
		}
		for ; i < end; i++ {
			q, err := r.unary()
			if err != nil {
				return err
			}
			low, err := r.read(uint(k))
			if err != nil {
				return err
			}
			if q > 1<<40 {
				return fmt.Errorf("%w: residual out of range", ErrCorrupt)
			}
			u := q<<k | low
			dst[i] = int64(u>>1) ^ -int64(u&1)
		}
	}
	return nil
}

func restoreFixed(s []int64, order int) {
	switch order {
	case 1:
		for i := 1; i < len(s); i++ {
			s[i] += s[i-1]
		}
	case 2:
		for i := 2; i < len(s); i++ {
			s[i] += 2*s[i-1] - s[i-2]
		}
	case 3:
		for i := 3; i < len(s); i++ {
			s[i] += 3*s[i-1] - 3*s[i-2] + s[i-3]
		}
	case 4:
		for i := 4; i < len(s); i++ {
			s[i] += 4*s[i-1] - 6*s[i-2] + 4*s[i-3] - s[i-4]
		}
	}
}

func restoreLPC(s []int64, coef []int64, shift uint) {
	order := len(coef)
	for i := order; i < len(s); i++ {
		var sum int64
		for j, c := range coef {
			sum += c * s[i-1-j]
		}
		s[i] += sum >> shift
	}
}

// flacSkipCRC is a test hook: FuzzFLACWithoutCRCs turns the CRC checks
// off so that mutated frames reach the subframe decoder instead of being
// refused at their CRCs.
var flacSkipCRC bool

var crc8Table, crc16Table = func() (t8 [256]uint8, t16 [256]uint16) {
	for i := range 256 {
		c8, c16 := uint8(i), uint16(i)<<8
		for range 8 {
			if c8&0x80 != 0 {
				c8 = c8<<1 ^ 0x07
			} else {
				c8 <<= 1
			}
			if c16&0x8000 != 0 {
				c16 = c16<<1 ^ 0x8005
			} else {
				c16 <<= 1
			}
		}
		t8[i], t16[i] = c8, c16
	}
	return
}()

func crc8FLAC(b []byte) uint8 {
	var c uint8
	for _, x := range b {
		c = crc8Table[c^x]
	}
	return c
}

func crc16FLAC(b []byte) uint16 {
	var c uint16
	for _, x := range b {
		c = c<<8 ^ crc16Table[uint8(c>>8)^x]
	}
	return c
}
