package codecbench

import (
	"fmt"
	"math"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/examples/pump/simulate"
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

func init() {
	for _, c := range []struct {
		id   codecs.ID
		goal float64
	}{{codecs.Plain, 0}, {codecs.Numeric, 0.6}} {
		Register(Case{
			Name:           "vibration float32, " + c.id.String() + " (pump 3×25.6 kHz, 60 s)",
			Data:           func() ([]byte, any, error) { return pumpData(c.id) },
			Encode:         encodeScalar,
			Decode:         decodeScalar,
			Verify:         verifyScalar,
			Goal:           c.goal,
			DecodeGoalMBps: 500,
		})
	}
}

// pumpData is 60 s of the demo pump, in 100 ms frames.
func pumpData(codec codecs.ID) ([]byte, any, error) {
	const rate, seconds = 25600, 60
	desc := &signals.Scalar{SampleRate: rate, SampleType: signals.Float32,
		Channels: []signals.Channel{{Name: "x", Unit: "g"}, {Name: "y", Unit: "g"}, {Name: "z", Unit: "g"}}}
	p := simulate.New(rate, rate*seconds/2, 42)
	in := &scalarInput{desc: desc, codec: codec}
	var raw []byte
	for f := 0; f < seconds*10; f++ {
		var s signals.Samples
		s.Reset(signals.Float32, 3, rate/10)
		s.Start = desc.SampleTime(0, f*rate/10)
		p.Fill(s.F32)
		for _, v := range s.F32 {
			b := math.Float32bits(v)
			raw = append(raw, byte(b), byte(b>>8), byte(b>>16), byte(b>>24))
		}
		in.frames = append(in.frames, s)
	}
	return raw, in, nil
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
		want, got := &in.frames[i], &in.decoded[i]
		if got.Start != want.Start || got.N != want.N || len(got.F32) != len(want.F32) {
			return fmt.Errorf("frame %d: shape differs", i)
		}
		for j := range want.F32 {
			if math.Float32bits(got.F32[j]) != math.Float32bits(want.F32[j]) {
				return fmt.Errorf("frame %d value %d differs", i, j)
			}
		}
	}
	return nil
}
