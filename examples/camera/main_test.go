package main

import (
	"testing"

	"github.com/sensorium-io/sensorium/sdk"
)

// A prefix in decode order is complete when it holds the first pictures in
// presentation order: I0 P3 B1 B2 is, I0 P3 and I0 P3 B1 are not.
func TestComplete(t *testing.T) {
	order := []int{0, 3, 1, 2, 6, 4, 5}
	var aus []sdk.AccessUnit
	for _, o := range order {
		aus = append(aus, sdk.AccessUnit{Order: o})
	}
	want := []bool{true, false, false, true, false, false, true}
	for n := 1; n <= len(aus); n++ {
		if got := complete(aus[:n]); got != want[n-1] {
			t.Errorf("complete(first %d) = %v, want %v", n, got, want[n-1])
		}
	}
}
