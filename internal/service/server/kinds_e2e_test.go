package server

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
	lidarsim "github.com/sensorium-io/sensorium/simulate/lidar"
	radarsim "github.com/sensorium-io/sensorium/simulate/radar"
)

// RADAR detections, range-Doppler maps and LIDAR sweeps on three tracks of
// one stream go in through the SDK and come back from queries of each track,
// in both layouts, as they were sent (coordinates within the resolution).
func TestSensorKindsEndToEnd(t *testing.T) {
	srv := startServer(t, "")
	ctx := context.Background()
	client, nc := newStream(t, srv, "car-1", 1)
	dets := &signals.Detections{}
	rdDesc := &signals.Array{ElemType: signals.Float32, Rows: radarsim.RangeBins, Cols: radarsim.DopplerBins, Unit: "dB"}
	pc := &signals.PointCloud{Rings: lidarsim.Rings, Resolution: 0.001}
	var tracks []sdk.Track
	for i, d := range []signals.Description{dets, rdDesc, pc} {
		tr, err := sdk.DescriptionTrack(uint64(i+1), d.Kind().String(), d)
		if err != nil {
			t.Fatal(err)
		}
		tracks = append(tracks, tr)
	}
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "car-1", Tracks: tracks, MinFragmentDuration: time.Second, MaxFragmentDuration: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	origin := time.Now().Add(-time.Minute).Truncate(time.Second).UnixNano()
	radar, street := radarsim.New(2), lidarsim.New(2)
	var sentDets [][]codecs.Detection
	var sentMaps [][]float32
	var sentSweeps []codecs.Sweep
	for i := 0; i < 50; i++ { // 2.5 s of RADAR at 20 Hz, LIDAR at 10 Hz
		ts := origin + int64(i)*50_000_000
		rd := make([]float32, radarsim.RangeBins*radarsim.DopplerBins)
		d := radar.Scan(nil, rd)
		if err := p.PutRadarScan(ctx, 1, dets, ts, 50_000_000, d, nil); err != nil {
			t.Fatal(err)
		}
		if err := p.PutArray(ctx, 2, rdDesc, ts, 50_000_000, codecs.Column{Type: signals.Float32, F32: rd}); err != nil {
			t.Fatal(err)
		}
		sentDets, sentMaps = append(sentDets, d), append(sentMaps, rd)
		if i%2 == 0 && i < 20 { // 10 sweeps
			var sw codecs.Sweep
			street.Sweep(ts, &sw)
			if err := p.PutPointCloud(ctx, 3, pc, &sw, 100_000_000); err != nil {
				t.Fatal(err)
			}
			sentSweeps = append(sentSweeps, sw)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatal(err)
	}
	all := sdk.QueryInput{Stream: "car-1", Start: time.Unix(0, origin), End: time.Unix(0, origin+int64(10*time.Second))}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	query := func(in sdk.QueryInput, each func(rec arrow.RecordBatch, rows int)) {
		t.Helper()
		res, err := client.Query(ctx, in, mem)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Close()
		for res.Next() {
			rec := res.RecordBatch()
			each(rec, int(rec.NumRows()))
		}
		if err := res.Err(); err != nil {
			t.Fatal(err)
		}
	}

	// Detections, one row each, in scan order.
	in := all
	in.Track, in.Fields = 1, []string{"range", "snr"}
	var got []float32
	query(in, func(rec arrow.RecordBatch, rows int) {
		r, s := rec.Column(3).(*array.Float32), rec.Column(4).(*array.Float32)
		for i := 0; i < rows; i++ {
			got = append(got, r.Value(i), s.Value(i))
		}
	})
	k := 0
	for _, scan := range sentDets {
		for _, d := range scan {
			if k+1 >= len(got) || math.Float32bits(got[k]) != math.Float32bits(d.Range) || got[k+1] != d.SNR {
				t.Fatalf("detection %d differs or is missing", k/2)
			}
			k += 2
		}
	}
	if k != len(got) {
		t.Fatalf("%d detection values returned, %d sent", len(got), k)
	}

	// Range-Doppler maps, one row per scan.
	in = all
	in.Track = 2
	maps := 0
	query(in, func(rec arrow.RecordBatch, rows int) {
		l := rec.Column(1).(*array.FixedSizeList)
		vals := l.ListValues().(*array.Float32)
		for i := 0; i < rows; i++ {
			want := sentMaps[maps]
			for j, v := range want {
				if math.Float32bits(vals.Value(i*len(want)+j)) != math.Float32bits(v) {
					t.Fatalf("map %d value %d differs", maps, j)
				}
			}
			maps++
		}
	})
	if maps != len(sentMaps) {
		t.Fatalf("%d maps returned, %d sent", maps, len(sentMaps))
	}

	// Sweeps as one row per sweep with list columns.
	in = all
	in.Track, in.Layout, in.Fields = 3, "frames", []string{"z", "ring"}
	sweeps := 0
	query(in, func(rec arrow.RecordBatch, rows int) {
		z := rec.Column(2).(*array.List)
		zs := z.ListValues().(*array.Float32)
		for i := 0; i < rows; i++ {
			lo, hi := z.ValueOffsets(i)
			pts := sentSweeps[sweeps].Points
			if int(hi-lo) != len(pts) {
				t.Fatalf("sweep %d: %d points, sent %d", sweeps, hi-lo, len(pts))
			}
			for j := range pts {
				if d := math.Abs(float64(zs.Value(int(lo)+j) - pts[j].Z)); d > 0.0005+math.Abs(float64(pts[j].Z))*0x1p-23 {
					t.Fatalf("sweep %d point %d: z off by %g m", sweeps, j, d)
				}
			}
			sweeps++
		}
	})
	if sweeps != len(sentSweeps) {
		t.Fatalf("%d sweeps returned, %d sent", sweeps, len(sentSweeps))
	}
}
