package codecs

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
)

// beamSweep is a 64-beam sweep in a driver's beam order: HDL-64E-like
// elevations, a ground plane, a wall and a car, range noise, dropouts and
// encoder jitter — what the geometry transform is for.
func beamSweep(seed uint64, cols int) *Sweep {
	rng := rand.New(rand.NewPCG(seed, 9))
	s := &Sweep{Time: 1_700_000_000_000_000_000}
	for ring := range 64 {
		el := (2.0 - 26.8*float64(ring)/63) * math.Pi / 180
		for c := range cols {
			if rng.IntN(15) == 0 {
				continue // no return
			}
			az := (float64(c) + 0.005*rng.NormFloat64()) * 2 * math.Pi / float64(cols)
			r := 60.0 // a wall far off
			if el < 0 {
				r = min(r, 1.73/math.Sin(-el)) // the ground, 1.73 m down
			}
			if math.Abs(az-1) < 0.1 && el > -0.1 {
				r = 12 // a car
			}
			r += 0.02 * rng.NormFloat64()
			s.Points = append(s.Points, Point{
				X: float32(r * math.Cos(el) * math.Cos(az)), Y: float32(r * math.Cos(el) * math.Sin(az)), Z: float32(r * math.Sin(el)),
				Intensity: int16(rng.IntN(100)), Ring: int16(ring), TimeOffset: int32(c * 55_296),
			})
		}
	}
	return s
}

// A sweep in beam order is coded with the geometry transform (version 3),
// smaller than version 1, and decodes to the same points; so does every
// projection through DecodeColumnarFrame.
func TestSweepGeometry(t *testing.T) {
	d := &signals.PointCloud{Rings: 64, Resolution: 0.002}
	s := beamSweep(1, 1000)
	frame, err := AppendSweepFrame(nil, d, s)
	if err != nil {
		t.Fatal(err)
	}
	if frame[1] != ColumnarGeometryVersion {
		t.Fatalf("a beam-ordered sweep written as version %d", frame[1])
	}
	var got Sweep
	if err := DecodeSweepFrame(frame, d, &got); err != nil {
		t.Fatal(err)
	}
	samePoints(t, d, &got, s)
	want := make([]bool, sweepFixed)
	want[sweepIntensity] = true
	_, cols, err := DecodeColumnarFrame(frame, FormatPointCloud, sweepStoredTypes(d), want, nil)
	if err != nil || len(cols) != sweepFixed || cols[sweepIntensity].Len() != len(s.Points) {
		t.Fatalf("intensity alone: %d columns: %v", len(cols), err)
	}
	cuts, flips := 200, 300
	if raceEnabled {
		cuts, flips = 40, 60
	}
	for cut := 0; cut < len(frame); cut += 1 + len(frame)/cuts {
		if err := DecodeSweepFrame(frame[:cut], d, &got); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut to %d: %v", cut, err)
		}
	}
	for i := ColumnarHeaderSize; i < len(frame); i += 1 + len(frame)/flips {
		bad := append([]byte(nil), frame...)
		bad[i] ^= 0x3c
		_ = DecodeSweepFrame(bad, d, &got)
	}
}

// The golden version 3 sweep pins the transform's arithmetic.
func TestSweepGeometryGolden(t *testing.T) {
	d := &signals.PointCloud{Rings: 64, Resolution: 0.002}
	s := beamSweep(2, 6)
	got, err := AppendSweepFrame(nil, d, s)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "golden", "columnar_sweep_geometry.hex")
	if *update {
		if err := os.WriteFile(path, []byte("# a sweep in a columnar frame of version 3 (FORMAT.md, \"Sweep geometry\")\n# regenerate with: go test ./codecs -run SweepGeometryGolden -update\n"+hexLines(got)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := readHex(path)
	if err != nil {
		t.Fatal(err)
	}
	if want[1] != ColumnarGeometryVersion {
		t.Fatalf("the golden is version %d", want[1])
	}
	if !bytes.Equal(got, want) {
		t.Errorf("AppendSweepFrame no longer writes the golden bytes")
	}
	var dec Sweep
	if err := DecodeSweepFrame(want, d, &dec); err != nil {
		t.Fatal(err)
	}
	samePoints(t, d, &dec, s)
}

// FuzzSweepGeometry: any coordinates in beam order round-trip through the
// transform exactly.
func FuzzSweepGeometry(f *testing.F) {
	f.Add(int32(1000), int32(-20), int32(5), uint8(3), uint64(1))
	f.Add(int32(1<<28), int32(-1<<28), int32(0), uint8(1), uint64(2))
	f.Fuzz(func(t *testing.T, x0, y0, z0 int32, rings uint8, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, 1))
		n := 50
		x, y, z, ring := make([]int32, n), make([]int32, n), make([]int32, n), make([]int16, n)
		for i := range n {
			x[i], y[i], z[i] = x0+int32(rng.IntN(2000))-1000, y0+int32(rng.IntN(50)), z0-int32(i)
			ring[i] = int16(i * int(rings%8+1) / n)
		}
		r, ex, ey, ez := make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
		if !forwardGeometry(x, y, z, ring, r, ex, ey, ez) {
			return
		}
		gx, gy, gz := make([]int32, n), make([]int32, n), make([]int32, n)
		if err := inverseGeometry(r, ex, ey, ez, ring, gx, gy, gz); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if gx[i] != x[i] || gy[i] != y[i] || gz[i] != z[i] {
				t.Fatalf("point %d: (%d %d %d), want (%d %d %d)", i, gx[i], gy[i], gz[i], x[i], y[i], z[i])
			}
		}
	})
}

// sweepOrder's counting sort gives exactly the order of a stable sort by
// ring then time offset — the stored order the format defines — for points
// in firing order, in any order, with equal keys, and with rings a sensor
// would not number (negative, or beyond the counted range).
func TestSweepOrderIsTheStableSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	for _, tc := range []struct {
		name             string
		n, rings, jitter int
		ringOffset       int16
	}{
		{"firing order", 3000, 64, 0, 0},
		{"shuffled", 3000, 64, 1000000, 0},
		{"equal keys", 2000, 4, 3, 0},
		{"negative rings", 500, 8, 100, -4},
		{"rings past the counted range", 500, 8, 100, maxCountedRing - 3},
		{"empty", 0, 1, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pts := make([]Point, tc.n)
			for i := range pts {
				pts[i].Ring = int16(i%tc.rings) + tc.ringOffset
				pts[i].TimeOffset = int32(i / tc.rings * 1000)
				if tc.jitter > 0 {
					pts[i].TimeOffset = int32(rng.IntN(tc.jitter))
				}
			}
			want := make([]int32, tc.n)
			for i := range want {
				want[i] = int32(i)
			}
			slices.SortStableFunc(want, func(a, b int32) int {
				if pts[a].Ring != pts[b].Ring {
					return int(pts[a].Ring) - int(pts[b].Ring)
				}
				return cmpInt32(pts[a].TimeOffset, pts[b].TimeOffset)
			})
			if got := sweepOrder(pts, make([]int32, tc.n)); !slices.Equal(got, want) {
				t.Fatalf("the order differs from the stable sort's")
			}
		})
	}
}

// Decoding one geometry sweep after another into the same columns, as a
// reader's decoder does, gives each its own points: the transform's extra
// column must not leave two columns sharing a buffer for the next decode
// (a query of a LIDAR stream failed from its fourth sweep on).
func TestSweepGeometryDecodeReusesColumns(t *testing.T) {
	d := &signals.PointCloud{Rings: 64, Resolution: 0.002}
	types := sweepStoredTypes(d)
	var cols []Column
	for i, n := range []int{1000, 400, 1200, 300, 900, 1100} {
		s := beamSweep(uint64(i+1), n)
		frame, err := AppendSweepFrame(nil, d, s)
		if err != nil {
			t.Fatal(err)
		}
		if frame[1] != ColumnarGeometryVersion {
			t.Fatalf("sweep %d written as version %d", i, frame[1])
		}
		var h ColumnarHeader
		if h, cols, err = DecodeColumnarFrame(frame, FormatPointCloud, types, nil, cols); err != nil {
			t.Fatalf("sweep %d, decoded into reused columns: %v", i, err)
		}
		_, fresh, err := DecodeColumnarFrame(frame, FormatPointCloud, types, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for c := range fresh {
			if !slices.Equal(cols[c].I32, fresh[c].I32) || !slices.Equal(cols[c].I16, fresh[c].I16) || cols[c].Len() != h.Count {
				t.Fatalf("sweep %d column %d: the reused columns differ from a fresh decode", i, c)
			}
		}
	}
}
