package query

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/store"
)

// floorMS is a time as ListFragments reports it: floored to the millisecond.
func floorMS(ns int64) int64 { return ns - ns%int64(time.Millisecond) }

// An inclusive end copied from a listed timestamp (ms precision) includes that
// fragment, on either basis; an end given to the ns is taken to the ns.
func TestListFragmentsEndBound(t *testing.T) {
	st, svc := newTestService(t, "a")
	base := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).UnixNano()
	sec := int64(time.Second)
	// Producer times on whole ms (MKV's resolution), server times to the ns.
	a := testFragment(t, 10, base+sec+7*int64(time.Millisecond), base+sec+123_456_789, 0, 2, false)
	b := testFragment(t, 20, base+2*sec+7*int64(time.Millisecond), base+2*sec+123_456_789, 200, 2, false)
	a.ProducerTime += 654_321 // a producer time with ns digits (a codec's exact frame time)
	appendAll(t, st, "a", a, b)
	cases := []struct {
		name       string
		basis      store.TimeBasis
		start, end int64
		want       []uint64
	}{
		{"server: one listed ms", store.ServerTime, floorMS(a.ServerTime), floorMS(a.ServerTime), []uint64{10}},
		{"server: to the ns, just before", store.ServerTime, floorMS(a.ServerTime), a.ServerTime - 1, nil},
		{"server: to the ns, exact", store.ServerTime, floorMS(a.ServerTime), a.ServerTime, []uint64{10}},
		{"server: both listed", store.ServerTime, floorMS(a.ServerTime), floorMS(b.ServerTime), []uint64{10, 20}},
		{"server: a whole second", store.ServerTime, base, base + 2*sec, []uint64{10}},
		{"producer: one listed ms", store.ProducerTime, floorMS(b.ProducerTime), floorMS(b.ProducerTime), []uint64{20}},
		{"producer: a listed ms with ns digits", store.ProducerTime, floorMS(a.ProducerTime), floorMS(a.ProducerTime), []uint64{10}},
		{"producer: both listed", store.ProducerTime, floorMS(a.ProducerTime), floorMS(b.ProducerTime), []uint64{10, 20}},
		{"producer: to the ns, just before", store.ProducerTime, b.ProducerTime - 2, b.ProducerTime - 1, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, next, err := svc.ListFragments(store.StreamRef{Name: "a"}, &FragmentSelector{Basis: tc.basis, Start: tc.start, End: tc.end}, 0, "")
			if err != nil || next != "" {
				t.Fatalf("%v %q", err, next)
			}
			var nums []uint64
			for _, f := range got {
				nums = append(nums, f.Number)
			}
			if !slices.Equal(nums, tc.want) {
				t.Fatalf("fragments %v, want %v", nums, tc.want)
			}
		})
	}
}

// FRAGMENT_NUMBER naming a fragment the stream does not hold is
// store.ErrFragmentNotFound (ResourceNotFound over HTTP), as for GetMediaForFragmentList, not an empty response.
func TestStartAtUnknownFragment(t *testing.T) {
	st, svc := newTestService(t, "a")
	base := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).UnixNano()
	appendAll(t, st, "a",
		testFragment(t, 10, base, base, 0, 1, false),
		testFragment(t, 20, base+int64(time.Second), base+int64(time.Second), 100, 1, false))
	ref := store.StreamRef{Name: "a"}
	for _, tc := range []struct {
		number string
		want   error // what errors.Is matches; nil for a start at that number
	}{
		{"10", nil},
		{"20", nil},
		{"15", store.ErrFragmentNotFound}, // numbers are not contiguous
		{"21", store.ErrFragmentNotFound}, // after the newest: following would wait for it forever
		{"0", store.ErrFragmentNotFound},
		{"x", ErrInvalidRequest},
	} {
		t.Run(tc.number, func(t *testing.T) {
			for _, follow := range []bool{false, true} {
				_, from, err := svc.PrepareGetMedia(GetMediaInput{Stream: ref, Start: StartSelector{Type: FragmentNumber, AfterFragmentNumber: tc.number}, Follow: follow})
				if tc.want == nil {
					if err != nil || strconv.FormatUint(from, 10) != tc.number {
						t.Fatalf("follow=%v: from %d, %v", follow, from, err)
					}
					continue
				}
				if !errors.Is(err, tc.want) || tc.want == store.ErrFragmentNotFound && !strings.Contains(err.Error(), "no fragment "+tc.number) {
					t.Fatalf("follow=%v: %v, want %s naming fragment %s", follow, err, tc.want, tc.number)
				}
			}
			if tc.want == ErrInvalidRequest {
				return
			}
			_, _, err := svc.PrepareFragmentList(ref, []string{"10", tc.number})
			if (tc.want == nil) != (err == nil) || err != nil && !errors.Is(err, store.ErrFragmentNotFound) {
				t.Fatalf("GetMediaForFragmentList: %v", err)
			}
		})
	}
}
