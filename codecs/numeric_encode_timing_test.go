package codecs

import (
	"math/rand/v2"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/simulate/pump"
)

// BenchmarkNumericEncodePump encodes frames of the demo pump (3-axis float32
// at 25.6 kHz) with a ScalarEncoder, as a SampleWriter does: past the first
// frames, which search for the mapping, each frame checks the remembered one
// and codes its residuals. It isolates the write path's encoder from the SDK
// and the store; ns/sample is per sample per channel. 100ms is the frames
// the SDK's SampleWriter cuts; 1s is one PutSamples of a second, as the
// bench's dense-samples section puts them (two token blocks a channel, and
// the channels encoded side by side when GOMAXPROCS > 1).
func BenchmarkNumericEncodePump(b *testing.B) {
	b.Run("100ms", func(b *testing.B) { benchNumericEncodePump(b, 2560) })
	b.Run("1s", func(b *testing.B) { benchNumericEncodePump(b, 25600) })
}

func benchNumericEncodePump(b *testing.B, n int) {
	desc := testDesc(signals.Float32, 3)
	enc, err := NewScalarEncoder(desc, Auto)
	if err != nil {
		b.Fatal(err)
	}
	sim := pump.New(25600, 1<<40, 1)
	frames := make([]signals.Samples, max(2, 20480/n)) // several frames, so that the branch predictor does not learn one
	for i := range frames {
		frames[i].Reset(signals.Float32, 3, n)
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

// BenchmarkAppendResiduals times the residual coder alone on a frame's
// worth of residuals like the pump's (about 12 bits each), and of ones like
// a float32 channel's in the xor mode (about 30 bits), which the packer
// takes one at a time.
func BenchmarkAppendResiduals(b *testing.B) {
	b.Run("12bit", func(b *testing.B) { benchAppendResiduals(b, 1000) })
	b.Run("30bit", func(b *testing.B) { benchAppendResiduals(b, 1<<29) })
}

func benchAppendResiduals(b *testing.B, sigma float64) {
	rng := rand.New(rand.NewPCG(5, 6))
	r := make([]uint64, 2560)
	for i := range r {
		r[i] = zigzag(int64(rng.NormFloat64() * sigma))
	}
	var buf []byte
	b.SetBytes(int64(len(r) * 8))
	b.ReportAllocs()
	for b.Loop() {
		buf = appendResiduals(buf[:0], r)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(r)), "ns/value")
}

// BenchmarkChooseOrder times the prediction order's choice alone on a
// frame's worth of integers like the pump's.
func BenchmarkChooseOrder(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	k := make([]int64, 2560)
	for i := range k {
		k[i] = int64(rng.NormFloat64() * 1000)
	}
	r1, r2 := make([]uint64, len(k)), make([]uint64, len(k))
	for b.Loop() {
		chooseOrder(k, r1, r2)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(k)), "ns/value")
}
