package ingest

import (
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/mkv"
)

// A fragment's length is its last frame's end: with the track's
// DefaultDuration when it has one, else (ffmpeg writes none for PCM) with
// the gap before that frame; a fragment's Info Duration wins over both,
// but never makes it end before its last frame.
func TestFragmentDuration(t *testing.T) {
	now := time.Now()
	tc := uint64(now.Add(-time.Minute).UnixMilli())
	cases := []struct {
		name            string
		defaultDuration uint64
		infoDuration    float64
		times           []int16
		want            time.Duration
	}{
		{"default duration", uint64(25 * time.Millisecond), 0, []int16{0, 20, 40}, 65 * time.Millisecond},
		{"no default duration: the gap", 0, 0, []int16{0, 20, 40}, 60 * time.Millisecond},
		{"one frame, no default duration", 0, 0, []int16{0}, 0},
		{"info duration", 0, 500, []int16{0, 20, 40}, 500 * time.Millisecond},
		{"info duration short of the last frame", 0, 1, []int16{0, 20, 40}, 40*time.Millisecond + 1},
		{"info duration short of a frame before the last", 0, 1, []int16{0, 40, 20}, 40*time.Millisecond + 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := mkv.AppendEBMLHeader(nil, "matroska")
			b = mkv.AppendSegmentStart(b)
			b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, Duration: c.infoDuration})
			b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: "S_SENSORIUM/OPAQUE", CodecPrivate: []byte("x"), DefaultDuration: c.defaultDuration}})
			var blocks []mkv.Block
			for _, at := range c.times {
				blocks = append(blocks, mkv.Block{Track: 1, Timecode: at, Keyframe: true, Data: []byte("f")})
			}
			b = mkv.AppendCluster(b, tc, blocks)
			f, ferr := ParseFragment(b, Limits{}, now)
			if ferr != nil {
				t.Fatal(ferr)
			}
			if time.Duration(f.Duration) != c.want {
				t.Fatalf("duration %v, want %v", time.Duration(f.Duration), c.want)
			}
		})
	}
}

// An Info Duration shorter than the frames does not let a fragment past
// MaxFragmentDuration: one of frames 30 s apart that says it lasts 1 ms is
// refused as the 30 s it spans.
func TestInfoDurationDoesNotHideTheFrames(t *testing.T) {
	now := time.Now()
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, Duration: 1})
	b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: "S_SENSORIUM/OPAQUE", CodecPrivate: []byte("x")}})
	// The frame 30 s in is not the last one: frames need not come in time
	// order (B-frames).
	b = mkv.AppendCluster(b, uint64(now.Add(-time.Minute).UnixMilli()), []mkv.Block{
		{Track: 1, Keyframe: true, Data: []byte("f")}, {Track: 1, Timecode: 30000, Keyframe: true, Data: []byte("f")},
		{Track: 1, Timecode: 1, Keyframe: true, Data: []byte("f")}})
	_, ferr := ParseFragment(b, Limits{MaxFragmentDuration: 20 * time.Second}, now)
	if ferr == nil || ferr.Code != wire.ErrMaxFragmentDuration {
		t.Fatalf("a 1 ms Info Duration over frames 30 s apart: %v, want %s", ferr, wire.ErrMaxFragmentDuration)
	}
}
