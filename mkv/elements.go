package mkv

// The value types below are what the writer encodes and the reader decodes.
// Zero means "absent" for optional fields, both ways.

// EBMLHeader is the part of the EBML header a reader needs.
type EBMLHeader struct {
	DocType                            string // "matroska" or "webm"
	DocTypeVersion, DocTypeReadVersion uint64
}

// Info is the segment Info element.
type Info struct {
	// TimecodeScale is ns per timecode unit. When reading, 0 means absent,
	// which Matroska defines as DefaultTimecodeScale.
	TimecodeScale uint64
	// Duration is in timecode units; 0 means absent and is not written.
	Duration                     float64
	MuxingApp, WritingApp, Title string
}

// Video holds the TrackEntry Video settings.
type Video struct{ PixelWidth, PixelHeight uint64 }

// Audio holds the TrackEntry Audio settings.
type Audio struct {
	SamplingFrequency  float64 // Hz
	Channels, BitDepth uint64
}

// TrackEntry describes one track.
type TrackEntry struct {
	Number, UID, Type uint64 // Type is one of the TrackType constants
	Name, CodecID     string
	CodecPrivate      []byte
	DefaultDuration   uint64 // ns; 0 = absent
	Video             *Video
	Audio             *Audio
}

// SimpleTag is one name/value pair of a Tags element.
type SimpleTag struct{ Name, Value string }

// Block is one frame.
type Block struct {
	Track       uint64
	Timecode    int16 // relative to the cluster timecode, in timecode units
	Keyframe    bool
	Discardable bool
	// Duration is the BlockDuration in timecode units when read from a
	// BlockGroup, 0 otherwise. Writers: 0 gives a SimpleBlock, > 0 a
	// BlockGroup with BlockDuration.
	Duration uint64
	Data     []byte
}
