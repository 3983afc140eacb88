package mkv

// Block header flags (Matroska SimpleBlock; a Block inside a BlockGroup uses
// only the lacing bits).
const (
	flagKeyframe    = 0x80
	flagDiscardable = 0x01
	flagLacingMask  = 0x06
	lacingNone      = 0x00
	lacingXiph      = 0x02
	lacingFixed     = 0x04
	lacingEBML      = 0x06
)

// blockHeaderLen: track number VINT, int16 relative timecode, flags byte.
func blockHeaderLen(track uint64) int { return sizeLen(track) + 3 }

// AppendCluster appends a Cluster of known size: its Timecode, then one
// element per block, unlaced. A block with Duration 0 becomes a SimpleBlock
// carrying the keyframe and discardable flags. A block with Duration > 0
// becomes a BlockGroup{Block, BlockDuration, ReferenceBlock when it is not a
// key frame}; a Block has no discardable flag, so Discardable is not
// recorded for it.
func AppendCluster(dst []byte, timecode uint64, blocks []Block) []byte {
	body := uint64(uintElemLen(IDTimecode, timecode))
	for i := range blocks {
		body += uint64(blockElemLen(blocks, i))
	}
	dst = appendID(dst, IDCluster)
	dst = appendVint(dst, body)
	dst = appendUintElem(dst, IDTimecode, timecode)
	for i := range blocks {
		dst = appendBlockElem(dst, blocks, i)
	}
	return dst
}

// blockElemLen is the encoded length of blocks[i] as AppendCluster writes it.
func blockElemLen(blocks []Block, i int) int {
	b := &blocks[i]
	if b.Duration == 0 {
		payload := blockHeaderLen(b.Track) + len(b.Data)
		return idLen(IDSimpleBlock) + sizeLen(uint64(payload)) + payload
	}
	group := blockGroupBodyLen(blocks, i)
	return idLen(IDBlockGroup) + sizeLen(uint64(group)) + group
}

// blockGroupBodyLen is the body length of the BlockGroup written for
// blocks[i]: Block, BlockDuration and, for a non-key frame, ReferenceBlock.
func blockGroupBodyLen(blocks []Block, i int) int {
	b := &blocks[i]
	payload := blockHeaderLen(b.Track) + len(b.Data)
	n := idLen(IDBlock) + sizeLen(uint64(payload)) + payload
	n += uintElemLen(IDBlockDuration, b.Duration)
	if !b.Keyframe {
		n += intElemLen(IDReferenceBlock, referenceFor(blocks, i))
	}
	return n
}

func appendBlockElem(dst []byte, blocks []Block, i int) []byte {
	b := &blocks[i]
	payload := uint64(blockHeaderLen(b.Track) + len(b.Data))
	if b.Duration == 0 {
		var flags byte
		if b.Keyframe {
			flags |= flagKeyframe
		}
		if b.Discardable {
			flags |= flagDiscardable
		}
		dst = appendID(dst, IDSimpleBlock)
		dst = appendVint(dst, payload)
		return appendBlockPayload(dst, b, flags)
	}
	dst = appendID(dst, IDBlockGroup)
	dst = appendVint(dst, uint64(blockGroupBodyLen(blocks, i)))
	dst = appendID(dst, IDBlock)
	dst = appendVint(dst, payload)
	dst = appendBlockPayload(dst, b, 0)
	dst = appendUintElem(dst, IDBlockDuration, b.Duration)
	if !b.Keyframe {
		dst = appendIntElem(dst, IDReferenceBlock, referenceFor(blocks, i))
	}
	return dst
}

func appendBlockPayload(dst []byte, b *Block, flags byte) []byte {
	dst = appendVint(dst, b.Track)
	dst = append(dst, byte(uint16(b.Timecode)>>8), byte(b.Timecode), flags)
	return append(dst, b.Data...)
}

// referenceFor is the ReferenceBlock value of a non-key BlockGroup. Matroska
// marks a frame as not a key frame only by the presence of ReferenceBlock,
// whose value is the relative timecode of the frame it depends on. The
// writer does not know the codec's dependencies, so it points at the
// previous block of the same track in this cluster, or at -1 (some earlier
// frame) when there is none.
func referenceFor(blocks []Block, i int) int64 {
	for j := i - 1; j >= 0; j-- {
		if blocks[j].Track == blocks[i].Track {
			return int64(blocks[j].Timecode) - int64(blocks[i].Timecode)
		}
	}
	return -1
}
