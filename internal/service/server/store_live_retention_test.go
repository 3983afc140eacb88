package server

import (
	"context"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/store"
)

// A stream at retention 0 gets fragments (held for live readers only); its
// retention is raised and it gets more (stored). ListFragments and GetMedia
// from EARLIEST must give the stored ones in number order, each once: the live
// buffer must not come back after them.
func TestRetentionRaisedFromZeroEndToEnd(t *testing.T) {
	srv := startServer(t, "")
	ctx := context.Background()
	client, nc := newStream(t, srv, "raise", 0)
	origin := time.Now().Add(-time.Minute).Truncate(time.Second).UnixNano()
	for f := range 3 {
		ev := publish(t, nc, "raise", scalarFragment(t, origin, int64(f)*1000, 10), "test", uint64(f+1))
		if ev.EventType != wire.EventReceived || ev.Retained == nil || *ev.Retained {
			t.Fatalf("live-only fragment %d: %+v", f, ev)
		}
	}
	info, err := client.DescribeStream(ctx, sdk.ByName("raise"))
	if err != nil {
		t.Fatal(err)
	}
	if err := client.UpdateDataRetention(ctx, sdk.ByName("raise"), info.Version, 1); err != nil {
		t.Fatal(err)
	}
	var stored []string
	for f := 3; f < 6; f++ {
		ev := publish(t, nc, "raise", scalarFragment(t, origin, int64(f)*1000, 10), "test", uint64(f+1))
		if ev.EventType != wire.EventPersisted {
			t.Fatalf("fragment %d after the raise: %+v", f, ev)
		}
		stored = append(stored, ev.FragmentNumber)
	}

	list, _, err := client.ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName("raise")})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, f := range list {
		listed = append(listed, f.FragmentNumber)
	}
	if !slices.Equal(listed, stored) {
		t.Fatalf("ListFragments: %v, want the stored fragments %v", listed, stored)
	}
	body, err := client.GetMedia(ctx, sdk.ByName("raise"), sdk.StartEarliest(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	if got := fragmentsIn(t, body); !slices.Equal(got, stored) {
		t.Fatalf("GetMedia EARLIEST: %v, want %v", got, stored)
	}
}

// offsetClock is the real clock plus an offset that a test moves forward.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// Retention end to end, on an injected clock: fragments past the stream's
// retention disappear from ListFragments, GetMedia and the data folder
// (whole segments) once UpdateDataRetention lowers it, and not before; a
// raised retention keeps what comes next.
func TestRetentionAfterUpdateDataRetentionEndToEnd(t *testing.T) {
	clock := &offsetClock{}
	dir := t.TempDir()
	srv, err := Start(context.Background(), Config{DataDir: dir, NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: testLogger(t),
		StoreOptions: func(o *store.Options) { o.Now = clock.Now; o.RetentionInterval = 20 * time.Millisecond }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	ctx := context.Background()
	client, nc := newStream(t, srv, "aging", 2)
	origin := time.Now().Add(-time.Minute).Truncate(time.Second).UnixNano()
	for f := range 3 {
		if ev := publish(t, nc, "aging", scalarFragment(t, origin, int64(f)*1000, 10), "test", uint64(f+1)); ev.EventType != wire.EventPersisted {
			t.Fatalf("fragment %d: %+v", f, ev)
		}
	}
	listed := func() []string {
		t.Helper()
		list, _, err := client.ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName("aging")})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range list {
			out = append(out, f.FragmentNumber)
		}
		slices.Sort(out)
		return out
	}
	before := listed()
	clock.offset.Store(int64(90 * time.Minute)) // 1.5 h later: inside 2 h
	time.Sleep(200 * time.Millisecond)          // ten retention passes
	if got := listed(); !slices.Equal(got, before) {
		t.Fatalf("inside retention: %v, were %v", got, before)
	}
	update := func(hours int) {
		t.Helper()
		info, err := client.DescribeStream(ctx, sdk.ByName("aging"))
		if err != nil {
			t.Fatal(err)
		}
		if err := client.UpdateDataRetention(ctx, sdk.ByName("aging"), info.Version, hours); err != nil {
			t.Fatal(err)
		}
	}
	update(-1) // 2 → 1 h: all three are past it
	deadline := time.Now().Add(10 * time.Second)
	for len(listed()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("retention lowered to 1 h, 1.5 h later: still %v", listed())
		}
		time.Sleep(20 * time.Millisecond)
	}
	body, err := client.GetMedia(ctx, sdk.ByName("aging"), sdk.StartEarliest(), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := fragmentsIn(t, body); len(got) != 0 {
		t.Fatalf("GetMedia EARLIEST after retention: %v", got)
	}
	body.Close()
	if segs, _ := filepath.Glob(filepath.Join(dir, "store", "streams", "*", "*.seg")); len(segs) != 0 {
		t.Fatalf("segments left after retention: %v", segs)
	}
	update(3) // 1 → 4 h: the next fragments stay
	var stored []string
	for f := 3; f < 5; f++ {
		ev := publish(t, nc, "aging", scalarFragment(t, origin, int64(f)*1000, 10), "test", uint64(f+1))
		if ev.EventType != wire.EventPersisted {
			t.Fatalf("fragment %d after the raise: %+v", f, ev)
		}
		stored = append(stored, ev.FragmentNumber)
	}
	time.Sleep(200 * time.Millisecond)
	if got := listed(); !slices.Equal(got, stored) {
		t.Fatalf("after the raise: %v, want %v", got, stored)
	}
}
