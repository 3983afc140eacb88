package codecs

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/sensorium-io/sensorium/signals"
)

// The generic byte codecs: a general-purpose compressor over the plain body,
// optionally after a byte shuffle (FORMAT.md, "Byte codecs"). They know
// nothing of numbers, so they win only on data the numeric codec cannot model
// (floats with random mantissas, long repeats), and they are the baseline the
// numeric codec is measured against.
const (
	Zstd        ID = 2 // zstd frame of the plain body
	S2          ID = 3 // s2 block of the plain body
	ShuffleZstd ID = 4 // zstd frame of the byte-shuffled body
)

type byteCodec struct {
	id      ID
	name    string
	shuffle bool
	comp    func(dst, src []byte) []byte
	// check fails unless src can decode to exactly size bytes, judging by
	// what its format states without decoding: it runs before the output is
	// allocated.
	check func(src []byte, size int) error
	// decomp decodes src, which passed check, into dst, whose length is the
	// exact decoded size the frame header promises; more or less is corrupt.
	decomp func(dst, src []byte) error
}

func init() {
	for _, c := range []*byteCodec{
		{id: Zstd, name: "zstd", comp: zstdCompress, check: checkZstdFrame, decomp: zstdDecompress},
		{id: S2, name: "s2", comp: s2Compress, check: checkS2Block, decomp: s2Decompress},
		{id: ShuffleZstd, name: "shuffle-zstd", shuffle: true, comp: zstdCompress, check: checkZstdFrame, decomp: zstdDecompress},
	} {
		if err := Register(c); err != nil {
			panic(err)
		}
	}
}

func (c *byteCodec) ID() ID       { return c.id }
func (c *byteCodec) Name() string { return c.name }

// byteScratch holds the plain body between the compressor and the samples.
var byteScratch = sync.Pool{New: func() any { return new([]byte) }}

func (c *byteCodec) AppendEncoded(dst []byte, s *signals.Samples) ([]byte, error) {
	bp := byteScratch.Get().(*[]byte)
	defer byteScratch.Put(bp)
	var err error
	*bp, err = plain{}.AppendEncoded((*bp)[:0], s)
	if err != nil {
		return dst, fmt.Errorf("codecs: %s: encode: %w", c.name, err)
	}
	body := *bp
	if c.shuffle {
		tp := byteScratch.Get().(*[]byte)
		defer byteScratch.Put(tp)
		*tp = shuffleBytes(grow(*tp, len(body)), body, s.Type.Size(), s.Channels)
		body = *tp
	}
	return c.comp(dst, body), nil
}

func (c *byteCodec) Decode(src []byte, desc *signals.Scalar, n int, s *signals.Samples) error {
	t, channels, err := bodyShape(desc, n)
	if err != nil {
		return fmt.Errorf("codecs: %s: decode: %w", c.name, err)
	}
	size := uint64(n) * uint64(channels) * uint64(t.Size())
	// No ratio bounds these formats usefully (s2 writes 32 MiB of a constant
	// in 18 bytes, zstd an RLE block of 128 KiB in 4), so the output is
	// bounded by what a frame may hold and by what the body states about its
	// own size, both checked before anything is allocated.
	if size > MaxScalarFrameBytes {
		return fmt.Errorf("codecs: %s: decode: %w: %d samples × %d channels are %d bytes, a frame holds at most %d", c.name, ErrCorrupt, n, channels, size, MaxScalarFrameBytes)
	}
	if err := c.check(src, int(size)); err != nil {
		return fmt.Errorf("codecs: %s: decode: %w: %d bytes cannot hold %d samples × %d channels: %v", c.name, ErrCorrupt, len(src), n, channels, err)
	}
	bp := byteScratch.Get().(*[]byte)
	defer byteScratch.Put(bp)
	*bp = grow(*bp, int(size))
	if err := c.decomp(*bp, src); err != nil {
		return fmt.Errorf("codecs: %s: decode: %w: %v", c.name, ErrCorrupt, err)
	}
	body := *bp
	if c.shuffle {
		tp := byteScratch.Get().(*[]byte)
		defer byteScratch.Put(tp)
		*tp = unshuffleBytes(grow(*tp, len(body)), body, t.Size(), channels)
		body = *tp
	}
	return plain{}.Decode(body, desc, n, s)
}

// The zstd encoder and decoder are safe for concurrent EncodeAll/DecodeAll
// and expensive to build, so there is one of each. The decoder decodes into
// the caller's slice and never past its capacity (WithDecodeAllCapLimit),
// and never more than a frame may hold: DecodeAll would otherwise grow its
// output for as long as the input's blocks say, which a frame without a
// content size, or a second frame after the first, makes unbounded.
var (
	zstdEnc, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	zstdDec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(MaxScalarFrameBytes), zstd.WithDecodeAllCapLimit(true))
)

func zstdCompress(dst, src []byte) []byte { return zstdEnc.EncodeAll(src, dst) }

// zstdDecompress decodes src, one zstd frame that passed checkZstdFrame,
// into dst, whose length is the size the frame must decode to.
func zstdDecompress(dst, src []byte) error {
	// The full slice expression sets the capacity the decoder may fill: a
	// pooled buffer may have more.
	out, err := zstdDec.DecodeAll(src, dst[:0:len(dst)])
	if err != nil {
		return err
	}
	if len(out) != len(dst) || (len(out) > 0 && &out[0] != &dst[0]) {
		return fmt.Errorf("zstd frame decoded to %d bytes, want %d", len(out), len(dst))
	}
	return nil
}

// Block fields of a zstd frame (RFC 8878, section 3.1.1.2).
const (
	zstdBlockHeaderSize = 3
	zstdMaxBlockSize    = 128 << 10
	zstdChecksumSize    = 4
	zstdBlockRaw        = 0
	zstdBlockRLE        = 1
	zstdBlockReserved   = 3
)

// checkZstdFrame walks the headers of src's blocks, without decoding them,
// and fails unless src is exactly one zstd frame that may hold want bytes:
// the content size, when the frame has one, is want; raw and RLE blocks,
// whose sizes their headers state, add up to no more than want, and the
// blocks, of at most 128 KiB each, to at least want; nothing follows the
// frame (a second frame, even an empty or skippable one, is not what a
// writer makes). A frame of RLE blocks expands 32768 times, so this refuses
// such a bomb before anything is decoded; what compressed blocks decode to
// is bounded by the decoder's capacity limit.
func checkZstdFrame(src []byte, want int) error {
	var h zstd.Header
	rest, err := h.DecodeAndStrip(src)
	if err != nil {
		return err
	}
	if h.Skippable {
		return errors.New("a skippable frame, not a zstd frame")
	}
	if h.HasFCS && h.FrameContentSize != uint64(want) {
		return fmt.Errorf("zstd frame holds %d bytes, want %d", h.FrameContentSize, want)
	}
	known := 0 // bytes the raw and RLE blocks so far decode to
	most := 0  // bytes the blocks so far may decode to
	for {
		off := len(src) - len(rest)
		if len(rest) < zstdBlockHeaderSize {
			return fmt.Errorf("zstd block header at offset %d truncated", off)
		}
		bh := int(rest[0]) | int(rest[1])<<8 | int(rest[2])<<16
		rest = rest[zstdBlockHeaderSize:]
		last, typ, size := bh&1 != 0, (bh>>1)&3, bh>>3
		if size > zstdMaxBlockSize {
			return fmt.Errorf("zstd block at offset %d of %d bytes, at most %d", off, size, zstdMaxBlockSize)
		}
		stored := size
		most += zstdMaxBlockSize
		switch typ {
		case zstdBlockRaw:
			known += size
		case zstdBlockRLE:
			known, stored = known+size, 1
		case zstdBlockReserved:
			return fmt.Errorf("zstd block at offset %d has the reserved type", off)
		}
		if known > want {
			return fmt.Errorf("zstd frame holds more than the %d bytes wanted (block at offset %d)", want, off)
		}
		if stored > len(rest) {
			return fmt.Errorf("zstd block at offset %d truncated", off)
		}
		rest = rest[stored:]
		if last {
			break
		}
	}
	if h.HasCheckSum {
		if len(rest) < zstdChecksumSize {
			return errors.New("zstd frame checksum truncated")
		}
		rest = rest[zstdChecksumSize:]
	}
	if len(rest) != 0 {
		return fmt.Errorf("%d bytes after the zstd frame", len(rest))
	}
	if most < want {
		return fmt.Errorf("zstd frame of %d blocks holds less than the %d bytes wanted", most/zstdMaxBlockSize, want)
	}
	return nil
}

// s2Compress appends: s2.Encode writes from the start of its dst.
func s2Compress(dst, src []byte) []byte {
	n := len(dst)
	dst = slices.Grow(dst, s2.MaxEncodedLen(len(src)))
	out := s2.Encode(dst[n:cap(dst)], src)
	return dst[:n+len(out)]
}

// checkS2Block fails unless the s2 block src states that it decodes to size
// bytes: its header says so before anything is decoded, and the decoder
// holds it to that.
func checkS2Block(src []byte, size int) error {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("s2 block holds %d bytes, want %d", n, size)
	}
	return nil
}

// s2Decompress decodes src, which passed checkS2Block, into dst.
func s2Decompress(dst, src []byte) error {
	out, err := s2.Decode(dst, src)
	if err != nil {
		return err
	}
	if len(out) != len(dst) || (len(out) > 0 && &out[0] != &dst[0]) {
		return fmt.Errorf("s2 block decoded to %d bytes, want %d", len(out), len(dst))
	}
	return nil
}

// shuffleBytes writes src — interleaved values of size bytes over channels —
// as byte planes: for each byte position, for each channel, that byte of every
// sample. Equal high bytes then sit next to each other, which is what a byte
// compressor can use.
func shuffleBytes(dst, src []byte, size, channels int) []byte {
	stride := size * channels
	o := 0
	for b := range size {
		for c := range channels {
			for i := b + c*size; i < len(src); i += stride {
				dst[o] = src[i]
				o++
			}
		}
	}
	return dst
}

// unshuffleBytes inverts shuffleBytes.
func unshuffleBytes(dst, src []byte, size, channels int) []byte {
	stride := size * channels
	o := 0
	for b := range size {
		for c := range channels {
			for i := b + c*size; i < len(dst); i += stride {
				dst[i] = src[o]
				o++
			}
		}
	}
	return dst
}
