package server

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/sdk"
	cansim "github.com/sensorium-io/sensorium/simulate/canbus"
)

// The can-bus example's simulator through PutOpaque, as the example puts it:
// 2 s of simulated traffic come back from a query a row per CAN frame, each
// row's data the frame's payload (its exact time and struct can_frame), its
// time the frame's time cut to the millisecond, and the media type in the
// data field's metadata.
func TestExampleCANBusEndToEnd(t *testing.T) {
	srv := startServer(t, "")
	ctx := context.Background()
	client, nc := newStream(t, srv, "can-1", 1)
	track, err := sdk.OpaqueTrack(1, "can0", cansim.MediaType)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "can-1", Tracks: []sdk.Track{track}, MinFragmentDuration: time.Second, MaxFragmentDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	origin := time.Now().Add(-time.Minute).Truncate(time.Second).UnixNano() + 345_678
	bus := cansim.New(origin, 11)
	var sent []cansim.Frame
	for tick := int64(1); tick <= 200; tick++ { // as the example does, every 10 ms
		n := len(sent)
		sent = bus.Until(sent, origin+tick*int64(10*time.Millisecond))
		for _, f := range sent[n:] {
			if err := p.PutOpaque(ctx, 1, f.Time, 0, f.AppendPayload(nil), true); err != nil {
				t.Fatal(err)
			}
		}
	}
	if want := 2 * (100 + 50 + 10 + 20); len(sent) != want {
		t.Fatalf("the simulator made %d frames in 2 s, want %d", len(sent), want)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatal(err)
	}

	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	res, err := client.Query(ctx, sdk.QueryInput{Stream: "can-1", Start: time.Unix(0, origin-int64(time.Second)), End: time.Unix(0, origin+int64(time.Minute))}, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if f, ok := res.Schema().FieldsByName("data"); !ok {
		t.Fatalf("no data field: %s", res.Schema())
	} else if mt, _ := f[0].Metadata.GetValue("sensorium.media_type"); mt != cansim.MediaType {
		t.Fatalf("media type %q, want %q", mt, cansim.MediaType)
	}
	n := 0
	for res.Next() {
		rec := res.RecordBatch()
		tc := rec.Column(rec.Schema().FieldIndices("time")[0]).(*array.Timestamp)
		data := rec.Column(rec.Schema().FieldIndices("data")[0]).(*array.Binary)
		for r := 0; r < int(rec.NumRows()); r++ {
			if n >= len(sent) {
				t.Fatalf("more rows than the %d frames sent", len(sent))
			}
			want := sent[n]
			f, err := cansim.DecodePayload(data.Value(r))
			if err != nil {
				t.Fatalf("row %d: %v", n, err)
			}
			if f != want || !bytes.Equal(data.Value(r), want.AppendPayload(nil)) {
				t.Fatalf("row %d decodes to %+v, sent %+v", n, f, want)
			}
			if ms := want.Time - want.Time%int64(time.Millisecond); int64(tc.Value(r)) != ms {
				t.Fatalf("row %d: time %d, want %d (the frame's time cut to the millisecond)", n, tc.Value(r), ms)
			}
			if err := cansim.Check(f); err != nil {
				t.Fatalf("row %d: %v", n, err)
			}
			n++
		}
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(sent) {
		t.Fatalf("query returned %d rows, %d frames were sent", n, len(sent))
	}
}

// The camera example's way of putting a clip with B-frames, looped twice:
// every access unit in decode order at origin + (loop × len + Order) × 40 ms.
// A query returns them all in that order with those times, and ffprobe reads
// GetMedia's output as 2 × len pictures at 640×360.
func TestExampleCameraEndToEnd(t *testing.T) {
	needLibx264(t)
	_, aus, avcC := h264Clip(t, "testsrc2=size=640x360:rate=25", 2, 25, 2)
	reordered := false
	for i, au := range aus {
		if au.Order < 0 {
			t.Fatalf("access unit %d has no presentation order", i)
		}
		reordered = reordered || au.Order != i
	}
	if len(aus) != 50 || !aus[0].Key || !reordered {
		t.Fatalf("%d access units (first key %v, B-frames %v), want 50 starting at an IDR, with B-frames", len(aus), aus[0].Key, reordered)
	}
	srv := startServer(t, "")
	ctx := context.Background()
	client, nc := newStream(t, srv, "cam-1", 1)
	track, err := sdk.H264Track(1, "camera", avcC, 640, 360)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "cam-1", Tracks: []sdk.Track{track}, MinFragmentDuration: time.Second, MaxFragmentDuration: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const frame = int64(40 * time.Millisecond)
	origin := time.Now().Add(-time.Minute).Truncate(time.Second).UnixNano()
	type put struct {
		pts int64
		au  sdk.AccessUnit
	}
	var sent []put
	for loop := 0; loop < 2; loop++ {
		for _, au := range aus {
			pts := origin + int64(loop*len(aus)+au.Order)*frame
			if err := p.PutH264(ctx, 1, pts, frame, au.Data, au.Key); err != nil {
				t.Fatalf("loop %d: %v", loop, err)
			}
			sent = append(sent, put{pts, au})
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatal(err)
	}
	res, err := client.Query(ctx, sdk.QueryInput{Stream: "cam-1", Start: time.Unix(0, origin), End: time.Unix(0, origin+int64(time.Minute))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	n := 0
	for res.Next() {
		rec := res.RecordBatch()
		tc := rec.Column(0).(*array.Timestamp)
		key, data := rec.Column(1).(*array.Boolean), rec.Column(2).(*array.Binary)
		for r := 0; r < int(rec.NumRows()); r++ {
			if n >= len(sent) {
				t.Fatalf("more rows than the %d access units sent", len(sent))
			}
			s := sent[n]
			if tc.Value(r) != arrow.Timestamp(s.pts) || key.Value(r) != s.au.Key || !bytes.Equal(data.Value(r), s.au.Data) {
				t.Fatalf("row %d: time %d key %v, sent %d key %v (or other data)", n, tc.Value(r), key.Value(r), s.pts, s.au.Key)
			}
			n++
		}
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(sent) {
		t.Fatalf("query returned %d access units, %d were sent", n, len(sent))
	}
	path := getMediaFile(t, client, "cam-1")
	lines, _ := ffprobeLines(t, "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=width,height,nb_read_frames", "-of", "csv=p=0", path)
	if len(lines) != 1 || lines[0] != "640,360,100" {
		t.Fatalf("ffprobe: %q, want 640,360,100", lines)
	}
}
