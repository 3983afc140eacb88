package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
)

// noise is n bytes that no compression on the way could shrink.
func noise(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// opaqueHead is the start of a PutMedia body of one opaque track, before
// its first cluster.
func opaqueHead() []byte {
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale})
	return mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: "S_SENSORIUM/OPAQUE", CodecPrivate: []byte("x")}})
}

// framesOf reads every block's data of an MKV stream (GetMedia output).
func framesOf(t *testing.T, r io.Reader) [][]byte {
	t.Helper()
	rd := mkv.NewReader(r, mkv.MaxElementSize(64<<20))
	var out [][]byte
	for {
		it, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading GetMedia output: %v", err)
		}
		if it.Kind == mkv.ItemBlock {
			out = append(out, bytes.Clone(it.Block.Data))
		}
	}
}

// TestLargeFragments: fragments over one bus message (8 MiB), as a 4K
// camera's 10 s make, go in through PutMedia and through the SDK, are
// stored whole and come back byte for byte; a cluster over the 50 MB
// limit is MAX_FRAGMENT_SIZE_REACHED and the session's earlier fragments
// stay.
func TestLargeFragments(t *testing.T) {
	srv := startServer(t, "")
	client, nc := newStream(t, srv, "cam4k", 1)
	ctx := context.Background()
	now := uint64(time.Now().Add(-time.Minute).UnixMilli())

	// PutMedia: one 12 MiB cluster of two frames, then a small one.
	head := opaqueHead
	frames := [][]byte{noise(6<<20, 1), noise(6<<20, 2), []byte("small")}
	body := mkv.AppendCluster(head(), now, []mkv.Block{{Track: 1, Keyframe: true, Data: frames[0]}, {Track: 1, Timecode: 40, Data: frames[1]}})
	body = mkv.AppendCluster(body, now+1000, []mkv.Block{{Track: 1, Keyframe: true, Data: frames[2]}})
	status, _, evs := postPutMedia(t, srv, map[string]string{"x-amzn-stream-name": "cam4k"}, bytes.NewReader(body))
	var numbers []string
	for _, ev := range evs {
		if ev.EventType == wire.EventError {
			t.Fatalf("PutMedia of a 12 MiB cluster: %+v", ev)
		}
		if ev.EventType == wire.EventPersisted {
			numbers = append(numbers, ev.FragmentNumber)
		}
	}
	if status != 200 || len(numbers) != 2 {
		t.Fatalf("PutMedia: status %d, %d PERSISTED (want 2): %+v", status, len(numbers), evs)
	}
	rc, err := client.GetMediaForFragmentList(ctx, sdk.StreamRef{StreamName: "cam4k"}, numbers)
	if err != nil {
		t.Fatal(err)
	}
	got := framesOf(t, rc)
	rc.Close()
	if len(got) != 3 || !bytes.Equal(got[0], frames[0]) || !bytes.Equal(got[1], frames[1]) || !bytes.Equal(got[2], frames[2]) {
		t.Fatalf("GetMediaForFragmentList gave %d frames, not the 3 put byte for byte", len(got))
	}

	// The SDK: a fragment of 20 MiB (MaxFragmentSize raised to 30 MB).
	var persisted []sdk.AckEvent
	acked := make(chan sdk.AckEvent, 16)
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "cam4k", NoLive: true, MaxFragmentSize: 30_000_000,
		Tracks: []sdk.Track{{Number: 1, CodecID: "S_SENSORIUM/OPAQUE", CodecPrivate: []byte("x")}},
		OnAck:  func(ev sdk.AckEvent) { acked <- ev }})
	if err != nil {
		t.Fatal(err)
	}
	start := time.UnixMilli(int64(now) + 5000)
	var put [][]byte
	for i := range 5 {
		f := noise(4<<20, uint64(10+i))
		put = append(put, f)
		if err := p.PutFrame(ctx, sdk.Frame{Track: 1, Timestamp: start.Add(time.Duration(i) * 40 * time.Millisecond).UnixNano(), Duration: int64(40 * time.Millisecond), Key: i == 0, Data: f}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	for len(acked) > 0 {
		if ev := <-acked; ev.EventType == sdk.EventPersisted {
			persisted = append(persisted, ev)
		}
	}
	if len(persisted) != 1 {
		t.Fatalf("the SDK's 20 MiB fragment: %d PERSISTED, want 1", len(persisted))
	}
	rc, err = client.GetMediaForFragmentList(ctx, sdk.StreamRef{StreamName: "cam4k"}, []string{persisted[0].FragmentNumber})
	if err != nil {
		t.Fatal(err)
	}
	got = framesOf(t, rc)
	rc.Close()
	if len(got) != len(put) {
		t.Fatalf("the SDK's fragment came back with %d frames, not %d", len(got), len(put))
	}
	for i := range put {
		if !bytes.Equal(got[i], put[i]) {
			t.Fatalf("frame %d of the SDK's fragment differs", i)
		}
	}

	// Over the limit: refused with 4001 at the cluster, before anything of it
	// is published.
	over := mkv.AppendCluster(head(), now+60_000, []mkv.Block{{Track: 1, Keyframe: true, Data: make([]byte, 30<<20)}, {Track: 1, Timecode: 40, Data: make([]byte, 30<<20)}})
	_, _, evs = postPutMedia(t, srv, map[string]string{"x-amzn-stream-name": "cam4k"}, bytes.NewReader(over))
	if len(evs) == 0 || evs[len(evs)-1].ErrorID != wire.ErrMaxFragmentSize {
		t.Fatalf("a 60 MiB cluster: %+v", evs)
	}
	frags, _, err := client.ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.StreamRef{StreamName: "cam4k"}})
	if err != nil || len(frags) != 3 {
		t.Fatalf("the stream holds %d fragments (%v), want 3", len(frags), err)
	}
}

// TestClusterLargeFragment: on a cluster, a 20 MiB fragment produced
// through a node that does not hold the stream is stored whole by each
// replica that does, the same on each.
func TestClusterLargeFragment(t *testing.T) {
	tc := startTestCluster(t, 3, func(_ int, c *Config) { c.Cluster.StreamReplicas = 2 })
	ctx := context.Background()
	if _, err := tc.client(0).CreateStream(ctx, sdk.CreateStreamInput{StreamName: "cam4k", DataRetentionInHours: 2}); err != nil {
		t.Fatal(err)
	}
	holders := tc.replicas(0, "cam4k")
	outsider := -1
	for i, c := range tc.cfgs {
		if !slices.Contains(holders, c.Cluster.Node) {
			outsider = i
		}
	}
	if len(holders) != 2 || outsider < 0 {
		t.Fatalf("cam4k on %v", holders)
	}
	nc, err := nats.Connect(tc.nodes[outsider].NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	acked := make(chan sdk.AckEvent, 16)
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "cam4k", NoLive: true, MaxFragmentSize: 30_000_000,
		Tracks: []sdk.Track{{Number: 1, CodecID: "S_SENSORIUM/OPAQUE", CodecPrivate: []byte("x")}},
		OnAck:  func(ev sdk.AckEvent) { acked <- ev }})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Minute)
	for i := range 5 {
		if err := p.PutFrame(ctx, sdk.Frame{Track: 1, Timestamp: start.Add(time.Duration(i) * 40 * time.Millisecond).UnixNano(), Duration: int64(40 * time.Millisecond), Key: i == 0, Data: noise(4<<20, uint64(20+i))}); err != nil {
			t.Fatal(err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	persisted := 0
	for len(acked) > 0 {
		if ev := <-acked; ev.EventType == sdk.EventPersisted {
			persisted++
		}
	}
	if persisted != 1 {
		t.Fatalf("%d PERSISTED, want 1", persisted)
	}
	var copies [][]string
	for _, h := range holders {
		i := tc.index(h)
		poll.Until(t, 30*time.Second, 50*time.Millisecond, func() error {
			if n := len(copyOf(t, tc.nodes[i], "cam4k")); n != 1 {
				return fmt.Errorf("%s holds %d fragments, want 1", h, n)
			}
			return nil
		})
		copies = append(copies, copyOf(t, tc.nodes[i], "cam4k"))
	}
	if !slices.Equal(copies[0], copies[1]) {
		t.Fatalf("the replicas differ: %v and %v", copies[0], copies[1])
	}
	if n := len(copyOf(t, tc.nodes[outsider], "cam4k")); n != 0 {
		t.Fatalf("the node without the stream holds %d fragments of it", n)
	}
}
