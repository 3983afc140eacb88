package codecs

import (
	"testing"

	"github.com/sensorium-io/sensorium/signals"
	imusim "github.com/sensorium-io/sensorium/simulate/imu"
)

// Short int16 frames (100 samples × 6 axes, an IMU at 1 kHz): per-frame and
// per-channel costs dominate here, not the per-sample loops.
func BenchmarkNumericDecodeIMU(b *testing.B) {
	desc := testDesc(signals.Int16, 6)
	m := imusim.New(1000, 1)
	s := &signals.Samples{}
	s.Reset(signals.Int16, 6, 100)
	m.Fill(s.I16)
	frame, err := AppendScalarFrame(nil, desc, s, Numeric)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d bytes of samples in %d", s.Len()*2, len(frame))
	out := &signals.Samples{}
	b.SetBytes(int64(s.Len() * 2))
	b.ReportAllocs()
	for b.Loop() {
		if err := DecodeScalarFrame(frame, desc, out); err != nil {
			b.Fatal(err)
		}
	}
}
