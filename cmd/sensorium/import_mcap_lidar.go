package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/mcap/ros2"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// PointCloud2 → LIDAR sweep (docs/MCAP.md, "LIDAR"): x, y and z (any float
// type) are quantised to --lidar-resolution; intensity becomes Sensorium's
// int16 intensity, rounded, and is also kept exactly as the extra field
// ros.intensity when its type is wider than int16 (float32 intensities of
// most drivers); ring becomes ring; an integer time field named t or
// time_offset (ns from the sweep's start, as Ouster drivers write) becomes
// time_offset; every other field is kept exactly as an extra field of its
// name (count > 1: name[i]). Points whose x, y or z is not finite (no
// return, in organised clouds) are dropped.

// pointLayout is how a topic's PointCloud2 fields map to a sweep.
type pointLayout struct {
	x, y, z, intensity, ring, tOff int // index in fields, or -1
	extra                          []extraField
	fields                         []ros2.PointField
	// Where encodeSweep reads each field in a point, from the fields above
	// (every message of the topic has them: encodeSweep checks).
	xAt, yAt, zAt, intensityAt, ringAt, tOffAt fieldAt
}

type extraField struct {
	f   ros2.PointField
	idx uint32 // element of a field with count > 1
	typ signals.SampleType
	at  fieldAt
}

// fieldAt is where a value is in a point: its byte offset and PointField
// datatype (0: the field is absent).
type fieldAt struct {
	off int
	dt  uint8
}

// fieldAtOf locates element k of field i of fields; absent when i < 0.
func fieldAtOf(fields []ros2.PointField, i int, k uint32) fieldAt {
	if i < 0 {
		return fieldAt{}
	}
	f := &fields[i]
	return fieldAt{off: int(f.Offset) + int(k)*ros2.FieldSize(f.Datatype), dt: f.Datatype}
}

// extraTypeOf is the sample type that holds a PointField datatype exactly.
func extraTypeOf(dt uint8) signals.SampleType {
	switch dt {
	case ros2.Int8, ros2.Uint8, ros2.Int16:
		return signals.Int16
	case ros2.Uint16, ros2.Int32:
		return signals.Int32
	case ros2.Float32:
		return signals.Float32
	}
	return signals.Float64 // uint32 and float64
}

func newPointLayout(fields []ros2.PointField) (*pointLayout, *signals.PointCloud, error) {
	l := &pointLayout{x: -1, y: -1, z: -1, intensity: -1, ring: -1, tOff: -1, fields: append([]ros2.PointField(nil), fields...)}
	d := &signals.PointCloud{}
	isInt := func(dt uint8) bool { return dt >= ros2.Int8 && dt <= ros2.Uint32 }
	for i, f := range fields {
		one := f.Count <= 1
		switch {
		case one && f.Name == "x":
			l.x = i
		case one && f.Name == "y":
			l.y = i
		case one && f.Name == "z":
			l.z = i
		case one && f.Name == "intensity":
			l.intensity = i
			if f.Datatype != ros2.Int8 && f.Datatype != ros2.Uint8 && f.Datatype != ros2.Int16 {
				l.extra = append(l.extra, extraField{f: f, typ: extraTypeOf(f.Datatype)})
				d.Extra = append(d.Extra, signals.Field{Name: "ros.intensity", Type: extraTypeOf(f.Datatype)})
			}
		case one && f.Name == "ring" && isInt(f.Datatype):
			l.ring = i
		case one && (f.Name == "t" || f.Name == "time_offset") && isInt(f.Datatype) && f.Datatype != ros2.Int8:
			l.tOff = i
		default:
			for k := uint32(0); k < max(f.Count, 1); k++ {
				name := f.Name
				if f.Count > 1 {
					name = fmt.Sprintf("%s[%d]", f.Name, k)
				}
				if name == "" || name == signals.TimeField || name == "ring" || name == "time_offset" {
					name = "ros." + name
				}
				l.extra = append(l.extra, extraField{f: f, idx: k, typ: extraTypeOf(f.Datatype)})
				d.Extra = append(d.Extra, signals.Field{Name: name, Type: extraTypeOf(f.Datatype)})
			}
		}
	}
	if l.x < 0 || l.y < 0 || l.z < 0 {
		return nil, nil, fmt.Errorf("the PointCloud2 has no x, y and z fields (it has %d fields)", len(fields))
	}
	l.xAt, l.yAt, l.zAt = fieldAtOf(fields, l.x, 0), fieldAtOf(fields, l.y, 0), fieldAtOf(fields, l.z, 0)
	l.intensityAt, l.ringAt, l.tOffAt = fieldAtOf(fields, l.intensity, 0), fieldAtOf(fields, l.ring, 0), fieldAtOf(fields, l.tOff, 0)
	for i := range l.extra {
		e := &l.extra[i]
		e.at = fieldAt{off: int(e.f.Offset) + int(e.idx)*ros2.FieldSize(e.f.Datatype), dt: e.f.Datatype}
	}
	return l, d, nil
}

// fieldValue reads field f (element k) of the point at p.
func fieldValue(p []byte, f *ros2.PointField, k uint32, be bool) float64 {
	return valueAt(p, fieldAt{off: int(f.Offset) + int(k)*ros2.FieldSize(f.Datatype), dt: f.Datatype}, be)
}

// valueAt reads the value at a in the point at p, exactly as a float64.
// Little-endian, the byte order of every common machine, has a path of its
// own: the calls through binary.ByteOrder, an interface, were not inlined
// and cost more than the read.
func valueAt(p []byte, a fieldAt, be bool) float64 {
	b := p[a.off:]
	if !be {
		switch a.dt {
		case ros2.Float32:
			return float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
		case ros2.Float64:
			return math.Float64frombits(binary.LittleEndian.Uint64(b))
		case ros2.Int8:
			return float64(int8(b[0]))
		case ros2.Uint8:
			return float64(b[0])
		case ros2.Int16:
			return float64(int16(binary.LittleEndian.Uint16(b)))
		case ros2.Uint16:
			return float64(binary.LittleEndian.Uint16(b))
		case ros2.Int32:
			return float64(int32(binary.LittleEndian.Uint32(b)))
		case ros2.Uint32:
			return float64(binary.LittleEndian.Uint32(b))
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b))
	}
	o := binary.BigEndian
	switch a.dt {
	case ros2.Int8:
		return float64(int8(b[0]))
	case ros2.Uint8:
		return float64(b[0])
	case ros2.Int16:
		return float64(int16(o.Uint16(b)))
	case ros2.Uint16:
		return float64(o.Uint16(b))
	case ros2.Int32:
		return float64(int32(o.Uint32(b)))
	case ros2.Uint32:
		return float64(o.Uint32(b))
	case ros2.Float32:
		return float64(math.Float32frombits(o.Uint32(b)))
	}
	return math.Float64frombits(o.Uint64(b))
}

func sameFields(a, b []ros2.PointField) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func clampInt16(v float64) int16 {
	return int16(min(max(math.Round(v), math.MinInt16), math.MaxInt16))
}

// putLidar hands a PointCloud2 to the topic's encoders. The first one
// makes the track (its layout and rings); each is then converted and
// encoded by one of GOMAXPROCS workers — the LIDAR codec is the import's
// costliest step — and put in file order by one goroutine.
func (t *topicSink) putLidar(at int64, data []byte) error {
	if t.pipe == nil {
		pc, err := ros2.DecodePointCloud2(data, nil)
		if err != nil {
			return err
		}
		l, d, err := newPointLayout(pc.Fields)
		if err != nil {
			return err
		}
		d.Resolution = t.imp.resolution
		// Rings: the first sweep's highest ring + 1, rounded up to a power
		// of two (16, 32, 64, 128 beams); a later ring beyond it is refused.
		maxRing := 0
		if l.ring >= 0 {
			f := &pc.Fields[l.ring]
			for r := uint32(0); r < pc.Height; r++ {
				for c := uint32(0); c < pc.Width; c++ {
					p := pc.Data[r*pc.RowStep+c*pc.PointStep:]
					maxRing = max(maxRing, int(fieldValue(p, f, 0, pc.IsBigEndian)))
				}
			}
		}
		rings := 1
		for rings <= maxRing {
			rings *= 2
		}
		d.Rings = uint16(min(rings, math.MaxInt16))
		t.meta.FrameID, t.meta.Fields, t.meta.PointStep = pc.Header.FrameID, l.fields, pc.PointStep
		track, err := sdk.PointCloudTrack(1, t.meta.trackName(), d)
		if err != nil {
			return err
		}
		if err := t.open(track); err != nil {
			return err
		}
		t.lidar, t.layout = d, l
		t.pipe = newLidarPipe(t, func(f sdk.Frame) error { return t.p.PutFrame(t.imp.ctx, f) })
	}
	return t.pipe.submit(at, data, t.messages+1)
}

// lidarJob is one sweep on its way through the pipe.
type lidarJob struct {
	at      int64
	n       int64  // the message's number in its topic, for errors
	msg     []byte // a copy: the reader's buffer is reused
	frame   []byte
	extent  int64 // largest time_offset + 1 ns
	skipped int64
	err     error
	ready   chan struct{}
}

// lidarPipe converts and encodes sweeps in parallel and puts them in order.
// At most 2×workers sweeps wait in order, so memory stays a few sweeps
// whatever the file's size; their message copies and frames are recycled
// through msgs and frames (a sweep is megabytes: allocating each anew cost
// page faults and clearing, and collections).
type lidarPipe struct {
	t      *topicSink
	jobs   chan *lidarJob
	order  chan *lidarJob
	done   chan struct{}
	msgs   chan []byte // spare message buffers
	frames chan []byte // spare frame buffers
	// putFrame puts a frame: the producer's PutFrame (a test's recorder).
	putFrame func(sdk.Frame) error
	mu       sync.Mutex
	err      error // the first failure; submit returns it
	closed   bool
}

func newLidarPipe(t *topicSink, putFrame func(sdk.Frame) error) *lidarPipe {
	workers := max(1, runtime.GOMAXPROCS(0))
	// Every sweep in flight: those in order, the one the putter holds, one
	// being submitted.
	spares := 2*workers + 2
	p := &lidarPipe{t: t, jobs: make(chan *lidarJob, workers), order: make(chan *lidarJob, 2*workers), done: make(chan struct{}),
		msgs: make(chan []byte, spares), frames: make(chan []byte, spares), putFrame: putFrame}
	for i := 0; i < workers; i++ {
		go p.work()
	}
	go p.put()
	return p
}

// spare takes a buffer from a free list, or nil when it is empty.
func spare(free chan []byte) []byte {
	select {
	case b := <-free:
		return b[:0]
	default:
		return nil
	}
}

// recycle gives a buffer back to a free list, or drops it when the list is full.
func recycle(free chan []byte, b []byte) {
	if b == nil {
		return
	}
	select {
	case free <- b:
	default:
	}
}

func (p *lidarPipe) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}

func (p *lidarPipe) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *lidarPipe) submit(at int64, msg []byte, n int64) error {
	if err := p.failed(); err != nil {
		return err
	}
	j := &lidarJob{at: at, n: n, msg: append(spare(p.msgs), msg...), ready: make(chan struct{})}
	p.order <- j // waits while the putter is behind: back-pressure
	p.jobs <- j
	return nil
}

// finish waits for every sweep to be put; the error is the first failure.
func (p *lidarPipe) finish() error {
	if !p.closed {
		p.closed = true
		close(p.jobs)
		close(p.order)
	}
	<-p.done
	return p.failed()
}

func (p *lidarPipe) work() {
	var s codecs.Sweep
	var fields []ros2.PointField
	for j := range p.jobs {
		j.frame = spare(p.frames)
		j.err = p.t.encodeSweep(j, &s, fields[:0])
		recycle(p.msgs, j.msg)
		j.msg = nil
		close(j.ready)
	}
}

func (p *lidarPipe) put() {
	defer close(p.done)
	for j := range p.order {
		<-j.ready
		if p.failed() != nil {
			continue
		}
		if j.err == nil {
			// PutFrame copies the frame into the open fragment.
			j.err = p.putFrame(sdk.Frame{Track: 1, Timestamp: j.at, Duration: j.extent, Key: true, Data: j.frame})
		}
		recycle(p.frames, j.frame)
		j.frame = nil
		if j.err != nil {
			p.fail(fmt.Errorf("message %d (log time %s): %w", j.n, time.Unix(0, j.at).UTC().Format(time.RFC3339Nano), j.err))
			continue
		}
		p.t.skipped += j.skipped
	}
}

// encodeSweep converts a PointCloud2 to a sweep of the track's layout and
// encodes it, as PutPointCloud would (the checks are its checks: rings,
// time offsets, finite coordinates).
func (t *topicSink) encodeSweep(j *lidarJob, s *codecs.Sweep, fields []ros2.PointField) error {
	pc, err := ros2.DecodePointCloud2(j.msg, fields)
	if err != nil {
		return err
	}
	l := t.layout
	if !sameFields(pc.Fields, l.fields) {
		return fmt.Errorf("the PointCloud2 fields changed from the topic's first message; a LIDAR track keeps one layout")
	}
	s.Time = j.at
	// Room for every point, so that neither the points nor the extra
	// columns grow while they are filled; the columns are cut to the points
	// kept at the end.
	total := int(pc.Height) * int(pc.Width)
	s.Points = slices.Grow(s.Points[:0], total)
	if cap(s.Extra) < len(l.extra) {
		s.Extra = make([]codecs.Column, len(l.extra))
	}
	s.Extra = s.Extra[:len(l.extra)]
	for i, e := range l.extra {
		s.Extra[i].Reset(e.typ, total)
	}
	be := pc.IsBigEndian
	// The layout of most drivers: x, y and z little-endian float32.
	xyz32 := !be && l.xAt.dt == ros2.Float32 && l.yAt.dt == ros2.Float32 && l.zAt.dt == ros2.Float32
	step := int(pc.PointStep)
	var extent int64
	for r := 0; r < int(pc.Height); r++ {
		row := pc.Data[r*int(pc.RowStep):]
		for c := 0; c < int(pc.Width); c++ {
			p := row[c*step : c*step+step]
			var x, y, z float64
			if xyz32 {
				x = float64(math.Float32frombits(binary.LittleEndian.Uint32(p[l.xAt.off:])))
				y = float64(math.Float32frombits(binary.LittleEndian.Uint32(p[l.yAt.off:])))
				z = float64(math.Float32frombits(binary.LittleEndian.Uint32(p[l.zAt.off:])))
			} else {
				x, y, z = valueAt(p, l.xAt, be), valueAt(p, l.yAt, be), valueAt(p, l.zAt, be)
			}
			if math.IsNaN(x+y+z) || math.IsInf(x+y+z, 0) {
				j.skipped++
				continue
			}
			pt := codecs.Point{X: float32(x), Y: float32(y), Z: float32(z)}
			if l.intensityAt.dt != 0 {
				pt.Intensity = clampInt16(valueAt(p, l.intensityAt, be))
			}
			if l.ringAt.dt != 0 {
				ring := valueAt(p, l.ringAt, be)
				if ring < 0 || ring >= float64(t.lidar.Rings) {
					return fmt.Errorf("point %d is on ring %v; the topic's first sweep made the track's LIDAR %d rings", len(s.Points), ring, t.lidar.Rings)
				}
				pt.Ring = int16(ring)
			}
			if l.tOffAt.dt != 0 {
				v := valueAt(p, l.tOffAt, be)
				if v < 0 || v > math.MaxInt32 {
					return fmt.Errorf("point %d has time offset %v ns: want 0 to %d", len(s.Points), v, math.MaxInt32)
				}
				pt.TimeOffset = int32(v)
			}
			extent = max(extent, int64(pt.TimeOffset)+1)
			k := len(s.Points)
			s.Points = append(s.Points, pt)
			for i := range l.extra {
				setValue(&s.Extra[i], k, valueAt(p, l.extra[i].at, be))
			}
		}
	}
	for i := range s.Extra {
		cutColumn(&s.Extra[i], len(s.Points))
	}
	j.extent = extent
	j.frame, err = codecs.AppendSweepFrame(j.frame[:0], t.lidar, s)
	return err
}

// setValue sets value k of c to v in c's type (which holds it exactly).
func setValue(c *codecs.Column, k int, v float64) {
	switch c.Type {
	case signals.Int16:
		c.I16[k] = int16(v)
	case signals.Int32:
		c.I32[k] = int32(v)
	case signals.Float32:
		c.F32[k] = float32(v)
	default:
		c.F64[k] = v
	}
}

// cutColumn keeps the first n values of c.
func cutColumn(c *codecs.Column, n int) {
	switch c.Type {
	case signals.Int16:
		c.I16 = c.I16[:n]
	case signals.Int32:
		c.I32 = c.I32[:n]
	case signals.Float32:
		c.F32 = c.F32[:n]
	default:
		c.F64 = c.F64[:n]
	}
}
