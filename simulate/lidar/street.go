// Package lidar makes the sweeps of a 32-beam spinning LIDAR on a car
// parked in a street: it casts every beam of every firing into a scene of a
// ground plane, building façades on both sides, parked cars, poles and a car
// driving past, and returns what the sensor's driver would publish — the
// points that hit something within range, in firing order, with range noise,
// a per-surface intensity, the beam (ring) and the firing time within the
// sweep. It is deterministic for a seed.
//
// It is a simulated sensor for demos, tests and benchmarks (see package
// simulate): no hardware is read.
package lidar

import (
	"math"
	"math/rand/v2"

	"github.com/sensorium-io/sensorium/codecs"
)

// Sensor geometry, like a VLP-32C's.
const (
	Rings        = 32
	Azimuths     = 900 // firings per revolution: 0.4° apart
	SweepHz      = 10
	MountHeight  = 1.8   // metres above the ground
	MaxRange     = 100.0 // metres
	RangeNoise   = 0.015 // metres, 1σ
	firingGapNS  = 2304  // between the beams of one firing
	minElevation = -25.0 // degrees, lowest beam
	maxElevation = 15.0
)

type box struct {
	min, max  [3]float64
	intensity float64
	vx        float64 // m/s along x (the car driving past)
}

type pole struct {
	x, y, r, top float64
}

// Street is the scene and the sensor. Use New.
type Street struct {
	rng   *rand.Rand
	sweep int
	cars  []box
	poles []pole
	elev  [Rings]float64 // beam elevations, radians
}

// New returns a street; the car drives past at 10 m/s.
func New(seed uint64) *Street {
	s := &Street{rng: rand.New(rand.NewPCG(seed, 77))}
	for i := range s.elev {
		s.elev[i] = (minElevation + (maxElevation-minElevation)*float64(i)/(Rings-1)) * math.Pi / 180
	}
	for i, x := range []float64{-22, -15, -6, 7, 14, 26} { // parked cars, both sides
		y := 4.2
		if i%2 == 1 {
			y = -5.8
		}
		s.cars = append(s.cars, box{min: [3]float64{x, y, -MountHeight}, max: [3]float64{x + 4.5, y + 1.8, -MountHeight + 1.5}, intensity: 110})
	}
	s.cars = append(s.cars, box{min: [3]float64{-40, -2.5, -MountHeight}, max: [3]float64{-35.5, -0.7, -MountHeight + 1.45}, intensity: 140, vx: 10})
	for x := -45.0; x <= 45; x += 15 {
		s.poles = append(s.poles, pole{x: x, y: 6.4, r: 0.12, top: 4}, pole{x: x + 7, y: -7.4, r: 0.12, top: 4})
	}
	return s
}

// Sweep fills sw with the next sweep, starting at start (ns).
func (s *Street) Sweep(start int64, sw *codecs.Sweep) {
	sw.Time = start
	sw.Points = sw.Points[:0]
	t := float64(s.sweep) / SweepHz
	s.sweep++
	periodNS := int64(1e9 / SweepHz)
	for a := 0; a < Azimuths; a++ {
		az := 2 * math.Pi * float64(a) / Azimuths
		for ring := 0; ring < Rings; ring++ {
			el := s.elev[ring]
			d := [3]float64{math.Cos(el) * math.Cos(az), math.Cos(el) * math.Sin(az), math.Sin(el)}
			r, intensity := s.cast(d, t)
			if r >= MaxRange {
				continue // no return: the driver drops it
			}
			r += RangeNoise * s.rng.NormFloat64()
			in := intensity*(0.85+0.3*s.rng.Float64()) - 8*r/MaxRange
			sw.Points = append(sw.Points, codecs.Point{
				X: float32(r * d[0]), Y: float32(r * d[1]), Z: float32(r * d[2]),
				Intensity:  int16(math.Max(0, math.Min(255, math.Round(in)))),
				Ring:       int16(ring),
				TimeOffset: int32(int64(a)*periodNS/Azimuths + int64(ring)*firingGapNS),
			})
		}
	}
}

// cast returns the distance along unit direction d to the nearest surface at
// time t, and that surface's intensity.
func (s *Street) cast(d [3]float64, t float64) (float64, float64) {
	best, in := MaxRange, 0.0
	hit := func(r, i float64) {
		if r > 0.3 && r < best {
			best, in = r, i
		}
	}
	if d[2] < 0 {
		hit(-MountHeight/d[2], 18) // asphalt
	}
	if d[1] > 0 {
		hit(9/d[1], 55) // façades
	} else if d[1] < 0 {
		hit(-10/d[1], 70)
	}
	for _, c := range s.cars {
		off := c.vx * t
		hit(slab(d, [3]float64{c.min[0] + off, c.min[1], c.min[2]}, [3]float64{c.max[0] + off, c.max[1], c.max[2]}), c.intensity)
	}
	for _, p := range s.poles {
		hit(cylinder(d, p), 90)
	}
	return best, in
}

// slab intersects a ray from the origin with an axis-aligned box.
func slab(d, lo, hi [3]float64) float64 {
	tmin, tmax := 0.0, math.Inf(1)
	for i := 0; i < 3; i++ {
		if d[i] == 0 {
			if lo[i] > 0 || hi[i] < 0 {
				return math.Inf(1)
			}
			continue
		}
		a, b := lo[i]/d[i], hi[i]/d[i]
		if a > b {
			a, b = b, a
		}
		tmin, tmax = math.Max(tmin, a), math.Min(tmax, b)
	}
	if tmin > tmax {
		return math.Inf(1)
	}
	return tmin
}

// cylinder intersects a ray from the origin with a vertical pole.
func cylinder(d [3]float64, p pole) float64 {
	a := d[0]*d[0] + d[1]*d[1]
	b := -2 * (d[0]*p.x + d[1]*p.y)
	c := p.x*p.x + p.y*p.y - p.r*p.r
	disc := b*b - 4*a*c
	if a == 0 || disc < 0 {
		return math.Inf(1)
	}
	r := (-b - math.Sqrt(disc)) / (2 * a)
	if z := r * d[2]; z < -MountHeight || z > p.top-MountHeight {
		return math.Inf(1)
	}
	return r
}
