package imu

import (
	"math"
	"testing"
)

// Gravity must show on the z axis and the machine's vibration on x; the
// samples must be deterministic for a seed.
func TestIMUPhysics(t *testing.T) {
	const rate = 1000
	a, b := New(rate, 7), New(rate, 7)
	buf, again := make([]int16, 6*rate), make([]int16, 6*rate)
	a.Fill(buf)
	b.Fill(again)
	var sumZ, sumX, sumX2 float64
	for i := 0; i < len(buf); i += 6 {
		if buf[i] != again[i] || buf[i+5] != again[i+5] {
			t.Fatal("not deterministic")
		}
		sumZ += float64(buf[i+2])
		x := float64(buf[i]) / AccelCountsPerG
		sumX += x
		sumX2 += x * x
	}
	if g := sumZ / rate / AccelCountsPerG; math.Abs(g-1) > 0.02 {
		t.Errorf("mean z = %.3f g, want 1 g", g)
	}
	if rms := math.Sqrt(sumX2/rate - (sumX/rate)*(sumX/rate)); rms < 0.1 || rms > 0.3 {
		t.Errorf("x vibration RMS %.3f g, want about 0.19 g", rms)
	}
}
