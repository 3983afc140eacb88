package ingest

import (
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/wire"
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
