package codecbench

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
	imusim "github.com/sensorium-io/sensorium/simulate/imu"
	"github.com/sensorium-io/sensorium/simulate/pump"
)

// scalarInput is a scalar dataset cut into the frames a producer would make.
type scalarInput struct {
	desc    *signals.Scalar
	frames  []signals.Samples
	codec   codecs.ID
	compact bool // ScalarEncoder.AppendCompactFrame, for short frames
	encoded [][]byte
	decoded []signals.Samples
}

// scalarDataset makes a dataset's frames (the raw bytes follow from them).
type scalarDataset struct {
	name     string
	make     func() (*signals.Scalar, []signals.Samples)
	goal     float64
	decGoal  float64
	baseline []codecs.ID // codecs measured alone for comparison, besides auto
	compact  bool        // encode with AppendCompactFrame
}

func init() {
	for _, d := range []scalarDataset{
		{name: "vibration float32 (pump 3×25.6 kHz, 60 s)", make: pumpFrames, goal: 0.6, decGoal: 500,
			baseline: []codecs.ID{codecs.Plain, codecs.Zstd, codecs.S2, codecs.ShuffleZstd, codecs.Numeric}},
		{name: "temperature float64 (4×10 Hz, 0.01 °C, 6 h)", make: temperatureFrames,
			baseline: []codecs.ID{codecs.ShuffleZstd}},
		{name: "IMU int16 counts (6×1 kHz, 5 min)", make: imuFrames,
			baseline: []codecs.ID{codecs.ShuffleZstd}},
		// The pump as real acquisition chains deliver it, not as the
		// simulator's power-of-two scale makes it easy.
		{name: "vibration f32, int24 ADC × calibrated m/s² (pump, 60 s)", make: calibratedPumpFrames(false), goal: 0.6},
		{name: "vibration f32, the same + zero offset", make: calibratedPumpFrames(true)},
		{name: "vibration f32, low-pass filtered in float32 (pump, 60 s)", make: filteredPumpFrames},
		{name: "strain f64, counts × gain × sensitivity (2×1 kHz, 10 min)", make: strainFrames},
	} {
		register(d, codecs.Auto, d.goal, d.decGoal)
		for _, id := range d.baseline {
			register(d, id, 0, 0)
		}
	}
	// The IMU as compact frames, which the SDK does not make for it (fast
	// tracks stay numeric): 12 % smaller, decoded three times slower.
	register(scalarDataset{name: "IMU int16 counts (6×1 kHz, 5 min), compact", make: imuFrames, compact: true}, codecs.Auto, 0, 0)
}

func register(d scalarDataset, id codecs.ID, goal, decGoal float64) {
	name := "auto"
	if id != codecs.Auto {
		name = id.String()
	}
	Register(Case{
		Name: d.name + ", " + name,
		Data: func() ([]byte, any, error) {
			desc, frames := d.make()
			return rawLE(frames), &scalarInput{desc: desc, frames: frames, codec: id, compact: d.compact}, nil
		},
		Encode:         encodeScalar,
		Decode:         decodeScalar,
		Verify:         verifyScalar,
		Goal:           goal,
		DecodeGoalMBps: decGoal,
	})
}

// rawLE is the samples as the sensor writes them: interleaved, little endian.
func rawLE(frames []signals.Samples) []byte {
	var raw []byte
	for i := range frames {
		s := &frames[i]
		for _, v := range s.I16 {
			raw = binary.LittleEndian.AppendUint16(raw, uint16(v))
		}
		for _, v := range s.I32 {
			raw = binary.LittleEndian.AppendUint32(raw, uint32(v))
		}
		for _, v := range s.F32 {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
		}
		for _, v := range s.F64 {
			raw = binary.LittleEndian.AppendUint64(raw, math.Float64bits(v))
		}
	}
	return raw
}

// frames cuts a signal into the frames the SDK's SampleWriter makes by
// default, filled by fill.
func frames(desc *signals.Scalar, seconds int, fill func(s *signals.Samples)) []signals.Samples {
	return framesOf(desc, seconds, 0, fill)
}

// framesOf cuts a signal into frames of per samples per channel (0: the
// SDK's default), filled by fill.
func framesOf(desc *signals.Scalar, seconds, per int, fill func(s *signals.Samples)) []signals.Samples {
	if per <= 0 {
		per = sdk.DefaultFrameSamples(desc.SampleRate)
	}
	total := int(desc.SampleRate) * seconds
	var out []signals.Samples
	for at := 0; at < total; at += per {
		var s signals.Samples
		s.Reset(desc.SampleType, len(desc.Channels), min(per, total-at))
		s.Start = desc.SampleTime(0, at)
		fill(&s)
		out = append(out, s)
	}
	return out
}

// pumpFrames is 60 s of the demo pump: the fault starts halfway.
func pumpFrames() (*signals.Scalar, []signals.Samples) {
	const rate, seconds = 25600, 60
	desc := &signals.Scalar{SampleRate: rate, SampleType: signals.Float32,
		Channels: []signals.Channel{{Name: "x", Unit: "g"}, {Name: "y", Unit: "g"}, {Name: "z", Unit: "g"}}}
	p := pump.New(rate, rate*seconds/2, 42)
	return desc, frames(desc, seconds, func(s *signals.Samples) { p.Fill(s.F32) })
}

// calibratedPumpFrames is the pump in m/s² from a ±4 g int24 converter whose
// sensitivity was calibrated (no power of two), as float32 — with a zero
// offset when offset is set.
func calibratedPumpFrames(offset bool) func() (*signals.Scalar, []signals.Samples) {
	return func() (*signals.Scalar, []signals.Samples) {
		desc, fr := pumpFrames()
		sens := 4 * 9.80665 / (1 << 23) * 1.0123 // m/s² per count
		zero := 0.0
		if offset {
			zero = 0.0417
		}
		for i := range fr {
			for j, g := range fr[i].F32 {
				k := math.Round(float64(g) * 9.80665 / sens)
				fr[i].F32[j] = float32(k*sens + zero)
			}
		}
		for c := range desc.Channels {
			desc.Channels[c].Unit = "m/s²"
		}
		return desc, fr
	}
}

// filteredPumpFrames is the pump after a float32 low-pass filter (a
// biquad at 8 kHz): full-mantissa floats on no grid, near their entropy.
func filteredPumpFrames() (*signals.Scalar, []signals.Samples) {
	desc, fr := pumpFrames()
	w := 2 * math.Pi * 8000 / desc.SampleRate
	alpha, cw := math.Sin(w)/math.Sqrt2, math.Cos(w)
	a0 := 1 + alpha
	b0, b1, a1, a2 := float32((1-cw)/2/a0), float32((1-cw)/a0), float32(-2*cw/a0), float32((1-alpha)/a0)
	var x1, x2, y1, y2 [3]float32
	for i := range fr {
		for j, x := range fr[i].F32 {
			c := j % 3
			y := b0*x + b1*x1[c] + b0*x2[c] - a1*y1[c] - a2*y2[c]
			x2[c], x1[c], y2[c], y1[c] = x1[c], x, y1[c], y
			fr[i].F32[j] = y
		}
	}
	return desc, fr
}

// strainFrames is two strain gauges' 24-bit counts scaled to µm/m in float64
// in two rounded steps (counts × bridge gain × gauge factor), as a DAQ
// driver computes them.
func strainFrames() (*signals.Scalar, []signals.Samples) {
	const rate, seconds = 1000, 600
	desc := &signals.Scalar{SampleRate: rate, SampleType: signals.Float64,
		Channels: []signals.Channel{{Name: "s1", Unit: "µm/m"}, {Name: "s2", Unit: "µm/m"}}}
	rng := rand.New(rand.NewPCG(11, 11))
	n := 0
	return desc, frames(desc, seconds, func(s *signals.Samples) {
		for i := 0; i < s.N; i++ {
			t := float64(n) / rate
			for c := 0; c < 2; c++ {
				k := math.Round(1e6 + 50000*math.Sin(2*math.Pi*0.2*t+float64(c)) + 40*rng.NormFloat64())
				s.F64[i*2+c] = k * 1.1920929e-7 * 2087.3
			}
			n++
		}
	})
}

// temperatureFrames is four process temperatures logged at 10 Hz with
// 0.01 °C resolution, as float64 parsed from the logger's decimal text: a slow
// drift, a 1 Hz ripple from a controller, and sensor noise.
func temperatureFrames() (*signals.Scalar, []signals.Samples) {
	const rate, seconds = 10, 6 * 3600
	desc := &signals.Scalar{SampleRate: rate, SampleType: signals.Float64}
	for _, n := range []string{"inlet", "outlet", "bearing", "ambient"} {
		desc.Channels = append(desc.Channels, signals.Channel{Name: n, Unit: "°C"})
	}
	rng := rand.New(rand.NewPCG(5, 5))
	base := []float64{18.5, 42.0, 55.3, 21.7}
	n := 0
	return desc, frames(desc, seconds, func(s *signals.Samples) {
		for i := 0; i < s.N; i++ {
			t := float64(n) / rate
			for c := range base {
				v := base[c] + 2*math.Sin(2*math.Pi*t/7200+float64(c)) + 0.05*math.Sin(2*math.Pi*t) + 0.02*rng.NormFloat64()
				s.F64[i*4+c] = math.Round(v*100) / 100
			}
			n++
		}
	})
}

// imuFrames is 5 minutes of a 6-axis IMU's raw counts at 1 kHz.
func imuFrames() (*signals.Scalar, []signals.Samples) {
	const rate, seconds = 1000, 300
	imu := &signals.IMU{SampleRate: rate, SampleType: signals.Int16, Sensors: []signals.IMUSensor{
		{Type: signals.Accelerometer, Unit: "m/s²", Scale: imusim.AccelScale},
		{Type: signals.Gyroscope, Unit: "rad/s", Scale: imusim.GyroScale},
	}}
	desc := imu.Scalar()
	m := imusim.New(rate, 9)
	return desc, frames(desc, seconds, func(s *signals.Samples) { m.Fill(s.I16) })
}

func encodeScalar(input any) (int, error) {
	in := input.(*scalarInput)
	in.encoded = in.encoded[:0]
	n := 0
	enc, err := codecs.NewScalarEncoder(in.desc, in.codec) // as the SDK encodes a track
	if err != nil {
		return 0, err
	}
	for i := range in.frames {
		appendFrame := enc.AppendFrame
		if in.compact {
			appendFrame = enc.AppendCompactFrame
		}
		buf, err := appendFrame(nil, &in.frames[i])
		if err != nil {
			return 0, err
		}
		in.encoded = append(in.encoded, buf)
		n += len(buf)
	}
	return n, nil
}

func decodeScalar(input any) error {
	in := input.(*scalarInput)
	if len(in.decoded) != len(in.encoded) {
		in.decoded = make([]signals.Samples, len(in.encoded))
	}
	for i, e := range in.encoded {
		// The block time, as the SDK cuts it: what a reader has beside the frame.
		block := in.frames[i].Start / 1e6 * 1e6
		if err := codecs.DecodeScalarFrameAt(e, block, in.desc, &in.decoded[i]); err != nil {
			return err
		}
	}
	return nil
}

func verifyScalar(input any) error {
	in := input.(*scalarInput)
	for i := range in.frames {
		want, got := rawLE(in.frames[i:i+1]), rawLE(in.decoded[i:i+1])
		if in.decoded[i].Start != in.frames[i].Start || string(want) != string(got) {
			return fmt.Errorf("frame %d differs after decoding", i)
		}
	}
	return nil
}
