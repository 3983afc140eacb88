package codecs

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
)

// The input families every codec and every columnar kind is held to: what
// sensors send (constant, steps, noise) and what breaks codecs (random bits,
// the special values, the extremes of each type).
var inputFamilies = []string{"constant", "step", "noise", "random", "specials", "extremes"}

// familyValues returns n values of type t of an input family; seed varies
// them between channels and columns.
func familyValues(family string, t signals.SampleType, n int, seed uint64) Column {
	rng := rand.New(rand.NewPCG(seed, 11))
	var c Column
	c.Reset(t, n)
	for i := range n {
		// ints is the value as an int64 for the integer types, and bits the
		// IEEE 754 bits for the floats; f a float value when bits is unset.
		var (
			ints    int64
			f       float64
			bits    uint64
			useBits bool
		)
		switch family {
		case "constant":
			ints, f = -1234+int64(seed), 3.25+float64(seed)
		case "step": // three levels, the last at the top of the type
			switch {
			case i < n/3:
				ints, f = -1000, 1.5
			case i < 2*n/3:
				ints, f = 0, -2.25e3
			default:
				ints, f = math.MaxInt64, 1e30
			}
		case "noise":
			g := rng.NormFloat64()
			ints, f = int64(math.Round(g*1000)), g*10
		case "random":
			bits, useBits = rng.Uint64(), true
			ints = int64(bits)
		case "specials":
			switch t {
			case signals.Int16:
				ints = int64(special16[i%len(special16)])
			case signals.Int32:
				ints = int64(special32[i%len(special32)])
			case signals.Float32:
				bits, useBits = uint64(specialF32[i%len(specialF32)]), true
			case signals.Float64:
				bits, useBits = specialF64[i%len(specialF64)], true
			}
		case "extremes": // alternate the largest and the smallest value
			if i%2 == 0 {
				ints, f = math.MaxInt64, math.MaxFloat64
			} else {
				ints, f = math.MinInt64, -math.MaxFloat64
			}
		default:
			panic("unknown input family " + family)
		}
		switch t {
		case signals.Int16:
			c.I16[i] = int16(clamp(ints, math.MinInt16, math.MaxInt16))
			if family == "random" {
				c.I16[i] = int16(ints)
			}
		case signals.Int32:
			c.I32[i] = int32(clamp(ints, math.MinInt32, math.MaxInt32))
			if family == "random" {
				c.I32[i] = int32(ints)
			}
		case signals.Float32:
			if useBits {
				c.F32[i] = math.Float32frombits(uint32(bits))
			} else {
				c.F32[i] = float32(max(min(f, math.MaxFloat32), -math.MaxFloat32))
			}
		case signals.Float64:
			if useBits {
				c.F64[i] = math.Float64frombits(bits)
			} else {
				c.F64[i] = f
			}
		}
	}
	return c
}

func clamp(v, lo, hi int64) int64 { return max(min(v, hi), lo) }

// familySamples interleaves channels of a family, each from its own seed.
func familySamples(family string, t signals.SampleType, channels, n int) *signals.Samples {
	s := &signals.Samples{Start: goldenStart}
	s.Reset(t, channels, n)
	for c := range channels {
		col := familyValues(family, t, n, uint64(c))
		for i := range n {
			j := i*channels + c
			switch t {
			case signals.Int16:
				s.I16[j] = col.I16[i]
			case signals.Int32:
				s.I32[j] = col.I32[i]
			case signals.Float32:
				s.F32[j] = col.F32[i]
			case signals.Float64:
				s.F64[j] = col.F64[i]
			}
		}
	}
	return s
}

// sameColumn fails t unless got holds want's values, floats bit for bit.
func sameColumn(t *testing.T, what string, got, want *Column) {
	t.Helper()
	if got.Type != want.Type || got.Len() != want.Len() {
		t.Fatalf("%s: %d %s values, want %d %s", what, got.Len(), got.Type, want.Len(), want.Type)
	}
	for i := range want.I16 {
		if got.I16[i] != want.I16[i] {
			t.Fatalf("%s[%d] = %d, want %d", what, i, got.I16[i], want.I16[i])
		}
	}
	for i := range want.I32 {
		if got.I32[i] != want.I32[i] {
			t.Fatalf("%s[%d] = %d, want %d", what, i, got.I32[i], want.I32[i])
		}
	}
	for i := range want.F32 {
		if g, w := math.Float32bits(got.F32[i]), math.Float32bits(want.F32[i]); g != w {
			t.Fatalf("%s[%d] bits %#08x, want %#08x", what, i, g, w)
		}
	}
	for i := range want.F64 {
		if g, w := math.Float64bits(got.F64[i]), math.Float64bits(want.F64[i]); g != w {
			t.Fatalf("%s[%d] bits %#016x, want %#016x", what, i, g, w)
		}
	}
}

// Element counts of the columnar round trips: none, one, a few, and more
// than a token block of the residual stream (16384) so that a column spans
// two.
var columnarCounts = []int{0, 1, 3, 1000, 20000}

// TestDetectionsFamilies round-trips scans whose every column — the six
// float32 standard fields and an extra field of each type — is of one input
// family, bit for bit.
func TestDetectionsFamilies(t *testing.T) {
	d := &signals.Detections{Extra: []signals.Field{
		{Name: "track_id", Type: signals.Int32}, {Name: "class", Type: signals.Int16},
		{Name: "quality", Type: signals.Float32}, {Name: "covariance", Type: signals.Float64},
	}}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, family := range inputFamilies {
		for _, n := range columnarCounts {
			t.Run(fmt.Sprintf("%s/%d", family, n), func(t *testing.T) {
				var std [6]Column
				for f := range std {
					std[f] = familyValues(family, signals.Float32, n, uint64(f))
				}
				dets := make([]Detection, n)
				for i := range dets {
					dets[i] = Detection{std[0].F32[i], std[1].F32[i], std[2].F32[i], std[3].F32[i], std[4].F32[i], std[5].F32[i]}
				}
				var extra []Column
				for e, f := range d.Extra {
					extra = append(extra, familyValues(family, f.Type, n, uint64(10+e)))
				}
				frame, err := AppendDetectionsFrame(nil, d, goldenStart, dets, extra)
				if err != nil {
					t.Fatal(err)
				}
				tm, got, gotExtra, err := DecodeDetectionsFrame(frame, d, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tm != goldenStart || len(got) != n || len(gotExtra) != len(extra) {
					t.Fatalf("time %d, %d detections, %d extra columns", tm, len(got), len(gotExtra))
				}
				for f := range std {
					var c Column
					c.Reset(signals.Float32, n)
					for i, x := range got {
						c.F32[i] = [6]float32{x.Range, x.Azimuth, x.Elevation, x.RadialVelocity, x.RCS, x.SNR}[f]
					}
					sameColumn(t, signals.DetectionFields[f].Name, &c, &std[f])
				}
				for e := range extra {
					sameColumn(t, d.Extra[e].Name, &gotExtra[e], &extra[e])
				}
			})
		}
	}
}

// TestArrayFamilies round-trips arrays of every element type filled with
// each input family, bit for bit.
func TestArrayFamilies(t *testing.T) {
	shapes := [][2]uint32{{1, 1}, {3, 7}, {64, 32}, {160, 128}} // the last: 20480 cells, two token blocks
	for _, st := range signals.SampleTypes() {
		for _, family := range inputFamilies {
			for _, shape := range shapes {
				t.Run(fmt.Sprintf("%s/%s/%dx%d", st, family, shape[0], shape[1]), func(t *testing.T) {
					d := &signals.Array{ElemType: st, Rows: shape[0], Cols: shape[1]}
					if err := d.Validate(); err != nil {
						t.Fatal(err)
					}
					in := familyValues(family, st, int(shape[0]*shape[1]), 5)
					frame, err := AppendArrayFrame(nil, d, goldenStart, in)
					if err != nil {
						t.Fatal(err)
					}
					// Decoding into a column of another type and size reuses
					// nothing it should not.
					tm, got, err := DecodeArrayFrame(frame, d, familyValues("random", signals.Float64, 9, 1))
					if err != nil || tm != goldenStart {
						t.Fatalf("time %d, %v", tm, err)
					}
					sameColumn(t, "data", &got, &in)
				})
			}
		}
	}
}

// An array has at least one element: the description refuses an empty
// shape, and a frame of no values does not decode as an array that has some.
func TestArrayEmpty(t *testing.T) {
	empty := &signals.Array{ElemType: signals.Int16, Rows: 0, Cols: 4}
	if err := empty.Validate(); !errors.Is(err, signals.ErrInvalid) {
		t.Errorf("an array of 0 × 4 validates: %v", err)
	}
	frame, err := AppendArrayFrame(nil, empty, goldenStart, Column{Type: signals.Int16, I16: []int16{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := DecodeArrayFrame(frame, &signals.Array{ElemType: signals.Int16, Rows: 1, Cols: 4}, Column{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a frame of 0 values decodes as a 1 × 4 array: %v", err)
	}
	if _, _, err := DecodeArrayFrame(nil, empty, Column{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("an empty frame: %v", err)
	}
}

// TestSweepFamilies round-trips sweeps whose every field is of one input
// family: coordinates come back as their quantised values (exactly
// float32(k × resolution)), every other field and every extra field bit for
// bit, in the producer's order.
func TestSweepFamilies(t *testing.T) {
	d := &signals.PointCloud{Rings: 32, Resolution: 0.001, Extra: []signals.Field{
		{Name: "reflectivity", Type: signals.Int16}, {Name: "tag", Type: signals.Int32},
		{Name: "range", Type: signals.Float32}, {Name: "noise", Type: signals.Float64},
	}}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, family := range inputFamilies {
		for _, n := range columnarCounts {
			t.Run(fmt.Sprintf("%s/%d", family, n), func(t *testing.T) {
				s := &Sweep{Time: goldenStart, Points: make([]Point, n)}
				// Coordinates: the family's float64 values clamped into the
				// quantiser's range; for the specials, random bits and
				// extremes, which hold NaN and Inf, the family's int32 values
				// at half the resolution (the whole int32 range at the
				// resolution itself would round past it in float32).
				coord := func(seed uint64) []float32 {
					out := make([]float32, n)
					switch family {
					case "specials", "random", "extremes":
						c := familyValues(family, signals.Int32, n, seed)
						for i, k := range c.I32 {
							out[i] = float32(float64(k) * d.Resolution / 2)
						}
					default:
						c := familyValues(family, signals.Float64, n, seed)
						for i, v := range c.F64 {
							out[i] = float32(max(min(v, 1e5), -1e5))
						}
					}
					return out
				}
				x, y, z := coord(1), coord(2), coord(3)
				intensity, ring, tm := familyValues(family, signals.Int16, n, 4), familyValues(family, signals.Int16, n, 5), familyValues(family, signals.Int32, n, 6)
				for i := range s.Points {
					s.Points[i] = Point{X: x[i], Y: y[i], Z: z[i], Intensity: intensity.I16[i], Ring: ring.I16[i], TimeOffset: tm.I32[i]}
				}
				for e, f := range d.Extra {
					s.Extra = append(s.Extra, familyValues(family, f.Type, n, uint64(10+e)))
				}
				frame, err := AppendSweepFrame(nil, d, s)
				if err != nil {
					t.Fatal(err)
				}
				var got Sweep
				if err := DecodeSweepFrame(frame, d, &got); err != nil {
					t.Fatal(err)
				}
				samePoints(t, d, &got, s)
			})
		}
	}
}

// samePoints fails t unless got is want as a reader sees it: coordinates
// quantised, the rest exact.
func samePoints(t *testing.T, d *signals.PointCloud, got, want *Sweep) {
	t.Helper()
	if got.Time != want.Time || len(got.Points) != len(want.Points) || len(got.Extra) != len(want.Extra) {
		t.Fatalf("time %d, %d points, %d extra columns; want %d, %d, %d", got.Time, len(got.Points), len(got.Extra), want.Time, len(want.Points), len(want.Extra))
	}
	quantised := func(v float32) float32 {
		k, ok := Quantize(v, d.Resolution)
		if !ok {
			t.Fatalf("coordinate %v does not quantise", v)
		}
		return float32(float64(k) * d.Resolution)
	}
	for i, p := range want.Points {
		q := got.Points[i]
		for a, pair := range [3][2]float32{{p.X, q.X}, {p.Y, q.Y}, {p.Z, q.Z}} {
			if w := quantised(pair[0]); math.Float32bits(pair[1]) != math.Float32bits(w) {
				t.Fatalf("point %d: %c = %v (bits %#08x), want %v (bits %#08x)", i, "xyz"[a], pair[1], math.Float32bits(pair[1]), w, math.Float32bits(w))
			}
		}
		if q.Intensity != p.Intensity || q.Ring != p.Ring || q.TimeOffset != p.TimeOffset {
			t.Fatalf("point %d = %+v, want %+v", i, q, p)
		}
	}
	for e := range want.Extra {
		sameColumn(t, d.Extra[e].Name, &got.Extra[e], &want.Extra[e])
	}
}

// The quantiser's edge: a coordinate whose round(x / resolution) is the
// largest or smallest int32 is kept; the next float32 beyond is refused with
// an error that names the range, never wrapped into another value.
func TestSweepQuantisationLimit(t *testing.T) {
	// A resolution at which the largest float32 below 2³¹ quantises to
	// exactly MaxInt32, and 1 m, at which -2³¹ is exactly MinInt32.
	top := float32(math.MaxInt32) // rounds up to 2³¹
	top = math.Nextafter32(top, 0)
	for _, tc := range []struct {
		name  string
		res   float64
		edge  float32
		limit int32
	}{
		{"max int32", float64(top) / math.MaxInt32, top, math.MaxInt32},
		{"min int32", 1, -(1 << 31), math.MinInt32},
		{"max at 1 mm", 0.001, largestQuantisable(0.001, 1), 0},
		{"min at 1 mm", 0.001, largestQuantisable(0.001, -1), 0},
		{"max at 1 µm", 1e-6, largestQuantisable(1e-6, 1), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &signals.PointCloud{Rings: 1, Resolution: tc.res}
			if err := d.Validate(); err != nil {
				t.Fatal(err)
			}
			k, ok := Quantize(tc.edge, tc.res)
			if !ok || (tc.limit != 0 && k != tc.limit) {
				t.Fatalf("Quantize(%v, %v) = %d, %v; want %d", tc.edge, tc.res, k, ok, tc.limit)
			}
			// Every coordinate at the edge, with the other fields at theirs.
			s := &Sweep{Time: goldenStart, Points: []Point{
				{X: tc.edge, Y: tc.edge, Z: tc.edge, Intensity: math.MaxInt16, Ring: math.MinInt16, TimeOffset: math.MaxInt32},
				{X: 0, Y: tc.edge, Z: 0, Intensity: math.MinInt16, Ring: math.MaxInt16, TimeOffset: math.MinInt32},
			}}
			frame, err := AppendSweepFrame(nil, d, s)
			if err != nil {
				t.Fatal(err)
			}
			var got Sweep
			if err := DecodeSweepFrame(frame, d, &got); err != nil {
				t.Fatal(err)
			}
			samePoints(t, d, &got, s)
			if dist := math.Abs(float64(got.Points[0].X) - float64(tc.edge)); dist > tc.res/2+math.Abs(float64(tc.edge))*0x1p-24 {
				t.Errorf("edge %v came back as %v, %g away", tc.edge, got.Points[0].X, dist)
			}

			beyond := math.Nextafter32(tc.edge, float32(math.Copysign(math.Inf(1), float64(tc.edge))))
			if _, ok := Quantize(beyond, tc.res); ok {
				t.Fatalf("Quantize(%v, %v) accepted a value beyond the edge", beyond, tc.res)
			}
			for axis := range 3 {
				bad := &Sweep{Time: goldenStart, Points: append([]Point(nil), s.Points...)}
				*[3]*float32{&bad.Points[1].X, &bad.Points[1].Y, &bad.Points[1].Z}[axis] = beyond
				_, err := AppendSweepFrame(nil, d, bad)
				if err == nil || !strings.Contains(err.Error(), "beyond") || !strings.Contains(err.Error(), "point 1") {
					t.Errorf("axis %c at %v: %v, want an error naming point 1 and the range", "xyz"[axis], beyond, err)
				}
			}
		})
	}
}

// largestQuantisable returns the float32 of largest magnitude, of the sign
// of sign, that quantises at res.
func largestQuantisable(res float64, sign float64) float32 {
	x := float32(math.Copysign(float64(math.MaxInt32)*res, sign))
	for {
		if _, ok := Quantize(x, res); ok {
			break
		}
		x = math.Nextafter32(x, 0)
	}
	for {
		next := math.Nextafter32(x, float32(math.Copysign(math.Inf(1), sign)))
		if _, ok := Quantize(next, res); !ok {
			return x
		}
		x = next
	}
}
