// Package pump makes the vibration of a centrifugal pump that develops an
// outer-race bearing fault, as a three-axis accelerometer on its bearing
// housing would record it: shaft harmonics, a vane-pass tone, broadband noise
// and — once the fault starts — impacts at the bearing's outer-race defect
// frequency (BPFO) that ring the housing's resonance around 3 kHz. It is the
// data of `sensorium demo` and of the predictive-maintenance example.
//
// The samples go through the measurement chain of a real DAQ: an IEPE
// accelerometer of 100 mV/g into a 24-bit ADC with a ±5 V range, so every value
// is a whole number of ADC counts times the chain's resolution in g, converted
// to float32 the way a DAQ driver hands samples to software. That is what makes
// real vibration data compressible (and what our float codecs exploit): a
// float32 with a random 24-bit mantissa is not a sample any sensor produces.
//
// The signal is deterministic for a given seed, so that tests and benchmarks
// see the same samples every run.
//
// It is a simulated sensor for demos, tests and benchmarks (see package
// simulate): no hardware is read.
package pump

import (
	"math"
	"math/rand/v2"
)

// Pump is a simulated pump. Use New.
type Pump struct {
	SampleRate float64 // Hz
	ShaftHz    float64 // running speed (1770 rpm = 29.5 Hz)
	Vanes      int     // impeller vanes: vane-pass = Vanes × ShaftHz
	BPFOHz     float64 // outer-race defect frequency of the bearing
	ResonantHz float64 // housing resonance the impacts excite
	// FaultAt is the sample index where the fault appears; it then grows to
	// full strength over FaultGrowth samples.
	FaultAt, FaultGrowth int64

	rng *rand.Rand
	n   int64 // samples made so far
	// Impact ringing state per axis: a decaying resonance restarted at each impact.
	ringAmp   [3]float64
	nextImpct float64 // sample index of the next impact
}

// New returns a pump sampled at rate whose fault appears after faultAfter
// samples.
func New(rate float64, faultAfter int64, seed uint64) *Pump {
	return &Pump{
		SampleRate: rate, ShaftHz: 29.5, Vanes: 6, BPFOHz: 107.4, ResonantHz: 3100,
		FaultAt: faultAfter, FaultGrowth: int64(rate * 5),
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		nextImpct: float64(faultAfter),
	}
}

// The measurement chain.
const (
	SensitivityVoltsPerG = 0.1        // IEPE accelerometer, 100 mV/g
	ADCBits              = 24         // bits of the converter
	ADCRangeVolts        = 10.0       // ±5 V input range
	maxCount             = 1<<23 - 1  // largest positive count of a 24-bit ADC
	minCount             = -(1 << 23) // most negative count
)

// GPerCount is the resolution of the chain: one ADC count in g.
const GPerCount = ADCRangeVolts / (1 << ADCBits) / SensitivityVoltsPerG

// digitize is what the ADC and the driver do to an acceleration in g: the
// nearest count (clipped at the converter's range), scaled back to g and
// rounded to float32.
func digitize(g float64) float32 {
	c := int32(math.Max(minCount, math.Min(maxCount, math.Round(g/GPerCount))))
	return float32(float64(c) * GPerCount) // from an integer count: never -0

}

// Axes are the accelerometer's axes, the channel names of the stream.
var Axes = []string{"x", "y", "z"}

// Fill writes len(dst)/3 interleaved x, y, z samples in g and advances time.
func (p *Pump) Fill(dst []float32) {
	fs := p.SampleRate
	w := 2 * math.Pi / fs
	decay := math.Exp(-2 * math.Pi * 120 / fs) // the resonance rings ~1/120 s
	for i := 0; i+2 < len(dst); i += 3 {
		t := float64(p.n)
		shaft := math.Sin(w*p.ShaftHz*t) + 0.35*math.Sin(2*w*p.ShaftHz*t+0.4) + 0.1*math.Sin(3*w*p.ShaftHz*t+1.1)
		vane := 0.18 * math.Sin(w*float64(p.Vanes)*p.ShaftHz*t+0.7)
		fault := p.faultStrength()
		if fault > 0 && t >= p.nextImpct {
			// An impact: restart the ringing with some spread in its strength, and
			// schedule the next one a period later with a little slip, as rolling
			// elements do.
			for a := range p.ringAmp {
				p.ringAmp[a] = fault * (0.9 + 0.2*p.rng.Float64()) * [3]float64{1.6, 1.0, 0.5}[a]
			}
			p.nextImpct += fs / p.BPFOHz * (1 + 0.01*(p.rng.Float64()-0.5))
		}
		ring := math.Sin(w * p.ResonantHz * t)
		axes := [3]float64{0.12 * shaft, 0.08 * shaft, 0.03 * shaft}
		for a := 0; a < 3; a++ {
			v := axes[a] + vane*[3]float64{1, 0.6, 0.3}[a] + 0.02*p.rng.NormFloat64() + p.ringAmp[a]*ring
			dst[i+a] = digitize(v)
			p.ringAmp[a] *= decay
		}
		p.n++
	}
}

// faultStrength is 0 before the fault and grows to 1 over FaultGrowth samples.
func (p *Pump) faultStrength() float64 {
	if p.n < p.FaultAt {
		return 0
	}
	if p.FaultGrowth <= 0 {
		return 1
	}
	return math.Min(1, 0.3+0.7*float64(p.n-p.FaultAt)/float64(p.FaultGrowth))
}

// Samples is how many samples per axis the pump has made.
func (p *Pump) Samples() int64 { return p.n }
