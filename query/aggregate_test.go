package query

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sensorium-io/sensorium/signals"
)

// refAgg is one window of the aggregate shape: its grid time, count, and
// per channel min, max, mean, rms.
type refAgg struct {
	start int64
	count int64
	stats [][4]float64
}

// refAggregates computes the aggregate shape by its definition (aggregate.go),
// sample by sample: window k at g(k) holds the samples in [start, end) with
// times in [g(k) − slack, SampleTime(anchor, k × hop + length) − slack).
func refAggregates(tr *refTrack, start, end int64, w Window, chans []int) []refAgg {
	anchor, before := w.Anchor, w.StartsBefore
	if w.Hop == 0 {
		w.Hop = w.Length // back to back, as a request leaves it
	}
	if anchor == 0 {
		anchor = start
	}
	if before == 0 {
		before = end
	}
	period := 1e9 / tr.desc.SampleRate
	slack := min(windowSlack, int64(period/4))
	clock := &signals.Scalar{SampleRate: tr.desc.SampleRate}
	samples := tr.inRange(start, end)
	var out []refAgg
	k := int64(math.Floor(float64(start-anchor)/(period*float64(w.Hop)))) - 2
	for ; ; k++ {
		g := clock.SampleTime(anchor, int(k)*w.Hop)
		if g >= before || g >= end {
			break
		}
		if g < start {
			continue
		}
		lo, hi := g-slack, clock.SampleTime(anchor, int(k)*w.Hop+w.Length)-slack
		a := refAgg{start: g, stats: make([][4]float64, len(chans))}
		for c := range chans {
			a.stats[c] = [4]float64{math.Inf(1), math.Inf(-1), 0, 0}
		}
		for _, s := range samples {
			if s.t < lo || s.t >= hi {
				continue
			}
			a.count++
			for c, ch := range chans {
				v := s.v[ch]
				a.stats[c][0] = math.Min(a.stats[c][0], v)
				a.stats[c][1] = math.Max(a.stats[c][1], v)
				a.stats[c][2] += v
				a.stats[c][3] += v * v
			}
		}
		if a.count == 0 {
			continue
		}
		for c := range chans {
			a.stats[c][2] /= float64(a.count)
			a.stats[c][3] = math.Sqrt(a.stats[c][3] / float64(a.count))
		}
		out = append(out, a)
	}
	return out
}

// readAggregates runs an aggregate query of all four statistics.
func readAggregates(t *testing.T, svc *Service, req Request, viaIPC bool) []refAgg {
	t.Helper()
	var out []refAgg
	run(t, svc, req, viaIPC, func(rec arrow.RecordBatch) {
		nch := (int(rec.NumCols()) - 2) / 4
		st := rec.Column(0).(*array.Timestamp)
		cnt := rec.Column(1).(*array.Int64)
		for row := range int(rec.NumRows()) {
			a := refAgg{start: int64(st.Value(row)), count: cnt.Value(row), stats: make([][4]float64, nch)}
			for c := range nch {
				for s := range 4 {
					a.stats[c][s] = value(rec.Column(2+4*c+s), row)
				}
			}
			out = append(out, a)
		}
	})
	return out
}

func sameAggregates(t *testing.T, what string, got, want []refAgg) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d windows, the reference %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.start != w.start || g.count != w.count {
			t.Fatalf("%s: window %d: start %d count %d, the reference %d %d", what, i, g.start, g.count, w.start, w.count)
		}
		for c := range w.stats {
			for s := range 4 {
				gv, wv := g.stats[c][s], w.stats[c][s]
				exact := s < 2 // min and max are samples; mean and rms sum in another order
				if exact && gv != wv || !exact && math.Abs(gv-wv) > 1e-9*max(1, math.Abs(wv)) {
					t.Fatalf("%s: window %d (%d) channel %d %s: %v, the reference %v", what, i, w.start, c, AggregateStats[s], gv, wv)
				}
			}
		}
	}
}

// The aggregate shape against a brute-force reference of its definition:
// tumbling, sliding and spaced windows on the grid from the anchor, across
// frames, fragments and gaps (a window a gap cuts comes with the samples it
// has), with 1 to 3 decode workers and any batch size, through the IPC
// stream too; Arrow Flight's partitions return exactly the same windows.
func TestAggregateShapeAgainstReference(t *testing.T) {
	fx := newShapeFixture(t)
	vib, temp := fx.tracks[0], fx.tracks[1]
	v := vib.samples
	ms := int64(time.Millisecond)
	all := [2]int64{v[0].t, v[len(v)-1].t + 1}
	cases := []struct {
		name       string
		tr         *refTrack
		fields     []string
		chans      []int
		start, end int64
		w          Window
	}{
		{"tumbling 100 ms", vib, nil, []int{0, 1, 2}, all[0], all[1], Window{Length: 100, Hop: 100}},
		{"tumbling 1 s, over the gaps", vib, []string{"y"}, []int{1}, queryBase - int64(time.Hour), queryBase + int64(time.Hour), Window{Length: 1000, Hop: 1000}},
		{"sliding", vib, []string{"z", "x"}, []int{2, 0}, v[123].t, all[1], Window{Length: 300, Hop: 100}},
		{"spaced", vib, []string{"x"}, []int{0}, v[50].t, v[9000].t, Window{Length: 64, Hop: 300}},
		{"one sample each", vib, []string{"x"}, []int{0}, v[4400].t, v[4700].t, Window{Length: 1, Hop: 1}},
		{"anchor off the samples", vib, []string{"x"}, []int{0}, v[10].t, all[1], Window{Length: 200, Hop: 200, Anchor: v[10].t - 37*ms - 300_000}},
		{"starts before", vib, []string{"x"}, []int{0}, all[0], all[1], Window{Length: 500, Hop: 250, StartsBefore: v[6000].t}},
		{"longer than the data", vib, []string{"x"}, []int{0}, all[0], all[1], Window{Length: 100000, Hop: 100000}},
		{"temperature", temp, nil, []int{0}, temp.samples[0].t, temp.samples[len(temp.samples)-1].t + 1, Window{Length: 10, Hop: 5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := refAggregates(tc.tr, tc.start, tc.end, tc.w, tc.chans)
			if len(want) < 1 || len(want) < 2 && tc.name != "longer than the data" {
				t.Fatalf("the reference has %d windows: a case that proves little", len(want))
			}
			req := Request{Stream: "s", Track: tc.tr.number, Fields: tc.fields, Start: tc.start, End: tc.end, Shape: "aggregate", Window: tc.w}
			for wi, svc := range fx.svcs {
				for _, batch := range []int{1, 3, 0} {
					req.BatchRows = batch
					sameAggregates(t, fmt.Sprintf("%d workers, batch %d", wi+1, batch), readAggregates(t, svc, req, batch == 3), want)
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
				var got []refAgg
				for _, part := range parts {
					got = append(got, readAggregates(t, fx.svcs[1], part, false)...)
				}
				sameAggregates(t, fmt.Sprintf("%d partitions", len(parts)), got, want)
			}
		})
	}
}

// The columns asked for, in order, with the channels' units; and the
// requests the shape refuses, each with a message that says why.
func TestAggregateShapeSchemaAndRefusals(t *testing.T) {
	fx := newShapeFixture(t)
	v := fx.tracks[0].samples
	svc := fx.svcs[0]
	base := Request{Stream: "s", Track: 1, Start: v[0].t, End: v[len(v)-1].t + 1, Shape: "aggregate", Window: Window{Length: 1000, Hop: 1000}}
	req := base
	req.Fields, req.Aggregates = []string{"z"}, []string{"max", "rms"}
	p, err := svc.PrepareQuery(req)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range p.Schema().Fields() {
		names = append(names, f.Name+":"+f.Type.String())
	}
	if got := strings.Join(names, " "); got != "start:timestamp[ns, tz=UTC] count:int64 z_max:float32 z_rms:float64" {
		t.Fatalf("schema %s", got)
	}
	if unit, ok := p.Schema().Field(2).Metadata.GetValue("unit"); !ok || unit != "g" {
		t.Errorf("z_max keeps no unit: %v", p.Schema().Field(2).Metadata)
	}
	if agg, _ := p.Schema().Metadata().GetValue("sensorium.aggregates"); agg != "max,rms" {
		t.Errorf("schema metadata sensorium.aggregates %q", agg)
	}
	bad := []struct {
		name string
		edit func(*Request)
		want string
	}{
		{"unknown statistic", func(r *Request) { r.Aggregates = []string{"median"} }, `not "median"`},
		{"twice", func(r *Request) { r.Aggregates = []string{"min", "min"} }, "twice"},
		{"sliding, not a multiple", func(r *Request) { r.Window = Window{Length: 250, Hop: 100} }, "multiple of the hop"},
		{"no window", func(r *Request) { r.Window = Window{} }, "≥ 1"},
		{"frames layout", func(r *Request) { r.Layout = 1 }, "leave layout out"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			req := base
			tc.edit(&req)
			_, err := svc.PrepareQuery(req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	if _, err := ParseRequest([]byte(`{"stream":"s","start":1,"end":2,"aggregates":["min"]}`)); err == nil || !strings.Contains(err.Error(), "aggregate shape") {
		t.Errorf("aggregates without the shape: %v", err)
	}
	if _, err := ParseRequest([]byte(`{"stream":"s","start":1,"end":2,"shape":"aggregate"}`)); err == nil || !strings.Contains(err.Error(), `"window"`) {
		t.Errorf("aggregate without a window: %v", err)
	}
	r, err := ParseRequest([]byte(`{"stream":"s","start":1,"end":2,"shape":"aggregate","aggregates":["rms"],"window":{"length":10}}`))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := r.MarshalJSON()
	back, err := ParseRequest(js)
	if err != nil || back.Shape != "aggregate" || len(back.Aggregates) != 1 || back.Window.Length != 10 || back.Window.Hop != 10 {
		t.Fatalf("a ticket's round trip: %s → %+v, %v", js, back, err)
	}
}
