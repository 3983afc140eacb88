package api

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/service/usage"
	"github.com/sensorium-io/sensorium/query"
	"github.com/sensorium-io/sensorium/store"
)

// GET /v1/preview?stream=S&from=&to=[&width=&height=&track=] draws a PNG of
// a range of any sensor stream, for lists, reports and the console's
// streams page: sampled signals (scalar, IMU, audio) as each channel's
// min–max envelope from the aggregate shape, one window per pixel column;
// LIDAR as the last sweep period from above; RADAR detections from above;
// an array (range–Doppler map) as a heat map of its last frame; video and
// opaque tracks as a strip of their frames, key frames tall. from and to
// are ns since the epoch or RFC 3339 (default: the stream's last minute).
// It reads through the query service as POST /v1/query does, so the key
// needs Query on the stream.

func init() {
	mount(func(a *api, mux *http.ServeMux) {
		mux.HandleFunc("GET /v1/preview", a.authorized(awsauth.ActionQuery, queryParamStream, a.routedByParam(a.preview)))
	})
}

const (
	previewMaxWidth  = 2048
	previewMaxHeight = 1024
	// previewPoints: the points or detections of this long before the end
	// are drawn (a sweep at 10 Hz; a few RADAR scans).
	previewPoints     = 100 * time.Millisecond
	previewDetections = 200 * time.Millisecond
	// previewMaxFrames bounds the frames a strip draws.
	previewMaxFrames = 200000
)

var (
	previewBG     = color.RGBA{255, 255, 255, 255}
	previewGap    = color.RGBA{236, 239, 243, 255}
	previewColors = []color.RGBA{{31, 119, 180, 255}, {214, 39, 40, 255}, {44, 160, 44, 255}, {255, 127, 14, 255},
		{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {23, 190, 207, 255}}
)

func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, httpwire.Errorf(httpwire.InvalidArgument, "%s=%q must be a whole number from %d to %d", name, truncateParam(v), lo, hi)
	}
	return n, nil
}

func (a *api) preview(w http.ResponseWriter, r *http.Request) {
	name, err := streamParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	width, err := intParam(r, "width", 400, 16, previewMaxWidth)
	if err != nil {
		writeError(w, err)
		return
	}
	height, err := intParam(r, "height", 100, 16, previewMaxHeight)
	if err != nil {
		writeError(w, err)
		return
	}
	trackNo, err := intParam(r, "track", 0, 0, math.MaxInt32)
	if err != nil {
		writeError(w, err)
		return
	}
	info, err := a.st.DescribeStream(store.StreamRef{Name: name})
	if err != nil {
		writeError(w, err)
		return
	}
	last, ok, err := a.st.Durable(name)
	if err != nil {
		writeError(w, err)
		return
	}
	if !ok {
		writeError(w, httpwire.Errorf(httpwire.ResourceNotFound, "stream %s holds no fragments yet: nothing to draw", name))
		return
	}
	end := last.ProducerEnd()
	to, err := timeParam(r, "to", end)
	if err != nil {
		writeError(w, err)
		return
	}
	from, err := timeParam(r, "from", to-int64(time.Minute))
	if err != nil {
		writeError(w, err)
		return
	}
	if to <= from {
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "to must be after from (the range is from inclusive, to exclusive)"))
		return
	}
	tracks, err := a.tracksOf(info, last)
	if err != nil {
		writeError(w, err)
		return
	}
	var t *consoleTrack
	for i := range tracks {
		if trackNo == 0 || tracks[i].Number == uint64(trackNo) {
			t = &tracks[i]
			break
		}
	}
	if t == nil {
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "stream %s has no track %d", name, trackNo))
		return
	}
	a.meterAs(r, name, usage.Console)
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	fill(img, img.Bounds(), previewBG)
	d := previewDraw{a: a, ctx: r.Context(), img: img, stream: name, track: t.Number, from: from, to: to}
	switch {
	case t.SampleRate > 0:
		err = d.sampled(t)
	case t.Kind == "pointcloud":
		err = d.points()
	case t.Kind == "detections":
		err = d.detections()
	case t.Kind == "array":
		err = d.array()
	default:
		err = d.frames()
	}
	if err != nil {
		writeError(w, err)
		return
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "private, max-age=10")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
}

type previewDraw struct {
	a        *api
	ctx      context.Context
	img      *image.RGBA
	stream   string
	track    uint64
	from, to int64
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// run runs a query and hands each batch to f.
func (d *previewDraw) run(req query.Request, f func(rec arrow.RecordBatch)) error {
	req.Stream, req.Track = d.stream, d.track
	p, err := d.a.q.PrepareQuery(req)
	if err != nil {
		return err
	}
	return d.a.q.QueryBatches(d.ctx, p, func(rec arrow.RecordBatch) error {
		f(rec)
		return nil
	})
}

// column finds a field's column in a batch.
func column(rec arrow.RecordBatch, name string) arrow.Array {
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return nil
	}
	return rec.Column(idx[0])
}

func nsColumn(c arrow.Array) []int64 {
	switch c := c.(type) {
	case *array.Timestamp:
		out := make([]int64, c.Len())
		for i := range out {
			out[i] = int64(c.Value(i))
		}
		return out
	case *array.Int64:
		return c.Int64Values()
	}
	return nil
}

// sampled draws each channel's min–max envelope, one aggregate window per
// pixel column (gaps left pale), the channels stacked in bands when they
// have different units and overlaid when they share one.
func (d *previewDraw) sampled(t *consoleTrack) error {
	b := d.img.Bounds()
	wpx := b.Dx()
	samples := t.SampleRate * float64(d.to-d.from) / 1e9
	length := max(1, int(samples/float64(wpx)))
	var names []string
	for _, c := range t.Channels {
		names = append(names, c.Name)
	}
	type colStat struct{ lo, hi []float64 }
	stats := make([]colStat, len(names))
	for i := range stats {
		stats[i] = colStat{make([]float64, wpx), make([]float64, wpx)}
		for x := range wpx {
			stats[i].lo[x], stats[i].hi[x] = math.Inf(1), math.Inf(-1)
		}
	}
	span := float64(d.to - d.from)
	err := d.run(query.Request{Start: d.from, End: d.to, Shape: "aggregate", Window: query.Window{Length: length, Hop: length}, Aggregates: []string{"min", "max"}},
		func(rec arrow.RecordBatch) {
			starts := nsColumn(column(rec, query.AggregateStartField))
			for i, n := range names {
				mins, maxs := floats64(column(rec, n+"_min")), floats64(column(rec, n+"_max"))
				if mins == nil || maxs == nil {
					continue
				}
				for j, s := range starts {
					x := int(float64(s-d.from) / span * float64(wpx))
					if x < 0 || x >= wpx || math.IsNaN(mins[j]) {
						continue
					}
					stats[i].lo[x] = min(stats[i].lo[x], mins[j])
					stats[i].hi[x] = max(stats[i].hi[x], maxs[j])
				}
			}
		})
	if err != nil {
		return err
	}
	// bands: one per unit
	units := map[string]int{}
	var order []string
	for _, c := range t.Channels {
		if _, ok := units[c.Unit]; !ok {
			units[c.Unit] = len(order)
			order = append(order, c.Unit)
		}
	}
	bandH := b.Dy() / len(order)
	for x := range wpx { // pale where no channel has data
		has := false
		for i := range stats {
			has = has || stats[i].hi[x] >= stats[i].lo[x]
		}
		if !has {
			fill(d.img, image.Rect(x, 0, x+1, b.Dy()), previewGap)
		}
	}
	for band, unit := range order {
		lo, hi := math.Inf(1), math.Inf(-1)
		for i, c := range t.Channels {
			if c.Unit != unit {
				continue
			}
			for x := range wpx {
				if stats[i].hi[x] >= stats[i].lo[x] {
					lo, hi = min(lo, stats[i].lo[x]), max(hi, stats[i].hi[x])
				}
			}
		}
		if !(hi >= lo) {
			continue
		}
		if hi == lo {
			lo, hi = lo-1, hi+1
		}
		top, h := band*bandH+1, bandH-2
		y := func(v float64) int { return top + int(float64(h-1)*(hi-v)/(hi-lo)) }
		for i, c := range t.Channels {
			if c.Unit != unit {
				continue
			}
			col := previewColors[i%len(previewColors)]
			prevLo, prevHi, prev := 0, 0, false
			for x := range wpx {
				if !(stats[i].hi[x] >= stats[i].lo[x]) {
					prev = false
					continue
				}
				y0, y1 := y(stats[i].hi[x]), y(stats[i].lo[x])
				if prev { // join to the previous column
					y0, y1 = min(y0, prevLo), max(y1, prevHi)
				}
				fill(d.img, image.Rect(x, y0, x+1, y1+1), col)
				prevLo, prevHi, prev = y(stats[i].hi[x]), y(stats[i].lo[x]), true
			}
		}
	}
	return nil
}

func floats64(c arrow.Array) []float64 {
	if c == nil {
		return nil
	}
	out := make([]float64, c.Len())
	switch c := c.(type) {
	case *array.Float32:
		for i, v := range c.Float32Values() {
			out[i] = float64(v)
		}
	case *array.Float64:
		copy(out, c.Float64Values())
	case *array.Int16:
		for i, v := range c.Int16Values() {
			out[i] = float64(v)
		}
	case *array.Int32:
		for i, v := range c.Int32Values() {
			out[i] = float64(v)
		}
	default:
		return nil
	}
	return out
}

// scatter draws points (x forward, y left, in metres) from above, the
// scale fitted to the farthest.
func (d *previewDraw) scatter(xs, ys []float64, col color.RGBA) {
	b := d.img.Bounds()
	r := 1.0
	for i := range xs {
		r = max(r, math.Abs(xs[i]), math.Abs(ys[i]))
	}
	s := float64(min(b.Dx(), b.Dy())) / (2 * r * 1.05)
	cx, cy := float64(b.Dx())/2, float64(b.Dy())/2
	for i := range xs {
		px, py := int(cx-ys[i]*s), int(cy-xs[i]*s)
		if image.Pt(px, py).In(b) {
			d.img.SetRGBA(px, py, col)
		}
	}
}

func (d *previewDraw) points() error {
	var xs, ys []float64
	start := max(d.from, d.to-int64(previewPoints))
	err := d.run(query.Request{Start: start, End: d.to, Fields: []string{"x", "y"}}, func(rec arrow.RecordBatch) {
		xs = append(xs, floats64(column(rec, "x"))...)
		ys = append(ys, floats64(column(rec, "y"))...)
	})
	if err != nil {
		return err
	}
	d.scatter(xs, ys, previewColors[0])
	return nil
}

func (d *previewDraw) detections() error {
	var xs, ys []float64
	start := max(d.from, d.to-int64(previewDetections))
	err := d.run(query.Request{Start: start, End: d.to, Fields: []string{"range", "azimuth"}}, func(rec arrow.RecordBatch) {
		rs, az := floats64(column(rec, "range")), floats64(column(rec, "azimuth"))
		for i := range rs {
			xs = append(xs, rs[i]*math.Cos(az[i]))
			ys = append(ys, rs[i]*math.Sin(az[i]))
		}
	})
	if err != nil {
		return err
	}
	// a RADAR looks forward: put the sensor at the bottom, not the middle
	b := d.img.Bounds()
	r := 1.0
	for i := range xs {
		r = max(r, math.Abs(xs[i]), math.Abs(ys[i]))
	}
	s := min(float64(b.Dy())/(r*1.05), float64(b.Dx())/(2*r*1.05))
	for i := range xs {
		px, py := int(float64(b.Dx())/2-ys[i]*s), int(float64(b.Dy())-1-xs[i]*s)
		fill(d.img, image.Rect(px-1, py-1, px+1, py+1), previewColors[1])
	}
	return nil
}

// array draws the range's last frame as a heat map.
func (d *previewDraw) array() error {
	var last []float64
	rows, cols := 0, 0
	err := d.run(query.Request{Start: d.from, End: d.to}, func(rec arrow.RecordBatch) {
		for i := 1; i < int(rec.NumCols()); i++ {
			l, ok := rec.Column(i).(array.ListLike)
			if !ok || l.Len() == 0 {
				continue
			}
			s, e := l.ValueOffsets(l.Len() - 1)
			vals := floats64(l.ListValues())
			if vals != nil && int(e) <= len(vals) {
				last = vals[s:e]
			}
		}
	})
	if err != nil {
		return err
	}
	if len(last) == 0 {
		return nil
	}
	info, _ := d.a.st.DescribeStream(store.StreamRef{Name: d.stream})
	if l, ok, _ := d.a.st.Durable(d.stream); ok {
		if ts, err := d.a.tracksOf(info, l); err == nil {
			for _, t := range ts {
				if t.Number == d.track {
					rows, cols = int(t.Rows), int(t.Cols)
				}
			}
		}
	}
	if rows*cols != len(last) {
		rows, cols = 1, len(last)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range last {
		lo, hi = min(lo, v), max(hi, v)
	}
	b := d.img.Bounds()
	for y := range b.Dy() {
		r := rows - 1 - y*rows/b.Dy()
		for x := range b.Dx() {
			c := x * cols / b.Dx()
			d.img.SetRGBA(x, y, heatColor((last[r*cols+c]-lo)/(hi-lo+1e-300)))
		}
	}
	return nil
}

var heatRamp = [][3]float64{{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}}

func heatColor(v float64) color.RGBA {
	v = min(1, max(0, v)) * float64(len(heatRamp)-1)
	i := min(len(heatRamp)-2, int(v))
	f := v - float64(i)
	var c [3]uint8
	for k := range 3 {
		c[k] = uint8(heatRamp[i][k] + (heatRamp[i+1][k]-heatRamp[i][k])*f)
	}
	return color.RGBA{c[0], c[1], c[2], 255}
}

// frames draws a strip of the range's frames: key frames full height.
func (d *previewDraw) frames() error {
	b := d.img.Bounds()
	span := float64(d.to - d.from)
	n := 0
	err := d.run(query.Request{Start: d.from, End: d.to, Fields: []string{"key"}}, func(rec arrow.RecordBatch) {
		times := nsColumn(column(rec, "time"))
		keys, _ := column(rec, "key").(*array.Boolean)
		for i, t := range times {
			if n++; n > previewMaxFrames {
				return
			}
			x := int(float64(t-d.from) / span * float64(b.Dx()))
			top, col := b.Dy()/2, previewColors[0]
			if keys != nil && keys.Value(i) {
				top, col = 0, previewColors[1]
			}
			fill(d.img, image.Rect(x, top, x+1, b.Dy()), col)
		}
	})
	return err
}
