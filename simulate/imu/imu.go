// Package imu makes the raw output of a 6-axis MEMS IMU bolted to a
// running machine: gravity and a slow tilt drift on the accelerometer, the
// machine's 1× and 2× running-speed vibration, a small rocking on the
// gyroscope, sensor bias and white noise — quantised to the int16 counts the
// chip's registers hold (±4 g at 8192 counts/g, ±500 °/s at 65.5 counts/(°/s)),
// as a driver that reads the FIFO hands them on.
//
// The samples are deterministic for a seed.
//
// It is a simulated sensor for demos, tests and benchmarks (see package
// simulate): no hardware is read.
package imu

import (
	"math"
	"math/rand/v2"
)

// The chip's ranges, as the physical value of one count.
const (
	AccelCountsPerG  = 8192.0
	GyroCountsPerDPS = 65.5
	StandardGravity  = 9.80665 // m/s² per g
)

// AccelScale and GyroScale convert counts to m/s² and rad/s, the units a
// query returns.
const (
	AccelScale = StandardGravity / AccelCountsPerG
	GyroScale  = math.Pi / 180 / GyroCountsPerDPS
)

// IMU is a simulated IMU. Use New.
type IMU struct {
	SampleRate float64
	ShaftHz    float64
	rng        *rand.Rand
	n          int64
	bias       [6]float64 // counts
}

// New returns an IMU sampled at rate Hz on a machine turning at 29.5 Hz.
func New(rate float64, seed uint64) *IMU {
	m := &IMU{SampleRate: rate, ShaftHz: 29.5, rng: rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))}
	for i := range m.bias {
		m.bias[i] = 20 * m.rng.NormFloat64()
	}
	return m
}

// Fill writes len(dst)/6 samples of accel x, y, z and gyro x, y, z counts.
func (m *IMU) Fill(dst []int16) {
	w := 2 * math.Pi * m.ShaftHz / m.SampleRate
	for i := 0; i+5 < len(dst); i += 6 {
		t := float64(m.n)
		tilt := 0.02 * math.Sin(2*math.Pi*t/m.SampleRate/60) // rad, one slow cycle a minute
		vib := math.Sin(w*t) + 0.4*math.Sin(2*w*t+0.3)
		g := [6]float64{
			math.Sin(tilt) + 0.25*vib,        // accel x, g
			0.15 * vib,                       // accel y
			math.Cos(tilt) + 0.05*vib,        // accel z: gravity
			3 * math.Cos(w*t),                // gyro x, °/s: rocking
			1.2 * math.Cos(w*t+1),            // gyro y
			0.3 * math.Sin(2*math.Pi*t/1000), // gyro z: a slow yaw
		}
		for a := range g {
			counts := AccelCountsPerG
			noise := 4.0
			if a >= 3 {
				counts, noise = GyroCountsPerDPS, 3.0
			}
			v := g[a]*counts + m.bias[a] + noise*m.rng.NormFloat64()
			dst[i+a] = int16(math.Max(math.MinInt16, math.Min(math.MaxInt16, math.Round(v))))
		}
		m.n++
	}
}

// Samples is how many samples per axis the IMU has made.
func (m *IMU) Samples() int64 { return m.n }
