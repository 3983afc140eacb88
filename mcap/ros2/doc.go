// Package ros2 decodes and encodes the ROS 2 messages Sensorium maps to its
// own kinds, in CDR (XCDR1, little- or big-endian as the encapsulation
// header says; written little-endian), with the ros2msg schemas MCAP
// files carry for them:
//
//   - sensor_msgs/msg/PointCloud2 (and its PointField)
//   - sensor_msgs/msg/Imu
//   - sensor_msgs/msg/CompressedImage
//   - foxglove_msgs/msg/CompressedVideo in CDR, and foxglove.CompressedVideo
//     in protobuf (decoded by its field numbers, which Foxglove's schema fixes)
//   - any message of one numeric field, such as std_msgs/msg/Float64 and
//     the other std_msgs numbers (see ScalarOf)
//
// Decoders check every length against the message, so a damaged message is
// an error, never a panic or an allocation it asks for.
package ros2
