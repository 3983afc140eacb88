package codecs

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The fast paths of the sweep encoder against the code they replace, kept
// here as it was: they must give the same bits, since frames already stored
// were written by it and golden vectors pin it.

// predictRef is geometryPredictor.predict as it was before forwardGeometry
// cached each point's values.
func (g *geometryPredictor) predictRef(i int, x, y, z []int32, ring []int16) (int64, [3]float64) {
	if i == 0 {
		g.first, g.prevFirst = 0, -1
	} else if ring[i] != ring[i-1] {
		g.prevFirst, g.first = g.first, i
	}
	p1, p2 := -1, -1
	switch {
	case i > g.first:
		p1 = i - 1
		if i-1 > g.first {
			p2 = i - 2
		}
	case g.prevFirst >= 0:
		p1 = g.prevFirst
	}
	if p1 < 0 {
		return 0, [3]float64{1, 0, 0}
	}
	r1 := norm3(x[p1], y[p1], z[p1])
	rhat := int64(math.Round(r1))
	if r1 == 0 {
		return rhat, [3]float64{1, 0, 0}
	}
	d := [3]float64{float64(x[p1]) / r1, float64(y[p1]) / r1, float64(z[p1]) / r1}
	if p2 < 0 {
		return rhat, d
	}
	h1 := math.Sqrt(float64(float64(x[p1])*float64(x[p1])) + float64(float64(y[p1])*float64(y[p1])))
	h2 := math.Sqrt(float64(float64(x[p2])*float64(x[p2])) + float64(float64(y[p2])*float64(y[p2])))
	if h1 == 0 || h2 == 0 {
		return rhat, d
	}
	ax, ay := float64(x[p1])/h1, float64(y[p1])/h1
	bx, by := float64(x[p2])/h2, float64(y[p2])/h2
	cx, cy := float64(ax*bx)+float64(ay*by), float64(ay*bx)-float64(ax*by)
	rho := h1 / r1
	px, py := float64(ax*cx)-float64(ay*cy), float64(ax*cy)+float64(ay*cx)
	return rhat, [3]float64{float64(rho * px), float64(rho * py), d[2]}
}

// forwardGeometryRef is forwardGeometry as it was: predict at every point.
func forwardGeometryRef(x, y, z []int32, ring []int16, r, ex, ey, ez []int32) bool {
	for i := range x {
		if max(abs32(x[i]), abs32(y[i]), abs32(z[i])) >= maxGeometryCoord {
			return false
		}
	}
	var g geometryPredictor
	for i := range x {
		rhat, d := g.predictRef(i, x, y, z, ring)
		ri := int64(math.Round(norm3(x[i], y[i], z[i])))
		var p [3]int64
		fr := float64(ri)
		for j, c := range d {
			v := math.Round(float64(fr * c))
			if !(math.Abs(v) < 1<<40) {
				return false
			}
			p[j] = int64(v)
		}
		r[i] = int32(ri - rhat)
		ex[i], ey[i], ez[i] = int32(int64(x[i])-p[0]), int32(int64(y[i])-p[1]), int32(int64(z[i])-p[2])
	}
	return true
}

// TestForwardGeometryIsPredict: forwardGeometry codes every point as the
// predictor the decoder runs does, on real-looking sweeps and on awkward
// ones (points at the origin or on the z axis, rings of one or two points,
// rings that come back, coordinates at the transform's limit, any order).
func TestForwardGeometryIsPredict(t *testing.T) {
	check := func(name string, x, y, z []int32, ring []int16) {
		t.Helper()
		n := len(x)
		got, want := make([][]int32, 4), make([][]int32, 4)
		for k := range got {
			got[k], want[k] = make([]int32, n), make([]int32, n)
		}
		okGot := forwardGeometry(x, y, z, ring, got[0], got[1], got[2], got[3])
		okWant := forwardGeometryRef(x, y, z, ring, want[0], want[1], want[2], want[3])
		if okGot != okWant {
			t.Fatalf("%s: forwardGeometry says %v, the reference %v", name, okGot, okWant)
		}
		if !okGot {
			return
		}
		for k := range got {
			for i := range got[k] {
				if got[k][i] != want[k][i] {
					t.Fatalf("%s: column %d point %d (ring %d, %d %d %d): %d, the reference %d", name, k, i, ring[i], x[i], y[i], z[i], got[k][i], want[k][i])
				}
			}
		}
	}
	fromSweep := func(s *Sweep, res float64) (x, y, z []int32, ring []int16) {
		order := sweepOrder(s.Points, make([]int32, len(s.Points)))
		for _, i := range order {
			p := s.Points[i]
			qx, _ := Quantize(p.X, res)
			qy, _ := Quantize(p.Y, res)
			qz, _ := Quantize(p.Z, res)
			x, y, z, ring = append(x, qx), append(y, qy), append(z, qz), append(ring, p.Ring)
		}
		return
	}
	for seed := range uint64(4) {
		for _, res := range []float64{0.0001, 0.002, 0.05} {
			x, y, z, ring := fromSweep(beamSweep(seed, 700), res)
			check("beam sweep", x, y, z, ring)
		}
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for trial := range 3000 {
		n := 1 + rng.IntN(40)
		x, y, z, ring := make([]int32, n), make([]int32, n), make([]int32, n), make([]int16, n)
		scale := []int32{1, 3, 1000, 1 << 20, maxGeometryCoord - 1, maxGeometryCoord}[rng.IntN(6)]
		r := int16(0)
		for i := range n {
			if rng.IntN(4) == 0 {
				r = int16(rng.IntN(4)) // short rings, rings that come back
			}
			ring[i] = r
			v := func() int32 {
				switch rng.IntN(6) {
				case 0:
					return 0
				case 1:
					return scale
				case 2:
					return -scale
				}
				return rng.Int32N(scale) - scale/2
			}
			x[i], y[i], z[i] = v(), v(), v()
		}
		check("random "+string(rune('a'+trial%26)), x, y, z, ring)
	}
}

// BenchmarkForwardGeometry: the transform alone on a 64-beam sweep, and the
// code it replaced (ns per point).
func BenchmarkForwardGeometry(b *testing.B) {
	s := beamSweep(1, 1800)
	order := sweepOrder(s.Points, make([]int32, len(s.Points)))
	n := len(order)
	x, y, z, ring := make([]int32, n), make([]int32, n), make([]int32, n), make([]int16, n)
	for j, i := range order {
		p := s.Points[i]
		x[j], _ = Quantize(p.X, 0.0001)
		y[j], _ = Quantize(p.Y, 0.0001)
		z[j], _ = Quantize(p.Z, 0.0001)
		ring[j] = p.Ring
	}
	r, ex, ey, ez := make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
	for _, f := range []struct {
		name string
		fn   func(x, y, z []int32, ring []int16, r, ex, ey, ez []int32) bool
	}{{"cached", forwardGeometry}, {"predict", forwardGeometryRef}} {
		b.Run(f.name, func(b *testing.B) {
			for b.Loop() {
				f.fn(x, y, z, ring, r, ex, ey, ez)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/point")
		})
	}
}
