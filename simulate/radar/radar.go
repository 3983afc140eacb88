// Package radar makes the output of a 77 GHz automotive RADAR on a car
// driving at 15 m/s: per 50 ms scan, a detection list (cars ahead and in the
// next lanes, a pedestrian at the kerb, a guardrail, false alarms) at the
// resolutions such sensors report on their CAN or Ethernet interface, and the
// range × Doppler map the detections come from, in dB as Q8 fixed point. It is
// deterministic for a seed.
//
// It is a simulated sensor for demos, tests and benchmarks (see package
// simulate): no hardware is read.
package radar

import (
	"math"
	"math/rand/v2"

	"github.com/sensorium-io/sensorium/codecs"
)

// Sensor parameters.
const (
	ScanHz      = 20
	MaxRange    = 200.0 // m
	FieldOfView = 60 * math.Pi / 180
	EgoSpeed    = 15.0 // m/s
	RangeBins   = 256
	DopplerBins = 64
	RangeStep   = MaxRange / RangeBins // m per bin
	DopplerStep = 1.0                  // m/s per bin, centred on 0
)

// Reporting resolutions: a detection's values are whole multiples of these.
const (
	rangeRes    = 0.05                // m
	angleRes    = 0.1 * math.Pi / 180 // rad
	velocityRes = 0.1                 // m/s
	rcsRes      = 0.5                 // dBsm
	snrRes      = 0.25                // dB
)

type target struct {
	x, y, vx, vy float64 // m, m/s, relative to the ground; the sensor looks along +x
	rcs          float64 // dBsm
	extent       int     // detections it makes per scan
}

// Radar is the sensor and its scene. Use New.
type Radar struct {
	rng     *rand.Rand
	t       float64
	targets []target
}

// New returns a radar on a car at the start of a straight road.
func New(seed uint64) *Radar {
	return &Radar{rng: rand.New(rand.NewPCG(seed, 31)), targets: []target{
		{x: 40, y: 0, vx: 13, rcs: 12, extent: 4},          // the car ahead, slower than us
		{x: 25, y: 3.6, vx: 22, rcs: 10, extent: 3},        // overtaking in the next lane
		{x: 120, y: -3.6, vx: -20, rcs: 14, extent: 5},     // oncoming truck
		{x: 30, y: -6, vx: 0, vy: 1.2, rcs: -6, extent: 1}, // a pedestrian crossing at the kerb
	}}
}

// Scan returns the next scan's detections (appended to dets[:0]) and fills
// rd (RangeBins × DopplerBins values, row-major by range) with its map.
func (r *Radar) Scan(dets []codecs.Detection, rd []float32) []codecs.Detection {
	dt := 1.0 / ScanHz
	r.t += dt
	dets = dets[:0]
	noise := func() float64 { return -95 + 5.57*math.Log(1/(1-r.rng.Float64())) } // exponential power, in dB-ish
	for i := range rd {
		rd[i] = q8(noise())
	}
	for i := range r.targets {
		tg := &r.targets[i]
		tg.x += (tg.vx - EgoSpeed) * dt
		tg.y += tg.vy * dt
		if tg.x < 5 { // passed: it reappears far ahead
			tg.x += 150
		}
		for k := 0; k < tg.extent; k++ {
			x, y := tg.x+r.rng.NormFloat64()*1.2, tg.y+r.rng.NormFloat64()*0.5
			dets = r.detect(dets, rd, x, y, tg.vx, tg.vy, tg.rcs+r.rng.NormFloat64()*2)
		}
	}
	for x := 4.0; x < 100; x += 6 { // guardrail posts
		dets = r.detect(dets, rd, x+r.rng.Float64(), -7.5, 0, 0, -2+r.rng.NormFloat64())
	}
	for k := r.rng.IntN(12); k > 0; k-- { // false alarms
		dets = append(dets, codecs.Detection{
			Range: quant(r.rng.Float64()*MaxRange, rangeRes), Azimuth: quant((r.rng.Float64()*2-1)*FieldOfView, angleRes),
			RadialVelocity: quant(r.rng.NormFloat64()*10, velocityRes), RCS: quant(-15+r.rng.Float64()*5, rcsRes), SNR: quant(8+r.rng.Float64()*3, snrRes),
		})
	}
	return dets
}

// detect adds the detection of a reflector at (x, y) moving at (vx, vy), if
// the sensor sees it, and its peak in the map.
func (r *Radar) detect(dets []codecs.Detection, rd []float32, x, y, vx, vy, rcs float64) []codecs.Detection {
	rng := math.Hypot(x, y)
	az := math.Atan2(y, x)
	if rng > MaxRange || math.Abs(az) > FieldOfView {
		return dets
	}
	vr := ((vx-EgoSpeed)*x + vy*y) / rng // radial velocity relative to the sensor
	snr := rcs + 60 - 40*math.Log10(rng) + 40 + r.rng.NormFloat64()
	if snr < 10 {
		return dets
	}
	rb, db := int(rng/RangeStep), int(vr/DopplerStep)+DopplerBins/2
	if db >= 0 && db < DopplerBins {
		for d := -1; d <= 1; d++ { // the peak and its sidelobes
			if c := db + d; c >= 0 && c < DopplerBins {
				rd[rb*DopplerBins+c] = q8(math.Max(float64(rd[rb*DopplerBins+c]), -95+snr-13*math.Abs(float64(d))))
			}
		}
	}
	return append(dets, codecs.Detection{
		Range: quant(rng+r.rng.NormFloat64()*0.1, rangeRes), Azimuth: quant(az+r.rng.NormFloat64()*0.004, angleRes),
		Elevation: quant(r.rng.NormFloat64()*0.01, angleRes), RadialVelocity: quant(vr+r.rng.NormFloat64()*0.1, velocityRes),
		RCS: quant(rcs, rcsRes), SNR: quant(snr, snrRes),
	})
}

// quant is v at the sensor's reporting resolution, as its driver converts it.
func quant(v, res float64) float32 { return float32(float64(int64(math.Round(v/res))) * res) }

// q8 is a dB value in Q8 fixed point, as the sensor's FFT hands it out.
func q8(db float64) float32 { return float32(math.Round(db*256) / 256) }
