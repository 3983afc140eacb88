package signals

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// CodecIDIMU is the MKV CodecID of a track that carries IMU frames.
const CodecIDIMU = "S_SENSORIUM/IMU"

// IMUSensorType is one of the sensors of an inertial measurement unit. Its
// values are part of the description format (format_imu.md).
type IMUSensorType uint8

// The IMU sensors, in the order their axes appear in a frame.
const (
	Accelerometer IMUSensorType = 1
	Gyroscope     IMUSensorType = 2
	Magnetometer  IMUSensorType = 3 // optional
)

// imuPrefix is the channel-name prefix of each sensor's axes.
var imuPrefix = map[IMUSensorType]string{Accelerometer: "accel", Gyroscope: "gyro", Magnetometer: "mag"}

// String returns the sensor's channel prefix ("accel", "gyro", "mag").
func (t IMUSensorType) String() string {
	if p, ok := imuPrefix[t]; ok {
		return p
	}
	return fmt.Sprintf("imu_sensor(%d)", uint8(t))
}

// IMUAxes are the axes of every IMU sensor; a sensor's channels are named
// prefix_axis (accel_x … gyro_z).
var IMUAxes = [3]string{"x", "y", "z"}

// IMUSensor is one three-axis sensor of an IMU.
type IMUSensor struct {
	Type IMUSensorType
	// Unit of the physical values ("m/s²", "rad/s", "µT"); ≤ MaxUnitLen bytes.
	Unit string
	// Scale is the physical value of one count when the samples are raw
	// integer counts (e.g. 9.80665/8192 m/s² for a ±4 g 16-bit accelerometer);
	// 0 when the samples are already physical values. Queries return
	// count × Scale, so that a result is in Unit whatever the sensor sent.
	Scale float64
}

// IMU describes an inertial measurement unit: an accelerometer and a
// gyroscope, and optionally a magnetometer, each with x, y and z axes, sampled
// together. Its frames are scalar frames of the equivalent Scalar (see
// Scalar), so every scalar codec compresses them.
type IMU struct {
	SampleRate float64 // Hz, as Scalar.SampleRate
	SampleType SampleType
	// Sensors: Accelerometer then Gyroscope, then optionally Magnetometer.
	Sensors []IMUSensor
}

// Kind implements Description.
func (d *IMU) Kind() Kind { return KindIMU }

// CodecID implements Description.
func (d *IMU) CodecID() string { return CodecIDIMU }

func init() {
	RegisterCodecID(CodecIDIMU, func(_ string, b []byte) (Description, error) { return ParseIMU(b) })
}

// Validate reports the first reason d is not a usable description; the error
// wraps ErrInvalid.
func (d *IMU) Validate() error {
	if err := d.validate(); err != nil {
		return fmt.Errorf("signals: imu: %w", err)
	}
	return nil
}

func (d *IMU) validate() error {
	if d == nil {
		return fmt.Errorf("%w: nil description", ErrInvalid)
	}
	if n := len(d.Sensors); n < 2 || n > 3 {
		return fmt.Errorf("%w: %d sensors, want an accelerometer, a gyroscope and optionally a magnetometer", ErrInvalid, n)
	}
	for i, s := range d.Sensors {
		if want := IMUSensorType(i + 1); s.Type != want {
			return fmt.Errorf("%w: sensor %d is %s, want %s", ErrInvalid, i, s.Type, want)
		}
		if len(s.Unit) > MaxUnitLen || !utf8.ValidString(s.Unit) {
			return fmt.Errorf("%w: %s unit is not ≤ %d bytes of UTF-8", ErrInvalid, s.Type, MaxUnitLen)
		}
		if s.Scale < 0 || math.IsNaN(s.Scale) || math.IsInf(s.Scale, 0) {
			return fmt.Errorf("%w: %s scale %v, want a finite value ≥ 0", ErrInvalid, s.Type, s.Scale)
		}
	}
	return d.Scalar().validate()
}

// Scalar returns the scalar signal the frames carry: one channel per axis,
// named prefix_axis, with the sensor's unit when its samples are physical (a
// scaled sensor's samples are counts, so they have no unit).
func (d *IMU) Scalar() *Scalar {
	chs := make([]Channel, 0, 3*len(d.Sensors))
	for _, s := range d.Sensors {
		unit := s.Unit
		if s.Scale != 0 {
			unit = "count"
		}
		for _, a := range IMUAxes {
			chs = append(chs, Channel{Name: s.Type.String() + "_" + a, Unit: unit})
		}
	}
	return &Scalar{SampleRate: d.SampleRate, SampleType: d.SampleType, Channels: chs}
}

// The IMU description layout (format_imu.md); a test checks these against it.
const (
	imuVersion       = 1
	offIMUSampleRate = descPreambleSz       // f64
	offIMUSampleType = offIMUSampleRate + 8 // u8
	offIMUSensors    = offIMUSampleType + 1 // u8 sensor count
	imuFixedSize     = offIMUSensors + 1
	imuSensorMinSize = 1 + 8 + 1 // type, scale, unit length
)

// AppendBinary implements Description: the track's CodecPrivate.
func (d *IMU) AppendBinary(dst []byte) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return dst, err
	}
	dst = append(dst, descMagic...)
	dst = append(dst, imuVersion, byte(KindIMU))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(d.SampleRate))
	dst = append(dst, byte(d.SampleType), byte(len(d.Sensors)))
	for _, s := range d.Sensors {
		dst = append(dst, byte(s.Type))
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.Scale))
		dst = append(dst, byte(len(s.Unit)))
		dst = append(dst, s.Unit...)
	}
	return dst, nil
}

// ParseIMU parses a CodecPrivate written by AppendBinary, strictly: errors wrap
// ErrInvalid, and it allocates only in proportion to len(b).
func ParseIMU(b []byte) (*IMU, error) {
	d, err := parseIMU(b)
	if err != nil {
		return nil, fmt.Errorf("signals: parse imu: %w", err)
	}
	return d, nil
}

func parseIMU(b []byte) (*IMU, error) {
	kind, version, err := parsePreamble(b)
	if err != nil {
		return nil, err
	}
	if kind != KindIMU || version != imuVersion {
		return nil, fmt.Errorf("%w: kind %s version %d, want %s version %d", ErrInvalid, kind, version, KindIMU, imuVersion)
	}
	if len(b) < imuFixedSize {
		return nil, fmt.Errorf("%w: truncated: %d bytes, the fixed part needs %d", ErrInvalid, len(b), imuFixedSize)
	}
	n := int(b[offIMUSensors])
	if n < 2 || n > 3 {
		return nil, fmt.Errorf("%w: %d sensors at offset %d", ErrInvalid, n, offIMUSensors)
	}
	d := &IMU{
		SampleRate: math.Float64frombits(binary.LittleEndian.Uint64(b[offIMUSampleRate:])),
		SampleType: SampleType(b[offIMUSampleType]),
		Sensors:    make([]IMUSensor, n),
	}
	off := imuFixedSize
	for i := range d.Sensors {
		if len(b)-off < imuSensorMinSize {
			return nil, fmt.Errorf("%w: sensor %d truncated at offset %d", ErrInvalid, i, off)
		}
		s := &d.Sensors[i]
		s.Type = IMUSensorType(b[off])
		s.Scale = math.Float64frombits(binary.LittleEndian.Uint64(b[off+1:]))
		unitLen := int(b[off+9])
		off += imuSensorMinSize
		if len(b)-off < unitLen {
			return nil, fmt.Errorf("%w: sensor %d unit truncated at offset %d", ErrInvalid, i, off)
		}
		s.Unit = string(b[off : off+unitLen])
		off += unitLen
	}
	if off != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes at offset %d", ErrInvalid, len(b)-off, off)
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	return d, nil
}
