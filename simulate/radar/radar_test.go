package radar

import (
	"math"
	"testing"

	"github.com/sensorium-io/sensorium/codecs"
)

// Scans see the targets (strong, near) and the map has their peaks.
func TestScan(t *testing.T) {
	r := New(1)
	rd := make([]float32, RangeBins*DopplerBins)
	var dets []codecs.Detection
	total := 0
	for i := 0; i < 40; i++ {
		dets = r.Scan(dets, rd)
		total += len(dets)
		for _, d := range dets {
			if d.Range < 0 || d.Range > MaxRange || math.Abs(float64(d.Azimuth)) > FieldOfView+0.1 {
				t.Fatalf("detection out of the sensor's view: %+v", d)
			}
		}
	}
	if total < 40*8 {
		t.Errorf("%d detections in 40 scans", total)
	}
	peak := float32(-200)
	for _, v := range rd {
		peak = max(peak, v)
	}
	if peak < -60 {
		t.Errorf("the range-Doppler map has no target peak (max %.1f dB)", peak)
	}
}
