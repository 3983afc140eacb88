package codecs

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/signals"
)

func testDetections(n int, seed uint64) ([]Detection, []Column) {
	rng := rand.New(rand.NewPCG(seed, 1))
	dets := make([]Detection, n)
	var track Column
	track.Reset(signals.Int32, n)
	for i := range dets {
		dets[i] = Detection{Range: float32(rng.Float64() * 200), Azimuth: float32(rng.NormFloat64()), Elevation: float32(rng.NormFloat64() * 0.05),
			RadialVelocity: float32(rng.NormFloat64() * 10), RCS: float32(rng.NormFloat64() * 5), SNR: float32(10 + rng.Float64()*30)}
		track.I32[i] = int32(rng.IntN(50))
	}
	if n > 3 {
		dets[1].Range = float32(math.NaN())
		dets[2].RCS = float32(math.Inf(-1))
	}
	return dets, []Column{track}
}

func TestDetectionsRoundTrip(t *testing.T) {
	d := &signals.Detections{Extra: []signals.Field{{Name: "track_id", Type: signals.Int32}}}
	for _, n := range []int{0, 1, 5, 300} {
		dets, extra := testDetections(n, uint64(n))
		frame, err := AppendDetectionsFrame(nil, d, 1_700_000_000_123_456_789, dets, extra)
		if err != nil {
			t.Fatal(err)
		}
		tm, got, gotExtra, err := DecodeDetectionsFrame(frame, d, nil)
		if err != nil || tm != 1_700_000_000_123_456_789 || len(got) != n {
			t.Fatalf("n %d: time %d, %d detections, %v", n, tm, len(got), err)
		}
		for i := range dets {
			a, b := dets[i], got[i]
			if math.Float32bits(a.Range) != math.Float32bits(b.Range) || a.Azimuth != b.Azimuth || math.Float32bits(a.RCS) != math.Float32bits(b.RCS) ||
				a.SNR != b.SNR || a.RadialVelocity != b.RadialVelocity || a.Elevation != b.Elevation || gotExtra[0].I32[i] != extra[0].I32[i] {
				t.Fatalf("n %d: detection %d = %+v, want %+v", n, i, b, a)
			}
		}
		for cut := range frame {
			if _, _, _, err := DecodeDetectionsFrame(frame[:cut], d, nil); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("cut to %d: %v", cut, err)
			}
		}
	}
}

func TestDetectionsArrow(t *testing.T) {
	d := &signals.Detections{Extra: []signals.Field{{Name: "track_id", Type: signals.Int32}}}
	dets, extra := testDetections(40, 3)
	frame, _ := AppendDetectionsFrame(nil, d, 5_000, dets, extra)
	rows, err := NewArrowDecoder(d, ArrowOptions{Fields: []string{"snr", "track_id"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := appendOne(t, rows, frame, TimeRange{All: true})
	defer rec.Release()
	if rec.NumRows() != 40 || rec.NumCols() != 5 {
		t.Fatalf("rows layout: %d rows × %d columns", rec.NumRows(), rec.NumCols())
	}
	snr, id, idx := rec.Column(3).(*array.Float32), rec.Column(4).(*array.Int32), rec.Column(2).(*array.Uint32)
	for i := range dets {
		if snr.Value(i) != dets[i].SNR || id.Value(i) != extra[0].I32[i] || idx.Value(i) != uint32(i) {
			t.Fatalf("row %d differs", i)
		}
	}
	frames, _ := NewArrowDecoder(d, ArrowOptions{Layout: LayoutFrames})
	rec2 := appendOne(t, frames, frame, TimeRange{Start: 0, End: 10_000})
	defer rec2.Release()
	if rec2.NumRows() != 1 || rec2.Column(2).(*array.List).Len() != 1 {
		t.Fatalf("frames layout: %d rows", rec2.NumRows())
	}
	if empty := appendOne(t, frames, frame, TimeRange{Start: 6_000, End: 10_000}); empty.NumRows() != 0 {
		t.Errorf("a scan outside the range was returned")
	}
	if _, err := NewArrowDecoder(d, ArrowOptions{Fields: []string{"doppler"}}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("unknown field: %v", err)
	}
}

func appendOne(t *testing.T, dec ArrowDecoder, frame []byte, r TimeRange) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, dec.Schema())
	defer b.Release()
	if _, err := dec.Append(b, Frame{Data: frame}, r); err != nil {
		t.Fatal(err)
	}
	return b.NewRecordBatch()
}

func TestArrayRoundTripAndArrow(t *testing.T) {
	d := &signals.Array{ElemType: signals.Float32, Rows: 16, Cols: 8, Unit: "dB",
		RowAxis: signals.Axis{Name: "range", Unit: "m", Step: 0.5}, ColAxis: signals.Axis{Name: "doppler", Unit: "m/s", Start: -4, Step: 1}}
	var v Column
	v.Reset(signals.Float32, 128)
	for i := range v.F32 {
		v.F32[i] = float32(math.Sin(float64(i)/5)) * 30
	}
	v.F32[7] = float32(math.NaN())
	frame, err := AppendArrayFrame(nil, d, 42, v)
	if err != nil {
		t.Fatal(err)
	}
	tm, got, err := DecodeArrayFrame(frame, d, Column{})
	if err != nil || tm != 42 {
		t.Fatal(err)
	}
	for i := range v.F32 {
		if math.Float32bits(got.F32[i]) != math.Float32bits(v.F32[i]) {
			t.Fatalf("value %d differs", i)
		}
	}
	dec, err := NewArrowDecoder(d, ArrowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := appendOne(t, dec, frame, TimeRange{All: true})
	defer rec.Release()
	if rec.NumRows() != 1 {
		t.Fatalf("%d rows", rec.NumRows())
	}
	if _, err := AppendArrayFrame(nil, d, 0, Column{Type: signals.Float32, F32: make([]float32, 5)}); err == nil {
		t.Error("a wrong shape was accepted")
	}
}

func testSweep(n int, seed uint64) *Sweep {
	rng := rand.New(rand.NewPCG(seed, 2))
	s := &Sweep{Time: 1_700_000_000_000_000_000}
	for i := 0; i < n; i++ {
		ring := int16(i % 32)
		az := float64(i/32) * 0.003
		r := 5 + 20*rng.Float64()
		s.Points = append(s.Points, Point{X: float32(r * math.Cos(az)), Y: float32(r * math.Sin(az)), Z: float32(-1.5 + 0.1*float64(ring)),
			Intensity: int16(rng.IntN(256)), Ring: ring, TimeOffset: int32(i / 32 * 55_296)})
	}
	return s
}

func TestSweepRoundTrip(t *testing.T) {
	d := &signals.PointCloud{Rings: 32, Resolution: 0.001}
	for _, n := range []int{0, 1, 100, 3200} {
		s := testSweep(n, uint64(n))
		frame, err := AppendSweepFrame(nil, d, s)
		if err != nil {
			t.Fatal(err)
		}
		var got Sweep
		if err := DecodeSweepFrame(frame, d, &got); err != nil {
			t.Fatal(err)
		}
		if got.Time != s.Time || len(got.Points) != n {
			t.Fatalf("n %d: time %d, %d points", n, got.Time, len(got.Points))
		}
		for i, p := range s.Points {
			q := got.Points[i]
			if quantErr(p.X, q.X) > 0.0005 || quantErr(p.Z, q.Z) > 0.0005 || p.Ring != q.Ring || p.Intensity != q.Intensity || p.TimeOffset != q.TimeOffset {
				t.Fatalf("n %d: point %d = %+v, want %+v within 0.5 mm", n, i, q, p)
			}
		}
		for cut := 0; cut < len(frame); cut += 1 + len(frame)/200 {
			if err := DecodeSweepFrame(frame[:cut], d, &got); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("cut to %d: %v", cut, err)
			}
		}
	}
	bad := testSweep(3, 1)
	bad.Points[1].Y = float32(math.NaN())
	if _, err := AppendSweepFrame(nil, d, bad); err == nil {
		t.Error("a NaN coordinate was accepted")
	}
}

// Rows come in the producer's order, with each point's own time, filtered
// by it; frames come as lists.
func TestSweepArrow(t *testing.T) {
	d := &signals.PointCloud{Rings: 32, Resolution: 0.001}
	s := testSweep(640, 9)
	frame, _ := AppendSweepFrame(nil, d, s)
	dec, err := NewArrowDecoder(d, ArrowOptions{Fields: []string{"x", "ring"}})
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := s.Time+5*55_296, s.Time+12*55_296
	rec := appendOne(t, dec, frame, TimeRange{Start: lo, End: hi})
	defer rec.Release()
	want := 0
	for _, p := range s.Points {
		if tt := s.Time + int64(p.TimeOffset); tt >= lo && tt < hi {
			want++
		}
	}
	if int(rec.NumRows()) != want || want == 0 {
		t.Fatalf("%d rows, want %d", rec.NumRows(), want)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, dec.Schema())
	defer b.Release()
	if _, err := dec.Append(b, Frame{Data: frame}, TimeRange{Start: lo, End: hi}); err != nil {
		t.Fatal(err)
	}
	r := b.NewRecordBatch()
	defer r.Release()
	tc, idx, x := r.Column(0).(*array.Timestamp), r.Column(2).(*array.Uint32), r.Column(3).(*array.Float32)
	prev := -1
	for k := 0; k < int(r.NumRows()); k++ {
		i := int(idx.Value(k))
		p := s.Points[i]
		if i <= prev || int64(tc.Value(k)) != s.Time+int64(p.TimeOffset) || quantErr(p.X, x.Value(k)) > 0.0005 {
			t.Fatalf("row %d: index %d time %d x %v; point %+v", k, i, tc.Value(k), x.Value(k), p)
		}
		prev = i
	}
}

// The codec must beat zstd by far on a LIDAR-like sweep (the bench measures
// the street simulation; this guards the mechanism).
func TestSweepCompresses(t *testing.T) {
	d := &signals.PointCloud{Rings: 32, Resolution: 0.001}
	s := testSweep(32*1800, 4)
	frame, err := AppendSweepFrame(nil, d, s)
	if err != nil {
		t.Fatal(err)
	}
	raw := len(s.Points) * 22 // x y z intensity (float32), ring (uint16), time (float32): PointCloud2's layout
	if len(frame) > raw/3 {
		t.Errorf("%d points in %d bytes (%.2f of the %d raw bytes)", len(s.Points), len(frame), float64(len(frame))/float64(raw), raw)
	}
}

func FuzzDecodeColumnarFrame(f *testing.F) {
	d := &signals.Detections{Extra: []signals.Field{{Name: "track_id", Type: signals.Int32}}}
	dets, extra := testDetections(20, 1)
	fr, _ := AppendDetectionsFrame(nil, d, 1, dets, extra)
	f.Add(fr)
	cols := make([]Column, 6, 7)
	for i := range cols {
		cols[i].Reset(signals.Float32, len(dets))
	}
	for i, x := range dets {
		for c, v := range [6]float32{x.Range, x.Azimuth, x.Elevation, x.RadialVelocity, x.RCS, x.SNR} {
			cols[c].F32[i] = v
		}
	}
	old, _ := appendCompactColumnarFrame(nil, FormatDetections, 1, len(dets), append(cols, extra...), false) // version 2, still read
	f.Add(old)
	pc := &signals.PointCloud{Rings: 32, Resolution: 0.001}
	sw, _ := AppendSweepFrame(nil, pc, testSweep(64, 1))
	f.Add(sw)
	arr := &signals.Array{ElemType: signals.Float32, Rows: 3, Cols: 3}
	af, _ := AppendArrayFrame(nil, arr, 1, Column{Type: signals.Float32, F32: []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}})
	f.Add(af)
	var s Sweep
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, _, err := DecodeArrayFrame(b, arr, Column{}); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("array: error without ErrCorrupt: %v", err)
		}
		if _, _, _, err := DecodeDetectionsFrame(b, d, nil); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("detections: error without ErrCorrupt: %v", err)
		}
		if err := DecodeSweepFrame(b, pc, &s); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("sweep: error without ErrCorrupt: %v", err)
		}
	})
}

// quantErr is the quantisation error of b for a, less the float32 rounding
// of b itself.
func quantErr(a, b float32) float64 {
	return math.Abs(float64(a-b)) - math.Abs(float64(a))*0x1p-23
}

// Golden columnar frames, kept as decode-only goldens: a reader must go on
// decoding them to the values that made them, bit for bit. Their columns are
// numeric bodies, whose bytes the numeric encoder is free to change, so the
// frames written now are held only to the columnar layout: the golden's
// header and its number of columns, and they decode to the same values.
// The files were written by the encoder of commit b545fdf; never regenerate
// them.
func TestColumnarGolden(t *testing.T) {
	dets := &signals.Detections{Extra: []signals.Field{{Name: "track_id", Type: signals.Int32}}}
	d, extra := testDetections(12, 7)
	detFrame, err := AppendDetectionsFrame(nil, dets, goldenStart, d, extra)
	if err != nil {
		t.Fatal(err)
	}
	pc := &signals.PointCloud{Rings: 32, Resolution: 0.001}
	sweep := testSweep(70, 7)
	sweepFrame, err := AppendSweepFrame(nil, pc, sweep)
	if err != nil {
		t.Fatal(err)
	}
	arr := &signals.Array{ElemType: signals.Int16, Rows: 4, Cols: 5}
	var v Column
	v.Reset(signals.Int16, 20)
	for i := range v.I16 {
		v.I16[i] = int16(i*i - 50)
	}
	arrFrame, err := AppendArrayFrame(nil, arr, goldenStart, v)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []struct {
		file  string
		frame []byte
		check func(t *testing.T, frame []byte) // decodes frame and compares it with the input
	}{
		{"columnar_detections.hex", detFrame, func(t *testing.T, frame []byte) {
			tm, got, gotExtra, err := DecodeDetectionsFrame(frame, dets, nil)
			if err != nil || tm != goldenStart || len(got) != len(d) || len(gotExtra) != 1 {
				t.Fatalf("time %d, %d detections, %d extra columns: %v", tm, len(got), len(gotExtra), err)
			}
			for i := range d {
				a, b := d[i], got[i]
				for f, pair := range [6][2]float32{{a.Range, b.Range}, {a.Azimuth, b.Azimuth}, {a.Elevation, b.Elevation},
					{a.RadialVelocity, b.RadialVelocity}, {a.RCS, b.RCS}, {a.SNR, b.SNR}} {
					if math.Float32bits(pair[0]) != math.Float32bits(pair[1]) {
						t.Fatalf("detection %d: %s bits %#08x, want %#08x", i, signals.DetectionFields[f].Name, math.Float32bits(pair[1]), math.Float32bits(pair[0]))
					}
				}
			}
			sameColumn(t, "track_id", &gotExtra[0], &extra[0])
		}},
		// The same detections as written today (version 4, the compact
		// coding's version 2); columnar_detections.hex above is an older
		// writer's version 1 and columnar_detections_compact.hex its
		// version 2 (commit 08328a9), which readers go on accepting.
		{"columnar_detections_compact.hex", detFrame, nil},
		{"columnar_detections_compact2.hex", detFrame, nil},
		{"columnar_sweep.hex", sweepFrame, func(t *testing.T, frame []byte) {
			var got Sweep
			if err := DecodeSweepFrame(frame, pc, &got); err != nil {
				t.Fatal(err)
			}
			samePoints(t, pc, &got, sweep)
		}},
		{"columnar_array.hex", arrFrame, func(t *testing.T, frame []byte) {
			tm, got, err := DecodeArrayFrame(frame, arr, Column{})
			if err != nil || tm != goldenStart {
				t.Fatalf("time %d: %v", tm, err)
			}
			sameColumn(t, "data", &got, &v)
		}},
	} {
		if g.check == nil { // the detections' check, for their compact golden
			g.check = func(t *testing.T, frame []byte) {
				tm, got, _, err := DecodeDetectionsFrame(frame, dets, nil)
				if err != nil || tm != goldenStart || len(got) != len(d) {
					t.Fatalf("time %d, %d detections: %v", tm, len(got), err)
				}
				bitsOf := func(x Detection) [6]uint32 {
					return [6]uint32{math.Float32bits(x.Range), math.Float32bits(x.Azimuth), math.Float32bits(x.Elevation),
						math.Float32bits(x.RadialVelocity), math.Float32bits(x.RCS), math.Float32bits(x.SNR)}
				}
				for i := range d {
					if bitsOf(got[i]) != bitsOf(d[i]) {
						t.Fatalf("detection %d: %+v, want %+v", i, got[i], d[i])
					}
				}
			}
		}
		t.Run(g.file, func(t *testing.T) {
			path := filepath.Join("testdata", "golden", g.file)
			if *update && g.file == "columnar_detections_compact2.hex" {
				if err := os.WriteFile(path, []byte("# detections in a compact columnar frame of version 4 (FORMAT.md, \"Compact columnar frame\")\n# regenerate with: go test ./codecs -run ColumnarGolden -update\n"+hexLines(g.frame)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := readHex(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Run("golden decodes", func(t *testing.T) { g.check(t, want) })
			t.Run("written decodes", func(t *testing.T) { g.check(t, g.frame) })
			if g.file == "columnar_detections.hex" || g.file == "columnar_detections_compact.hex" { // older writers': decode only
				return
			}
			if g.file == "columnar_detections_compact2.hex" && !bytes.Equal(g.frame, want) {
				t.Errorf("the compact detections frame changed:\n got %x\nwant %x", g.frame, want)
			}
			if !bytes.Equal(g.frame[:ColumnarHeaderSize], want[:ColumnarHeaderSize]) {
				t.Errorf("the columnar header changed:\n got %x\nwant %x", g.frame[:ColumnarHeaderSize], want[:ColumnarHeaderSize])
			}
			gs, err := ColumnSizes(g.frame)
			if err != nil {
				t.Fatal(err)
			}
			ws, err := ColumnSizes(want)
			if err != nil {
				t.Fatal(err)
			}
			if len(gs) != len(ws) {
				t.Errorf("frames are written with %d columns, the golden has %d", len(gs), len(ws))
			}
		})
	}
}
