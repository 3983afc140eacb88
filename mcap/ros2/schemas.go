package ros2

import "strings"

// Names of the message types, as ros2msg schemas name them.
const (
	PointCloud2Name     = "sensor_msgs/msg/PointCloud2"
	ImuName             = "sensor_msgs/msg/Imu"
	CompressedImageName = "sensor_msgs/msg/CompressedImage"
	CompressedVideoName = "foxglove_msgs/msg/CompressedVideo"
	// CompressedVideoProtoName is the protobuf schema's name.
	CompressedVideoProtoName = "foxglove.CompressedVideo"
)

// TypeName returns a schema name in the form pkg/msg/Type: ROS 2 writers
// use it; ROS 1 style names (sensor_msgs/PointCloud2) and IDL ones
// (sensor_msgs::msg::PointCloud2) are also seen.
func TypeName(name string) string {
	name = strings.ReplaceAll(name, "::", "/") // ros2idl, omgidl
	if pkg, typ, ok := strings.Cut(name, "/"); ok && !strings.Contains(typ, "/") {
		return pkg + "/msg/" + typ
	}
	return name
}

// The ros2msg definitions, as the ROS 2 packages ship them (comments
// left out), each followed by its dependencies in the delimited form MCAP's
// ros2msg schema encoding takes.
const (
	timeMsg   = "int32 sec\nuint32 nanosec\n"
	headerMsg = "builtin_interfaces/Time stamp\nstring frame_id\n"

	pointFieldMsg = `uint8 INT8    = 1
uint8 UINT8   = 2
uint8 INT16   = 3
uint8 UINT16  = 4
uint8 INT32   = 5
uint8 UINT32  = 6
uint8 FLOAT32 = 7
uint8 FLOAT64 = 8
string name
uint32 offset
uint8  datatype
uint32 count
`
	pointCloud2Msg = `std_msgs/Header header
uint32 height
uint32 width
PointField[] fields
bool    is_bigendian
uint32  point_step
uint32  row_step
uint8[] data
bool is_dense
`
	imuMsg = `std_msgs/Header header
geometry_msgs/Quaternion orientation
float64[9] orientation_covariance
geometry_msgs/Vector3 angular_velocity
float64[9] angular_velocity_covariance
geometry_msgs/Vector3 linear_acceleration
float64[9] linear_acceleration_covariance
`
	quaternionMsg      = "float64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n"
	vector3Msg         = "float64 x\nfloat64 y\nfloat64 z\n"
	compressedImageMsg = "std_msgs/Header header\nstring format\nuint8[] data\n"
	compressedVideoMsg = "builtin_interfaces/Time timestamp\nstring frame_id\nuint8[] data\nstring format\n"
)

func concat(main string, deps ...string) string {
	var b strings.Builder
	b.WriteString(main)
	for i := 0; i < len(deps); i += 2 {
		b.WriteString(strings.Repeat("=", 80) + "\nMSG: " + deps[i] + "\n" + deps[i+1])
	}
	return b.String()
}

// Schemas: the ros2msg text of each mapped type, with its dependencies.
var (
	PointCloud2Schema = concat(pointCloud2Msg, "std_msgs/Header", headerMsg, "builtin_interfaces/Time", timeMsg,
		"sensor_msgs/PointField", pointFieldMsg)
	ImuSchema = concat(imuMsg, "std_msgs/Header", headerMsg, "builtin_interfaces/Time", timeMsg,
		"geometry_msgs/Quaternion", quaternionMsg, "geometry_msgs/Vector3", vector3Msg)
	CompressedImageSchema = concat(compressedImageMsg, "std_msgs/Header", headerMsg, "builtin_interfaces/Time", timeMsg)
	CompressedVideoSchema = concat(compressedVideoMsg, "builtin_interfaces/Time", timeMsg)
)

// ScalarSchema returns the std_msgs type and schema of a message of one
// numeric field of type typ ("float64" → std_msgs/msg/Float64, "data").
func ScalarSchema(typ string) (name, schema string) {
	t := map[string]string{"int8": "Int8", "uint8": "UInt8", "byte": "Byte", "int16": "Int16", "uint16": "UInt16", "int32": "Int32",
		"uint32": "UInt32", "int64": "Int64", "uint64": "UInt64", "float32": "Float32", "float64": "Float64"}[typ]
	if t == "" {
		typ, t = "float64", "Float64"
	}
	return "std_msgs/msg/" + t, typ + " data\n"
}
