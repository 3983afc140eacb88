package ros2

import (
	"fmt"
	"strings"
)

// Time is builtin_interfaces/msg/Time.
type Time struct {
	Sec     int32
	Nanosec uint32
}

// Nanos is the time in ns since the epoch.
func (t Time) Nanos() int64 { return int64(t.Sec)*1e9 + int64(t.Nanosec) }

// TimeOf splits ns since the epoch into seconds and nanoseconds.
func TimeOf(ns int64) Time {
	s, n := ns/1e9, ns%1e9
	if n < 0 {
		s, n = s-1, n+1e9
	}
	return Time{Sec: int32(s), Nanosec: uint32(n)}
}

// Header is std_msgs/msg/Header.
type Header struct {
	Stamp   Time
	FrameID string
}

func (d *decoder) header() Header {
	return Header{Stamp: Time{Sec: int32(d.u32()), Nanosec: d.u32()}, FrameID: d.str()}
}

func (e *encoder) header(h Header) {
	e.u32(uint32(h.Stamp.Sec))
	e.u32(h.Stamp.Nanosec)
	e.str(h.FrameID)
}

// PointField datatypes (sensor_msgs/msg/PointField).
const (
	Int8    uint8 = 1
	Uint8   uint8 = 2
	Int16   uint8 = 3
	Uint16  uint8 = 4
	Int32   uint8 = 5
	Uint32  uint8 = 6
	Float32 uint8 = 7
	Float64 uint8 = 8
)

// FieldSize is the byte size of a PointField datatype, 0 if unknown.
func FieldSize(datatype uint8) int {
	switch datatype {
	case Int8, Uint8:
		return 1
	case Int16, Uint16:
		return 2
	case Int32, Uint32, Float32:
		return 4
	case Float64:
		return 8
	}
	return 0
}

// PointField is sensor_msgs/msg/PointField.
type PointField struct {
	Name     string `json:"name"`
	Offset   uint32 `json:"offset"`
	Datatype uint8  `json:"datatype"`
	Count    uint32 `json:"count"`
}

// PointCloud2 is sensor_msgs/msg/PointCloud2. Data aliases the message it
// was decoded from.
type PointCloud2 struct {
	Header      Header
	Height      uint32
	Width       uint32
	Fields      []PointField
	IsBigEndian bool
	PointStep   uint32
	RowStep     uint32
	Data        []byte
	IsDense     bool
}

// DecodePointCloud2 decodes msg and checks that its data holds
// height × width points of point_step bytes whose fields fit.
func DecodePointCloud2(msg []byte, fields []PointField) (*PointCloud2, error) {
	d, err := newDecoder(msg)
	if err != nil {
		return nil, err
	}
	p := &PointCloud2{Header: d.header(), Height: d.u32(), Width: d.u32()}
	n := d.u32()
	if n > 1024 {
		d.fail(fmt.Sprintf("%d point fields", n))
	}
	p.Fields = fields[:0]
	for i := uint32(0); i < n && d.err == nil; i++ {
		p.Fields = append(p.Fields, PointField{Name: d.str(), Offset: d.u32(), Datatype: d.u8(), Count: d.u32()})
	}
	p.IsBigEndian = d.u8() != 0
	p.PointStep, p.RowStep = d.u32(), d.u32()
	p.Data = d.bytes()
	p.IsDense = d.u8() != 0
	if d.err != nil {
		return nil, fmt.Errorf("ros2: sensor_msgs/msg/PointCloud2: %w", d.err)
	}
	if uint64(p.RowStep) < uint64(p.Width)*uint64(p.PointStep) || uint64(len(p.Data)) < uint64(p.Height)*uint64(p.RowStep) {
		return nil, fmt.Errorf("ros2: sensor_msgs/msg/PointCloud2: %w: %d×%d points of %d bytes (rows of %d) do not fit its %d bytes of data",
			ErrMalformed, p.Height, p.Width, p.PointStep, p.RowStep, len(p.Data))
	}
	for _, f := range p.Fields {
		sz := FieldSize(f.Datatype)
		if sz == 0 {
			return nil, fmt.Errorf("ros2: sensor_msgs/msg/PointCloud2: %w: field %q has datatype %d", ErrMalformed, f.Name, f.Datatype)
		}
		if uint64(f.Offset)+uint64(sz)*uint64(max(f.Count, 1)) > uint64(p.PointStep) {
			return nil, fmt.Errorf("ros2: sensor_msgs/msg/PointCloud2: %w: field %q (offset %d, %d × %d bytes) is beyond point_step %d",
				ErrMalformed, f.Name, f.Offset, max(f.Count, 1), sz, p.PointStep)
		}
	}
	return p, nil
}

// AppendPointCloud2 appends p in CDR to dst.
func AppendPointCloud2(dst []byte, p *PointCloud2) []byte {
	e := newEncoder(dst)
	e.header(p.Header)
	e.u32(p.Height)
	e.u32(p.Width)
	e.u32(uint32(len(p.Fields)))
	for _, f := range p.Fields {
		e.str(f.Name)
		e.u32(f.Offset)
		e.u8(f.Datatype)
		e.u32(f.Count)
	}
	e.u8(b2u(p.IsBigEndian))
	e.u32(p.PointStep)
	e.u32(p.RowStep)
	e.bytes(p.Data)
	e.u8(b2u(p.IsDense))
	return e.b
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// Vector3 is geometry_msgs/msg/Vector3; Quaternion geometry_msgs/msg/Quaternion.
type (
	Vector3    struct{ X, Y, Z float64 }
	Quaternion struct{ X, Y, Z, W float64 }
)

// Imu is sensor_msgs/msg/Imu.
type Imu struct {
	Header                       Header
	Orientation                  Quaternion
	OrientationCovariance        [9]float64
	AngularVelocity              Vector3
	AngularVelocityCovariance    [9]float64
	LinearAcceleration           Vector3
	LinearAccelerationCovariance [9]float64
}

func (d *decoder) vec3() Vector3 { return Vector3{d.f64(), d.f64(), d.f64()} }
func (d *decoder) cov(c *[9]float64) {
	for i := range c {
		c[i] = d.f64()
	}
}
func (e *encoder) vec3(v Vector3) { e.f64(v.X); e.f64(v.Y); e.f64(v.Z) }
func (e *encoder) cov(c *[9]float64) {
	for _, v := range c {
		e.f64(v)
	}
}

// DecodeImu decodes a sensor_msgs/msg/Imu.
func DecodeImu(msg []byte, m *Imu) error {
	d, err := newDecoder(msg)
	if err != nil {
		return err
	}
	m.Header = d.header()
	m.Orientation = Quaternion{d.f64(), d.f64(), d.f64(), d.f64()}
	d.cov(&m.OrientationCovariance)
	m.AngularVelocity = d.vec3()
	d.cov(&m.AngularVelocityCovariance)
	m.LinearAcceleration = d.vec3()
	d.cov(&m.LinearAccelerationCovariance)
	if d.err != nil {
		return fmt.Errorf("ros2: sensor_msgs/msg/Imu: %w", d.err)
	}
	return nil
}

// AppendImu appends m in CDR to dst.
func AppendImu(dst []byte, m *Imu) []byte {
	e := newEncoder(dst)
	e.header(m.Header)
	q := m.Orientation
	e.f64(q.X)
	e.f64(q.Y)
	e.f64(q.Z)
	e.f64(q.W)
	e.cov(&m.OrientationCovariance)
	e.vec3(m.AngularVelocity)
	e.cov(&m.AngularVelocityCovariance)
	e.vec3(m.LinearAcceleration)
	e.cov(&m.LinearAccelerationCovariance)
	return e.b
}

// CompressedImage is sensor_msgs/msg/CompressedImage; Data aliases the message.
type CompressedImage struct {
	Header Header
	Format string // "jpeg", "png", "h264" …
	Data   []byte
}

// DecodeCompressedImage decodes a sensor_msgs/msg/CompressedImage.
func DecodeCompressedImage(msg []byte) (CompressedImage, error) {
	d, err := newDecoder(msg)
	if err != nil {
		return CompressedImage{}, err
	}
	m := CompressedImage{Header: d.header(), Format: d.str(), Data: d.bytes()}
	if d.err != nil {
		return m, fmt.Errorf("ros2: sensor_msgs/msg/CompressedImage: %w", d.err)
	}
	return m, nil
}

// AppendCompressedImage appends m in CDR to dst.
func AppendCompressedImage(dst []byte, m *CompressedImage) []byte {
	e := newEncoder(dst)
	e.header(m.Header)
	e.str(m.Format)
	e.bytes(m.Data)
	return e.b
}

// CompressedVideo is foxglove_msgs/msg/CompressedVideo (foxglove.CompressedVideo
// in protobuf): one frame of a video stream; for H.264, an access unit in
// Annex B form. Data aliases the message.
type CompressedVideo struct {
	Timestamp Time
	FrameID   string
	Data      []byte
	Format    string // "h264", "h265", "vp9", "av1"
}

// DecodeCompressedVideo decodes the CDR form.
func DecodeCompressedVideo(msg []byte) (CompressedVideo, error) {
	d, err := newDecoder(msg)
	if err != nil {
		return CompressedVideo{}, err
	}
	m := CompressedVideo{Timestamp: Time{Sec: int32(d.u32()), Nanosec: d.u32()}, FrameID: d.str(), Data: d.bytes(), Format: d.str()}
	if d.err != nil {
		return m, fmt.Errorf("ros2: foxglove_msgs/msg/CompressedVideo: %w", d.err)
	}
	return m, nil
}

// AppendCompressedVideo appends m in CDR to dst.
func AppendCompressedVideo(dst []byte, m *CompressedVideo) []byte {
	e := newEncoder(dst)
	e.u32(uint32(m.Timestamp.Sec))
	e.u32(m.Timestamp.Nanosec)
	e.str(m.FrameID)
	e.bytes(m.Data)
	e.str(m.Format)
	return e.b
}

// ScalarOf returns the type of the one field of a ros2msg definition that
// has exactly one field and it numeric ("float64", "int32" …, as
// std_msgs/msg/Float64 and its kin), and its name; "" when the definition
// is anything else. Comments and constants are ignored; bool and char are
// not numbers here.
func ScalarOf(schema string) (typ, name string) {
	main, _, _ := strings.Cut(schema, "\n"+strings.Repeat("=", 80))
	for line := range strings.SplitSeq(main, "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 || strings.Contains(line, "=") || typ != "" || scalarSize(f[0]) == 0 {
			return "", ""
		}
		typ, name = f[0], f[1]
	}
	return typ, name
}

func scalarSize(t string) int {
	switch t {
	case "int8", "uint8", "byte":
		return 1
	case "int16", "uint16":
		return 2
	case "int32", "uint32", "float32":
		return 4
	case "int64", "uint64", "float64":
		return 8
	}
	return 0
}

// DecodeScalar decodes a message of one numeric field of type typ (from
// ScalarOf) as a float64, and says whether the value is exact in one.
func DecodeScalar(msg []byte, typ string) (float64, error) {
	d, err := newDecoder(msg)
	if err != nil {
		return 0, err
	}
	var v float64
	switch typ {
	case "int8":
		v = float64(int8(d.u8()))
	case "uint8", "byte":
		v = float64(d.u8())
	case "int16":
		v = float64(int16(d.u16()))
	case "uint16":
		v = float64(d.u16())
	case "int32":
		v = float64(int32(d.u32()))
	case "uint32":
		v = float64(d.u32())
	case "float32":
		v = float64(float32frombits(d.u32()))
	case "int64":
		v = float64(int64(d.u64()))
	case "uint64":
		v = float64(d.u64())
	case "float64":
		v = d.f64()
	default:
		return 0, fmt.Errorf("ros2: %q is not a numeric type", typ)
	}
	if d.err != nil {
		return 0, fmt.Errorf("ros2: %s message: %w", typ, d.err)
	}
	return v, nil
}

// AppendScalar appends a message of one field of type typ holding v.
func AppendScalar(dst []byte, typ string, v float64) []byte {
	e := newEncoder(dst)
	switch typ {
	case "int8", "uint8", "byte":
		e.u8(uint8(int64(v)))
	case "int16", "uint16":
		e.align(2)
		x := uint16(int64(v))
		e.b = append(e.b, byte(x), byte(x>>8))
	case "int32":
		e.u32(uint32(int32(v)))
	case "uint32":
		e.u32(uint32(v))
	case "float32":
		e.u32(float32bits(float32(v)))
	case "int64":
		e.u64(uint64(int64(v)))
	case "uint64":
		e.u64(uint64(v))
	default:
		e.f64(v)
	}
	return e.b
}
