package server

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/wire"
	"github.com/sensorium-io/sensorium/sdk"
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
