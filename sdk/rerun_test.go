package sdk_test

import (
	"context"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/sdk"
)

// A producer run again under a configured id (an importer resuming) within
// the bus's two-minute dedupe window: its fragments carry the earlier
// run's dedupe keys, so the store answers them as duplicates — at once, not
// after PersistTimeout, although the bus still holds the earlier run's
// messages (a message id of the run's own gets them past the bus).
func TestConfiguredIDRunAgainIsAnsweredAtOnce(t *testing.T) {
	r := newRig(t, true)
	ctx := context.Background()
	run := func() (persisted, duplicates int) {
		events := make(chan sdk.AckEvent, 64)
		p, err := sdk.NewProducer(ctx, r.client(), sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)}, ProducerID: "import-1",
			PersistTimeout: time.Minute, MinFragmentDuration: time.Second, MaxFragmentDuration: time.Second, OnAck: func(ev sdk.AckEvent) { events <- ev }})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 30 {
			if err := p.PutFrame(ctx, sdk.Frame{Track: 1, Timestamp: t0 + int64(i)*100*ms, Duration: 100 * ms, Key: true, Data: []byte{byte(i)}}); err != nil {
				t.Fatal(err)
			}
		}
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second) // well under PersistTimeout
		defer cancel()
		if err := p.Close(fctx); err != nil {
			t.Fatalf("close: %v (PERSISTED waited for a re-send?)", err)
		}
		close(events)
		for ev := range events {
			if ev.EventType == sdk.EventPersisted {
				persisted++
				if ev.Duplicate {
					duplicates++
				}
			}
		}
		return persisted, duplicates
	}
	if n, d := run(); n != 3 || d != 0 {
		t.Fatalf("first run: %d PERSISTED, %d duplicates; want 3 and 0", n, d)
	}
	if n, d := run(); n != 3 || d != 3 {
		t.Fatalf("second run: %d PERSISTED, %d duplicates; want 3 and 3", n, d)
	}
	if frags, err := r.st.Fragments("s", 0, 100); err != nil || len(frags) != 3 {
		t.Fatalf("the store holds %d fragments (%v), want 3", len(frags), err)
	}
}
