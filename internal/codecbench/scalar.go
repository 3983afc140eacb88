package codecbench

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sensorium-io/sensorium/codecs"
	imusim "github.com/sensorium-io/sensorium/examples/imu/simulate"
	"github.com/sensorium-io/sensorium/examples/pump/simulate"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// scalarInput is a scalar dataset cut into the frames a producer would make.
type scalarInput struct {
	desc    *signals.Scalar
	frames  []signals.Samples
	codec   codecs.ID
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
}

func init() {
	for _, d := range []scalarDataset{
		{name: "vibration float32 (pump 3×25.6 kHz, 60 s)", make: pumpFrames, goal: 0.6, decGoal: 500,
			baseline: []codecs.ID{codecs.Plain, codecs.Zstd, codecs.S2, codecs.ShuffleZstd, codecs.Numeric}},
		{name: "temperature float64 (4×10 Hz, 0.01 °C, 6 h)", make: temperatureFrames,
			baseline: []codecs.ID{codecs.ShuffleZstd}},
		{name: "IMU int16 counts (6×1 kHz, 5 min)", make: imuFrames,
			baseline: []codecs.ID{codecs.ShuffleZstd}},
	} {
		register(d, codecs.Auto, d.goal, d.decGoal)
		for _, id := range d.baseline {
			register(d, id, 0, 0)
		}
	}
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
			return rawLE(frames), &scalarInput{desc: desc, frames: frames, codec: id}, nil
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
	per := sdk.DefaultFrameSamples(desc.SampleRate)
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
	p := simulate.New(rate, rate*seconds/2, 42)
	return desc, frames(desc, seconds, func(s *signals.Samples) { p.Fill(s.F32) })
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
	for i := range in.frames {
		buf, err := codecs.AppendScalarFrame(nil, in.desc, &in.frames[i], in.codec)
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
		if err := codecs.DecodeScalarFrame(e, in.desc, &in.decoded[i]); err != nil {
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
