package query

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/store"
)

// shapeFixture is the shape tests' stream, its reference, and services over
// it with 1, 2 and 3 decode workers.
type shapeFixture struct {
	st     *store.Store
	tracks []*refTrack
	svcs   []*Service
}

func newShapeFixture(t *testing.T) *shapeFixture {
	st, _ := newTestService(t, "s")
	fx := &shapeFixture{st: st, tracks: shapeStream(t, st, "s")}
	for _, w := range []int{1, 2, 3} {
		fx.svcs = append(fx.svcs, New(Options{Store: st, DecodeWorkers: w}))
	}
	return fx
}

// run runs req on svc through the IPC stream (when ipcToo) or the batches,
// with a checked allocator, and calls each for every batch.
func run(t *testing.T, svc *Service, req Request, viaIPC bool, each func(arrow.RecordBatch)) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	req.Allocator = mem
	p, err := svc.PrepareQuery(req)
	if err != nil {
		t.Fatal(err)
	}
	if !viaIPC {
		if err := svc.QueryBatches(context.Background(), p, func(rec arrow.RecordBatch) error { each(rec); return nil }); err != nil {
			t.Fatal(err)
		}
		return
	}
	var buf bytes.Buffer
	if err := svc.Query(context.Background(), p, &buf); err != nil {
		t.Fatal(err)
	}
	r, err := ipc.NewReader(&buf, ipc.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if !r.Schema().Equal(p.Schema()) {
		t.Fatalf("IPC schema %v, prepared %v", r.Schema(), p.Schema())
	}
	for r.Next() {
		each(r.RecordBatch())
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}

// value reads row i of a numeric column as float64 (exact for our types).
func value(a arrow.Array, i int) float64 { return valueAt(a, i) }

// The samples shape returns exactly the produced samples of the track asked
// for, across frame and fragment boundaries and both gaps, cut at the
// range's edges to the ns — with any number of decode workers, any batch
// size, through the batches or the IPC stream.
func TestSamplesShapeAgainstReference(t *testing.T) {
	fx := newShapeFixture(t)
	vib, temp := fx.tracks[0], fx.tracks[1]
	v := vib.samples
	ranges := []struct {
		name       string
		start, end int64
	}{
		{"everything", queryBase - int64(time.Hour), queryBase + int64(time.Hour)},
		{"mid-frame edges", v[123].t, v[4567].t},
		{"fragment edges", v[1000].t, v[3000].t},
		{"one sample", v[777].t, v[777].t + 1},
		{"end on a sample, excluded", v[777].t - 1, v[777].t},
		{"inside the gap", v[4499].t + 1, v[4500].t},
		{"across both gaps", v[4400].t + 3, v[7800].t - 3},
	}
	tracks := []struct {
		tr     *refTrack
		fields []string
		chans  []int
	}{
		{vib, nil, []int{0, 1, 2}},
		{vib, []string{"z", "x"}, []int{2, 0}},
		{temp, nil, []int{0}},
	}
	for _, rg := range ranges {
		for _, tk := range tracks {
			want := tk.tr.inRange(rg.start, rg.end)
			for wi, svc := range fx.svcs {
				for _, batch := range []int{1, 7, 1000, 0} {
					if batch == 1 && len(want) > 2000 {
						continue // a batch per row: slow, and no different past a few
					}
					name := fmt.Sprintf("%s/track %d %v/%d workers/batch %d", rg.name, tk.tr.number, tk.fields, wi+1, batch)
					t.Run(name, func(t *testing.T) {
						row := 0
						run(t, svc, Request{Stream: "s", Track: tk.tr.number, Fields: tk.fields, Start: rg.start, End: rg.end, BatchRows: batch}, wi == 1,
							func(rec arrow.RecordBatch) {
								if batch > 0 && rec.NumRows() > int64(batch+tk.tr.frameN) {
									t.Errorf("a batch of %d rows, asked for %d", rec.NumRows(), batch)
								}
								tc := rec.Column(0).(*array.Timestamp)
								for i := range int(rec.NumRows()) {
									if row >= len(want) {
										t.Fatalf("more rows than the %d produced", len(want))
									}
									if int64(tc.Value(i)) != want[row].t {
										t.Fatalf("row %d: time %d, produced %d", row, tc.Value(i), want[row].t)
									}
									for c, ch := range tk.chans {
										if got := value(rec.Column(c+1), i); math.Float64bits(got) != math.Float64bits(want[row].v[ch]) {
											t.Fatalf("row %d channel %d: %v, produced %v", row, ch, got, want[row].v[ch])
										}
									}
									row++
								}
							})
						if row != len(want) {
							t.Fatalf("%d rows, produced %d", row, len(want))
						}
					})
				}
			}
		}
	}
}

// readWindows runs a windows query and returns its windows.
func readWindows(t *testing.T, svc *Service, req Request, viaIPC bool) []refWindow {
	t.Helper()
	var out []refWindow
	run(t, svc, req, viaIPC, func(rec arrow.RecordBatch) {
		st := rec.Column(0).(*array.Timestamp)
		frags := rec.Column(1).(*array.List)
		fv := frags.ListValues().(*array.Uint64)
		for row := range int(rec.NumRows()) {
			w := refWindow{start: int64(st.Value(row))}
			a, b := frags.ValueOffsets(row)
			w.frags = slices.Clone(fv.Uint64Values()[a:b])
			for c := 2; c < int(rec.NumCols()); c++ {
				fl := rec.Column(c).(*array.FixedSizeList)
				a, b := fl.ValueOffsets(row)
				var vals []float64
				for i := a; i < b; i++ {
					vals = append(vals, value(fl.ListValues(), int(i)))
				}
				w.v = append(w.v, vals)
			}
			out = append(out, w)
		}
	})
	return out
}

func sameWindows(t *testing.T, what string, got, want []refWindow) {
	t.Helper()
	if len(got) != len(want) {
		var gs, ws []int64
		for _, w := range got {
			gs = append(gs, w.start)
		}
		for _, w := range want {
			ws = append(ws, w.start)
		}
		t.Fatalf("%s: %d windows, the reference %d\n got starts %v\nwant starts %v", what, len(got), len(want), gs, ws)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.start != w.start || !slices.Equal(g.frags, w.frags) || len(g.v) != len(w.v) {
			t.Fatalf("%s: window %d: start %d fragments %v, the reference %d %v", what, i, g.start, g.frags, w.start, w.frags)
		}
		for c := range w.v {
			for j := range w.v[c] {
				if math.Float64bits(g.v[c][j]) != math.Float64bits(w.v[c][j]) {
					t.Fatalf("%s: window %d channel %d value %d: %v, the reference %v", what, i, c, j, g.v[c][j], w.v[c][j])
				}
			}
		}
	}
}

// The windows shape against a brute-force reference of its definition
// (query.Window): windows on the grid from the anchor, across frames,
// fragments and tracks, none across a gap, those after a gap still on the
// grid (the second run is half a period off it); and Arrow Flight's
// partitions of the query return exactly its windows.
func TestWindowsShapeAgainstReference(t *testing.T) {
	fx := newShapeFixture(t)
	vib, temp := fx.tracks[0], fx.tracks[1]
	v := vib.samples
	ms := int64(time.Millisecond)
	cases := []struct {
		name       string
		tr         *refTrack
		fields     []string
		chans      []int
		start, end int64
		w          Window
	}{
		{"back to back", vib, nil, []int{0, 1, 2}, v[0].t, v[len(v)-1].t + 1, Window{Length: 100, Hop: 100}},
		{"overlapping, from mid-frame", vib, []string{"y"}, []int{1}, v[123].t, v[len(v)-1].t + 1, Window{Length: 250, Hop: 100}},
		{"spaced", vib, []string{"z", "x"}, []int{2, 0}, v[50].t, v[9000].t, Window{Length: 64, Hop: 300}},
		{"long, overlapping", vib, []string{"x"}, []int{0}, v[0].t, v[len(v)-1].t + 1, Window{Length: 1000, Hop: 500}},
		{"one sample", vib, []string{"x"}, []int{0}, v[4400].t, v[4700].t, Window{Length: 1, Hop: 1}},
		{"anchor off the samples", vib, []string{"x"}, []int{0}, v[10].t, v[len(v)-1].t + 1, Window{Length: 200, Hop: 200, Anchor: v[10].t - 37*ms - 300_000}},
		{"anchor after start", vib, []string{"x"}, []int{0}, v[10].t, v[len(v)-1].t + 1, Window{Length: 100, Hop: 150, Anchor: v[2000].t + 1}},
		{"starts before", vib, []string{"x"}, []int{0}, v[0].t, v[len(v)-1].t + 1, Window{Length: 500, Hop: 250, StartsBefore: v[6000].t}},
		{"temperature", temp, nil, []int{0}, temp.samples[0].t, temp.samples[len(temp.samples)-1].t + 1, Window{Length: 3, Hop: 1}},
		{"temperature, a fragment each", temp, nil, []int{0}, temp.samples[0].t - 1, queryBase + int64(time.Hour), Window{Length: 10, Hop: 10}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := refWindows(tc.tr, tc.start, tc.end, tc.w, tc.chans)
			if len(want) < 2 && tc.name != "one sample" {
				t.Fatalf("the reference has %d windows: a case that proves little", len(want))
			}
			req := Request{Stream: "s", Track: tc.tr.number, Fields: tc.fields, Start: tc.start, End: tc.end, Shape: "windows", Window: tc.w}
			for wi, svc := range fx.svcs {
				for _, batch := range []int{1, 3, 0} {
					req.BatchRows = batch
					sameWindows(t, fmt.Sprintf("%d workers, batch %d", wi+1, batch), readWindows(t, svc, req, batch == 3), want)
				}
			}
			req.BatchRows = 0
			p, err := fx.svcs[1].PrepareQuery(req)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{2, 3, 7} {
				parts, err := p.Partitions(n)
				if err != nil {
					t.Fatal(err)
				}
				var got []refWindow
				for _, part := range parts {
					got = append(got, readWindows(t, fx.svcs[1], part, false)...)
				}
				sameWindows(t, fmt.Sprintf("%d partitions", len(parts)), got, want)
			}
		})
	}
}

// The aligned shape against a brute-force reference of its policies, on two
// tracks of one stream: a rate grid (finer and coarser than either track)
// and as-of onto either track's sample times, with none, previous and
// linear; no value comes from across a gap. Partitions return the same rows.
func TestAlignedShapeAgainstReference(t *testing.T) {
	fx := newShapeFixture(t)
	vib, temp := fx.tracks[0], fx.tracks[1]
	v := vib.samples
	inputs := []Input{{Stream: "s", Track: 1, Fields: []string{"x"}}, {Stream: "s", Track: 2}}
	refs := []struct {
		tr *refTrack
		ch int
	}{{vib, 0}, {temp, 0}}
	ranges := [][2]int64{{v[0].t - int64(time.Second), v[len(v)-1].t + int64(time.Second)}, {v[4321].t + 17, v[8765].t - 5}}
	for _, policy := range []string{"none", "previous", "linear"} {
		for _, align := range []Align{{Rate: 400}, {Rate: 7}, {Rate: 1000, Anchor: v[0].t + 1}, {Reference: 1}, {Reference: 0}} {
			for _, rg := range ranges {
				align.Interpolation = policy
				t.Run(fmt.Sprintf("%s/%+v/%d", policy, align, rg[0]), func(t *testing.T) {
					req := Request{Shape: "aligned", Inputs: inputs, Align: align, Start: rg[0], End: rg[1]}
					// The grid of the reference.
					var grid []int64
					if align.Rate > 0 {
						anchor := align.Anchor
						if anchor == 0 {
							anchor = rg[0]
						}
						step := 1e9 / align.Rate
						for k := int(math.Floor(float64(rg[0]-anchor)/step)) - 1; ; k++ {
							g := anchor + int64(math.Round(float64(k)*step))
							if g >= rg[1] {
								break
							}
							if g >= rg[0] {
								grid = append(grid, g)
							}
						}
					} else {
						for _, s := range refs[align.Reference].tr.inRange(rg[0], rg[1]) {
							grid = append(grid, s.t)
						}
					}
					check := func(what string, svc *Service, req Request, from int) int {
						row := from
						nulls := 0
						run(t, svc, req, false, func(rec arrow.RecordBatch) {
							if rec.Schema().Field(1).Name != "s.x" || rec.Schema().Field(2).Name != "s.temp" {
								t.Fatalf("schema %v", rec.Schema())
							}
							tc := rec.Column(0).(*array.Timestamp)
							for i := range int(rec.NumRows()) {
								if row >= len(grid) || int64(tc.Value(i)) != grid[row] {
									t.Fatalf("%s: row %d at %d, the grid's is %v", what, row, tc.Value(i), grid[min(row, len(grid)-1)])
								}
								for c, r := range refs {
									col := rec.Column(c + 1).(*array.Float64)
									want, ok := refAligned(r.tr, r.ch, grid[row], policy)
									switch {
									case !ok && col.IsValid(i):
										t.Fatalf("%s: row %d (%d) %s: %v where the reference has none (filled across a gap?)", what, row, grid[row], rec.Schema().Field(c+1).Name, col.Value(i))
									case ok && !col.IsValid(i):
										t.Fatalf("%s: row %d (%d) %s: null, the reference %v", what, row, grid[row], rec.Schema().Field(c+1).Name, want)
									case ok && math.Float64bits(col.Value(i)) != math.Float64bits(want):
										t.Fatalf("%s: row %d %s: %v, the reference %v", what, row, rec.Schema().Field(c+1).Name, col.Value(i), want)
									}
									if !ok {
										nulls++
									}
								}
								row++
							}
						})
						if policy != "none" && align.Rate == 400 && nulls == 0 {
							t.Errorf("%s: no nulls, though the grid crosses the gaps", what)
						}
						return row
					}
					for wi, svc := range fx.svcs {
						if n := check(fmt.Sprintf("%d workers", wi+1), svc, req, 0); n != len(grid) {
							t.Fatalf("%d rows, the grid has %d", n, len(grid))
						}
					}
					p, err := fx.svcs[1].PrepareQuery(req)
					if err != nil {
						t.Fatal(err)
					}
					parts, err := p.Partitions(3)
					if err != nil {
						t.Fatal(err)
					}
					row := 0
					for _, part := range parts {
						row = check("partitions", fx.svcs[1], part, row)
					}
					if row != len(grid) {
						t.Fatalf("partitions: %d rows, the grid has %d", row, len(grid))
					}
				})
			}
		}
	}
}
