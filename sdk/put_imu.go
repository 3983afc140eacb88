package sdk

import (
	"fmt"

	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/signals"
)

// IMUTrack describes a track of an inertial measurement unit.
func IMUTrack(number uint64, name string, desc *signals.IMU) (Track, error) {
	priv, err := desc.AppendBinary(nil)
	if err != nil {
		return Track{}, fmt.Errorf("sdk: imu track: %w", err)
	}
	return Track{Number: number, Name: name, CodecID: signals.CodecIDIMU, CodecPrivate: priv, Type: mkv.TrackTypeMetadata}, nil
}

// NewIMUWriter returns a writer of an IMU track's samples. IMU frames are
// scalar frames, so it is a SampleWriter: write interleaved samples in the
// order of the description's Scalar() channels — accel x, y, z, gyro x, y, z,
// then mag x, y, z if the IMU has one — with the Write method of the
// description's sample type (raw counts for scaled sensors, physical values
// otherwise). desc may be nil; otherwise it must equal the track's
// description (its CodecPrivate).
func NewIMUWriter(p *Producer, track uint64, desc *signals.IMU, o SampleWriterOptions) (*SampleWriter, error) {
	if _, err := trackDescription(p, "imu writer", track, desc, signals.CodecIDIMU); err != nil {
		return nil, err
	}
	return newSampleWriter(p, track, nil, signals.CodecIDIMU, o)
}
