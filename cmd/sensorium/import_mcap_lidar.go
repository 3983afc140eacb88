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
}

type extraField struct {
	f   ros2.PointField
	idx uint32 // element of a field with count > 1
	typ signals.SampleType
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
	return l, d, nil
}

// value reads field f (element k) of the point at p.
func fieldValue(p []byte, f *ros2.PointField, k uint32, be bool) float64 {
	off := int(f.Offset) + int(k)*ros2.FieldSize(f.Datatype)
	b := p[off:]
	var o binary.ByteOrder = binary.LittleEndian
	if be {
		o = binary.BigEndian
	}
	switch f.Datatype {
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
		t.pipe = newLidarPipe(t)
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
type lidarPipe struct {
	t      *topicSink
	jobs   chan *lidarJob
	order  chan *lidarJob
	done   chan struct{}
	mu     sync.Mutex
	err    error // the first failure; submit returns it
	closed bool
}

func newLidarPipe(t *topicSink) *lidarPipe {
	workers := max(1, runtime.GOMAXPROCS(0))
	p := &lidarPipe{t: t, jobs: make(chan *lidarJob, workers), order: make(chan *lidarJob, 2*workers), done: make(chan struct{})}
	for i := 0; i < workers; i++ {
		go p.work()
	}
	go p.put()
	return p
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
	j := &lidarJob{at: at, n: n, msg: slices.Clone(msg), ready: make(chan struct{})}
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
		j.err = p.t.encodeSweep(j, &s, fields[:0])
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
			j.err = p.t.p.PutFrame(p.t.imp.ctx, sdk.Frame{Track: 1, Timestamp: j.at, Duration: j.extent, Key: true, Data: j.frame})
		}
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
	s.Points = s.Points[:0]
	if cap(s.Extra) < len(l.extra) {
		s.Extra = make([]codecs.Column, len(l.extra))
	}
	s.Extra = s.Extra[:len(l.extra)]
	for i, e := range l.extra {
		s.Extra[i].Reset(e.typ, 0)
	}
	fx, fy, fz := &pc.Fields[l.x], &pc.Fields[l.y], &pc.Fields[l.z]
	be := pc.IsBigEndian
	var extent int64
	for r := uint32(0); r < pc.Height; r++ {
		row := pc.Data[r*pc.RowStep:]
		for c := uint32(0); c < pc.Width; c++ {
			p := row[c*pc.PointStep:]
			x, y, z := fieldValue(p, fx, 0, be), fieldValue(p, fy, 0, be), fieldValue(p, fz, 0, be)
			if math.IsNaN(x+y+z) || math.IsInf(x+y+z, 0) {
				j.skipped++
				continue
			}
			pt := codecs.Point{X: float32(x), Y: float32(y), Z: float32(z)}
			if l.intensity >= 0 {
				pt.Intensity = clampInt16(fieldValue(p, &pc.Fields[l.intensity], 0, be))
			}
			if l.ring >= 0 {
				ring := fieldValue(p, &pc.Fields[l.ring], 0, be)
				if ring < 0 || ring >= float64(t.lidar.Rings) {
					return fmt.Errorf("point %d is on ring %v; the topic's first sweep made the track's LIDAR %d rings", len(s.Points), ring, t.lidar.Rings)
				}
				pt.Ring = int16(ring)
			}
			if l.tOff >= 0 {
				v := fieldValue(p, &pc.Fields[l.tOff], 0, be)
				if v < 0 || v > math.MaxInt32 {
					return fmt.Errorf("point %d has time offset %v ns: want 0 to %d", len(s.Points), v, math.MaxInt32)
				}
				pt.TimeOffset = int32(v)
			}
			extent = max(extent, int64(pt.TimeOffset)+1)
			s.Points = append(s.Points, pt)
			for i := range l.extra {
				e := &l.extra[i]
				appendValue(&s.Extra[i], fieldValue(p, &e.f, e.idx, be))
			}
		}
	}
	j.extent = extent
	j.frame, err = codecs.AppendSweepFrame(nil, t.lidar, s)
	return err
}

// appendValue appends v to c in c's type (which holds it exactly).
func appendValue(c *codecs.Column, v float64) {
	switch c.Type {
	case signals.Int16:
		c.I16 = append(c.I16, int16(v))
	case signals.Int32:
		c.I32 = append(c.I32, int32(v))
	case signals.Float32:
		c.F32 = append(c.F32, float32(v))
	default:
		c.F64 = append(c.F64, v)
	}
}
