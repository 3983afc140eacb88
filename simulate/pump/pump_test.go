package pump

import (
	"math"
	"testing"
)

// The fault must be plain in the features a maintenance job computes, and
// absent before it starts: otherwise the demo shows nothing.
func TestFaultShowsInFeatures(t *testing.T) {
	const rate = 25600
	p := New(rate, 10*rate, 1)
	buf := make([]float32, 3*rate)
	x := make([]float32, rate)
	var before, after Features
	for s := 0; s < 20; s++ {
		p.Fill(buf)
		for i := range x {
			x[i] = buf[3*i]
		}
		f := Analyze(x, rate)
		switch s {
		case 8:
			before = f
		case 19:
			after = f
		}
	}
	t.Logf("before: %+v", before)
	t.Logf("after:  %+v", after)
	if before.Kurtosis > 3.5 || after.Kurtosis < 2*before.Kurtosis {
		t.Errorf("kurtosis does not reveal the fault: %.2f → %.2f", before.Kurtosis, after.Kurtosis)
	}
	if after.BandRMS < 5*before.BandRMS {
		t.Errorf("2–4 kHz band does not reveal the fault: %.4f → %.4f", before.BandRMS, after.BandRMS)
	}
}

// Every sample is what the DAQ makes: a whole number of ADC counts within the
// converter's range, times the chain's resolution, as float32 — so a codec
// may rely on the structure a real sensor's data has.
func TestSamplesAreADCCounts(t *testing.T) {
	p := New(25600, 25600, 3)
	buf := make([]float32, 3*25600*2)
	p.Fill(buf)
	for i, v := range buf {
		c := math.Round(float64(v) / GPerCount)
		if c < minCount || c > maxCount || float32(c*GPerCount) != v || math.Signbit(float64(v)) && v == 0 {
			t.Fatalf("sample %d = %g is not a count of %g g", i, v, GPerCount)
		}
	}
}
