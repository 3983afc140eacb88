package signals

import (
	"encoding/binary"
	"fmt"
	"math"
)

// CodecIDs of the RADAR kinds.
const (
	CodecIDDetections = "S_SENSORIUM/DETECTIONS"
	CodecIDArray      = "S_SENSORIUM/ARRAY"
)

// DetectionFields are the fields every detection has, first and in this
// order, as ROS radar_msgs/RadarReturn has them.
var DetectionFields = []Field{
	{Name: "range", Type: Float32, Unit: "m"},
	{Name: "azimuth", Type: Float32, Unit: "rad"},
	{Name: "elevation", Type: Float32, Unit: "rad"},
	{Name: "radial_velocity", Type: Float32, Unit: "m/s"},
	{Name: "rcs", Type: Float32, Unit: "dBsm"},
	{Name: "snr", Type: Float32, Unit: "dB"},
}

// Detections describes a RADAR that reports a list of detections per scan:
// the DetectionFields, then any extra fields the sensor has (a track id, an
// ambiguity flag…). One frame per scan (format_kinds.md).
type Detections struct {
	Extra []Field
}

// Fields returns every field, the standard ones first.
func (d *Detections) Fields() []Field {
	return append(append(make([]Field, 0, len(DetectionFields)+len(d.Extra)), DetectionFields...), d.Extra...)
}

func (d *Detections) Kind() Kind      { return KindDetections }
func (d *Detections) CodecID() string { return CodecIDDetections }

// Validate checks the extra fields.
func (d *Detections) Validate() error {
	if err := validateFields(d.Fields()); err != nil {
		return fmt.Errorf("signals: detections: %w", err)
	}
	return nil
}

const detectionsVersion = 1

// AppendBinary writes the preamble and the extra fields.
func (d *Detections) AppendBinary(dst []byte) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return dst, err
	}
	return appendFields(appendPreamble(dst, KindDetections, detectionsVersion), d.Extra), nil
}

// ParseDetections parses what AppendBinary wrote; errors wrap ErrInvalid.
func ParseDetections(b []byte) (*Detections, error) {
	if err := checkPreamble(b, KindDetections, detectionsVersion); err != nil {
		return nil, fmt.Errorf("signals: parse detections: %w", err)
	}
	extra, off, err := parseFields(b, descPreambleSz)
	if err == nil && off != len(b) {
		err = fmt.Errorf("%w: %d trailing bytes", ErrInvalid, len(b)-off)
	}
	if err != nil {
		return nil, fmt.Errorf("signals: parse detections: %w", err)
	}
	d := &Detections{Extra: extra}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// Axis is one axis of an Array: what the index along it means, as
// value = Start + index × Step in Unit (range bins, Doppler bins, pixels).
type Axis struct {
	Name        string
	Unit        string
	Start, Step float64
}

// Array describes a 2-D array per frame: a RADAR range × Doppler map, a depth
// or thermal image. Frames hold Rows × Cols values, row-major.
type Array struct {
	ElemType SampleType
	Rows     uint32
	Cols     uint32
	Unit     string // of the values (dB, mm, K)
	RowAxis  Axis
	ColAxis  Axis
}

// MaxArrayElems bounds Rows × Cols: a frame's values stay within the 32 MiB
// a frame may hold even as float64.
const MaxArrayElems = 4 << 20

func (d *Array) Kind() Kind      { return KindArray }
func (d *Array) CodecID() string { return CodecIDArray }

// Validate checks the shape, type, unit and axes.
func (d *Array) Validate() error {
	switch {
	case !d.ElemType.Valid():
		return fmt.Errorf("signals: array: %w: element type %d", ErrInvalid, uint8(d.ElemType))
	case d.Rows == 0 || d.Cols == 0 || uint64(d.Rows)*uint64(d.Cols) > MaxArrayElems:
		return fmt.Errorf("signals: array: %w: shape %d × %d, want 1 to %d elements", ErrInvalid, d.Rows, d.Cols, MaxArrayElems)
	}
	for _, s := range []string{d.Unit, d.RowAxis.Name, d.RowAxis.Unit, d.ColAxis.Name, d.ColAxis.Unit} {
		if len(s) > MaxUnitLen {
			return fmt.Errorf("signals: array: %w: a name or unit is longer than %d bytes", ErrInvalid, MaxUnitLen)
		}
	}
	for _, v := range []float64{d.RowAxis.Start, d.RowAxis.Step, d.ColAxis.Start, d.ColAxis.Step} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("signals: array: %w: axis start and step must be finite", ErrInvalid)
		}
	}
	return nil
}

const arrayVersion = 1

// AppendBinary writes the array description (format_kinds.md).
func (d *Array) AppendBinary(dst []byte) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return dst, err
	}
	dst = appendPreamble(dst, KindArray, arrayVersion)
	dst = append(dst, byte(d.ElemType))
	dst = binary.LittleEndian.AppendUint32(dst, d.Rows)
	dst = binary.LittleEndian.AppendUint32(dst, d.Cols)
	dst = appendString(dst, d.Unit)
	for _, a := range []Axis{d.RowAxis, d.ColAxis} {
		dst = appendString(appendString(dst, a.Name), a.Unit)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(a.Start))
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(a.Step))
	}
	return dst, nil
}

// ParseArray parses what AppendBinary wrote; errors wrap ErrInvalid.
func ParseArray(b []byte) (*Array, error) {
	d, err := parseArray(b)
	if err != nil {
		return nil, fmt.Errorf("signals: parse array: %w", err)
	}
	return d, nil
}

func parseArray(b []byte) (*Array, error) {
	if err := checkPreamble(b, KindArray, arrayVersion); err != nil {
		return nil, err
	}
	off := descPreambleSz
	if len(b)-off < 9 {
		return nil, fmt.Errorf("%w: truncated", ErrInvalid)
	}
	d := &Array{ElemType: SampleType(b[off]), Rows: binary.LittleEndian.Uint32(b[off+1:]), Cols: binary.LittleEndian.Uint32(b[off+5:])}
	off += 9
	s := string(b)
	var err error
	if d.Unit, off, err = readString(s, off); err != nil {
		return nil, fmt.Errorf("%w: unit: %v", ErrInvalid, err)
	}
	for _, a := range []*Axis{&d.RowAxis, &d.ColAxis} {
		if a.Name, off, err = readString(s, off); err != nil {
			return nil, fmt.Errorf("%w: axis name: %v", ErrInvalid, err)
		}
		if a.Unit, off, err = readString(s, off); err != nil {
			return nil, fmt.Errorf("%w: axis unit: %v", ErrInvalid, err)
		}
		if len(b)-off < 16 {
			return nil, fmt.Errorf("%w: axis truncated", ErrInvalid)
		}
		a.Start = math.Float64frombits(binary.LittleEndian.Uint64(b[off:]))
		a.Step = math.Float64frombits(binary.LittleEndian.Uint64(b[off+8:]))
		off += 16
	}
	if off != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrInvalid, len(b)-off)
	}
	return d, d.Validate()
}

func appendString(dst []byte, s string) []byte {
	return append(append(dst, byte(len(s))), s...)
}

func init() {
	RegisterCodecID(CodecIDDetections, func(_ string, b []byte) (Description, error) { return ParseDetections(b) })
	RegisterCodecID(CodecIDArray, func(_ string, b []byte) (Description, error) { return ParseArray(b) })
}
