package ingest

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/pcmpack"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/mkv"
)

// Fragment is a validated fragment in the canonical form the store keeps:
// one MKV document — EBML header, Segment of unknown size, Info, Tracks, the
// producer's Tags if any, and one Cluster of known size — so that a reader can
// insert its own tags before the Cluster (at ClusterOffset) and copy the rest.
type Fragment struct {
	ProducerTime  int64 // ns: the cluster timecode
	Duration      int64 // ns
	ClusterOffset uint32
	Payload       []byte
	Tracks        int
	Frames        int
	Tags          []mkv.SimpleTag
	// PCM: a track is audio that pcmpack codes; without one, packing the
	// fragment is not tried (it would parse it again to find none).
	PCM bool
}

// FragmentError is a refusal with the seed service's numeric code.
type FragmentError struct {
	Code wire.ErrorCode
	Msg  string
	// TimecodeMS is the refused cluster's timecode in ms, when the parser
	// got as far as it (0 otherwise): the ERROR event's FragmentTimecode.
	TimecodeMS int64
}

func (e *FragmentError) Error() string { return fmt.Sprintf("%s (%d): %s", e.Code, int(e.Code), e.Msg) }

func refuse(code wire.ErrorCode, format string, args ...any) *FragmentError {
	return &FragmentError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// reservedTagPrefix is the prefix of the tags the server adds on read; a
// producer tag with it would be indistinguishable from the server's.
const reservedTagPrefix = "AWS_KINESISVIDEO_"

// ParseFragment validates one bus message as a fragment and returns its
// canonical form. now is the server's clock, for the producer-timestamp check.
func ParseFragment(data []byte, lim Limits, now time.Time) (*Fragment, *FragmentError) {
	return ParseFragmentInto(nil, data, lim, now)
}

// ParseFragmentInto is ParseFragment with the canonical form written into
// dst's array when it is large enough: a caller that is done with the
// payload before its next call (the ingester, for a stream that keeps
// nothing in memory) saves allocating and clearing a fragment's size each
// time.
func ParseFragmentInto(dst, data []byte, lim Limits, now time.Time) (*Fragment, *FragmentError) {
	lim.setDefaults()
	if len(data) > lim.MaxFragmentSize {
		return nil, refuse(wire.ErrMaxFragmentSize, "fragment is %d bytes; the limit is %d", len(data), lim.MaxFragmentSize)
	}
	// A reader of the message in memory: a frame larger than its read buffer
	// (a camera's, a LIDAR sweep) is looked at in place, not copied out.
	p := fragmentParser{lim: lim, data: data, dst: dst, r: mkv.NewBytesReader(data, mkv.MaxElementSize(int64(lim.MaxFragmentSize)))}
	ferr := p.run()
	var frag *Fragment
	if ferr == nil {
		frag, ferr = p.finish(now)
	}
	if ferr != nil {
		ferr.TimecodeMS = clusterTimecodeMS(data, lim.MaxFragmentSize)
	}
	return frag, ferr
}

// clusterTimecodeMS finds a refused fragment's cluster timecode in ms, for
// its ERROR event, reading past what the refusal was about (the cluster may
// come after a Tracks element that was refused); 0 when it has none.
func clusterTimecodeMS(data []byte, maxSize int) int64 {
	r := mkv.NewBytesReader(data, mkv.MaxElementSize(int64(maxSize)))
	scale := uint64(mkv.DefaultTimecodeScale)
	for {
		it, err := r.Next()
		if err != nil {
			return 0
		}
		switch it.Kind {
		case mkv.ItemInfo:
			if it.Info.TimecodeScale != 0 {
				scale = it.Info.TimecodeScale
			}
		case mkv.ItemClusterStart:
			return int64(it.Timecode) * int64(scale) / int64(time.Millisecond)
		}
	}
}

type fragmentParser struct {
	lim  Limits
	data []byte
	dst  []byte // where finish writes the payload, when large enough
	r    *mkv.Reader

	header, info, tracks []byte // raw elements
	tags                 []mkv.SimpleTag
	tagsRaw              [][]byte
	scale                uint64
	infoDuration         float64
	trackNums            map[uint64]*mkv.TrackEntry
	clusterStart         int64
	clusterEnd           int64
	clusterKnown         bool
	clusterTimecode      uint64
	blocks               []mkv.Block // only kept when the cluster must be re-encoded
	frames               int
	firstTime, lastTime  int64
	latest               int64 // the latest frame's time: frames need not come in time order (B-frames)
	// trackLast and trackGap are, per track number below 8, the time of the
	// track's latest frame and its gap to the one before: the last frame's
	// length when its track has no DefaultDuration.
	trackLast, trackGap [8]int64
	lastTrack           uint64
	clusters            int
	segmentEnded        bool
}

func (p *fragmentParser) run() *FragmentError {
	for {
		it, err := p.r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return refuse(wire.ErrInvalidMKVData, "%v", err)
		}
		if p.segmentEnded && it.Kind != mkv.ItemSegmentEnd {
			return refuse(wire.ErrInvalidMKVData, "a fragment is one MKV document; found more after its segment")
		}
		if ferr := p.item(it); ferr != nil {
			return ferr
		}
	}
	switch {
	case p.header == nil:
		return refuse(wire.ErrInvalidMKVData, "no EBML header")
	case p.tracks == nil:
		return refuse(wire.ErrInvalidMKVData, "no Tracks element before the cluster")
	case p.clusters == 0:
		return refuse(wire.ErrInvalidMKVData, "no Cluster")
	case p.frames == 0:
		return refuse(wire.ErrInvalidMKVData, "the cluster holds no frames")
	}
	return nil
}

func (p *fragmentParser) item(it mkv.Item) *FragmentError {
	switch it.Kind {
	case mkv.ItemEBMLHeader:
		if p.header != nil {
			return refuse(wire.ErrInvalidMKVData, "a fragment is one MKV document; found a second EBML header")
		}
		if dt := it.Header.DocType; dt != "matroska" && dt != "webm" {
			return refuse(wire.ErrInvalidMKVData, "DocType %q is not matroska or webm", dt)
		}
		p.header = p.data[it.Offset : it.Offset+it.Size]
	case mkv.ItemInfo:
		p.info = it.Raw
		p.scale = it.Info.TimecodeScale
		if p.scale == 0 {
			p.scale = mkv.DefaultTimecodeScale
		}
		p.infoDuration = it.Info.Duration
	case mkv.ItemTracks:
		return p.onTracks(it)
	case mkv.ItemTags:
		p.tags = append(p.tags, it.Tags...)
		p.tagsRaw = append(p.tagsRaw, it.Raw)
	case mkv.ItemClusterStart:
		return p.onCluster(it)
	case mkv.ItemBlock:
		return p.onBlock(it)
	case mkv.ItemClusterEnd:
		p.clusterEnd = it.Offset
	case mkv.ItemSegmentEnd:
		p.segmentEnded = true
	}
	return nil
}

func (p *fragmentParser) onTracks(it mkv.Item) *FragmentError {
	if p.tracks != nil {
		return refuse(wire.ErrInvalidMKVData, "more than one Tracks element")
	}
	if len(it.Tracks) == 0 {
		return refuse(wire.ErrInvalidMKVData, "Tracks holds no track")
	}
	if len(it.Tracks) > p.lim.MaxTracks {
		return refuse(wire.ErrMoreThanAllowedTracks, "%d tracks; at most %d are allowed", len(it.Tracks), p.lim.MaxTracks)
	}
	p.trackNums = map[uint64]*mkv.TrackEntry{}
	for i := range it.Tracks {
		t := &it.Tracks[i]
		if t.Number == 0 {
			return refuse(wire.ErrInvalidMKVData, "track number 0")
		}
		if _, dup := p.trackNums[t.Number]; dup {
			return refuse(wire.ErrInvalidMKVData, "track number %d appears twice", t.Number)
		}
		if t.CodecID == "" {
			return refuse(wire.ErrInvalidMKVData, "track %d has no CodecID", t.Number)
		}
		p.trackNums[t.Number] = t
	}
	p.tracks = it.Raw
	return nil
}

func (p *fragmentParser) onCluster(it mkv.Item) *FragmentError {
	if p.tracks == nil || p.info == nil {
		return refuse(wire.ErrInvalidMKVData, "a Cluster comes before Info and Tracks")
	}
	p.clusters++
	if p.clusters > 1 {
		return refuse(wire.ErrInvalidMKVData, "a fragment holds one Cluster; this one has more")
	}
	p.clusterStart = it.Offset
	p.clusterKnown = it.Size != mkv.UnknownSize
	p.clusterTimecode = it.Timecode
	return nil
}

func (p *fragmentParser) onBlock(it mkv.Item) *FragmentError {
	b := it.Block
	if _, ok := p.trackNums[b.Track]; !ok {
		return refuse(wire.ErrTrackNumberMismatch, "a frame names track %d, which Tracks does not declare", b.Track)
	}
	if p.frames == 0 {
		if !b.Keyframe {
			return refuse(wire.ErrInvalidMKVData, "a fragment must start with a key frame")
		}
		p.firstTime = it.Time
	}
	p.frames++
	if p.frames > p.lim.MaxFragmentFrames {
		// The seed service has no frame count limit of its own; a fragment of
		// more frames than this is oversized for its content, hence its code.
		return refuse(wire.ErrMaxFragmentSize, "more than %d frames in one fragment; close fragments sooner", p.lim.MaxFragmentFrames)
	}
	p.lastTime, p.lastTrack = it.Time, b.Track
	if p.frames == 1 || it.Time > p.latest {
		p.latest = it.Time
	}
	if b.Track < uint64(len(p.trackLast)) {
		if prev := p.trackLast[b.Track]; prev != 0 {
			p.trackGap[b.Track] = it.Time - prev
		}
		p.trackLast[b.Track] = it.Time
	}
	if !p.clusterKnown {
		blk := *b
		blk.Data = append([]byte(nil), b.Data...) // Data is only valid until the next item
		p.blocks = append(p.blocks, blk)
	}
	return nil
}

func (p *fragmentParser) finish(now time.Time) (*Fragment, *FragmentError) {
	producer := int64(p.clusterTimecode) * int64(p.scale)
	if p.clusterTimecode == 0 || producer <= 0 {
		return nil, refuse(wire.ErrInvalidProducerTimestamp, "the cluster timecode must be an absolute time after the Unix epoch")
	}
	if ahead := time.Duration(producer - now.UnixNano()); ahead > p.lim.MaxClockAhead {
		return nil, refuse(wire.ErrInvalidProducerTimestamp, "the producer timestamp %s is %s ahead of the server clock",
			time.Unix(0, producer).UTC().Format(time.RFC3339Nano), ahead.Round(time.Second))
	}
	dur := int64(p.infoDuration * float64(p.scale))
	if dur <= 0 {
		dur = p.lastTime - p.firstTime
		if t := p.trackNums[p.lastTrack]; t != nil && t.DefaultDuration > 0 {
			dur += int64(t.DefaultDuration)
		} else if p.lastTrack < uint64(len(p.trackGap)) && p.trackGap[p.lastTrack] > 0 {
			// No DefaultDuration (ffmpeg writes none for PCM): the last
			// frame lasts as long as the gap before it.
			dur += p.trackGap[p.lastTrack]
		}
	}
	// However short its Info says it is, a fragment's span, [producer,
	// producer+dur), holds its latest frame: a shorter one would hide that
	// frame from reads of time ranges, and a fragment of frames over minutes
	// would pass MaxFragmentDuration.
	if p.frames > 0 && p.latest > producer { // one at producer itself: a read from there finds it anyway
		dur = max(dur, p.latest-producer+1)
	}
	dur = max(dur, 0)
	if time.Duration(dur) > p.lim.MaxFragmentDuration {
		return nil, refuse(wire.ErrMaxFragmentDuration, "fragment spans %s; the limit is %s", time.Duration(dur), p.lim.MaxFragmentDuration)
	}
	tags, mapped, ferr := mapArchiveTags(p.tags, producer)
	if ferr != nil {
		return nil, ferr
	}
	own := 0
	for _, t := range tags {
		if !isOriginTag(t.Name) {
			own++
		}
		if len(t.Name) > p.lim.MaxTagLength || len(t.Value) > p.lim.MaxTagLength {
			return nil, refuse(wire.ErrFragmentMetadataLimit, "tag %q is longer than %d bytes", t.Name, p.lim.MaxTagLength)
		}
	}
	if own > p.lim.MaxFragmentTags {
		return nil, refuse(wire.ErrFragmentMetadataLimit, "%d metadata tags; at most %d are allowed", own, p.lim.MaxFragmentTags)
	}
	payload := p.dst[:0]
	if cap(payload) < len(p.data)+16 {
		payload = make([]byte, 0, len(p.data)+16)
	}
	payload = append(payload, p.header...)
	payload = mkv.AppendSegmentStart(payload)
	payload = append(payload, p.info...)
	payload = append(payload, p.tracks...)
	if mapped {
		// Rewritten as one Tags element: a reader must not find the old
		// server's tags beside the ones this server adds.
		payload = mkv.AppendTags(payload, tags)
	} else {
		for _, raw := range p.tagsRaw {
			payload = append(payload, raw...)
		}
	}
	clusterOffset := len(payload)
	if p.clusterKnown {
		payload = append(payload, p.data[p.clusterStart:p.clusterEnd]...)
	} else {
		payload = mkv.AppendCluster(payload, p.clusterTimecode, p.blocks)
	}
	pcm := false
	for _, t := range p.trackNums {
		pcm = pcm || pcmpack.Codable(t)
	}
	return &Fragment{
		ProducerTime:  producer,
		Duration:      dur,
		ClusterOffset: uint32(clusterOffset),
		Payload:       payload,
		Tracks:        len(p.trackNums),
		Frames:        p.frames,
		Tags:          tags,
		PCM:           pcm,
	}, nil
}
