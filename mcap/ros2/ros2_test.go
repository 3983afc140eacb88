package ros2

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"
)

func TestRoundTrips(t *testing.T) {
	pc := &PointCloud2{Header: Header{Stamp: Time{Sec: 12, Nanosec: 34}, FrameID: "velodyne"}, Height: 1, Width: 2,
		Fields:    []PointField{{Name: "x", Offset: 0, Datatype: Float32, Count: 1}, {Name: "ring", Offset: 4, Datatype: Uint16, Count: 1}},
		PointStep: 6, RowStep: 12, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, IsDense: true}
	got, err := DecodePointCloud2(AppendPointCloud2(nil, pc), nil)
	if err != nil || !reflect.DeepEqual(got, pc) {
		t.Fatalf("PointCloud2: %+v, %v", got, err)
	}
	imu := Imu{Header: Header{Stamp: TimeOf(1_764_000_000_123_456_789), FrameID: "imu"}, Orientation: Quaternion{W: 1},
		AngularVelocity: Vector3{1, 2, 3}, LinearAcceleration: Vector3{4, 5, 9.81}}
	imu.OrientationCovariance[0] = -1
	var imu2 Imu
	if err := DecodeImu(AppendImu(nil, &imu), &imu2); err != nil || imu2 != imu {
		t.Fatalf("Imu: %+v, %v", imu2, err)
	}
	if imu.Header.Stamp.Nanos() != 1_764_000_000_123_456_789 {
		t.Fatalf("stamp %v", imu.Header.Stamp)
	}
	ci := CompressedImage{Header: Header{FrameID: "cam"}, Format: "jpeg", Data: []byte{0xff, 0xd8}}
	if got, err := DecodeCompressedImage(AppendCompressedImage(nil, &ci)); err != nil || !reflect.DeepEqual(got, ci) {
		t.Fatalf("CompressedImage: %+v, %v", got, err)
	}
	cv := CompressedVideo{Timestamp: Time{Sec: 5}, FrameID: "cam", Data: []byte{0, 0, 0, 1, 0x65}, Format: "h264"}
	if got, err := DecodeCompressedVideo(AppendCompressedVideo(nil, &cv)); err != nil || !reflect.DeepEqual(got, cv) {
		t.Fatalf("CompressedVideo: %+v, %v", got, err)
	}
	for _, tc := range []struct {
		typ string
		v   float64
	}{{"float64", math.Pi}, {"float32", 1.5}, {"int8", -5}, {"uint8", 250}, {"int16", -30000}, {"uint16", 65000},
		{"int32", -2e9}, {"uint32", 4e9}, {"int64", -1 << 50}, {"uint64", 1 << 60}} {
		if got, err := DecodeScalar(AppendScalar(nil, tc.typ, tc.v), tc.typ); err != nil || got != tc.v {
			t.Errorf("%s: %v, %v; want %v", tc.typ, got, err, tc.v)
		}
	}
}

// The CDR layout is the one ROS 2 writes: a known message byte for byte.
func TestCDRLayout(t *testing.T) {
	// std_msgs/msg/Float64 of 1.0: header, 4 bytes of alignment to 8, the value.
	want := []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f}
	if got := AppendScalar(nil, "float64", 1); !bytes.Equal(got, want) {
		t.Fatalf("% x, want % x", got, want)
	}
	// A big-endian one decodes too.
	be := []byte{0, 0, 0, 0, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0}
	if v, err := DecodeScalar(be, "float64"); err != nil || v != 1 {
		t.Fatalf("big-endian: %v %v", v, err)
	}
}

func TestScalarOf(t *testing.T) {
	for _, tc := range []struct{ schema, typ, name string }{
		{"float64 data\n", "float64", "data"},
		{"# a count\nint32 data # the count\n", "int32", "data"},
		{"float32 volts\n" + "================================================================================\nMSG: x/Y\nint8 a\n", "float32", "volts"},
		{"bool data\n", "", ""},
		{"float64 a\nfloat64 b\n", "", ""},
		{"uint8 OK=0\nfloat64 v\n", "", ""},
		{"float64[] data\n", "", ""},
		{"string data\n", "", ""},
	} {
		if typ, name := ScalarOf(tc.schema); typ != tc.typ || name != tc.name {
			t.Errorf("%q: %q %q, want %q %q", tc.schema, typ, name, tc.typ, tc.name)
		}
	}
}

func TestCompressedVideoProto(t *testing.T) {
	// timestamp {seconds: 7, nanos: 9}, frame_id "cam", data 00 00 01 65, format "h264", and an unknown field 9.
	msg := []byte{0x0a, 0x04, 0x08, 0x07, 0x10, 0x09, 0x12, 0x03, 'c', 'a', 'm', 0x1a, 0x04, 0, 0, 1, 0x65, 0x22, 0x04, 'h', '2', '6', '4', 0x48, 0x01}
	m, err := DecodeCompressedVideoProto(msg)
	if err != nil || m.Timestamp != (Time{7, 9}) || m.FrameID != "cam" || !bytes.Equal(m.Data, []byte{0, 0, 1, 0x65}) || m.Format != "h264" {
		t.Fatalf("%+v %v", m, err)
	}
	if _, err := DecodeCompressedVideoProto(msg[:len(msg)-4]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated: %v", err)
	}
}

// Damaged messages are errors naming where, never panics.
func TestMalformed(t *testing.T) {
	pc := AppendPointCloud2(nil, &PointCloud2{Height: 1, Width: 10, PointStep: 4, RowStep: 40, Data: make([]byte, 40),
		Fields: []PointField{{Name: "x", Offset: 0, Datatype: Float32, Count: 1}}})
	for n := 0; n < len(pc); n++ {
		if _, err := DecodePointCloud2(pc[:n], nil); err == nil {
			t.Fatalf("PointCloud2 cut at %d decoded", n)
		}
	}
	bad := AppendPointCloud2(nil, &PointCloud2{Height: 1, Width: 10, PointStep: 4, RowStep: 40, Data: make([]byte, 39),
		Fields: []PointField{{Name: "x", Offset: 0, Datatype: Float32, Count: 1}}})
	if _, err := DecodePointCloud2(bad, nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short data: %v", err)
	}
	beyond := AppendPointCloud2(nil, &PointCloud2{Height: 1, Width: 1, PointStep: 4, RowStep: 4, Data: make([]byte, 4),
		Fields: []PointField{{Name: "x", Offset: 2, Datatype: Float32, Count: 1}}})
	if _, err := DecodePointCloud2(beyond, nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("field beyond point_step: %v", err)
	}
	if _, err := DecodeCompressedImage([]byte{0, 1, 0, 0, 0xff, 0xff, 0xff, 0x7f}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("huge length: %v", err)
	}
	if _, err := DecodeCompressedImage([]byte{0, 7, 0, 0}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("XCDR2: %v", err)
	}
}

// FuzzDecoders feeds arbitrary bytes to every decoder: errors are fine,
// panics are not. Seeds are valid messages of each type.
func FuzzDecoders(f *testing.F) {
	f.Add(AppendPointCloud2(nil, &PointCloud2{Height: 1, Width: 1, PointStep: 4, RowStep: 4, Data: make([]byte, 4),
		Fields: []PointField{{Name: "x", Offset: 0, Datatype: Float32, Count: 1}}}))
	f.Add(AppendImu(nil, &Imu{}))
	f.Add(AppendCompressedImage(nil, &CompressedImage{Format: "jpeg", Data: []byte{1}}))
	f.Add(AppendCompressedVideo(nil, &CompressedVideo{Format: "h264", Data: []byte{0, 0, 1, 0x65}}))
	f.Add(AppendScalar(nil, "float64", 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		DecodePointCloud2(b, nil)
		var m Imu
		DecodeImu(b, &m)
		DecodeCompressedImage(b)
		DecodeCompressedVideo(b)
		DecodeCompressedVideoProto(b)
		for _, typ := range []string{"int8", "uint16", "int32", "float32", "float64", "uint64"} {
			DecodeScalar(b, typ)
		}
	})
}

func TestTypeName(t *testing.T) {
	for in, want := range map[string]string{
		"sensor_msgs/msg/PointCloud2":   "sensor_msgs/msg/PointCloud2",
		"sensor_msgs/PointCloud2":       "sensor_msgs/msg/PointCloud2",
		"sensor_msgs::msg::PointCloud2": "sensor_msgs/msg/PointCloud2",
		"foxglove.CompressedVideo":      "foxglove.CompressedVideo",
	} {
		if got := TypeName(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
