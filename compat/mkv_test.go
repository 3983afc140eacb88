package compat

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A small EBML walker: enough Matroska to compare what ffmpeg wrote with what
// the server gives back (clusters, blocks, tracks, tags), independent of the
// server's own MKV code. It reads one document or several concatenated (as
// GetMedia answers), and Segments and Clusters of unknown size (as a live
// muxer writes them).

// Element IDs (Matroska specification), with their marker bits.
const (
	idEBML        = 0x1A45DFA3
	idSegment     = 0x18538067
	idSeekHead    = 0x114D9B74
	idInfo        = 0x1549A966
	idTracks      = 0x1654AE6B
	idCluster     = 0x1F43B675
	idCues        = 0x1C53BB6B
	idTags        = 0x1254C367
	idChapters    = 0x1043A770
	idAttachments = 0x1941A469

	idTrackEntry  = 0xAE
	idTrackNumber = 0xD7
	idTrackType   = 0x83
	idCodecID     = 0x86

	idTimecode    = 0xE7
	idSimpleBlock = 0xA3
	idBlockGroup  = 0xA0
	idBlock       = 0xA1

	idTag       = 0x7373
	idSimpleTag = 0x67C8
	idTagName   = 0x45A3
	idTagString = 0x4487
)

// levelOne are the IDs that end a Cluster of unknown size.
var levelOne = map[uint64]bool{
	idEBML: true, idSegment: true, idSeekHead: true, idInfo: true, idTracks: true, idCluster: true,
	idCues: true, idTags: true, idChapters: true, idAttachments: true,
}

// mkvDoc is one EBML document: an EBML header and its Segment.
type mkvDoc struct {
	Offset   int // of its EBML header in the data parsed
	Tracks   []mkvTrack
	Tags     map[string]string // every SimpleTag's name and string value
	Clusters []mkvCluster
}

type mkvTrack struct {
	Number  uint64
	Type    uint64 // 1 video, 2 audio
	CodecID string
}

type mkvCluster struct {
	Timecode int64 // ms at the usual 1 ms TimecodeScale
	Blocks   []mkvBlock
}

// mkvBlock is a SimpleBlock or a BlockGroup's Block.
type mkvBlock struct {
	Track uint64
	Time  int64 // cluster timecode + the block's offset
	Key   bool  // SimpleBlock key flag (always false for a Block)
	Data  []byte
}

// frames is every block of every document, in order.
func frames(docs []mkvDoc) []mkvBlock {
	var out []mkvBlock
	for _, d := range docs {
		for _, c := range d.Clusters {
			out = append(out, c.Blocks...)
		}
	}
	return out
}

var errTruncated = errors.New("mkv: truncated element")

// readVint reads an EBML variable-size integer at b[0:]; keepMarker keeps
// the length marker (element IDs do). unknown reports a size of all ones.
func readVint(b []byte, keepMarker bool) (v uint64, n int, unknown bool, err error) {
	if len(b) == 0 {
		return 0, 0, false, errTruncated
	}
	n = 1
	for mask := byte(0x80); n <= 8 && b[0]&mask == 0; mask >>= 1 {
		n++
	}
	if n > 8 {
		return 0, 0, false, fmt.Errorf("mkv: invalid vint 0x%02x", b[0])
	}
	if len(b) < n {
		return 0, 0, false, errTruncated
	}
	v = uint64(b[0])
	if !keepMarker {
		v &= uint64(0xFF >> n)
	}
	allOnes := v == uint64(0xFF>>n)
	for _, c := range b[1:n] {
		v = v<<8 | uint64(c)
		allOnes = allOnes && c == 0xFF
	}
	return v, n, allOnes && !keepMarker, nil
}

// element is one element header at b[0:].
type element struct {
	ID      uint64
	Header  int   // bytes of ID and size
	Size    int64 // -1 for unknown
	Payload []byte
}

func readElement(b []byte) (element, error) {
	id, n1, _, err := readVint(b, true)
	if err != nil {
		return element{}, err
	}
	size, n2, unknown, err := readVint(b[n1:], false)
	if err != nil {
		return element{}, err
	}
	e := element{ID: id, Header: n1 + n2, Size: int64(size)}
	if unknown {
		e.Size = -1
		e.Payload = b[e.Header:]
		return e, nil
	}
	if size > uint64(len(b)-e.Header) {
		return element{}, fmt.Errorf("mkv: element 0x%X of %d bytes runs past the data (%d left): %w", id, size, len(b)-e.Header, errTruncated)
	}
	e.Payload = b[e.Header : e.Header+int(size)]
	return e, nil
}

// children calls f for each child of a master element of known size.
func children(p []byte, f func(element) error) error {
	for pos := 0; pos < len(p); {
		e, err := readElement(p[pos:])
		if err != nil {
			return err
		}
		if e.Size < 0 {
			return fmt.Errorf("mkv: element 0x%X of unknown size inside one of known size", e.ID)
		}
		if err := f(e); err != nil {
			return err
		}
		pos += e.Header + len(e.Payload)
	}
	return nil
}

// parseMKV reads concatenated EBML documents.
func parseMKV(b []byte) ([]mkvDoc, error) {
	var docs []mkvDoc
	for pos := 0; pos < len(b); {
		e, err := readElement(b[pos:])
		if err != nil {
			return docs, fmt.Errorf("at %d: %w", pos, err)
		}
		pos += e.Header
		switch e.ID {
		case idEBML:
			docs = append(docs, mkvDoc{Offset: pos - e.Header, Tags: map[string]string{}})
			pos += len(e.Payload)
		case idSegment:
			if len(docs) == 0 {
				return nil, fmt.Errorf("at %d: a Segment before an EBML header", pos)
			}
			n, err := parseSegment(e, &docs[len(docs)-1])
			if err != nil {
				return docs, fmt.Errorf("segment at %d: %w", pos, err)
			}
			pos += n
		default:
			return docs, fmt.Errorf("at %d: top-level element 0x%X", pos-e.Header, e.ID)
		}
	}
	return docs, nil
}

// parseSegment reads a Segment's children into d and returns the payload
// bytes it used (all of it, for a Segment of known size).
func parseSegment(seg element, d *mkvDoc) (int, error) {
	p := seg.Payload
	pos := 0
	for pos < len(p) {
		e, err := readElement(p[pos:])
		if err != nil {
			return pos, err
		}
		if seg.Size < 0 && (e.ID == idEBML || e.ID == idSegment) {
			break // the next document
		}
		switch e.ID {
		case idTracks:
			if err := parseTracks(e.Payload, d); err != nil {
				return pos, err
			}
		case idTags:
			if err := parseTags(e.Payload, d); err != nil {
				return pos, err
			}
		case idCluster:
			c, n, err := parseCluster(e, d)
			if err != nil {
				return pos, err
			}
			d.Clusters = append(d.Clusters, c)
			pos += e.Header + n
			continue
		default:
			if e.Size < 0 {
				return pos, fmt.Errorf("element 0x%X of unknown size", e.ID)
			}
		}
		pos += e.Header + len(e.Payload)
	}
	return pos, nil
}

// parseCluster reads a Cluster, of known or unknown size, and returns the
// payload bytes it used.
func parseCluster(ce element, d *mkvDoc) (mkvCluster, int, error) {
	var c mkvCluster
	p := ce.Payload
	pos := 0
	for pos < len(p) {
		e, err := readElement(p[pos:])
		if err != nil {
			return c, pos, err
		}
		if ce.Size < 0 && levelOne[e.ID] {
			break
		}
		if e.Size < 0 {
			return c, pos, fmt.Errorf("cluster child 0x%X of unknown size", e.ID)
		}
		switch e.ID {
		case idTimecode:
			c.Timecode = int64(uintOf(e.Payload))
		case idSimpleBlock:
			b, err := parseBlock(e.Payload, c.Timecode, true)
			if err != nil {
				return c, pos, err
			}
			c.Blocks = append(c.Blocks, b)
		case idBlockGroup:
			if err := children(e.Payload, func(g element) error {
				if g.ID == idBlock {
					b, err := parseBlock(g.Payload, c.Timecode, false)
					if err != nil {
						return err
					}
					c.Blocks = append(c.Blocks, b)
				}
				return nil
			}); err != nil {
				return c, pos, err
			}
		case idTags: // tags inside a cluster are not Matroska, but tolerate them
			if err := parseTags(e.Payload, d); err != nil {
				return c, pos, err
			}
		}
		pos += e.Header + len(e.Payload)
	}
	return c, pos, nil
}

func parseBlock(p []byte, clusterTC int64, simple bool) (mkvBlock, error) {
	track, n, _, err := readVint(p, false)
	if err != nil {
		return mkvBlock{}, err
	}
	if len(p) < n+3 {
		return mkvBlock{}, errTruncated
	}
	rel := int16(binary.BigEndian.Uint16(p[n:]))
	flags := p[n+2]
	return mkvBlock{Track: track, Time: clusterTC + int64(rel), Key: simple && flags&0x80 != 0, Data: p[n+3:]}, nil
}

func parseTracks(p []byte, d *mkvDoc) error {
	return children(p, func(e element) error {
		if e.ID != idTrackEntry {
			return nil
		}
		var tr mkvTrack
		err := children(e.Payload, func(f element) error {
			switch f.ID {
			case idTrackNumber:
				tr.Number = uintOf(f.Payload)
			case idTrackType:
				tr.Type = uintOf(f.Payload)
			case idCodecID:
				tr.CodecID = string(f.Payload)
			}
			return nil
		})
		d.Tracks = append(d.Tracks, tr)
		return err
	})
}

func parseTags(p []byte, d *mkvDoc) error {
	var simpleTag func(e element) error
	simpleTag = func(e element) error {
		var name, value string
		err := children(e.Payload, func(f element) error {
			switch f.ID {
			case idTagName:
				name = string(f.Payload)
			case idTagString:
				value = string(f.Payload)
			case idSimpleTag:
				return simpleTag(f)
			}
			return nil
		})
		d.Tags[name] = value
		return err
	}
	return children(p, func(tag element) error {
		if tag.ID != idTag {
			return nil
		}
		return children(tag.Payload, func(e element) error {
			if e.ID == idSimpleTag {
				return simpleTag(e)
			}
			return nil
		})
	})
}

func uintOf(p []byte) uint64 {
	var v uint64
	for _, c := range p {
		v = v<<8 | uint64(c)
	}
	return v
}
