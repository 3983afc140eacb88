package server

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sensorium-io/sensorium/sdk"
)

// The windows shape, against a brute-force reference: every window of
// length L every H samples from the range's start, across frame and fragment
// boundaries, with its start time, its fragments and each channel's values;
// none spans a gap in the samples, and those after the gap stay on the grid.
func TestWindowsShape(t *testing.T) {
	srv := startServer(t, "")
	ctx := context.Background()
	client, nc := newStream(t, srv, "win", 1)
	track, _ := sdk.ScalarTrack(1, "vibration", pumpDesc)
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "win", Tracks: []sdk.Track{track}, MinFragmentDuration: time.Second, MaxFragmentDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	origin := time.Now().Add(-time.Minute).Truncate(time.Second).UnixNano() + 250_000
	// Two runs of samples with a 3 s gap between them: 5000 samples, then 3000.
	runs := []struct {
		origin int64
		first  int64 // sample index of the run's first sample
		n      int
	}{{origin, 0, 5000}, {origin + int64(8*time.Second), 8000, 3000}}
	for _, r := range runs {
		w, err := sdk.NewSampleWriter(p, 1, pumpDesc, sdk.SampleWriterOptions{Origin: r.origin})
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]float32, 3*r.n)
		for i := 0; i < r.n; i++ {
			for ch := range 3 {
				buf[3*i+ch] = sampleValue(r.first+int64(i), ch)
			}
		}
		if err := w.WriteFloat32(ctx, buf); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, win := range []sdk.QueryWindow{{Length: 1000, Hop: 400}, {Length: 300, Hop: 700}, {Length: 256}} {
		lo := 123 // the range starts mid-frame
		res, err := client.Query(ctx, sdk.QueryInput{Stream: "win", Fields: []string{"y", "z"}, Shape: "windows", Window: &win,
			Start: time.Unix(0, pumpDesc.SampleTime(origin, lo)), End: time.Unix(0, origin+int64(time.Minute))}, nil)
		if err != nil {
			t.Fatal(err)
		}
		hop := win.Hop
		if hop == 0 {
			hop = win.Length
		}
		// The reference: windows on the grid of sample lo + k × hop (the range's
		// start is the anchor) whose samples all lie in one run; the 3 s gap
		// drops those it cuts, and the windows after it stay on the grid.
		type ref struct{ first int64 }
		var want []ref
		for s := int64(lo); s < runs[1].first+int64(runs[1].n); s += int64(hop) {
			for _, r := range runs {
				if s >= r.first && s+int64(win.Length) <= r.first+int64(r.n) {
					want = append(want, ref{s})
				}
			}
		}
		got := 0
		for res.Next() {
			rec := res.RecordBatch()
			st := rec.Column(0).(*array.Timestamp)
			frags := rec.Column(1).(*array.List)
			y := rec.Column(2).(*array.FixedSizeList)
			yv := y.ListValues().(*array.Float32)
			for row := 0; row < int(rec.NumRows()); row++ {
				if got >= len(want) {
					t.Fatalf("window %+v: more windows than the reference's %d", win, len(want))
				}
				first := want[got].first
				runOrigin, runFirst := runs[0].origin, runs[0].first
				if first >= runs[1].first {
					runOrigin, runFirst = runs[1].origin, runs[1].first
				}
				if int64(st.Value(row)) != pumpDesc.SampleTime(runOrigin, int(first-runFirst)) {
					t.Fatalf("window %+v #%d: start %d, want %d", win, got, st.Value(row), pumpDesc.SampleTime(runOrigin, int(first-runFirst)))
				}
				if a, b := frags.ValueOffsets(row); b <= a {
					t.Fatalf("window %+v #%d: no source fragment", win, got)
				}
				off := y.Offset() + row
				for i := 0; i < win.Length; i++ {
					v := yv.Value(off*win.Length + i)
					if math.Float32bits(v) != math.Float32bits(sampleValue(first+int64(i), 1)) {
						t.Fatalf("window %+v #%d: y[%d] = %v, want %v", win, got, i, v, sampleValue(first+int64(i), 1))
					}
				}
				got++
			}
		}
		if err := res.Err(); err != nil {
			t.Fatal(err)
		}
		res.Close()
		if got != len(want) {
			t.Fatalf("window %+v: %d windows, want %d", win, got, len(want))
		}
	}
	// A windows query needs a window, and a scalar track.
	if _, err := client.Query(ctx, sdk.QueryInput{Stream: "win", Shape: "windows", Start: time.Unix(0, origin), End: time.Unix(0, origin+1e9)}, nil); err == nil {
		t.Error("windows without a window was accepted")
	}
}
