package codecbench

import (
	"math"
	"math/rand/v2"

	"github.com/sensorium-io/sensorium/signals"
)

// Slow signals: what a factory has thousands of — one value a second, which
// the SDK writes ten to a frame (sdk.DefaultFrameSamples(1) = 10). Each
// frame is self-contained, so its header and its channel's model are paid
// every ten samples, while zstd compresses the whole stream at once: the
// goal holds the frames to 1.5 × that.
//
// The int16 pressure cannot get there frame by frame: of a Compact2 frame's
// ~7 bytes, the codec byte, the count and the level (its width and 15 bits)
// take 4, against zstd's 3.4 bytes for ten samples of the whole stream. The
// same signal in frames of 30 samples — one frame per fragment of 30 s,
// the longest an MKV cluster's int16 block times allow — is measured beside
// it, without a goal, for what a longer frame would give.
func init() {
	for _, d := range []scalarDataset{
		{name: "slow temperature f64 0.01 °C (1 Hz, 10/frame, 24 h)", make: slowTemperatureFrames, goal: 1.5},
		{name: "slow pressure int16 counts (1 Hz, 10/frame, 24 h)", make: slowPressureFrames, goal: 1.5},
		{name: "slow 3 gauges f32 0.1 (1 Hz, 10/frame, 24 h)", make: slowGaugeFrames, goal: 1.5},
	} {
		register(d, 255, 0, 0) // numeric frames: the SDK's for a start off a whole millisecond
		d.compact, d.name = true, d.name+", compact"
		register(d, 255, d.goal, 0) // as the SDK writes them (sdk.appendScalarFrame)
	}
	register(scalarDataset{name: "slow pressure int16 counts (1 Hz, 30/frame, 24 h), compact", compact: true,
		make: func() (*signals.Scalar, []signals.Samples) { return slowPressure(30) }}, 255, 0, 0)
}

// slowTemperatureFrames: a room's temperature logged at 0.01 °C as float64
// parsed from text: a daily cycle, a heating controller's ripple, noise.
func slowTemperatureFrames() (*signals.Scalar, []signals.Samples) {
	desc := &signals.Scalar{SampleRate: 1, SampleType: signals.Float64, Channels: []signals.Channel{{Name: "t", Unit: "°C"}}}
	rng := rand.New(rand.NewPCG(21, 1))
	n := 0
	return desc, frames(desc, 24*3600, func(s *signals.Samples) {
		for i := range s.N {
			t := float64(n)
			v := 21.5 + 1.5*math.Sin(2*math.Pi*t/86400) + 0.2*math.Sin(2*math.Pi*t/900) + 0.01*rng.NormFloat64()
			s.F64[i] = math.Round(v*100) / 100
			n++
		}
	})
}

// slowPressureFrames: a pressure transmitter's raw counts, which move by a
// count or two and sit still for long stretches.
func slowPressureFrames() (*signals.Scalar, []signals.Samples) { return slowPressure(0) }

// slowPressure is the pressure in frames of per samples (0: the SDK's
// default).
func slowPressure(per int) (*signals.Scalar, []signals.Samples) {
	desc := &signals.Scalar{SampleRate: 1, SampleType: signals.Int16, Channels: []signals.Channel{{Name: "p", Unit: "count"}}}
	rng := rand.New(rand.NewPCG(22, 1))
	v := 12000.0
	return desc, framesOf(desc, 24*3600, per, func(s *signals.Samples) {
		for i := range s.N {
			v += 0.3 * rng.NormFloat64()
			s.I16[i] = int16(math.Round(v))
		}
	})
}

// slowGaugeFrames: three gauges read at 0.1 units as float32 (level, flow,
// valve position), the valve often still.
func slowGaugeFrames() (*signals.Scalar, []signals.Samples) {
	desc := &signals.Scalar{SampleRate: 1, SampleType: signals.Float32, Channels: []signals.Channel{{Name: "level"}, {Name: "flow"}, {Name: "valve"}}}
	rng := rand.New(rand.NewPCG(23, 1))
	level, flow, valve := 50.0, 12.0, 30.0
	return desc, frames(desc, 24*3600, func(s *signals.Samples) {
		for i := range s.N {
			level += 0.05 * rng.NormFloat64()
			flow = 12 + 2*math.Sin(float64(i)/300) + 0.2*rng.NormFloat64()
			if rng.IntN(120) == 0 {
				valve = math.Round(rng.Float64() * 100)
			}
			for c, v := range []float64{level, flow, valve} {
				s.F32[i*3+c] = float32(math.Round(v*10) / 10)
			}
		}
	})
}
