package codecs_test

import (
	"testing"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/simulate/lidar"
)

// BenchmarkSweepEncode encodes the simulated street's 64-beam sweeps as the
// producer does (MB/s of points as the SDK takes them: 20 bytes each).
func BenchmarkSweepEncode(b *testing.B) {
	d := &signals.PointCloud{Rings: lidar.Rings, Resolution: 0.001}
	st := lidar.New(1)
	var sweeps []codecs.Sweep
	for i := range 4 {
		var s codecs.Sweep
		st.Sweep(int64(i)*100_000_000, &s)
		sweeps = append(sweeps, s)
	}
	b.SetBytes(int64(len(sweeps[0].Points) * 20))
	var buf []byte
	i := 0
	for b.Loop() {
		var err error
		buf, err = codecs.AppendSweepFrame(buf[:0], d, &sweeps[i%len(sweeps)])
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(len(buf))/float64(len(sweeps[0].Points)), "B/point")
}
