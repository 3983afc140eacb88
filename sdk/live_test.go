package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/sdk"
)

// A frame that closes a fragment is published live before that fragment is
// handed to the sender: a live subscriber does not wait for the fragment's
// encoding, nor, under the Block policy, for room in the buffer. Here the
// buffer is full (nothing is ingesting, so nothing is ever PERSISTED) and the
// PutFrame that closes the second fragment blocks; its frame must reach the
// live subscriber while it is still blocked.
func TestLiveFrameDoesNotWaitForItsFragmentToClose(t *testing.T) {
	r := newRig(t, false)
	sub, err := r.nc.SubscribeSync(wire.NewSubjects("").Live("s"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.nc.Flush(); err != nil { // the server knows the subscription before the first frame
		t.Fatal(err)
	}
	// Every key frame closes the open fragment; a 4 KiB buffer holds one
	// fragment of one 3,000-byte frame, not two.
	p, err := sdk.NewProducer(context.Background(), r.client(), sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)},
		MinFragmentDuration: time.Nanosecond, MaxFragmentSize: 4 << 10, BufferBytes: 4 << 10, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	frame := func(i int) sdk.Frame {
		return sdk.Frame{Track: 1, Timestamp: t0 + int64(i)*10*ms, Duration: 10 * ms, Key: true, Data: make([]byte, 3000)}
	}
	for i := range 2 { // opens the first fragment; closes it and opens the second
		if err := p.PutFrame(context.Background(), frame(i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	putErr := make(chan error, 1)
	go func() { putErr <- p.PutFrame(ctx, frame(2)) }() // closes the second: no room for it

	want := fmt.Sprint(frame(2).Timestamp)
	seen := 0
	poll.Until(t, 10*time.Second, time.Millisecond, func() error {
		for {
			m, err := sub.NextMsg(time.Millisecond)
			if err != nil {
				return fmt.Errorf("%d live frames, the third not among them (%v)", seen, err)
			}
			seen++
			if m.Header.Get(wire.HeaderTimestamp) == want {
				return nil
			}
		}
	})
	select {
	case err := <-putErr:
		t.Fatalf("the PutFrame returned (%v) before its live frame was checked; the buffer should have held it back", err)
	default: // still waiting for room, as it should: the frame went out first
	}
	cancel()
	if err := <-putErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("PutFrame after its context ended: %v, want context.Canceled", err)
	}
	// The frame was seen live but is in no fragment: the second fragment was
	// dropped for want of room, and the third was never opened.
	r.startIngest()
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	_ = p.Close(cctx) // reports the dropped fragment
	if st := p.Stats(); st.Persisted != 1 || st.Dropped != 1 {
		t.Fatalf("persisted %d and dropped %d fragments, want 1 and 1: %+v", st.Persisted, st.Dropped, st)
	}
}
