package codecs

import (
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/signals"
)

// An IMU with raw counts comes back in physical units, with its unit and
// scale in the field metadata; a sensor without a scale comes back as sent.
func TestIMUArrow(t *testing.T) {
	imu := &signals.IMU{SampleRate: 1000, SampleType: signals.Int16, Sensors: []signals.IMUSensor{
		{Type: signals.Accelerometer, Unit: "m/s²", Scale: 0.01},
		{Type: signals.Gyroscope, Unit: "rad/s", Scale: 0.001},
		{Type: signals.Magnetometer, Unit: "count"},
	}}
	desc := imu.Scalar()
	s := &signals.Samples{Start: 1_000_000_000}
	s.Reset(signals.Int16, 9, 50)
	for i := range s.I16 {
		s.I16[i] = int16(i*7 - 1000)
	}
	frame, err := AppendScalarFrame(nil, desc, s, Auto)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := NewArrowDecoder(imu, ArrowOptions{Fields: []string{"gyro_y", "mag_z"}})
	if err != nil {
		t.Fatal(err)
	}
	sc := dec.Schema()
	if sc.NumFields() != 3 || sc.Field(1).Type.ID() != arrow.FLOAT64 || sc.Field(2).Type.ID() != arrow.INT16 {
		t.Fatalf("schema %v", sc)
	}
	if u, _ := sc.Field(1).Metadata.GetValue(signals.MetaUnit); u != "rad/s" {
		t.Errorf("gyro_y unit %q", u)
	}
	if v, _ := sc.Field(1).Metadata.GetValue(MetaScale); v != "0.001" {
		t.Errorf("gyro_y scale %q", v)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	// 10 ms to 30 ms: samples 10..29.
	n, err := dec.Append(b, Frame{Data: frame}, TimeRange{Start: 1_010_000_000, End: 1_030_000_000})
	if err != nil || n != 20 {
		t.Fatalf("Append = %d, %v", n, err)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	gyroY, magZ := rec.Column(1).(*array.Float64), rec.Column(2).(*array.Int16)
	for r := 0; r < 20; r++ {
		i := r + 10
		if want := float64(s.I16[i*9+4]) * 0.001; gyroY.Value(r) != want {
			t.Fatalf("gyro_y row %d = %v, want %v", r, gyroY.Value(r), want)
		}
		if magZ.Value(r) != s.I16[i*9+8] {
			t.Fatalf("mag_z row %d = %v, want %v", r, magZ.Value(r), s.I16[i*9+8])
		}
	}
	if _, err := NewArrowDecoder(imu, ArrowOptions{Layout: LayoutFrames}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("frames layout: %v", err)
	}
	if _, err := NewArrowDecoder(imu, ArrowOptions{Fields: []string{"accel_w"}}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("unknown axis: %v", err)
	}
}
