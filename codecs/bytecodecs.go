package codecs

import (
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
	// decomp decodes src into dst, whose length is the exact decoded size
	// the frame header promises; more or less is corrupt.
	decomp func(dst, src []byte) error
}

func init() {
	for _, c := range []*byteCodec{
		{id: Zstd, name: "zstd", comp: zstdCompress, decomp: zstdDecompress},
		{id: S2, name: "s2", comp: s2Compress, decomp: s2Decompress},
		{id: ShuffleZstd, name: "shuffle-zstd", shuffle: true, comp: zstdCompress, decomp: zstdDecompress},
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
	// Both formats bound what they expand to; a frame that claims more than
	// maxByteCodecExpansion times its size is refused before anything is
	// allocated.
	if size > uint64(len(src))*maxByteCodecExpansion+64 {
		return fmt.Errorf("codecs: %s: decode: %w: %d bytes cannot hold %d samples × %d channels", c.name, ErrCorrupt, len(src), n, channels)
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

// maxByteCodecExpansion bounds the decoded size of a byte-codec body: zstd's
// best case is a little over 1000:1 per block of repeats; beyond this the
// frame is not one a writer made.
const maxByteCodecExpansion = 4096

// The zstd encoder and decoder are safe for concurrent EncodeAll/DecodeAll
// and expensive to build, so there is one of each.
var (
	zstdEnc, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	zstdDec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<30))
)

func zstdCompress(dst, src []byte) []byte { return zstdEnc.EncodeAll(src, dst) }

func zstdDecompress(dst, src []byte) error {
	var h zstd.Header
	if err := h.Decode(src); err != nil {
		return err
	}
	// The encoder writes the content size except for tiny inputs; when it is
	// there it must be right, and the output check below covers the rest.
	if h.HasFCS && h.FrameContentSize != uint64(len(dst)) {
		return fmt.Errorf("zstd frame holds %d bytes, want %d", h.FrameContentSize, len(dst))
	}
	out, err := zstdDec.DecodeAll(src, dst[:0])
	if err != nil {
		return err
	}
	if len(out) != len(dst) || (len(out) > 0 && &out[0] != &dst[0]) {
		return fmt.Errorf("zstd frame decoded to %d bytes, want %d", len(out), len(dst))
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

func s2Decompress(dst, src []byte) error {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return err
	}
	if n != len(dst) {
		return fmt.Errorf("s2 block holds %d bytes, want %d", n, len(dst))
	}
	_, err = s2.Decode(dst, src)
	return err
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
