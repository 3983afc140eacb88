package ingest

import (
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/mkv"
)

// Each limit refuses with its code and a message that names the limit; one
// under the limit passes.
func TestLimits(t *testing.T) {
	now := time.Now()
	ms := uint64(now.Add(-time.Minute).UnixMilli())
	manyTags := make([]mkv.SimpleTag, 4)
	for i := range manyTags {
		manyTags[i] = mkv.SimpleTag{Name: "t" + string(rune('a'+i)), Value: "v"}
	}
	for _, tt := range []struct {
		name string
		lim  Limits
		data []byte
		code wire.ErrorCode
		msg  string
	}{
		{"frames", Limits{MaxFragmentFrames: 5}, fragmentBytes(ms, 6, nil), wire.ErrMaxFragmentSize, "more than 5 frames"},
		{"size", Limits{MaxFragmentSize: 200}, fragmentBytes(ms, 20, nil), wire.ErrMaxFragmentSize, "the limit is 200"},
		{"duration", Limits{MaxFragmentDuration: 500 * time.Millisecond}, fragmentBytes(ms, 8, nil), wire.ErrMaxFragmentDuration, ""},
		{"tags", Limits{MaxFragmentTags: 3}, fragmentBytes(ms, 2, manyTags), wire.ErrFragmentMetadataLimit, ""},
		{"tag length", Limits{MaxTagLength: 1}, fragmentBytes(ms, 2, manyTags[:1]), wire.ErrFragmentMetadataLimit, ""},
		{"clock", Limits{MaxClockAhead: time.Second}, fragmentBytes(uint64(now.Add(time.Hour).UnixMilli()), 2, nil), wire.ErrInvalidProducerTimestamp, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, ferr := ParseFragment(tt.data, tt.lim, now)
			if ferr == nil || ferr.Code != tt.code || !strings.Contains(ferr.Error(), tt.msg) {
				t.Fatalf("ParseFragment = %v, want code %d with %q", ferr, tt.code, tt.msg)
			}
			if _, ferr := ParseFragment(tt.data, DefaultLimits(), now); ferr != nil {
				t.Fatalf("within the default limits: %v", ferr)
			}
		})
	}
}

// fragmentTracks builds a fragment declaring tracks 1..tracks whose frames
// name blockTrack.
func fragmentTracks(ms uint64, tracks int, blockTrack uint64) []byte {
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, Duration: 200})
	var ts []mkv.TrackEntry
	for i := 1; i <= tracks; i++ {
		ts = append(ts, mkv.TrackEntry{Number: uint64(i), UID: uint64(i), Type: mkv.TrackTypeMetadata, CodecID: "S_SENSORIUM/SCALAR", CodecPrivate: []byte{1}})
	}
	b = mkv.AppendTracks(b, ts)
	return mkv.AppendCluster(b, ms, []mkv.Block{{Track: 1, Keyframe: true, Data: []byte{1}}, {Track: blockTrack, Timecode: 100, Keyframe: true, Data: []byte{2}}})
}

// Tracks: the seed service's 3 by default, MORE_THAN_ALLOWED_TRACKS_FOUND
// past it; a frame of an undeclared track is TRACK_NUMBER_MISMATCH.
func TestTrackLimits(t *testing.T) {
	now := time.Now()
	ms := uint64(now.Add(-time.Minute).UnixMilli())
	for _, tt := range []struct {
		name string
		lim  Limits
		data []byte
		code wire.ErrorCode // 0: accepted
	}{
		{"3 tracks", DefaultLimits(), fragmentTracks(ms, 3, 3), 0},
		{"4 tracks", DefaultLimits(), fragmentTracks(ms, 4, 2), wire.ErrMoreThanAllowedTracks},
		{"2 tracks, limit 1", Limits{MaxTracks: 1}, fragmentTracks(ms, 2, 2), wire.ErrMoreThanAllowedTracks},
		{"frame of an undeclared track", DefaultLimits(), fragmentTracks(ms, 2, 3), wire.ErrTrackNumberMismatch},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, ferr := ParseFragment(tt.data, tt.lim, now)
			switch {
			case tt.code == 0 && ferr != nil:
				t.Fatalf("refused: %v", ferr)
			case tt.code != 0 && (ferr == nil || ferr.Code != tt.code):
				t.Fatalf("ParseFragment = %v, want code %d", ferr, tt.code)
			}
		})
	}
}
