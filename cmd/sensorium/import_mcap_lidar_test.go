package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/mcap/ros2"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// lidarLayouts are PointCloud2 layouts drivers write: Velodyne's (float32
// intensity and time, uint16 ring), an Ouster-like one (uint32 t, uint8
// ring, more integer fields), and a big-endian one with float64
// coordinates and a field of count 3, and a little-endian one with every
// other integer type and a field of count 0 (one value).
var lidarLayouts = []struct {
	name string
	be   bool
	step uint32
	f    []ros2.PointField
}{
	{"velodyne", false, 24, []ros2.PointField{{Name: "x", Offset: 0, Datatype: ros2.Float32, Count: 1}, {Name: "y", Offset: 4, Datatype: ros2.Float32, Count: 1},
		{Name: "z", Offset: 8, Datatype: ros2.Float32, Count: 1}, {Name: "intensity", Offset: 12, Datatype: ros2.Float32, Count: 1},
		{Name: "ring", Offset: 16, Datatype: ros2.Uint16, Count: 1}, {Name: "time", Offset: 20, Datatype: ros2.Float32, Count: 1}}},
	{"ouster", false, 32, []ros2.PointField{{Name: "x", Offset: 0, Datatype: ros2.Float32, Count: 1}, {Name: "y", Offset: 4, Datatype: ros2.Float32, Count: 1},
		{Name: "z", Offset: 8, Datatype: ros2.Float32, Count: 1}, {Name: "intensity", Offset: 12, Datatype: ros2.Uint16, Count: 1},
		{Name: "t", Offset: 16, Datatype: ros2.Uint32, Count: 1}, {Name: "reflectivity", Offset: 20, Datatype: ros2.Uint16, Count: 1},
		{Name: "ring", Offset: 22, Datatype: ros2.Uint8, Count: 1}, {Name: "ambient", Offset: 24, Datatype: ros2.Int16, Count: 1},
		{Name: "range", Offset: 28, Datatype: ros2.Uint32, Count: 1}}},
	{"big-endian float64", true, 64, []ros2.PointField{{Name: "x", Offset: 0, Datatype: ros2.Float64, Count: 1}, {Name: "y", Offset: 8, Datatype: ros2.Float64, Count: 1},
		{Name: "z", Offset: 16, Datatype: ros2.Float64, Count: 1}, {Name: "intensity", Offset: 24, Datatype: ros2.Int8, Count: 1},
		{Name: "ring", Offset: 25, Datatype: ros2.Uint8, Count: 1}, {Name: "flags", Offset: 26, Datatype: ros2.Int16, Count: 1},
		{Name: "time_offset", Offset: 28, Datatype: ros2.Uint32, Count: 1}, {Name: "normal", Offset: 32, Datatype: ros2.Int32, Count: 3},
		{Name: "w", Offset: 48, Datatype: ros2.Float64, Count: 1}, {Name: "u", Offset: 56, Datatype: ros2.Uint16, Count: 1},
		{Name: "f", Offset: 60, Datatype: ros2.Float32, Count: 1}}},
	{"little-endian mixed", false, 48, []ros2.PointField{{Name: "z", Offset: 0, Datatype: ros2.Float64, Count: 1}, {Name: "y", Offset: 8, Datatype: ros2.Float32, Count: 1},
		{Name: "x", Offset: 12, Datatype: ros2.Float64, Count: 1}, {Name: "intensity", Offset: 20, Datatype: ros2.Int8, Count: 1},
		{Name: "ring", Offset: 22, Datatype: ros2.Int16, Count: 1}, {Name: "i32", Offset: 24, Datatype: ros2.Int32, Count: 2},
		{Name: "u8", Offset: 32, Datatype: ros2.Uint8, Count: 1}, {Name: "i8", Offset: 33, Datatype: ros2.Int8, Count: 1},
		{Name: "f64", Offset: 34, Datatype: ros2.Float64, Count: 0}}},
}

// lidarMessage makes sweep k of a layout: 16 rings in a 2-row organised
// cloud, every field given a value of its type, some points without a
// return (NaN, and an infinity) and, when badRing, a point on ring 99.
func lidarMessage(layout int, k int, badRing bool) []byte {
	l := lidarLayouts[layout]
	const rings, cols = 16, 150
	rng := rand.New(rand.NewPCG(uint64(layout), uint64(k)))
	var o binary.ByteOrder = binary.LittleEndian
	if l.be {
		o = binary.BigEndian
	}
	data := make([]byte, rings*cols*int(l.step))
	put := func(p []byte, dt uint8, v float64) {
		switch dt {
		case ros2.Int8, ros2.Uint8:
			p[0] = byte(int64(v))
		case ros2.Int16, ros2.Uint16:
			o.PutUint16(p, uint16(int64(v)))
		case ros2.Int32, ros2.Uint32:
			o.PutUint32(p, uint32(int64(v)))
		case ros2.Float32:
			o.PutUint32(p, math.Float32bits(float32(v)))
		case ros2.Float64:
			o.PutUint64(p, math.Float64bits(v))
		}
	}
	for i := range rings * cols {
		p := data[i*int(l.step):]
		ring, col := i%rings, i/rings
		az, el := float64(col)*2*math.Pi/cols, (float64(ring)-8)*0.03
		d := 5 + 3*math.Sin(az*2+float64(k)) + 0.01*rng.NormFloat64()
		for _, f := range l.f {
			for e := range max(f.Count, 1) {
				q := p[int(f.Offset)+int(e)*ros2.FieldSize(f.Datatype):]
				var v float64
				switch f.Name {
				case "x":
					v = d * math.Cos(el) * math.Cos(az)
				case "y":
					v = d * math.Cos(el) * math.Sin(az)
				case "z":
					v = d * math.Sin(el)
				case "ring":
					v = float64(ring)
				case "t", "time_offset":
					v = float64(col * 100)
				case "time":
					v = float64(col) * 1e-4
				default:
					v = float64(rng.IntN(120)) + float64(e)
					if f.Datatype == ros2.Int8 || f.Datatype == ros2.Int16 || f.Datatype == ros2.Int32 {
						v -= 60 // negative values too
					}
					if f.Datatype == ros2.Float32 || f.Datatype == ros2.Float64 {
						v += rng.Float64()
					}
				}
				put(q, f.Datatype, v)
			}
		}
		switch {
		case i%37 == 5:
			put(p[l.f[0].Offset:], l.f[0].Datatype, math.NaN())
		case i == 77:
			put(p[l.f[2].Offset:], l.f[2].Datatype, math.Inf(-1))
		case badRing && i == 200:
			for _, f := range l.f {
				if f.Name == "ring" {
					put(p[f.Offset:], f.Datatype, 99)
				}
			}
		}
	}
	pc := ros2.PointCloud2{Header: ros2.Header{Stamp: ros2.TimeOf(1e18 + int64(k)*1e8), FrameID: "lidar"}, Height: 2, Width: rings * cols / 2,
		Fields: l.f, IsBigEndian: l.be, PointStep: l.step, RowStep: rings * cols / 2 * l.step, Data: data}
	return ros2.AppendPointCloud2(nil, &pc)
}

// lidarSinkFor makes a topic sink for the layout as putLidar does from its
// first message, without a producer.
func lidarSinkFor(t *testing.T, layout int) *topicSink {
	t.Helper()
	l, d, err := newPointLayout(lidarLayouts[layout].f)
	if err != nil {
		t.Fatal(err)
	}
	d.Resolution, d.Rings = 0.0001, 16
	return &topicSink{imp: &mcapImport{ctx: t.Context()}, lidar: d, layout: l}
}

// referenceSweep is the PointCloud2 → sweep conversion as it was before
// encodeSweep read fields by precomputed offsets: fieldValue for every
// value, through binary.ByteOrder.
func referenceSweep(t *topicSink, msg []byte, at int64) (*codecs.Sweep, int64, int64, error) {
	pc, err := ros2.DecodePointCloud2(msg, nil)
	if err != nil {
		return nil, 0, 0, err
	}
	l := t.layout
	s := &codecs.Sweep{Time: at, Extra: make([]codecs.Column, len(l.extra))}
	for i, e := range l.extra {
		s.Extra[i].Reset(e.typ, 0)
	}
	fx, fy, fz := &pc.Fields[l.x], &pc.Fields[l.y], &pc.Fields[l.z]
	be := pc.IsBigEndian
	var value func(p []byte, f *ros2.PointField, k uint32) float64 = func(p []byte, f *ros2.PointField, k uint32) float64 {
		b := p[int(f.Offset)+int(k)*ros2.FieldSize(f.Datatype):]
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
	var extent, skipped int64
	for r := uint32(0); r < pc.Height; r++ {
		row := pc.Data[r*pc.RowStep:]
		for c := uint32(0); c < pc.Width; c++ {
			p := row[c*pc.PointStep:]
			x, y, z := value(p, fx, 0), value(p, fy, 0), value(p, fz, 0)
			if math.IsNaN(x+y+z) || math.IsInf(x+y+z, 0) {
				skipped++
				continue
			}
			pt := codecs.Point{X: float32(x), Y: float32(y), Z: float32(z)}
			if l.intensity >= 0 {
				pt.Intensity = clampInt16(value(p, &pc.Fields[l.intensity], 0))
			}
			if l.ring >= 0 {
				ring := value(p, &pc.Fields[l.ring], 0)
				if ring < 0 || ring >= float64(t.lidar.Rings) {
					return nil, 0, 0, fmt.Errorf("point %d is on ring %v", len(s.Points), ring)
				}
				pt.Ring = int16(ring)
			}
			if l.tOff >= 0 {
				pt.TimeOffset = int32(value(p, &pc.Fields[l.tOff], 0))
			}
			extent = max(extent, int64(pt.TimeOffset)+1)
			s.Points = append(s.Points, pt)
			for i := range l.extra {
				e := &l.extra[i]
				v := value(p, &e.f, e.idx)
				switch c := &s.Extra[i]; c.Type {
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
		}
	}
	return s, extent, skipped, nil
}

// encodeSweep converts every layout as the reference conversion does (the
// same points, extra values, extent and skipped points) and its frame is
// the frame of the reference's sweep, also when the worker's sweep and
// buffers are reused from a larger one.
func TestMCAPEncodeSweepIsReference(t *testing.T) {
	for li, layout := range lidarLayouts {
		t.Run(layout.name, func(t *testing.T) {
			sink := lidarSinkFor(t, li)
			var s codecs.Sweep
			for k := range 3 {
				msg := lidarMessage(li, k, false)
				at := int64(1e18) + int64(k)*1e8
				want, extent, skipped, err := referenceSweep(sink, msg, at)
				if err != nil {
					t.Fatal(err)
				}
				j := &lidarJob{at: at, msg: msg, frame: make([]byte, 10, 1<<20)}
				if err := sink.encodeSweep(j, &s, nil); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(s.Points, want.Points) {
					t.Fatalf("sweep %d: the points differ from the reference's", k)
				}
				for i := range want.Extra {
					if !reflect.DeepEqual(s.Extra[i], want.Extra[i]) {
						t.Fatalf("sweep %d: extra field %d differs from the reference's", k, i)
					}
				}
				if j.extent != extent || j.skipped != skipped || skipped == 0 {
					t.Fatalf("sweep %d: extent %d, %d skipped; the reference %d, %d", k, j.extent, j.skipped, extent, skipped)
				}
				frame, err := codecs.AppendSweepFrame(nil, sink.lidar, want)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(j.frame, frame) {
					t.Fatalf("sweep %d: the frame differs from the reference sweep's", k)
				}
			}
		})
	}
}

// The pipe puts the frames of sweeps encoded side by side in file order,
// each the bytes the sequential path (encodeSweep one after the other)
// makes; a sweep that fails stops the import with its message number and
// error, and nothing after it is put.
func TestMCAPLidarPipeOrderAndErrors(t *testing.T) {
	const n = 24
	for _, failAt := range []int{-1, 9} {
		t.Run(fmt.Sprintf("fail at %d", failAt), func(t *testing.T) {
			sink := lidarSinkFor(t, 0)
			msgs := make([][]byte, n)
			var want [][]byte
			var s codecs.Sweep
			for k := range msgs {
				msgs[k] = lidarMessage(0, k, k == failAt)
				if failAt >= 0 && k >= failAt {
					continue
				}
				j := &lidarJob{at: int64(1e18) + int64(k)*1e8, msg: msgs[k]}
				if err := sink.encodeSweep(j, &s, nil); err != nil {
					t.Fatal(err)
				}
				want = append(want, j.frame)
			}
			var mu sync.Mutex
			var got [][]byte
			var times []int64
			pipe := newLidarPipe(sink, func(f sdk.Frame) error {
				mu.Lock()
				defer mu.Unlock()
				got, times = append(got, bytes.Clone(f.Data)), append(times, f.Timestamp)
				return nil
			})
			var submitErr error
			for k, m := range msgs {
				// The reader's buffer is reused: the pipe must copy.
				buf := bytes.Clone(m)
				if submitErr = pipe.submit(int64(1e18)+int64(k)*1e8, buf, int64(k+1)); submitErr != nil {
					break
				}
				clear(buf)
			}
			err := pipe.finish()
			if failAt < 0 {
				if err != nil || submitErr != nil {
					t.Fatalf("finish: %v, submit: %v", err, submitErr)
				}
			} else if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("message %d ", failAt+1)) || !strings.Contains(err.Error(), "is on ring 99") {
				t.Fatalf("a bad sweep %d: finish says %v", failAt+1, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d frames put, want %d", len(got), len(want))
			}
			for k := range want {
				if times[k] != int64(1e18)+int64(k)*1e8 || !bytes.Equal(got[k], want[k]) {
					t.Fatalf("frame %d (time %d) is not sweep %d's", k, times[k], k)
				}
			}
		})
	}
}
