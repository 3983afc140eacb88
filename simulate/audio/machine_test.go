package audio

import (
	"math"
	"testing"
)

// The machine is loud but does not clip, and impacts happen.
func TestMachine(t *testing.T) {
	m := New(16000, 1)
	buf := make([]int16, 16000*5)
	m.Fill(buf)
	var sum2 float64
	peak := 0
	for _, v := range buf {
		sum2 += float64(v) * float64(v)
		peak = max(peak, int(math.Abs(float64(v))))
	}
	rms := math.Sqrt(sum2/float64(len(buf))) / 32767
	if rms < 0.05 || rms > 0.3 || peak >= 32767 {
		t.Errorf("rms %.3f, peak %d", rms, peak)
	}
	if peak < 11468 { // 0.35 of full scale
		t.Errorf("no impact in 5 s (peak %d)", peak)
	}
}
