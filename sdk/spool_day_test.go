package sdk_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/testkit/faultproxy"
	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/sdk"
)

// SENSORIUM_SPOOL_DAY_STEP sets the simulated sensor's period in
// TestSpoolSimulatedDayOffline: a frame every 10 s by default (8,640 frames
// in the day, seconds of test); "1s" makes it 86,400.
const envDayStep = "SENSORIUM_SPOOL_DAY_STEP"

// simClock is the device's clock in a simulation: the test moves it.
type simClock struct{ ns atomic.Int64 }

func (c *simClock) now() time.Time { return time.Unix(0, c.ns.Load()) }
func (c *simClock) set(ns int64)   { c.ns.Store(ns) }

// The producer's link is cut for a simulated day (its clock injected, the
// NATS link stalled and reset by the fault proxy) while it goes on
// producing: nothing blocks, the backlog goes to the spool and memory holds
// BufferBytes. When the link comes back the backlog catches up while live
// frames keep coming, and the server holds every frame once, in order,
// with its original producer timestamp.
func TestSpoolSimulatedDayOffline(t *testing.T) {
	step := 10 * time.Second // one frame a fragment: the server takes fragments of up to 20 s
	if v := os.Getenv(envDayStep); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Millisecond || d > 10*time.Second {
			t.Fatalf("%s=%q: want a duration within 10ms and 10s", envDayStep, v)
		}
		step = d
	}
	const size = 2000
	day := int(24 * time.Hour / step)
	hour := int(time.Hour / step)
	srv := startSpoolServer(t)
	proxy, err := faultproxy.Start(srv.natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	nc, err := nats.Connect("nats://"+proxy.Addr(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.Timeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)

	// The day and the live hour after it end before the real now: the
	// server refuses producer timestamps ahead of its clock.
	base := time.Now().Add(-27 * time.Hour).Truncate(time.Second).UnixNano()
	clock := &simClock{}
	clock.set(base)
	const window = 256 << 10
	a := &acks{}
	p, err := sdk.NewProducer(context.Background(), nc, sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)},
		MinFragmentDuration: step, MaxFragmentDuration: 10 * time.Second, MaxFragmentSize: 64 << 10, BufferBytes: window, PersistTimeout: time.Second, Clock: clock.now,
		OnAck: a.onAck, OnDrop: a.onDrop, Spool: &sdk.SpoolConfig{Dir: t.TempDir(), Budget: 1 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	put := func(n int) {
		t.Helper()
		for end := next + n; next < end; next++ {
			clock.set(base + int64(next)*int64(step))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := p.PutFrame(ctx, spoolFrame(base, int64(step), next, size, true))
			cancel()
			if err != nil {
				t.Fatalf("frame %d: %v", next, err)
			}
			if st := p.Stats(); st.BufferedBytes > window {
				t.Fatalf("frame %d: %d bytes in memory, more than BufferBytes", next, st.BufferedBytes)
			}
		}
	}

	put(hour) // an hour online
	poll.Until(t, 30*time.Second, 10*time.Millisecond, func() error {
		if n := a.count(sdk.EventPersisted); n < hour-1 {
			return fmt.Errorf("%d of %d fragments PERSISTED", n, hour-1)
		}
		return nil
	})

	proxy.Stall(48 * time.Hour) // the link goes dead…
	proxy.Reset()               // …and the connection with it
	poll.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
		if nc.IsConnected() {
			return fmt.Errorf("still connected")
		}
		return nil
	})
	before := a.count(sdk.EventPersisted)
	put(day) // a day offline, at full speed
	st := p.Stats()
	if st.Spooled < day-1 || st.Dropped != 0 {
		t.Fatalf("after a day offline: %+v", st)
	}
	if n := a.count(sdk.EventPersisted); n != before {
		t.Fatalf("%d PERSISTED while the link was cut", n-before)
	}

	// The link comes back: the backlog catches up while live frames come,
	// one a millisecond, for at most a simulated hour.
	caughtUp := time.Now()
	proxy.Stall(0)
	live := 0
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for p.Stats().Spooled > 2 && live < hour {
		<-tick.C
		put(1)
		live++
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(caughtUp)
	t.Logf("a simulated day (%d frames, %.1f MB) caught up in %v with %d live frames meanwhile: %.0f× real time",
		day, float64(st.SpoolBytes)/1e6, took.Round(time.Millisecond), live, (24*time.Hour).Seconds()/took.Seconds())
	if err := checkFrames(srv.readStream(), base, int64(step), next, size); err != nil {
		t.Fatal(err)
	}
}

// A device that boots with no network still spools: NewProducer takes a
// connection that has never connected (nats.RetryOnFailedConnect), the
// fragments wait on disk, and they go when the link comes.
func TestSpoolStartsOffline(t *testing.T) {
	srv := startSpoolServer(t)
	proxy, err := faultproxy.Start(srv.natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	proxy.Stall(time.Hour) // no byte gets through: the first connect cannot finish
	nc, err := nats.Connect("nats://"+proxy.Addr(), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1),
		nats.ReconnectWait(20*time.Millisecond), nats.Timeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if nc.IsConnected() {
		t.Fatal("connected through a stalled link")
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Second).UnixNano()
	p, err := sdk.NewProducer(context.Background(), nc, sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)},
		MinFragmentDuration: 100 * time.Millisecond, Spool: &sdk.SpoolConfig{Dir: t.TempDir(), Budget: 64 << 20}})
	if err != nil {
		t.Fatalf("a producer with a spool and no connection yet: %v", err)
	}
	for i := 0; i < 200; i++ {
		if err := p.PutFrame(context.Background(), spoolFrame(base, 10*ms, i, 1000, i%10 == 0)); err != nil {
			t.Fatal(err)
		}
	}
	if st := p.Stats(); st.Spooled != 19 || st.Persisted != 0 {
		t.Fatalf("offline: %+v", st)
	}
	proxy.Stall(0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := checkFrames(srv.readStream(), base, 10*ms, 200, 1000); err != nil {
		t.Fatal(err)
	}
}
