// Package remux turns Matroska fragments — as Sensorium stores them and as
// a PutMedia producer or the SDK writes them: one EBML document with a
// Cluster of H.264, AAC or PCM frames — into fragmented MP4 (package mp4),
// one movie fragment per stored fragment, without decoding or re-encoding a
// frame. GetClip, HLS sessions and the console use it.
//
// It owns the timing that Matroska leaves out. Matroska blocks carry
// presentation times only, to the millisecond; MP4 needs decode times and
// sample durations:
//
//   - H.264: a fragment's decode times are its pictures' presentation
//     times sorted, less the stream's decode delay — the most any picture
//     is presented before its slot in decode order, measured on the first
//     fragment (or given: Options.DecodeDelay) and kept for the whole
//     stream, so that decode times rise across fragments and composition
//     offsets stay positive (mp4's FORMAT.md says why). Timescale 90 kHz,
//     which holds every millisecond exactly.
//   - AAC: every frame lasts 1024 samples (960 for 960-sample frames);
//     frame times are snapped to the whole-frame grid that starts at the
//     stream's first audio frame (Options.AudioAnchor), so that the
//     millisecond rounding of Matroska's block times makes no gaps or
//     overlaps between fragments. Timescale: the sample rate.
//   - PCM: a block is one sample of as many PCM frames as it holds; a
//     fragment that starts within 2 ms of where the previous one ended
//     continues it exactly.
//
// Tracks: the first H.264 track (V_MPEG4/ISO/AVC) and the first AAC
// (A_AAC) track — or, with Options.PCM, PCM (A_PCM/INT/LIT, A_PCM/INT/BIG,
// A_PCM/FLOAT/IEEE) — whatever their numbers; other tracks (a sensor's
// scalar channels beside a camera) are left out. Every fragment must carry
// the first one's codec private data: a change is ErrTracksChanged.
package remux

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/mp4"
)

// Codec IDs of the tracks remux reads (Matroska's).
const (
	CodecH264     = "V_MPEG4/ISO/AVC"
	CodecAAC      = "A_AAC"
	CodecPCMLit   = "A_PCM/INT/LIT"
	CodecPCMBig   = "A_PCM/INT/BIG"
	CodecPCMFloat = "A_PCM/FLOAT/IEEE"
)

// The kinds of error, for errors.Is; the archived-media API names them as
// the service does (UnsupportedStreamMediaTypeException,
// MissingCodecPrivateDataException, InvalidCodecPrivateDataException,
// InvalidMediaFrameException).
var (
	ErrUnsupported         = errors.New("remux: no track a player reads")
	ErrMissingCodecPrivate = errors.New("remux: no codec private data")
	ErrInvalidCodecPrivate = errors.New("remux: invalid codec private data")
	ErrTracksChanged       = errors.New("remux: the tracks changed")
	ErrInvalidFrame        = errors.New("remux: invalid frame")
)

// Options configure a Remuxer.
type Options struct {
	// PCM lets a PCM track be the audio when there is no AAC one (GetClip;
	// HLS players and browsers play no PCM in MP4).
	PCM bool
	// Relative starts the media times at 0: at the earliest decode time of
	// the first fragment remuxed (a clip). Otherwise media time is the
	// producer timestamp, seconds since the Unix epoch (an HLS session, whose
	// segments are remuxed one by one and must agree).
	Relative bool
	// DecodeDelay is the H.264 decode delay in ns; negative: measure it on
	// the first fragment.
	DecodeDelay int64
	// AudioAnchor is a time (ns since the Unix epoch) at which an AAC frame
	// starts: frames are snapped to whole frames from it. 0: the first
	// fragment's first frame.
	AudioAnchor int64
}

// VideoTimescale is the H.264 track's timescale.
const VideoTimescale = 90000

// track is one selected track.
type track struct {
	number  uint64 // Matroska track number
	id      uint32 // MP4 track ID
	scale   uint32 // timescale
	codecID string
	private []byte
	entry   mp4.SampleEntry

	frameLen  int64 // AAC: samples per frame
	frameSize int   // PCM: bytes per PCM frame
	defDur    int64 // Matroska DefaultDuration, ns

	// One fragment's frames.
	times []int64 // presentation times, ns
	durs  []int64 // Matroska block durations, ns (0: none)
	keys  []bool
	sizes []uint32
	data  []byte

	// The run built from them, reused.
	samples []mp4.Sample
	sorted  []int64
	ticks   []int64

	end int64 // PCM: ticks where the last run ended; -1 before one
}

// Remuxer remuxes the fragments of one stream. It is not safe for
// concurrent use; a Fragment it returns is valid until the next call.
type Remuxer struct {
	o            Options
	video, audio *track
	movie        *mp4.Movie
	scale        uint64 // the Matroska TimecodeScale of the first fragment
	delay        int64  // ns; -1 until measured
	anchor       int64  // ns; 0 until set
	origin       int64  // ns subtracted from every time; -1 until set (Relative)
	seq          uint32
	frag         mp4.Fragment
}

// New reads the tracks of a stream's first fragment (its Matroska bytes)
// and returns a Remuxer of the stream: an error of kind ErrUnsupported,
// ErrMissingCodecPrivate or ErrInvalidCodecPrivate when it has no track a
// player reads or the codec private data is missing or wrong.
func New(first []byte, o Options) (*Remuxer, error) {
	tracks, err := readTracks(first)
	if err != nil {
		return nil, err
	}
	r := &Remuxer{o: o, delay: o.DecodeDelay, anchor: o.AudioAnchor, origin: -1}
	if !o.Relative {
		r.origin = 0
	}
	var names []string
	for i := range tracks {
		te := &tracks[i]
		names = append(names, fmt.Sprintf("%d %s", te.Number, te.CodecID))
		switch {
		case te.CodecID == CodecH264 && r.video == nil:
			if r.video, err = videoTrack(te); err != nil {
				return nil, err
			}
		case te.CodecID == CodecAAC && (r.audio == nil || r.audio.codecID != CodecAAC):
			if r.audio, err = aacTrack(te); err != nil {
				return nil, err
			}
		case o.PCM && r.audio == nil && (te.CodecID == CodecPCMLit || te.CodecID == CodecPCMBig || te.CodecID == CodecPCMFloat):
			if r.audio, err = pcmTrack(te); err != nil {
				return nil, err
			}
		}
	}
	if r.video == nil && r.audio == nil {
		want := "H.264 (" + CodecH264 + ") or AAC (" + CodecAAC + ")"
		if o.PCM {
			want += " or PCM"
		}
		return nil, fmt.Errorf("%w: the stream has no %s track; its tracks: %s", ErrUnsupported, want, strings.Join(names, ", "))
	}
	r.movie = &mp4.Movie{}
	for _, t := range []*track{r.video, r.audio} {
		if t != nil {
			t.id = uint32(len(r.movie.Tracks) + 1)
			t.end = -1
			r.movie.Tracks = append(r.movie.Tracks, mp4.Track{ID: t.id, Timescale: t.scale, Entry: t.entry})
		}
	}
	return r, nil
}

// readTracks returns the Tracks of a fragment.
func readTracks(payload []byte) ([]mkv.TrackEntry, error) {
	rd := mkv.NewReader(bytes.NewReader(payload))
	for {
		it, err := rd.Next()
		if err != nil {
			return nil, fmt.Errorf("%w: reading the fragment's tracks: %v", ErrInvalidFrame, err)
		}
		switch it.Kind {
		case mkv.ItemTracks:
			return slices.Clone(it.Tracks), nil
		case mkv.ItemClusterStart:
			return nil, fmt.Errorf("%w: the fragment has no Tracks", ErrUnsupported)
		}
	}
}

func videoTrack(te *mkv.TrackEntry) (*track, error) {
	if len(te.CodecPrivate) == 0 {
		return nil, fmt.Errorf("%w: H.264 track %d has no CodecPrivate (its avcC record)", ErrMissingCodecPrivate, te.Number)
	}
	var w, h int
	if te.Video != nil {
		w, h = int(te.Video.PixelWidth), int(te.Video.PixelHeight)
	}
	avc, err := mp4.NewAVC(te.CodecPrivate, w, h)
	if err != nil {
		return nil, fmt.Errorf("%w: H.264 track %d: %v", ErrInvalidCodecPrivate, te.Number, err)
	}
	return &track{number: te.Number, scale: VideoTimescale, codecID: te.CodecID, private: te.CodecPrivate, entry: avc,
		defDur: int64(te.DefaultDuration)}, nil
}

func aacTrack(te *mkv.TrackEntry) (*track, error) {
	if len(te.CodecPrivate) == 0 {
		return nil, fmt.Errorf("%w: AAC track %d has no CodecPrivate (its AudioSpecificConfig)", ErrMissingCodecPrivate, te.Number)
	}
	channels := 0
	if te.Audio != nil {
		channels = int(te.Audio.Channels)
	}
	aac, err := mp4.NewAAC(te.CodecPrivate, channels)
	if err != nil {
		return nil, fmt.Errorf("%w: AAC track %d: %v", ErrInvalidCodecPrivate, te.Number, err)
	}
	c := aac.Parsed()
	return &track{number: te.Number, scale: uint32(c.SampleRate), codecID: te.CodecID, private: te.CodecPrivate, entry: aac,
		frameLen: int64(c.FrameLength)}, nil
}

func pcmTrack(te *mkv.TrackEntry) (*track, error) {
	if te.Audio == nil || te.Audio.SamplingFrequency <= 0 || te.Audio.SamplingFrequency != math.Trunc(te.Audio.SamplingFrequency) ||
		te.Audio.SamplingFrequency > math.MaxInt32 {
		return nil, fmt.Errorf("%w: PCM track %d needs a whole SamplingFrequency in its Audio element", ErrUnsupported, te.Number)
	}
	p := &mp4.PCM{SampleRate: int(te.Audio.SamplingFrequency), Channels: int(te.Audio.Channels), Bits: int(te.Audio.BitDepth),
		Float: te.CodecID == CodecPCMFloat, BigEndian: te.CodecID == CodecPCMBig}
	if p.Channels == 0 {
		p.Channels = 1 // Matroska's default
	}
	p.Unsigned = !p.Float && p.Bits == 8 // Matroska's 8-bit PCM is unsigned
	if _, err := mp4.AppendInit(nil, &mp4.Movie{Tracks: []mp4.Track{{ID: 1, Timescale: 1, Entry: p}}}); err != nil {
		return nil, fmt.Errorf("%w: PCM track %d: %v", ErrUnsupported, te.Number, err)
	}
	return &track{number: te.Number, scale: uint32(p.SampleRate), codecID: te.CodecID, private: te.CodecPrivate, entry: p,
		frameSize: p.FrameSize()}, nil
}

// Movie is the MP4 movie of the stream: its init segment's tracks.
func (r *Remuxer) Movie() *mp4.Movie { return r.movie }

// TrackNumbers are the Matroska numbers of the tracks remuxed: the video's,
// then the audio's.
func (r *Remuxer) TrackNumbers() []uint64 {
	var n []uint64
	for _, t := range []*track{r.video, r.audio} {
		if t != nil {
			n = append(n, t.number)
		}
	}
	return n
}

// DecodeDelay is the H.264 decode delay in ns (-1 before the first fragment
// measured it): give it to the Remuxers of later segments of the same
// session so that they agree.
func (r *Remuxer) DecodeDelay() int64 { return r.delay }

// AudioAnchor is the time in ns at which AAC frames start (0 before the
// first fragment set it).
func (r *Remuxer) AudioAnchor() int64 { return r.anchor }

// Fragment remuxes one stored fragment into a movie fragment, numbered
// one more than the last (set Sequence to change it). A fragment whose
// tracks differ from the first's is ErrTracksChanged; one that holds no
// frame of the selected tracks gives a Fragment without runs (skip it).
func (r *Remuxer) Fragment(payload []byte) (*mp4.Fragment, error) {
	for _, t := range []*track{r.video, r.audio} {
		if t != nil {
			t.times, t.durs, t.keys, t.sizes, t.data = t.times[:0], t.durs[:0], t.keys[:0], t.sizes[:0], t.data[:0]
		}
	}
	if err := r.read(payload); err != nil {
		return nil, err
	}
	if r.o.Relative && r.origin < 0 {
		r.origin = r.firstTime()
	}
	r.frag.Runs = r.frag.Runs[:0]
	if t := r.video; t != nil && len(t.times) > 0 {
		r.frag.Runs = append(r.frag.Runs, r.videoRun(t))
	}
	if t := r.audio; t != nil && len(t.times) > 0 {
		run, err := r.audioRun(t)
		if err != nil {
			return nil, err
		}
		r.frag.Runs = append(r.frag.Runs, run)
	}
	r.seq++
	r.frag.Sequence = r.seq
	return &r.frag, nil
}

// read collects the selected tracks' frames of one fragment.
func (r *Remuxer) read(payload []byte) error {
	rd := mkv.NewReader(bytes.NewReader(payload))
	for {
		it, err := rd.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidFrame, err)
		}
		switch it.Kind {
		case mkv.ItemInfo:
			if r.scale == 0 {
				r.scale = it.Info.TimecodeScale
			}
		case mkv.ItemTracks:
			for _, t := range []*track{r.video, r.audio} {
				if t == nil {
					continue
				}
				te := rd.Track(t.number)
				if te == nil || te.CodecID != t.codecID || !bytes.Equal(te.CodecPrivate, t.private) {
					return fmt.Errorf("%w: track %d (%s) is not as in the stream's first fragment (its codec or codec private data differs)",
						ErrTracksChanged, t.number, t.codecID)
				}
			}
		case mkv.ItemBlock:
			b := it.Block
			var t *track
			switch {
			case r.video != nil && b.Track == r.video.number:
				t = r.video
			case r.audio != nil && b.Track == r.audio.number:
				t = r.audio
			default:
				continue
			}
			if t.frameSize > 0 && len(b.Data)%t.frameSize != 0 {
				return fmt.Errorf("%w: a PCM block of %d bytes on track %d is not a whole number of %d-byte frames", ErrInvalidFrame, len(b.Data), t.number, t.frameSize)
			}
			scale := int64(rd.Info().TimecodeScale)
			if scale == 0 {
				scale = mkv.DefaultTimecodeScale
			}
			t.times = append(t.times, it.Time)
			t.durs = append(t.durs, int64(b.Duration)*scale)
			t.keys = append(t.keys, b.Keyframe)
			t.sizes = append(t.sizes, uint32(len(b.Data)))
			t.data = append(t.data, b.Data...)
		}
	}
}

// firstTime is the earliest time of the first fragment: the first video
// decode time or audio frame, the media time 0 of a relative movie.
func (r *Remuxer) firstTime() int64 {
	first := int64(math.MaxInt64)
	if t := r.video; t != nil && len(t.times) > 0 {
		first = slices.Min(t.times) - max(r.measureDelay(t), 0)
	}
	if t := r.audio; t != nil && len(t.times) > 0 {
		first = min(first, t.times[0])
	}
	if first == math.MaxInt64 {
		return -1 // nothing yet: the next fragment sets it
	}
	return first
}

// toTicks converts a time in ns to ticks of scale since the origin, rounded
// to the nearest; times before the origin are 0.
func (r *Remuxer) toTicks(ns int64, scale uint32) int64 {
	d := ns - max(r.origin, 0)
	if d < 0 {
		return 0
	}
	const s = int64(1e9)
	return d/s*int64(scale) + (d%s*int64(scale)+s/2)/s
}

// measureDelay sets the stream's decode delay from this fragment when it
// is not known yet: how far the presentation order runs behind the decode
// order, at most.
func (r *Remuxer) measureDelay(t *track) int64 {
	if r.delay >= 0 {
		return r.delay
	}
	t.sorted = append(t.sorted[:0], t.times...)
	slices.Sort(t.sorted)
	var d int64
	for i, p := range t.times {
		d = max(d, t.sorted[i]-p)
	}
	r.delay = d
	return d
}

// videoRun: decode times are the sorted presentation times less the
// stream's delay; a picture whose offset would be negative (this fragment
// reorders more than the first did) gets a negative one, in trun v1.
func (r *Remuxer) videoRun(t *track) mp4.Run {
	delay := r.measureDelay(t)
	t.sorted = append(t.sorted[:0], t.times...)
	slices.Sort(t.sorted)
	t.ticks = t.ticks[:0]
	for _, s := range t.sorted {
		t.ticks = append(t.ticks, r.toTicks(s-delay, t.scale))
	}
	t.samples = t.samples[:0]
	n := len(t.times)
	for i := range n {
		var dur int64
		switch {
		case i+1 < n:
			dur = t.ticks[i+1] - t.ticks[i]
		case t.durs[i] > 0:
			dur = r.toTicks(t.sorted[i]-delay+t.durs[i], t.scale) - t.ticks[i]
		case t.defDur > 0:
			dur = r.toTicks(t.sorted[i]-delay+t.defDur, t.scale) - t.ticks[i]
		case i > 0:
			dur = t.ticks[i] - t.ticks[i-1]
		default:
			dur = VideoTimescale / 30
		}
		cts := r.toTicks(t.times[i], t.scale) - t.ticks[i]
		t.samples = append(t.samples, mp4.Sample{Duration: uint32(clamp(dur, 0, math.MaxUint32)), Size: t.sizes[i], Sync: t.keys[i],
			CompositionOffset: int32(clamp(cts, math.MinInt32, math.MaxInt32))})
	}
	return mp4.Run{Track: t.id, DecodeTime: uint64(t.ticks[0]), Samples: t.samples, Data: t.data}
}

// audioRun: AAC frames on the whole-frame grid from the anchor; PCM blocks
// back to back, continuing the previous fragment when it ended within 2 ms
// of this one's start.
func (r *Remuxer) audioRun(t *track) (mp4.Run, error) {
	t.samples = t.samples[:0]
	t.ticks = t.ticks[:0]
	n := len(t.times)
	if t.frameLen > 0 { // AAC
		if r.anchor == 0 {
			r.anchor = t.times[0]
		}
		anchor := r.toTicks(r.anchor, t.scale)
		for i, ns := range t.times {
			k := t.frameLen
			at := anchor + roundDiv(r.toTicks(ns, t.scale)-anchor, k)*k
			if i > 0 {
				at = max(at, t.ticks[i-1]+k) // two frames never share a slot
			}
			t.ticks = append(t.ticks, max(at, 0))
		}
		for i := range n {
			dur := t.frameLen
			if i+1 < n {
				dur = t.ticks[i+1] - t.ticks[i]
			}
			t.samples = append(t.samples, mp4.Sample{Duration: uint32(clamp(dur, 0, math.MaxUint32)), Size: t.sizes[i], Sync: true})
		}
		return mp4.Run{Track: t.id, DecodeTime: uint64(t.ticks[0]), Samples: t.samples, Data: t.data}, nil
	}
	// PCM.
	slack := max(int64(t.scale)/500, 1) // 2 ms
	at := r.toTicks(t.times[0], t.scale)
	if t.end >= 0 && abs(at-t.end) <= slack {
		at = t.end
	}
	start := at
	for i := range n {
		frames := int64(t.sizes[i]) / int64(t.frameSize)
		next := at + frames
		if i+1 < n {
			// A gap inside the fragment (frames lost at the producer)
			// lengthens the block before it; the decoder plays it short.
			if want := r.toTicks(t.times[i+1], t.scale); want-next > slack {
				next = want
			}
		}
		t.samples = append(t.samples, mp4.Sample{Duration: uint32(clamp(next-at, 0, math.MaxUint32)), Size: t.sizes[i], Sync: true})
		at = next
	}
	t.end = at
	return mp4.Run{Track: t.id, DecodeTime: uint64(start), Samples: t.samples, Data: t.data}, nil
}

func roundDiv(a, b int64) int64 {
	if a >= 0 {
		return (a + b/2) / b
	}
	return -((-a + b/2) / b)
}

func clamp(v, lo, hi int64) int64 { return min(max(v, lo), hi) }

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
