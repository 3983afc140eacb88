package codecs

import (
	"testing"

	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/simulate/pump"
)

// BenchmarkNumericEncodePump encodes frames of the demo pump (3-axis float32
// at 25.6 kHz, 100 ms frames as the SDK cuts them) with a ScalarEncoder, as
// a SampleWriter does: past the first frames, which search for the mapping,
// each frame checks the remembered one and codes its residuals. It isolates
// the write path's encoder from the SDK and the store; ns/sample is per
// sample per channel.
func BenchmarkNumericEncodePump(b *testing.B) {
	desc := testDesc(signals.Float32, 3)
	enc, err := NewScalarEncoder(desc, Auto)
	if err != nil {
		b.Fatal(err)
	}
	sim := pump.New(25600, 1<<40, 1)
	frames := make([]signals.Samples, 8) // several frames, so that the branch predictor does not learn one
	for i := range frames {
		frames[i].Reset(signals.Float32, 3, 2560)
		sim.Fill(frames[i].F32)
	}
	var buf []byte
	for i := range frames { // the first frames learn the mapping
		if buf, err = enc.AppendFrame(buf[:0], &frames[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(frames[0].Len() * 4))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if buf, err = enc.AppendFrame(buf[:0], &frames[i%len(frames)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(frames[0].Len()), "ns/sample")
}
