// Package simulate holds simulated sensors, one package each: a centrifugal
// pump's vibration (pump), a MEMS IMU (imu), an automotive RADAR (radar), a
// street LIDAR (lidar), a machine's audio (audio) and a vehicle's CAN bus
// (canbus). Each makes deterministic, realistic samples for a seed, so that
// the example producers, `sensorium demo`, the benchmarks and the tests feed
// Sensorium the same data every run.
//
// They are public so that users can try Sensorium without hardware. They make
// samples only, in the shapes of packages signals and codecs, and may import
// those two and nothing else of ours: no SDK, no server. This package holds
// nothing but this comment.
package simulate
