package codecs

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/sensorium-io/sensorium/signals"
)

// LIDAR sweeps (signals/format_kinds.md; codecs/FORMAT.md, "Columnar frame").
// A sweep is stored ring by ring, each ring in firing order, so that every point is predicted from the previous point
// of its own beam — the neighbour on the same surface — by the numeric
// codec's order-1/2 prediction on the quantised coordinates. The producer's
// point order is kept as a permutation column, which costs next to nothing
// for a driver's regular firing order.

// Point is one LIDAR return.
type Point struct {
	X, Y, Z    float32 // metres
	Intensity  int16
	Ring       int16
	TimeOffset int32 // ns after the sweep's start
}

// Sweep is one frame of a LIDAR track.
type Sweep struct {
	Time   int64 // ns since the Unix epoch: the sweep's start
	Points []Point
	Extra  []Column // one per extra field of the description, len(Points) values each
}

// The stored columns of a sweep, in order, then the extra fields.
const (
	sweepPerm = iota // int32: the producer's index of each stored point
	sweepX
	sweepY
	sweepZ
	sweepIntensity
	sweepRing
	sweepTime
	sweepFixed
)

func sweepStoredTypes(d *signals.PointCloud) []signals.SampleType {
	t := []signals.SampleType{signals.Int32, signals.Int32, signals.Int32, signals.Int32, signals.Int16, signals.Int16, signals.Int32}
	for _, f := range d.Extra {
		t = append(t, f.Type)
	}
	return t
}

// Quantize returns x in units of res, or false when it does not fit an int32
// (or is not finite).
func Quantize(x float32, res float64) (int32, bool) {
	k := math.Round(float64(x) / res)
	if !(k >= math.MinInt32 && k <= math.MaxInt32) {
		return 0, false
	}
	return int32(k), true
}

// AppendSweepFrame appends the frame of sweep s.
func AppendSweepFrame(dst []byte, d *signals.PointCloud, s *Sweep) ([]byte, error) {
	n := len(s.Points)
	if len(s.Extra) != len(d.Extra) {
		return dst, fmt.Errorf("codecs: sweep: %d extra columns, the description has %d", len(s.Extra), len(d.Extra))
	}
	sc := sweepScratchPool.Get().(*sweepScratch)
	defer sweepScratchPool.Put(sc)
	sc.order = sweepOrder(s.Points, resizeSlice(sc.order, n))
	order := sc.order
	// The stored columns, then the four of the geometry transform.
	nc := sweepFixed + len(s.Extra)
	if len(sc.cols) < nc+4 {
		sc.cols = append(sc.cols, make([]Column, nc+4-len(sc.cols))...)
	}
	cols := sc.cols[:nc:nc]
	for i, t := range sweepStoredTypes(d)[:sweepFixed] {
		cols[i].Reset(t, n)
	}
	for j, i := range order {
		p := &s.Points[i]
		x, okx := Quantize(p.X, d.Resolution)
		y, oky := Quantize(p.Y, d.Resolution)
		z, okz := Quantize(p.Z, d.Resolution)
		if !okx || !oky || !okz {
			return dst, fmt.Errorf("codecs: sweep: point %d (%g, %g, %g) is not finite or beyond ±%g m at %g m resolution; drop points without a return",
				i, p.X, p.Y, p.Z, math.MaxInt32*d.Resolution, d.Resolution)
		}
		cols[sweepPerm].I32[j] = i
		cols[sweepX].I32[j], cols[sweepY].I32[j], cols[sweepZ].I32[j] = x, y, z
		cols[sweepIntensity].I16[j], cols[sweepRing].I16[j], cols[sweepTime].I32[j] = p.Intensity, p.Ring, p.TimeOffset
	}
	for e := range s.Extra {
		c := &s.Extra[e]
		if c.Type != d.Extra[e].Type || c.Len() != n {
			return dst, fmt.Errorf("codecs: sweep: extra field %q holds %d %s values, want %d %s", d.Extra[e].Name, c.Len(), c.Type, n, d.Extra[e].Type)
		}
		p := &cols[sweepFixed+e]
		p.Reset(c.Type, n)
		switch c.Type {
		case signals.Int16:
			permute(p.I16, c.I16, order)
		case signals.Int32:
			permute(p.I32, c.I32, order)
		case signals.Float32:
			permute(p.F32, c.F32, order)
		case signals.Float64:
			permute(p.F64, c.F64, order)
		}
	}
	if err := checkColumnarFrame(n, cols); err != nil {
		return dst, err
	}
	// The geometry transform (version 3) replaces x, y and z with four
	// columns; the others are the same in both versions, so each column is
	// encoded once (side by side on a big sweep) and the smaller frame kept:
	// the transform wins on scans in beam order, a cloud in another order may
	// do better without.
	geo := sc.cols[nc : nc+4]
	for i := range geo {
		geo[i].Reset(signals.Int32, n)
	}
	geometry := forwardGeometry(cols[sweepX].I32, cols[sweepY].I32, cols[sweepZ].I32, cols[sweepRing].I16, geo[0].I32, geo[1].I32, geo[2].I32, geo[3].I32)
	all := cols
	if geometry {
		all = sc.cols[:nc+4]
	}
	bodies, err := encodeColumns(all, true)
	if err != nil {
		return dst, err
	}
	v1 := bodies[:len(cols)]
	if !geometry {
		return appendColumnarBodies(dst, FormatPointCloud, ColumnarFrameVersion, s.Time, n, v1), nil
	}
	g := bodies[len(cols):]
	v3 := make([][]byte, 0, len(cols)+1)
	v3 = append(v3, v1[:sweepX]...)
	v3 = append(v3, g...)
	v3 = append(v3, v1[sweepZ+1:]...)
	if columnarBodiesSize(v3) < columnarBodiesSize(v1) {
		return appendColumnarBodies(dst, FormatPointCloud, ColumnarGeometryVersion, s.Time, n, v3), nil
	}
	return appendColumnarBodies(dst, FormatPointCloud, ColumnarFrameVersion, s.Time, n, v1), nil
}

// sweepScratch is what AppendSweepFrame works in: the stored order and the
// columns, megabytes for a sweep. Taken from sweepScratchPool and given back,
// so that encoding sweep after sweep does not allocate (and clear) them
// anew each time. Nothing of it outlives the call: the column bodies are new
// slices.
type sweepScratch struct {
	order []int32
	cols  []Column // the stored columns, then the geometry transform's four
}

var sweepScratchPool = sync.Pool{New: func() any { return new(sweepScratch) }}

// permute sets dst[j] = src[order[j]].
func permute[T any](dst, src []T, order []int32) {
	dst = dst[:len(order)]
	for j, i := range order {
		dst[j] = src[i]
	}
}

// maxCountedRing bounds the rings sweepOrder sorts by counting.
const maxCountedRing = 4096

// sweepOrder fills order with the stored order of points: ring by ring, each
// in firing order (time offset), equal keys in the producer's order. A
// driver's points are already in firing order within each ring, so a stable
// counting sort by ring, then a check of each ring, does in one pass what a
// comparison sort did in most of the encoder's time.
func sweepOrder(points []Point, order []int32) []int32 {
	maxRing := int16(-1)
	for i := range points {
		r := points[i].Ring
		if r < 0 || r >= maxCountedRing {
			maxRing = -2
			break
		}
		maxRing = max(maxRing, r)
	}
	byTime := func(a, b int32) int { return cmpInt32(points[a].TimeOffset, points[b].TimeOffset) }
	if maxRing == -2 { // rings a sensor does not number: compare
		for i := range order {
			order[i] = int32(i)
		}
		slices.SortStableFunc(order, func(a, b int32) int {
			if ra, rb := points[a].Ring, points[b].Ring; ra != rb {
				return int(ra) - int(rb)
			}
			return byTime(a, b)
		})
		return order
	}
	next := make([]int32, int(maxRing)+2) // next[r]: where ring r's next point goes
	for i := range points {
		next[points[i].Ring+1]++
	}
	for r := 1; r < len(next); r++ {
		next[r] += next[r-1]
	}
	for i := range points {
		r := points[i].Ring
		order[next[r]] = int32(i)
		next[r]++
	}
	start := int32(0)
	for _, end := range next[:len(next)-1] { // next[r] is now ring r's end
		ring := order[start:end]
		if !slices.IsSortedFunc(ring, byTime) {
			slices.SortStableFunc(ring, byTime)
		}
		start = end
	}
	return order
}

func cmpInt32(a, b int32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// DecodeSweepFrame decodes a sweep into s (its slices reused), in the
// producer's point order, with coordinates at the description's resolution.
func DecodeSweepFrame(src []byte, d *signals.PointCloud, s *Sweep) error {
	h, cols, err := DecodeColumnarFrame(src, FormatPointCloud, sweepStoredTypes(d), nil, nil)
	if err != nil {
		return err
	}
	inv, err := inversePermutation(cols[sweepPerm].I32, nil)
	if err != nil {
		return err
	}
	s.Time = h.Time
	s.Points = resizeSlice(s.Points, h.Count)
	res := d.Resolution
	for i := range s.Points {
		j := inv[i]
		s.Points[i] = Point{
			X: float32(float64(cols[sweepX].I32[j]) * res), Y: float32(float64(cols[sweepY].I32[j]) * res), Z: float32(float64(cols[sweepZ].I32[j]) * res),
			Intensity: cols[sweepIntensity].I16[j], Ring: cols[sweepRing].I16[j], TimeOffset: cols[sweepTime].I32[j],
		}
	}
	s.Extra = s.Extra[:0]
	for e := range d.Extra {
		c := &cols[sweepFixed+e]
		var out Column
		out.Reset(c.Type, h.Count)
		for i := 0; i < h.Count; i++ {
			out.CopyValue(i, c, int(inv[i]))
		}
		s.Extra = append(s.Extra, out)
	}
	return nil
}

// inversePermutation returns inv with inv[perm[j]] = j, checking that perm is
// a permutation of 0..len-1.
func inversePermutation(perm []int32, inv []int32) ([]int32, error) {
	inv = resizeSlice(inv, len(perm))
	for i := range inv {
		inv[i] = -1
	}
	for j, p := range perm {
		if p < 0 || int(p) >= len(perm) || inv[p] >= 0 {
			return inv, fmt.Errorf("codecs: sweep: %w: the point order is not a permutation (entry %d is %d)", ErrCorrupt, j, p)
		}
		inv[p] = int32(j)
	}
	return inv, nil
}

func init() {
	RegisterArrowDecoder(signals.KindPointCloud, func(desc signals.Description, opts ArrowOptions) (ArrowDecoder, error) {
		d, ok := desc.(*signals.PointCloud)
		if !ok {
			return nil, fmt.Errorf("codecs: pointcloud decoder for a %T", desc)
		}
		stored := sweepStoredTypes(d)
		fs := d.Fields()
		k := columnarKind{format: FormatPointCloud, fields: fs, stored: stored[1:], timeField: sweepTime - 1,
			scale: make([]float64, len(fs)), perm: true}
		k.scale[sweepX-1], k.scale[sweepY-1], k.scale[sweepZ-1] = d.Resolution, d.Resolution, d.Resolution
		return newColumnarArrow(k, opts)
	})
}
