package mkv

// Element IDs, written with their VINT marker bits as Matroska and the EBML
// RFC 8794 list them (so the EBML header is 0x1A45DFA3 on the wire and here).
// They are part of the format: FORMAT.md lists the ones the writer emits and
// format_test.go checks that table against these constants.
const (
	// EBML header.
	IDEBML               uint32 = 0x1A45DFA3
	IDEBMLVersion        uint32 = 0x4286
	IDEBMLReadVersion    uint32 = 0x42F7
	IDEBMLMaxIDLength    uint32 = 0x42F2
	IDEBMLMaxSizeLength  uint32 = 0x42F3
	IDDocType            uint32 = 0x4282
	IDDocTypeVersion     uint32 = 0x4287
	IDDocTypeReadVersion uint32 = 0x4285

	// Segment and Info.
	IDSegment       uint32 = 0x18538067
	IDSeekHead      uint32 = 0x114D9B74
	IDInfo          uint32 = 0x1549A966
	IDTimecodeScale uint32 = 0x2AD7B1
	IDDuration      uint32 = 0x4489
	IDMuxingApp     uint32 = 0x4D80
	IDWritingApp    uint32 = 0x5741
	IDTitle         uint32 = 0x7BA9
	IDSegmentUID    uint32 = 0x73A4

	// Tracks.
	IDTracks            uint32 = 0x1654AE6B
	IDTrackEntry        uint32 = 0xAE
	IDTrackNumber       uint32 = 0xD7
	IDTrackUID          uint32 = 0x73C5
	IDTrackType         uint32 = 0x83
	IDName              uint32 = 0x536E
	IDCodecID           uint32 = 0x86
	IDCodecPrivate      uint32 = 0x63A2
	IDDefaultDuration   uint32 = 0x23E383
	IDVideo             uint32 = 0xE0
	IDPixelWidth        uint32 = 0xB0
	IDPixelHeight       uint32 = 0xBA
	IDAudio             uint32 = 0xE1
	IDSamplingFrequency uint32 = 0xB5
	IDChannels          uint32 = 0x9F
	IDBitDepth          uint32 = 0x6264
	IDFlagLacing        uint32 = 0x9C
	IDLanguage          uint32 = 0x22B59C

	// Cluster and blocks.
	IDCluster        uint32 = 0x1F43B675
	IDTimecode       uint32 = 0xE7
	IDSimpleBlock    uint32 = 0xA3
	IDBlockGroup     uint32 = 0xA0
	IDBlock          uint32 = 0xA1
	IDBlockDuration  uint32 = 0x9B
	IDReferenceBlock uint32 = 0xFB
	IDPosition       uint32 = 0xA7
	IDPrevSize       uint32 = 0xAB

	// Tags.
	IDTags            uint32 = 0x1254C367
	IDTag             uint32 = 0x7373
	IDTargets         uint32 = 0x63C0
	IDTargetTypeValue uint32 = 0x68CA
	IDSimpleTag       uint32 = 0x67C8
	IDTagName         uint32 = 0x45A3
	IDTagString       uint32 = 0x4487
	IDTagBinary       uint32 = 0x4485

	// Elements the reader only skips.
	IDCues        uint32 = 0x1C53BB6B
	IDChapters    uint32 = 0x1043A770
	IDAttachments uint32 = 0x1941A469
	IDVoid        uint32 = 0xEC
	IDCRC32       uint32 = 0xBF

	// Cluster children we never decode but must recognise, so that an
	// unknown-size Cluster does not end at them.
	idSilentTracks   uint32 = 0x5854
	idEncryptedBlock uint32 = 0xAF
)

// UnknownSize is the size reported for an element whose size field is the
// reserved all-ones value (only Segment and Cluster may have one).
const UnknownSize int64 = -1

// DefaultTimecodeScale is the Matroska default and the only scale Sensorium
// writes: one timecode unit is 1,000,000 ns (1 ms).
const DefaultTimecodeScale = 1_000_000

// Track types (Matroska TrackType).
const (
	TrackTypeVideo    = 1
	TrackTypeAudio    = 2
	TrackTypeComplex  = 3
	TrackTypeSubtitle = 0x11
	TrackTypeMetadata = 0x21
)

// SimpleTag names the seed service (Kinesis Video Streams) puts in GetMedia
// chunks; Sensorium uses the same names so existing parsers keep working.
const (
	TagFragmentNumber    = "AWS_KINESISVIDEO_FRAGMENT_NUMBER"
	TagServerTimestamp   = "AWS_KINESISVIDEO_SERVER_TIMESTAMP"
	TagProducerTimestamp = "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP"
	TagMillisBehindNow   = "AWS_KINESISVIDEO_MILLIS_BEHIND_NOW"
	TagContinuationToken = "AWS_KINESISVIDEO_CONTINUATION_TOKEN"
	TagErrorCode         = "AWS_KINESISVIDEO_ERROR_CODE"
	TagErrorID           = "AWS_KINESISVIDEO_ERROR_ID"
)

// SimpleTag names Sensorium gives the seed service's tags of an archive that
// is put back (a GetMedia download sent to PutMedia): they describe the
// fragment as the old server stored it, and are served as the producer's own
// tags from then on. docs/NATS.md has the mapping.
const (
	TagOriginFragmentNumber    = "origin_fragment_number"    // from AWS_KINESISVIDEO_FRAGMENT_NUMBER
	TagOriginServerTimestamp   = "origin_server_timestamp"   // from AWS_KINESISVIDEO_SERVER_TIMESTAMP
	TagOriginProducerTimestamp = "origin_producer_timestamp" // AWS_KINESISVIDEO_PRODUCER_TIMESTAMP, when not the cluster's time
)

// isClusterChild reports whether id may appear directly inside a Cluster.
// An unknown-size Cluster ends at the first element for which it is false.
func isClusterChild(id uint32) bool {
	switch id {
	case IDTimecode, IDSimpleBlock, IDBlockGroup, IDPosition, IDPrevSize,
		idSilentTracks, idEncryptedBlock, IDVoid, IDCRC32:
		return true
	}
	return false
}

// elementName names the elements that appear in error messages.
func elementName(id uint32) string {
	switch id {
	case IDEBML:
		return "EBML header"
	case IDSegment:
		return "Segment"
	case IDInfo:
		return "Info"
	case IDTracks:
		return "Tracks"
	case IDTrackEntry:
		return "TrackEntry"
	case IDTags:
		return "Tags"
	case IDTag:
		return "Tag"
	case IDSimpleTag:
		return "SimpleTag"
	case IDCluster:
		return "Cluster"
	case IDTimecode:
		return "Timecode"
	case IDSimpleBlock:
		return "SimpleBlock"
	case IDBlockGroup:
		return "BlockGroup"
	case IDBlock:
		return "Block"
	case IDVoid:
		return "Void"
	}
	return "element 0x" + hexID(id)
}

func hexID(id uint32) string {
	const digits = "0123456789ABCDEF"
	var b [8]byte
	n := idLen(id) * 2
	for i := n - 1; i >= 0; i-- {
		b[i] = digits[id&0xF]
		id >>= 4
	}
	return string(b[:n])
}
