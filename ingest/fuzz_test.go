package ingest

import (
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/mkv"
)

// FuzzParseFragment feeds arbitrary bus payloads to the fragment validator:
// it must refuse with a code or accept, never panic, and what it accepts must
// parse again as exactly one canonical document.
func FuzzParseFragment(f *testing.F) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	ms := uint64(now.UnixMilli())
	f.Add(fragmentBytes(ms, 3, nil))
	f.Add(fragmentBytes(ms, 1, []mkv.SimpleTag{{Name: "a", Value: "b"}}))
	f.Add(fragmentBytes(ms, 5, nil)[:100])
	f.Add([]byte("not mkv"))
	// Archives: a GetMedia chunk with every tag a server writes, one whose
	// producer timestamp is not its cluster's, and a reserved name.
	pre, post := serverTags(1, ms+1000, ms)
	f.Add(chunkBytes(ms, 2, []mkv.SimpleTag{{Name: "site", Value: "A"}}, pre, post))
	f.Add(chunkBytes(ms, 1, nil, []mkv.SimpleTag{{Name: mkv.TagProducerTimestamp, Value: kvsTime(ms - 5000)},
		{Name: mkv.TagErrorCode, Value: "INTERNAL_ERROR"}, {Name: mkv.TagErrorID, Value: "5000"}}, nil))
	f.Add(fragmentBytes(ms, 1, []mkv.SimpleTag{{Name: "AWS_KINESISVIDEO_CAMERA", Value: "1"}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		frag, ferr := ParseFragment(data, Limits{MaxFragmentSize: 1 << 20}, now)
		if ferr != nil {
			if ferr.Code == 0 || ferr.Msg == "" {
				t.Fatalf("refusal without a code or message: %+v", ferr)
			}
			return
		}
		again, ferr := ParseFragment(frag.Payload, Limits{MaxFragmentSize: 2 << 20}, now)
		if ferr != nil {
			t.Fatalf("canonical form does not parse: %v", ferr)
		}
		if again.ProducerTime != frag.ProducerTime || again.Frames != frag.Frames || string(again.Payload) != string(frag.Payload) {
			t.Fatalf("canonical form is not stable")
		}
	})
}
