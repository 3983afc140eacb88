package lidar

import (
	"testing"

	"github.com/sensorium-io/sensorium/codecs"
)

// A sweep has tens of thousands of points on every ring, in firing order, and
// the car moves between sweeps.
func TestSweep(t *testing.T) {
	s := New(1)
	var a, b codecs.Sweep
	s.Sweep(0, &a)
	s.Sweep(100_000_000, &b)
	if n := len(a.Points); n < 20000 || n > Rings*Azimuths {
		t.Fatalf("%d points", n)
	}
	rings := map[int16]int{}
	var prev int32 = -1
	for _, p := range a.Points {
		rings[p.Ring]++
		if p.TimeOffset < prev {
			t.Fatal("points are not in firing order")
		}
		prev = p.TimeOffset
	}
	if len(rings) < Rings-2 {
		t.Errorf("only %d rings returned points", len(rings))
	}
	if len(a.Points) == len(b.Points) {
		same := true
		for i := range a.Points {
			if a.Points[i].X != b.Points[i].X {
				same = false
				break
			}
		}
		if same {
			t.Error("two sweeps are identical")
		}
	}
}
