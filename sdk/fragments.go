package sdk

import (
	"fmt"
	"math"
	"strings"

	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/signals"
)

// Track describes one signal of a stream: it becomes a TrackEntry of every
// fragment.
type Track struct {
	Number       uint64 // 1-based, unique within the producer
	Name         string
	CodecID      string
	CodecPrivate []byte
	Type         uint64 // MKV TrackType; 0 means mkv.TrackTypeMetadata (sensor data)
	Audio        *mkv.Audio
	Video        *mkv.Video
}

// ScalarTrack describes a track of multichannel scalar samples.
func ScalarTrack(number uint64, name string, desc *signals.Scalar) (Track, error) {
	priv, err := desc.MarshalBinary()
	if err != nil {
		return Track{}, fmt.Errorf("sdk: scalar track: %w", err)
	}
	return Track{Number: number, Name: name, CodecID: signals.CodecIDScalar, CodecPrivate: priv, Type: mkv.TrackTypeMetadata}, nil
}

// Frame is one timestamped unit of a track.
type Frame struct {
	Track     uint64
	Timestamp int64 // producer time, ns since the Unix epoch
	Duration  int64 // ns
	Key       bool
	Data      []byte // copied by PutFrame
}

// maxTagsPerFragment is the seed service's limit on fragment metadata.
const maxTagsPerFragment = 10

// reservedTagPrefix is what the server's own tags begin with.
const reservedTagPrefix = "AWS_KINESISVIDEO_"

// fragmentOverhead bounds the MKV bytes around the frames of a fragment
// besides the tracks and tags: EBML header, Segment, Info, Cluster headers.
const fragmentOverhead = 256

// blockOverhead bounds the bytes an MKV SimpleBlock adds to a frame.
const blockOverhead = 16

// openFragment gathers frames until the fragment closes. It owns copies of the
// frames' data, back to back in one buffer.
type openFragment struct {
	frames []pendingFrame
	data   []byte
	start  int64 // first frame's timestamp
	end    int64 // latest frame end (timestamp + duration)
	size   int   // estimated encoded size
}

type pendingFrame struct {
	track    uint64
	ts       int64
	key      bool
	off, len int
}

func (o *openFragment) empty() bool { return len(o.frames) == 0 }

func (o *openFragment) add(f *Frame) {
	if o.empty() {
		o.start, o.end = f.Timestamp, f.Timestamp
	}
	o.frames = append(o.frames, pendingFrame{track: f.Track, ts: f.Timestamp, key: f.Key, off: len(o.data), len: len(f.Data)})
	o.data = append(o.data, f.Data...)
	o.end = max(o.end, f.Timestamp+f.Duration)
	o.size += len(f.Data) + blockOverhead
}

func (o *openFragment) reset() {
	o.frames, o.data, o.size = o.frames[:0], o.data[:0], 0
}

// encode makes the fragment's MKV document, as the ingest path expects it:
// EBML header, Segment, Info (with the exact duration), Tracks, Tags, one
// Cluster whose timecode is the first frame's time in ms.
func (o *openFragment) encode(tracks []byte, tags []mkv.SimpleTag) []byte {
	clusterMS := floorMS(o.start)
	blocks := make([]mkv.Block, len(o.frames))
	for i, f := range o.frames {
		blocks[i] = mkv.Block{Track: f.track, Timecode: int16(floorMS(f.ts) - clusterMS), Keyframe: f.key, Data: o.data[f.off : f.off+f.len]}
	}
	out := make([]byte, 0, len(o.data)+len(tracks)+len(o.frames)*blockOverhead+fragmentOverhead+64*len(tags))
	out = mkv.AppendEBMLHeader(out, "matroska")
	out = mkv.AppendSegmentStart(out)
	out = mkv.AppendInfo(out, mkv.Info{
		TimecodeScale: mkv.DefaultTimecodeScale,
		Duration:      infoDurationMS(o.end - clusterMS*1e6),
		MuxingApp:     "sensorium-sdk", WritingApp: "sensorium-sdk",
	})
	out = append(out, tracks...)
	out = mkv.AppendTags(out, tags)
	return mkv.AppendCluster(out, uint64(clusterMS), blocks)
}

// infoDurationMS is the Info Duration (ms, a float) that makes the server's
// fragment span [cluster time, cluster time + Duration) reach the end of the
// last frame: the server takes the cluster timecode — the first frame's time
// cut to a millisecond — as the fragment's producer timestamp, and
// int64(Duration × 1e6) as its length in ns, and a query picks fragments by
// that span. So the duration counts from the cut time, not from the first
// frame, and is rounded up until the truncation gives back at least ns.
func infoDurationMS(ns int64) float64 {
	d := float64(ns) / 1e6
	for int64(d*1e6) < ns {
		d = math.Nextafter(d, math.Inf(1))
	}
	return d
}

func floorMS(ns int64) int64 {
	ms := ns / 1e6
	if ns < 0 && ns%1e6 != 0 {
		ms--
	}
	return ms
}

func encodeTracks(tracks []Track) []byte {
	entries := make([]mkv.TrackEntry, len(tracks))
	for i, t := range tracks {
		typ := t.Type
		if typ == 0 {
			typ = mkv.TrackTypeMetadata
		}
		entries[i] = mkv.TrackEntry{Number: t.Number, UID: t.Number, Type: typ, Name: t.Name, CodecID: t.CodecID,
			CodecPrivate: t.CodecPrivate, Audio: t.Audio, Video: t.Video}
	}
	return mkv.AppendTracks(nil, entries)
}

// fragmentTags keeps the producer's fragment metadata: persistent tags go into
// every fragment, the others into the next one only (the seed SDK's
// putFragmentMetadata).
type fragmentTags struct {
	persistent []mkv.SimpleTag
	once       []mkv.SimpleTag
	bytes      int // encoded size of the next fragment's Tags element
}

func (t *fragmentTags) clone() fragmentTags {
	return fragmentTags{persistent: append([]mkv.SimpleTag(nil), t.persistent...), once: append([]mkv.SimpleTag(nil), t.once...), bytes: t.bytes}
}

// next is the tags of the next fragment.
func (t *fragmentTags) next() []mkv.SimpleTag {
	if len(t.persistent)+len(t.once) == 0 {
		return nil
	}
	return append(append([]mkv.SimpleTag(nil), t.persistent...), t.once...)
}

func (t *fragmentTags) measure() { t.bytes = len(mkv.AppendTags(nil, t.next())) }

func (t *fragmentTags) put(name, value string, persistent bool) error {
	switch {
	case name == "":
		return fmt.Errorf("sdk: fragment metadata needs a name")
	case strings.HasPrefix(name, reservedTagPrefix):
		return fmt.Errorf("sdk: fragment metadata name %q uses the server's reserved prefix %s", name, reservedTagPrefix)
	case len(name) > 1024 || len(value) > 1024:
		return fmt.Errorf("sdk: fragment metadata %q is longer than 1024 bytes", name)
	}
	list := &t.once
	if persistent {
		list = &t.persistent
	}
	defer t.measure()
	for i := range *list {
		if (*list)[i].Name == name {
			(*list)[i].Value = value
			return nil
		}
	}
	if len(t.persistent)+len(t.once) >= maxTagsPerFragment {
		return fmt.Errorf("sdk: a fragment holds at most %d metadata tags (FRAGMENT_METADATA_LIMIT_REACHED)", maxTagsPerFragment)
	}
	*list = append(*list, mkv.SimpleTag{Name: name, Value: value})
	return nil
}

// take returns the tags of the next fragment and forgets the one-shot ones.
func (t *fragmentTags) take() []mkv.SimpleTag {
	out := t.next()
	if len(t.once) > 0 {
		t.once = t.once[:0]
		t.measure()
	}
	return out
}
