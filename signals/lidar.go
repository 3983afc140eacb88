package signals

import (
	"encoding/binary"
	"fmt"
	"math"
)

// CodecIDPointCloud is the MKV CodecID of a LIDAR track.
const CodecIDPointCloud = "S_SENSORIUM/POINTCLOUD"

// PointFields are the fields every point has, first and in this order, as a
// spinning LIDAR's ROS2 PointCloud2 declares them (x, y, z, intensity, ring,
// time). x, y and z are stored as whole multiples of the description's
// Resolution — the one lossy step, declared here — and returned in metres.
var PointFields = []Field{
	{Name: "x", Type: Float32, Unit: "m"},
	{Name: "y", Type: Float32, Unit: "m"},
	{Name: "z", Type: Float32, Unit: "m"},
	{Name: "intensity", Type: Int16},
	{Name: "ring", Type: Int16},
	{Name: "time_offset", Type: Int32, Unit: "ns"}, // from the sweep's start
}

// PointCloud describes a LIDAR: one frame per sweep.
type PointCloud struct {
	Rings uint16 // beams of the sensor (32 for a VLP-32)
	// Resolution of x, y and z in metres (0.001: 1 mm). Coordinates are
	// quantised to it; every other field is kept exactly.
	Resolution float64
	Extra      []Field // further per-point fields, kept exactly
}

// Fields returns every field, the standard ones first.
func (d *PointCloud) Fields() []Field {
	return append(append(make([]Field, 0, len(PointFields)+len(d.Extra)), PointFields...), d.Extra...)
}

func (d *PointCloud) Kind() Kind      { return KindPointCloud }
func (d *PointCloud) CodecID() string { return CodecIDPointCloud }

// Validate checks the rings, resolution and fields.
func (d *PointCloud) Validate() error {
	if d.Rings == 0 {
		return fmt.Errorf("signals: pointcloud: %w: 0 rings", ErrInvalid)
	}
	if !(d.Resolution >= 1e-6 && d.Resolution <= 1) {
		return fmt.Errorf("signals: pointcloud: %w: resolution %v m, want 1 µm to 1 m", ErrInvalid, d.Resolution)
	}
	if err := validateFields(d.Fields()); err != nil {
		return fmt.Errorf("signals: pointcloud: %w", err)
	}
	return nil
}

const pointCloudVersion = 1

// AppendBinary writes the description (signals/format_kinds.md).
func (d *PointCloud) AppendBinary(dst []byte) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return dst, err
	}
	dst = appendPreamble(dst, KindPointCloud, pointCloudVersion)
	dst = binary.LittleEndian.AppendUint16(dst, d.Rings)
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(d.Resolution))
	return appendFields(dst, d.Extra), nil
}

// ParsePointCloud parses what AppendBinary wrote; errors wrap ErrInvalid.
func ParsePointCloud(b []byte) (*PointCloud, error) {
	if err := checkPreamble(b, KindPointCloud, pointCloudVersion); err != nil {
		return nil, fmt.Errorf("signals: parse pointcloud: %w", err)
	}
	off := descPreambleSz
	if len(b)-off < 10 {
		return nil, fmt.Errorf("signals: parse pointcloud: %w: truncated", ErrInvalid)
	}
	d := &PointCloud{Rings: binary.LittleEndian.Uint16(b[off:]), Resolution: math.Float64frombits(binary.LittleEndian.Uint64(b[off+2:]))}
	extra, off, err := parseFields(b, off+10)
	if err == nil && off != len(b) {
		err = fmt.Errorf("%w: %d trailing bytes", ErrInvalid, len(b)-off)
	}
	if err != nil {
		return nil, fmt.Errorf("signals: parse pointcloud: %w", err)
	}
	d.Extra = extra
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

func init() {
	RegisterCodecID(CodecIDPointCloud, func(_ string, b []byte) (Description, error) { return ParsePointCloud(b) })
}
