package server

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// A query over the tail of the last LIDAR sweep returns its points. The
// store picks fragments by their span, so the frame must last to the sweep's
// last point: with period 0 (unknown) the SDK makes the frame last the
// sweep's extent, and the fragment's span counts from its cluster time (the
// first frame's, cut to a millisecond), so a sweep that does not start on a
// millisecond keeps its last fraction of a millisecond too.
func TestSDKLidarSweepTailIsQueryable(t *testing.T) {
	srv := startServer(t, "")
	ctx := context.Background()
	const points = 100
	cases := []struct {
		name   string
		period int64
		offset func(j int) int32 // time_offset of point j, ns
	}{
		{"period 0", 0, func(j int) int32 { return int32(j) * 1_000_000 }},
		{"period 100 ms, last point at 99.999 ms", 100_000_000, func(j int) int32 { return int32(j)*1_000_000 + 999_000 }},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stream := fmt.Sprint("lidar-", i)
			client, nc := newStream(t, srv, stream, 1)
			pc := &signals.PointCloud{Rings: 4, Resolution: 0.001}
			track, err := sdk.PointCloudTrack(1, "lidar", pc)
			if err != nil {
				t.Fatal(err)
			}
			p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: stream, Tracks: []sdk.Track{track}, MinFragmentDuration: time.Nanosecond})
			if err != nil {
				t.Fatal(err)
			}
			// Not on a millisecond, as a sensor's clock is not.
			origin := time.Now().Add(-time.Minute).Truncate(time.Second).UnixNano() + 123_456
			var last codecs.Sweep
			for k := 0; k < 3; k++ {
				sw := codecs.Sweep{Time: origin + int64(k)*100_000_000}
				for j := 0; j < points; j++ {
					sw.Points = append(sw.Points, codecs.Point{X: float32(k*points+j) * 0.01, Ring: int16(j % 4), TimeOffset: tc.offset(j)})
				}
				if err := p.PutPointCloud(ctx, 1, nil, &sw, tc.period); err != nil {
					t.Fatal(err)
				}
				last = sw
			}
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := p.Close(cctx); err != nil {
				t.Fatal(err)
			}
			// From the middle of the last sweep, and from its last point alone.
			for _, first := range []int{points / 2, points - 1} {
				got := queryPoints(t, client, stream, last.Time+int64(last.Points[first].TimeOffset), last.Time+int64(time.Second))
				for j := first; j < points; j++ {
					want := last.Points[j]
					if x, ok := got[last.Time+int64(want.TimeOffset)]; !ok || math.Abs(float64(x-want.X)) > 0.0005 { // within the resolution
						t.Fatalf("from point %d: point %d of the last sweep (time_offset %d ns): x %v, present %v; want x %v (%d rows returned)",
							first, j, want.TimeOffset, x, ok, want.X, len(got))
					}
				}
				if len(got) != points-first {
					t.Fatalf("from point %d: %d rows returned, want %d", first, len(got), points-first)
				}
			}
		})
	}
}

// queryPoints returns the x of every point a query of [start, end) returns,
// by the point's time.
func queryPoints(t *testing.T, client *sdk.Client, stream string, start, end int64) map[int64]float32 {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	res, err := client.Query(context.Background(), sdk.QueryInput{Stream: stream, Fields: []string{"x"}, Start: time.Unix(0, start), End: time.Unix(0, end)}, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	got := map[int64]float32{}
	for res.Next() {
		rec := res.RecordBatch()
		tcol := rec.Column(0).(*array.Timestamp)
		x := rec.Column(rec.Schema().FieldIndices("x")[0]).(*array.Float32)
		for r := 0; r < int(rec.NumRows()); r++ {
			got[int64(tcol.Value(r))] = x.Value(r)
		}
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}
