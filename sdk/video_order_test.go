package sdk_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
)

// On a video track frames come in decode order with presentation times: a
// frame may step back in time within its group of pictures, never before the
// key frame that starts it or its fragment's first frame; a key frame never
// steps back. Other tracks stay in time order.
func TestVideoFramesInDecodeOrder(t *testing.T) {
	r := newRig(t, false)
	video := sdk.Track{Number: 1, Name: "cam", CodecID: "V_TEST", Type: mkv.TrackTypeVideo}
	p, err := sdk.NewProducer(context.Background(), r.client(), sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{video, opaque(2)},
		MinFragmentDuration: 200 * time.Millisecond, NoLive: true})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		track uint64
		at    int64 // ms from t0
		key   bool
		want  string // in the error; "" means accepted
	}{
		{1, 0, true, ""},
		{1, 120, false, ""}, // P3
		{1, 40, false, ""},  // B1: earlier than P3
		{1, 80, false, ""},  // B2
		{1, -40, false, "earlier than its key frame"},
		{1, 100, true, "key frame at"}, // an IDR before P3's time
		{1, 240, false, ""},
		{1, 160, false, ""},
		{1, 280, true, ""},              // past MinFragmentDuration: starts the second fragment
		{1, 240, false, "earlier than"}, // before the fragment's first frame
		{2, 300, true, ""},
		{2, 290, true, "back in time"}, // not a video track
		{1, 400, false, ""},
		{1, 320, false, ""},
	}
	for i, s := range steps {
		err := p.PutFrame(context.Background(), sdk.Frame{Track: s.track, Timestamp: t0 + s.at*ms, Duration: 40 * ms, Key: s.key, Data: []byte{byte(i)}})
		switch {
		case s.want == "" && err != nil:
			t.Fatalf("step %d (track %d at %d ms): %v", i, s.track, s.at, err)
		case s.want != "" && (err == nil || !strings.Contains(err.Error(), s.want)):
			t.Fatalf("step %d (track %d at %d ms): %v, want an error saying %q", i, s.track, s.at, err, s.want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_ = p.Flush(ctx)
	cancel()
	var frags []parsedFragment
	eventually(t, 5*time.Second, "two fragments", func() bool { frags = r.busFragments(); return len(frags) == 2 })
	wantTimes := [][]int64{{0, 120, 40, 80, 240, 160}, {280, 300, 400, 320}}
	for i, f := range frags {
		if len(f.times) != len(wantTimes[i]) {
			t.Fatalf("fragment %d: block times %v, want %v ms from t0", i, f.times, wantTimes[i])
		}
		for j, at := range wantTimes[i] {
			if f.times[j] != (t0+at*ms)/ms*ms {
				t.Fatalf("fragment %d block %d at %d, want %d ms from t0", i, j, f.times[j], at)
			}
		}
	}
	// Each fragment lasts to its latest frame's end, not its last frame's.
	if got := int64(frags[0].duration * 1e6); got != 280*ms {
		t.Fatalf("first fragment lasts %d ns, want 280 ms", got)
	}
}
