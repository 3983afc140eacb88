package codecs

import (
	"fmt"
	"math"
)

// The geometry transform of a LIDAR sweep (columnar frame version 3,
// FORMAT.md, "Sweep geometry"). Coding x, y and z each from the previous
// point of the beam pays three times for the one thing that is hard to
// predict, the range: a step in range moves all three coordinates along the
// ray. So a point is coded as its range (rounded, in resolution units) less
// the previous point's, then as its distance, coordinate by coordinate, from
// the point at that range in the direction the beam is expected to point
// next: the previous point's direction turned by the azimuth step between the
// two points before, at the previous point's elevation. Both residuals are
// small on real scans (noise in range, encoder jitter in azimuth), and the
// numeric codec codes the four columns.
//
// The prediction uses float64 arithmetic — products rounded before they are
// added (no fused multiply-add, so every machine computes the same), square
// roots and divisions, all exact IEEE operations — on the integer
// coordinates already decoded, so encoder and decoder agree bit for bit.

// ColumnarGeometryVersion is the version byte of a sweep frame whose x, y and
// z are coded by the geometry transform: its columns are those of version 1
// with one more int32 column after z.
const ColumnarGeometryVersion = 3

// maxGeometryCoord bounds the coordinates (in resolution units) the
// transform takes, so that ranges and residuals fit int32.
const maxGeometryCoord = 1 << 29

// geometryPredictor walks a sweep in stored order.
type geometryPredictor struct {
	first, prevFirst int // the current ring's first point; the previous ring's (−1: none)
}

func norm3(x, y, z int32) float64 {
	fx, fy, fz := float64(x), float64(y), float64(z)
	return math.Sqrt(float64(fx*fx) + float64(fy*fy) + float64(fz*fz))
}

// predict returns the expected range (units) and direction of point i, from
// the points before it.
func (g *geometryPredictor) predict(i int, x, y, z []int32, ring []int16) (int64, [3]float64) {
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
		p1 = g.prevFirst // a ring's first point: where the ring before began
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
	cx, cy := float64(ax*bx)+float64(ay*by), float64(ay*bx)-float64(ax*by) // the turn from p2 to p1
	rho := h1 / r1                                                         // p1's horizontal share: its elevation
	px, py := float64(ax*cx)-float64(ay*cy), float64(ax*cy)+float64(ay*cx)
	return rhat, [3]float64{float64(rho * px), float64(rho * py), d[2]}
}

// towards is the integer point at range r in direction d.
func towards(r int64, d [3]float64) ([3]int64, bool) {
	var p [3]int64
	fr := float64(r)
	for j, c := range d {
		v := math.Round(float64(fr * c))
		if !(math.Abs(v) < 1<<40) {
			return p, false
		}
		p[j] = int64(v)
	}
	return p, true
}

// forwardGeometry fills r, ex, ey, ez from the stored points; false when a
// coordinate is beyond what the transform takes.
//
// It computes what geometryPredictor.predict computes, operation for
// operation, but each point's range, horizontal length, unit horizontal
// direction and elevation share once, when it is coded, and reuses them when
// the point is the previous or the one before (predict recomputes them: four
// square roots and eight divisions a point instead of two and four, which
// were most of the transform's time). The decoder keeps predict: it has the
// coordinates only as it rebuilds them. TestForwardGeometryIsPredict holds
// the two to the same results.
func forwardGeometry(x, y, z []int32, ring []int16, r, ex, ey, ez []int32) bool {
	for i := range x {
		if max(abs32(x[i]), abs32(y[i]), abs32(z[i])) >= maxGeometryCoord {
			return false
		}
	}
	// What points p1 and p2 (predict's names) leave, computed from their
	// coordinates as predict computes it; scalars, not a struct, since
	// copying a struct written field by field stalls on every point.
	var (
		i1            int     // p1
		r1, h1, dz1   float64 // p1's norm3, horizontal length, z/r1
		rho1, ax1     float64 // h1/r1, x/h1
		ay1, h2       float64 // y/h1; p2's horizontal length
		ax2, ay2      float64 // p2's x/h2, y/h2
		rhat1         int64   // r1 rounded
		cr, ch        float64 // the current point's
		cdz, crho     float64
		cax, cay      float64
		first, before = 0, -1 // the ring's first point, the ring before's
	)
	for i := range x {
		var rhat int64
		d := [3]float64{1, 0, 0}
		has1, has2 := false, false
		switch {
		case i == 0:
		case ring[i] != ring[i-1]:
			// A ring's first point: predicted from where the ring before
			// began, without a turn.
			before, first = first, i
			i1, has1 = before, true
			fx, fy := float64(x[i1]), float64(y[i1])
			r1 = norm3(x[i1], y[i1], z[i1])
			rhat1 = int64(math.Round(r1))
			h1 = math.Sqrt(float64(fx*fx) + float64(fy*fy))
			if r1 != 0 {
				dz1 = float64(z[i1]) / r1
			}
		default:
			has1, has2 = true, i-1 > first
		}
		if has1 {
			rhat = rhat1
			switch {
			case r1 == 0:
			case has2 && h1 != 0 && h2 != 0:
				cx, cy := float64(ax1*ax2)+float64(ay1*ay2), float64(ay1*ax2)-float64(ax1*ay2)
				px, py := float64(ax1*cx)-float64(ay1*cy), float64(ax1*cy)+float64(ay1*cx)
				d = [3]float64{float64(rho1 * px), float64(rho1 * py), dz1}
			default:
				d = [3]float64{float64(x[i1]) / r1, float64(y[i1]) / r1, dz1}
			}
		}
		fx, fy := float64(x[i]), float64(y[i])
		cr = norm3(x[i], y[i], z[i])
		ri := int64(math.Round(cr))
		ch = math.Sqrt(float64(fx*fx) + float64(fy*fy))
		cax, cay, cdz, crho = 0, 0, 0, 0
		if ch != 0 {
			cax, cay = fx/ch, fy/ch
		}
		if cr != 0 {
			cdz, crho = float64(z[i])/cr, ch/cr
		}
		p, ok := towards(ri, d)
		if !ok {
			return false
		}
		r[i] = int32(ri - rhat)
		ex[i], ey[i], ez[i] = int32(int64(x[i])-p[0]), int32(int64(y[i])-p[1]), int32(int64(z[i])-p[2])
		h2, ax2, ay2 = h1, ax1, ay1
		i1, r1, rhat1, h1, ax1, ay1, dz1, rho1 = i, cr, ri, ch, cax, cay, cdz, crho
	}
	return true
}

// inverseGeometry rebuilds x, y, z (which may alias r, ex, ey) from the
// coded columns.
func inverseGeometry(r, ex, ey, ez []int32, ring []int16, x, y, z []int32) error {
	var g geometryPredictor
	for i := range r {
		rhat, d := g.predict(i, x, y, z, ring)
		p, ok := towards(rhat+int64(r[i]), d)
		if !ok {
			return fmt.Errorf("codecs: sweep: %w: point %d is out of range", ErrCorrupt, i)
		}
		vx, vy, vz := p[0]+int64(ex[i]), p[1]+int64(ey[i]), p[2]+int64(ez[i])
		if vx != int64(int32(vx)) || vy != int64(int32(vy)) || vz != int64(int32(vz)) {
			return fmt.Errorf("codecs: sweep: %w: point %d is out of range", ErrCorrupt, i)
		}
		x[i], y[i], z[i] = int32(vx), int32(vy), int32(vz)
	}
	return nil
}

func abs32(v int32) int64 {
	if v < 0 {
		return -int64(v)
	}
	return int64(v)
}
