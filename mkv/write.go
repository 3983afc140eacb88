package mkv

import (
	"fmt"
	"math"
)

// The Append functions encode one element each, VictoriaMetrics style: they
// append to dst and return the extended slice, so a caller can reuse one
// buffer for a whole stream. Every size is known and written in its shortest
// form, except the Segment's, which is unknown so that a chunk can be
// produced while its frames are still arriving.

// AppendElement appends a generic element: its ID, the shortest size VINT
// and body.
func AppendElement(dst []byte, id uint32, body []byte) []byte {
	dst = appendID(dst, id)
	dst = appendVint(dst, uint64(len(body)))
	return append(dst, body...)
}

// AppendEBMLHeader appends the EBML header of a Matroska document:
// EBMLVersion 1, EBMLReadVersion 1, EBMLMaxIDLength 4, EBMLMaxSizeLength 8,
// DocType, DocTypeVersion 4, DocTypeReadVersion 2 (what mkvmerge writes for
// files that use SimpleBlock).
func AppendEBMLHeader(dst []byte, docType string) []byte {
	dst, mark := beginMaster(dst, IDEBML)
	dst = appendUintElem(dst, IDEBMLVersion, 1)
	dst = appendUintElem(dst, IDEBMLReadVersion, 1)
	dst = appendUintElem(dst, IDEBMLMaxIDLength, maxIDLen)
	dst = appendUintElem(dst, IDEBMLMaxSizeLength, maxSizeLen)
	dst = appendStringElem(dst, IDDocType, docType)
	dst = appendUintElem(dst, IDDocTypeVersion, 4)
	dst = appendUintElem(dst, IDDocTypeReadVersion, 2)
	return endMaster(dst, mark)
}

// AppendSegmentStart appends a Segment ID with an unknown size
// (0x01FFFFFFFFFFFFFF): the Segment ends at the end of the stream or at the
// next EBML header, which is how GetMedia concatenates chunks.
func AppendSegmentStart(dst []byte) []byte { return append(dst, segmentStart...) }

// FinishSegment gives the Segment that AppendSegmentStart wrote at
// b[start:] a known size, in place: everything in b after the Segment
// header. The 8-byte size field can hold any size, so nothing moves.
//
// Why: an unknown size lets a chunk be sent before its end is known, as KVS
// does, but ffmpeg and mkvinfo report an error at every document boundary of
// concatenated unknown-size Segments (they resync and lose nothing); with
// known sizes they read concatenated chunks silently. Our Reader reads both.
func FinishSegment(b []byte, start int) error {
	if start < 0 || len(b)-start < len(segmentStart) || string(b[start:start+len(segmentStart)]) != segmentStart {
		return fmt.Errorf("mkv: FinishSegment: no unknown-size Segment header at offset %d", start)
	}
	putVint(b[start+idLen(IDSegment):start+len(segmentStart)], uint64(len(b)-start-len(segmentStart)))
	return nil
}

// segmentStart is what AppendSegmentStart writes.
const segmentStart = "\x18\x53\x80\x67" + unknownSizeVint

// AppendInfo appends the segment Info. TimecodeScale is always written
// (0 becomes DefaultTimecodeScale); Duration and the strings only when set.
func AppendInfo(dst []byte, info Info) []byte {
	dst, mark := beginMaster(dst, IDInfo)
	scale := info.TimecodeScale
	if scale == 0 {
		scale = DefaultTimecodeScale
	}
	dst = appendUintElem(dst, IDTimecodeScale, scale)
	if info.Duration != 0 {
		dst = appendFloatElem(dst, IDDuration, info.Duration)
	}
	dst = appendOptString(dst, IDMuxingApp, info.MuxingApp)
	dst = appendOptString(dst, IDWritingApp, info.WritingApp)
	dst = appendOptString(dst, IDTitle, info.Title)
	return endMaster(dst, mark)
}

// AppendTracks appends a Tracks element with one TrackEntry per track.
// TrackNumber and TrackType are always written; the other fields only when
// set (TrackUID should be set: Matroska requires a non-zero one).
func AppendTracks(dst []byte, tracks []TrackEntry) []byte {
	dst, mark := beginMaster(dst, IDTracks)
	for i := range tracks {
		dst = appendTrackEntry(dst, &tracks[i])
	}
	return endMaster(dst, mark)
}

func appendTrackEntry(dst []byte, t *TrackEntry) []byte {
	dst, mark := beginMaster(dst, IDTrackEntry)
	dst = appendUintElem(dst, IDTrackNumber, t.Number)
	if t.UID != 0 {
		dst = appendUintElem(dst, IDTrackUID, t.UID)
	}
	dst = appendUintElem(dst, IDTrackType, t.Type)
	dst = appendOptString(dst, IDName, t.Name)
	dst = appendOptString(dst, IDCodecID, t.CodecID)
	if len(t.CodecPrivate) > 0 {
		dst = AppendElement(dst, IDCodecPrivate, t.CodecPrivate)
	}
	if t.DefaultDuration != 0 {
		dst = appendUintElem(dst, IDDefaultDuration, t.DefaultDuration)
	}
	if v := t.Video; v != nil {
		var vm int
		dst, vm = beginMaster(dst, IDVideo)
		dst = appendUintElem(dst, IDPixelWidth, v.PixelWidth)
		dst = appendUintElem(dst, IDPixelHeight, v.PixelHeight)
		dst = endMaster(dst, vm)
	}
	if a := t.Audio; a != nil {
		var am int
		dst, am = beginMaster(dst, IDAudio)
		dst = appendFloatElem(dst, IDSamplingFrequency, a.SamplingFrequency)
		dst = appendUintElem(dst, IDChannels, a.Channels)
		if a.BitDepth != 0 {
			dst = appendUintElem(dst, IDBitDepth, a.BitDepth)
		}
		dst = endMaster(dst, am)
	}
	return endMaster(dst, mark)
}

// AppendTags appends one Tags element holding one Tag that targets the whole
// segment (TargetTypeValue 50, as KVS does) with a SimpleTag{TagName,
// TagString} per tag, in order. With no tags it appends nothing: Matroska
// requires at least one SimpleTag in a Tag. Names and values must not
// contain zero bytes: EBML strings end at the first one.
func AppendTags(dst []byte, tags []SimpleTag) []byte {
	if len(tags) == 0 {
		return dst
	}
	dst, mark := beginMaster(dst, IDTags)
	dst, tag := beginMaster(dst, IDTag)
	dst, targets := beginMaster(dst, IDTargets)
	dst = appendUintElem(dst, IDTargetTypeValue, 50)
	dst = endMaster(dst, targets)
	for _, t := range tags {
		var st int
		dst, st = beginMaster(dst, IDSimpleTag)
		dst = appendStringElem(dst, IDTagName, t.Name)
		dst = appendStringElem(dst, IDTagString, t.Value)
		dst = endMaster(dst, st)
	}
	dst = endMaster(dst, tag)
	return endMaster(dst, mark)
}

// appendUintElem writes v big-endian in as few bytes as hold it (at least
// one: some parsers mishandle empty integers).
func appendUintElem(dst []byte, id uint32, v uint64) []byte {
	n := uintLen(v)
	dst = appendID(dst, id)
	dst = append(dst, byte(n|0x80))
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, byte(v>>(8*i)))
	}
	return dst
}

func uintLen(v uint64) int {
	n := 1
	for v > 0xFF {
		v >>= 8
		n++
	}
	return n
}

func uintElemLen(id uint32, v uint64) int { return idLen(id) + 1 + uintLen(v) }

// appendIntElem writes v as the shortest big-endian two's complement.
func appendIntElem(dst []byte, id uint32, v int64) []byte {
	n := intLen(v)
	dst = appendID(dst, id)
	dst = append(dst, byte(n|0x80))
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, byte(v>>(8*i)))
	}
	return dst
}

func intLen(v int64) int {
	n := 1
	for v < -0x80 || v > 0x7F {
		v >>= 8
		n++
	}
	return n
}

func intElemLen(id uint32, v int64) int { return idLen(id) + 1 + intLen(v) }

// appendFloatElem always writes 8 bytes so that values round-trip exactly.
func appendFloatElem(dst []byte, id uint32, f float64) []byte {
	dst = appendID(dst, id)
	dst = append(dst, 0x88)
	u := math.Float64bits(f)
	for i := 7; i >= 0; i-- {
		dst = append(dst, byte(u>>(8*i)))
	}
	return dst
}

func appendStringElem(dst []byte, id uint32, s string) []byte {
	dst = appendID(dst, id)
	dst = appendVint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendOptString(dst []byte, id uint32, s string) []byte {
	if s == "" {
		return dst
	}
	return appendStringElem(dst, id, s)
}

// beginMaster appends id and reserves 8 bytes for the size; endMaster fills
// in the shortest size and moves the body down over the unused bytes. This
// keeps the Append style for small masters (header, Info, Tracks, Tags)
// without a separate length pass; AppendCluster computes its size up front
// instead, because moving a large cluster body would double its cost.
func beginMaster(dst []byte, id uint32) ([]byte, int) {
	dst = appendID(dst, id)
	mark := len(dst)
	return append(dst, 0, 0, 0, 0, 0, 0, 0, 0), mark
}

func endMaster(dst []byte, mark int) []byte {
	body := len(dst) - mark - maxSizeLen
	n := sizeLen(uint64(body))
	copy(dst[mark+n:], dst[mark+maxSizeLen:])
	putVint(dst[mark:mark+n], uint64(body))
	return dst[:len(dst)-(maxSizeLen-n)]
}
