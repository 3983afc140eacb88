package codecs

import (
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sensorium-io/sensorium/signals"
)

// MetaScale is the field metadata key of an IMU axis whose samples are raw
// counts: the physical value of one count, which the column already applies.
const MetaScale = "sensorium.scale"

func init() {
	RegisterArrowDecoder(signals.KindIMU, newIMUArrowDecoder)
}

// newIMUArrowDecoder decodes IMU frames with the scalar path (they are scalar
// frames), turning the axes of scaled sensors into physical float64 values in
// the sensor's unit (format_imu.md, "Query results").
func newIMUArrowDecoder(d signals.Description, opts ArrowOptions) (ArrowDecoder, error) {
	imu, ok := d.(*signals.IMU)
	if !ok {
		return nil, fmt.Errorf("codecs: imu decoder for a %T", d)
	}
	if opts.Layout != LayoutRows {
		return nil, fmt.Errorf("codecs: %w: imu signals have one row per sample; there is no frames layout", ErrBadOptions)
	}
	desc := imu.Scalar()
	schema, chans, err := desc.ArrowSchema(opts.Fields)
	if err != nil {
		return nil, fmt.Errorf("codecs: %w: %v", ErrBadOptions, err)
	}
	fields := schema.Fields()
	scales := make([]float64, len(chans))
	for col, c := range chans {
		sensor := imu.Sensors[c/3]
		f := &fields[col+1]
		keys, vals := []string{signals.MetaUnit}, []string{sensor.Unit}
		if sensor.Scale != 0 {
			scales[col] = sensor.Scale
			f.Type = arrow.PrimitiveTypes.Float64
			keys, vals = append(keys, MetaScale), append(vals, strconv.FormatFloat(sensor.Scale, 'g', -1, 64))
		}
		if sensor.Unit == "" {
			keys, vals = keys[1:], vals[1:]
		}
		f.Metadata = arrow.NewMetadata(keys, vals)
	}
	md := schema.Metadata()
	return &scalarArrow{desc: desc, schema: arrow.NewSchema(fields, &md), chans: chans, scales: scales}, nil
}
