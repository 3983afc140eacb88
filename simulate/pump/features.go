package pump

import "math"

// Features are the condition indicators of one window of one axis.
type Features struct {
	RMS      float64 // overall vibration level
	Kurtosis float64 // 3 for Gaussian noise; impacts push it up
	// BandRMS is the RMS of the 2–4 kHz band around the housing resonance,
	// where bearing impacts ring.
	BandRMS float64
}

// Analyze computes the features of x sampled at rate.
func Analyze(x []float32, rate float64) Features {
	n := float64(len(x))
	if n == 0 {
		return Features{}
	}
	var mean float64
	for _, v := range x {
		mean += float64(v)
	}
	mean /= n
	var m2, m4 float64
	for _, v := range x {
		d := float64(v) - mean
		m2 += d * d
		m4 += d * d * d * d
	}
	m2 /= n
	m4 /= n
	f := Features{RMS: math.Sqrt(m2 + mean*mean)}
	if m2 > 0 {
		f.Kurtosis = m4 / (m2 * m2)
	}
	f.BandRMS = bandRMS(x, rate, 2000, 4000)
	return f
}

// bandRMS band-passes x with a second-order Butterworth high-pass at lo then a
// low-pass at hi (biquads), and returns the RMS of the result.
func bandRMS(x []float32, rate, lo, hi float64) float64 {
	hp := newBiquad(rate, lo, true)
	lp := newBiquad(rate, hi, false)
	var sum float64
	for _, v := range x {
		y := lp.step(hp.step(float64(v)))
		sum += y * y
	}
	return math.Sqrt(sum / float64(len(x)))
}

type biquad struct{ b0, b1, b2, a1, a2, x1, x2, y1, y2 float64 }

func newBiquad(rate, f0 float64, high bool) *biquad {
	w0 := 2 * math.Pi * f0 / rate
	alpha := math.Sin(w0) / math.Sqrt2 // sin(w0)/(2Q) with Q = 1/√2 (Butterworth)
	cw := math.Cos(w0)
	a0 := 1 + alpha
	q := &biquad{a1: -2 * cw / a0, a2: (1 - alpha) / a0}
	if high {
		q.b0, q.b1, q.b2 = (1+cw)/2/a0, -(1+cw)/a0, (1+cw)/2/a0
	} else {
		q.b0, q.b1, q.b2 = (1-cw)/2/a0, (1-cw)/a0, (1-cw)/2/a0
	}
	return q
}

func (q *biquad) step(x float64) float64 {
	y := q.b0*x + q.b1*q.x1 + q.b2*q.x2 - q.a1*q.y1 - q.a2*q.y2
	q.x2, q.x1, q.y2, q.y1 = q.x1, x, q.y1, y
	return y
}
