// Package audio makes 16 kHz audio of a running machine as a microphone
// next to it records it: the motor's hum (the 50 Hz mains family and the
// 2× slot harmonic), a fan's blade-pass tone, broadband bearing noise, a
// metallic impact now and then, and the microphone's own noise, quantised to
// int16. It is deterministic for a seed.
//
// It is a simulated sensor for demos, tests and benchmarks (see package
// simulate): no hardware is read.
package audio

import (
	"math"
	"math/rand/v2"
)

// Machine is a simulated machine. Use New.
type Machine struct {
	Rate   float64
	rng    *rand.Rand
	n      int64
	ring   float64 // amplitude of the current impact's ringing
	next   int64   // sample of the next impact
	lp     float64 // state of the bearing-noise filter
	phases [6]float64
}

// New returns a machine recorded at rate Hz.
func New(rate float64, seed uint64) *Machine {
	m := &Machine{Rate: rate, rng: rand.New(rand.NewPCG(seed, 5))}
	m.next = int64(rate * (0.5 + m.rng.Float64()))
	for i := range m.phases {
		m.phases[i] = 2 * math.Pi * m.rng.Float64()
	}
	return m
}

// Fill writes len(dst) mono samples.
func (m *Machine) Fill(dst []int16) {
	w := 2 * math.Pi / m.Rate
	decay := math.Exp(-2 * math.Pi * 60 / m.Rate)
	for i := range dst {
		t := float64(m.n)
		v := 0.0
		for k, f := range []float64{50, 100, 150, 300, 600, 1440} { // hum, slot harmonic, fan blade pass
			amp := []float64{0.08, 0.12, 0.03, 0.05, 0.02, 0.04}[k]
			v += amp * math.Sin(w*f*t+m.phases[k])
		}
		m.lp = 0.7*m.lp + 0.3*m.rng.NormFloat64() // bearing noise, low-passed
		v += 0.03 * m.lp
		if m.n >= m.next {
			m.ring = 0.3 + 0.2*m.rng.Float64()
			m.next += int64(m.Rate * (1.5 + 2*m.rng.Float64()))
		}
		v += m.ring * math.Sin(w*3400*t)
		m.ring *= decay
		v += 0.002 * m.rng.NormFloat64() // microphone noise
		dst[i] = int16(math.Max(-32768, math.Min(32767, math.Round(v*32767))))
		m.n++
	}
}
