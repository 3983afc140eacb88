// Package mkv reads and writes the Matroska (MKV) that Sensorium moves
// around: fragments from producers (PutMedia, the NATS bus) and chunks to
// consumers (GetMedia), laid out as Amazon Kinesis Video Streams lays them
// out, so that KVS tools and parsers keep working.
//
// It owns two things:
//
//   - a streaming EBML/Matroska reader (Reader) that pulls one Item at a time
//     from a stream of documents back to back, as a GetMedia response is: an
//     EBML header and a Segment per chunk. It crosses document boundaries,
//     handles unknown-size Segments and Clusters, streams clusters block by
//     block, and never panics on malformed input;
//   - an append-style writer (the Append functions and Writer) for the
//     subset of Matroska below.
//
// It does not own what frames mean (package codecs), how fragments are
// stored (store) or served (query).
//
// ebml-go (DESIGN.md's choice) is used where it holds: its element table is
// checked against our IDs, and its reader is a test oracle for what we write.
// The reader is our own because ebml-go's block reader stops after the first
// document of a stream and deadlocks when one track is read to its end first.
// The writer is our own too, for three reasons measured here: ebml-go's
// marshaller writes a Segment from a whole Go struct, so it cannot emit an
// unknown-size Segment that goes out before its Clusters are known, nor
// splice KVS's tags into a stored fragment without decoding it; it builds
// each element through reflection, an allocation per element on the path
// every GetMedia chunk takes; and the few elements a chunk needs (the table
// below) are a page of append functions, checked by ffprobe, mkvinfo and
// ebml-go's own reader in tests.
//
// # What the writer writes
//
// A chunk is one EBML document; FORMAT.md lists every element with its ID
// (format_test.go keeps that table and the constants in step):
//
//	EBML                                  header, sizes known
//	  EBMLVersion 1, EBMLReadVersion 1, EBMLMaxIDLength 4,
//	  EBMLMaxSizeLength 8, DocType, DocTypeVersion 4, DocTypeReadVersion 2
//	Segment                               size unknown (01 FF FF FF FF FF FF FF)
//	  Info        TimecodeScale (always), Duration, MuxingApp, WritingApp, Title
//	  Tracks      TrackEntry per track: TrackNumber, TrackUID, TrackType, Name,
//	              CodecID, CodecPrivate, DefaultDuration, Video{PixelWidth,
//	              PixelHeight}, Audio{SamplingFrequency, Channels, BitDepth}
//	  Tags        one Tag: Targets{TargetTypeValue 50}, SimpleTag{TagName,
//	              TagString} per tag (fragment number, timestamps)
//	  Cluster     size known: Timecode, then per frame a SimpleBlock, or a
//	              BlockGroup{Block, BlockDuration, ReferenceBlock} when the
//	              frame has a duration; never laced
//	  Tags        per cluster (millis behind now, continuation token)
//
// Sizes use the shortest VINT, integers the fewest bytes (at least one),
// floats 8 bytes. Optional fields that are zero are left out.
//
// The Segment's unknown size lets a chunk go out before its end is known.
// ffmpeg and mkvinfo read one such document cleanly, but log an error at
// each boundary of concatenated ones (and resync, losing nothing);
// FinishSegment gives a complete chunk a known size in place, and then they
// read concatenated chunks silently. This Reader reads both.
//
// # What the reader accepts
//
// Any Matroska or WebM stream: one or more documents; Segments and Clusters
// of known or unknown size; SimpleBlocks and BlockGroups with any lacing
// (Xiph, fixed-size, EBML), one Item per laced frame. An unknown-size
// Segment ends at the end of the stream or at the next EBML header; an
// unknown-size Cluster at the first element that cannot be its child.
// Segment children other than Info, Tracks, Tags and Cluster are skipped
// without buffering. Errors: *SyntaxError for malformed data, an error
// wrapping io.ErrUnexpectedEOF (*TruncatedError) for input that stops inside
// an element, one wrapping ErrTooLarge for an element over MaxElementSize,
// *ReadError for a failing io.Reader; all carry the stream offset.
//
// # Lifecycle
//
// Reader: NewReader, then Next until io.EOF or an error; Item.Block and its
// Data are reused by the next call. Writer: NewWriter, then per chunk
// WriteHeader, StartSegment, WriteInfo, WriteTracks, WriteTags, WriteCluster,
// WriteTags; the first write error sticks and is returned by Err.
package mkv
