package server

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// Two streams at 1 kHz and 100 Hz, on one clock, against a brute-force
// reference: on a 400 Hz grid with none, previous and linear interpolation,
// and as-of onto the slow stream's own sample times; no value is filled
// across the gap in the slow stream.
func TestAlignedShape(t *testing.T) {
	srv := startServer(t, "")
	ctx := context.Background()
	client, nc := newStream(t, srv, "vib", 1)
	newStream(t, srv, "amps", 1)
	oA := time.Now().Add(-time.Minute).Truncate(time.Second).UnixNano()
	oB := oA + 3_500_000 // 3.5 ms later, at 100 Hz
	slow := &signals.Scalar{SampleRate: 100, SampleType: signals.Float64, Channels: []signals.Channel{{Name: "current", Unit: "A"}}}
	bVal := func(j int) float64 { return 10 + float64(j)*0.5 }
	put := func(stream string, desc *signals.Scalar, origin int64, n int, fill func(s *signals.Samples)) {
		track, _ := sdk.ScalarTrack(1, stream, desc)
		p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: stream, Tracks: []sdk.Track{track}})
		if err != nil {
			t.Fatal(err)
		}
		s := &signals.Samples{Start: origin}
		s.Reset(desc.SampleType, len(desc.Channels), n)
		fill(s)
		if err := p.PutSamples(ctx, 1, desc, s, 0); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	put("vib", pumpDesc, oA, 3000, func(s *signals.Samples) {
		for k := 0; k < 3000; k++ {
			for ch := range 3 {
				s.F32[3*k+ch] = sampleValue(int64(k), ch)
			}
		}
	})
	// The slow stream: samples 0–149, a gap, then 200–299.
	put("amps", slow, oB, 150, func(s *signals.Samples) {
		for j := range s.F64 {
			s.F64[j] = bVal(j)
		}
	})
	put("amps", slow, slow.SampleTime(oB, 200), 100, func(s *signals.Samples) {
		for j := range s.F64 {
			s.F64[j] = bVal(200 + j)
		}
	})
	aAt := func(k int64) float64 { return float64(sampleValue(k, 0)) }
	start, end := oA+100_000_000, oA+2_900_000_000
	inputs := []sdk.QueryInputStream{{Stream: "vib", Fields: []string{"x"}}, {Stream: "amps"}}
	for _, policy := range []string{"none", "previous", "linear"} {
		res, err := client.Query(ctx, sdk.QueryInput{Shape: "aligned", Inputs: inputs, Align: &sdk.QueryAlign{Rate: 400, Interpolation: policy},
			Start: time.Unix(0, start), End: time.Unix(0, end)}, nil)
		if err != nil {
			t.Fatalf("%s: %v", policy, err)
		}
		row := int64(0)
		nulls := 0
		for res.Next() {
			rec := res.RecordBatch()
			if rec.Schema().Field(1).Name != "vib.x" || rec.Schema().Field(2).Name != "amps.current" {
				t.Fatalf("schema %v", rec.Schema())
			}
			tc, a, b := rec.Column(0).(*array.Timestamp), rec.Column(1).(*array.Float64), rec.Column(2).(*array.Float64)
			for r := 0; r < int(rec.NumRows()); r++ {
				tt := start + row*2_500_000
				if int64(tc.Value(r)) != tt {
					t.Fatalf("%s row %d: time %d, want %d", policy, row, tc.Value(r), tt)
				}
				wantA, okA := refValue(policy, tt, oA, 1_000_000, func(k int64) (float64, bool) { return aAt(k), k >= 0 && k < 3000 })
				wantB, okB := refValue(policy, tt, oB, 10_000_000, func(j int64) (float64, bool) {
					return bVal(int(j)), (j >= 0 && j < 150) || (j >= 200 && j < 300)
				})
				checkAligned(t, policy, row, "vib.x", a, r, wantA, okA)
				checkAligned(t, policy, row, "amps.current", b, r, wantB, okB)
				if b.IsNull(r) {
					nulls++
				}
				row++
			}
		}
		if err := res.Err(); err != nil {
			t.Fatal(err)
		}
		res.Close()
		if row != (end-start)/2_500_000 || nulls == 0 {
			t.Fatalf("%s: %d rows (%d nulls in the slow stream)", policy, row, nulls)
		}
	}
	// As-of onto the slow stream's sample times.
	res, err := client.Query(ctx, sdk.QueryInput{Shape: "aligned", Inputs: inputs, Align: &sdk.QueryAlign{Reference: 1, Interpolation: "previous"},
		Start: time.Unix(0, start), End: time.Unix(0, end)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	rows := 0
	for res.Next() {
		rec := res.RecordBatch()
		tc, a, b := rec.Column(0).(*array.Timestamp), rec.Column(1).(*array.Float64), rec.Column(2).(*array.Float64)
		for r := 0; r < int(rec.NumRows()); r++ {
			tt := int64(tc.Value(r))
			j := (tt - oB) / 10_000_000
			if (tt-oB)%10_000_000 != 0 || b.Value(r) != bVal(int(j)) {
				t.Fatalf("as-of row %d: time %d is not a slow sample, or its value %v differs", rows, tt, b.Value(r))
			}
			if k := (tt - oA) / 1_000_000; a.IsNull(r) || a.Value(r) != aAt(k) {
				t.Fatalf("as-of row %d: vib.x %v, want %v", rows, a.Value(r), aAt(k))
			}
			rows++
		}
	}
	// The slow samples in range: 10 to 289 (oB + j × 10 ms in [oA + 100 ms,
	// oA + 2900 ms)), less the 50 of the gap.
	if want := 280 - 50; rows != want {
		t.Fatalf("as-of: %d rows, want %d (the slow stream's samples in range)", rows, want)
	}
}

// refValue is the brute-force value of a stream sampled every period ns from
// origin at time t under the policy; sample(k) says its value and whether
// sample k exists.
func refValue(policy string, t, origin, period int64, sample func(int64) (float64, bool)) (float64, bool) {
	if t < origin {
		return 0, false
	}
	k := (t - origin) / period
	on := (t-origin)%period == 0
	v, ok := sample(k)
	switch {
	case on:
		return v, ok
	case policy == "previous":
		return v, ok
	case policy == "linear":
		v2, ok2 := sample(k + 1)
		if !ok || !ok2 {
			return 0, false
		}
		w := float64(t-origin-k*period) / float64(period)
		return v + w*(v2-v), true
	}
	return 0, false
}

func checkAligned(t *testing.T, policy string, row int64, name string, col *array.Float64, r int, want float64, ok bool) {
	t.Helper()
	switch {
	case !ok && !col.IsNull(r):
		t.Fatalf("%s row %d %s: %v where the reference has no value (a gap filled?)", policy, row, name, col.Value(r))
	case ok && col.IsNull(r):
		t.Fatalf("%s row %d %s: null, want %v", policy, row, name, want)
	case ok && math.Abs(col.Value(r)-want) > 1e-9*math.Max(1, math.Abs(want)):
		t.Fatalf("%s row %d %s: %v, want %v", policy, row, name, col.Value(r), want)
	}
}
