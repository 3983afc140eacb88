package signals

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

func testIMU() *IMU {
	return &IMU{SampleRate: 1000, SampleType: Int16, Sensors: []IMUSensor{
		{Type: Accelerometer, Unit: "m/s²", Scale: 9.80665 / 8192},
		{Type: Gyroscope, Unit: "rad/s", Scale: 0.0002663},
		{Type: Magnetometer, Unit: "µT"},
	}}
}

func TestIMURoundTrip(t *testing.T) {
	for _, d := range []*IMU{testIMU(), {SampleRate: 200, SampleType: Float32, Sensors: testIMU().Sensors[:2]}} {
		b, err := d.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseDescription(CodecIDIMU, b)
		if err != nil {
			t.Fatal(err)
		}
		g := got.(*IMU)
		if g.SampleRate != d.SampleRate || g.SampleType != d.SampleType || len(g.Sensors) != len(d.Sensors) {
			t.Fatalf("got %+v, want %+v", g, d)
		}
		for i := range d.Sensors {
			if g.Sensors[i] != d.Sensors[i] {
				t.Errorf("sensor %d: %+v, want %+v", i, g.Sensors[i], d.Sensors[i])
			}
		}
		s := g.Scalar()
		if len(s.Channels) != 3*len(d.Sensors) || s.Channels[0].Name != "accel_x" || s.Channels[5].Name != "gyro_z" {
			t.Errorf("scalar channels %+v", s.Channels)
		}
		// Every truncation and a trailing byte are errors, never panics.
		for cut := range b {
			if _, err := ParseIMU(b[:cut]); !errors.Is(err, ErrInvalid) {
				t.Fatalf("cut to %d: %v", cut, err)
			}
		}
		if _, err := ParseIMU(append(b, 0)); !errors.Is(err, ErrInvalid) {
			t.Errorf("trailing byte: %v", err)
		}
	}
}

func TestIMUValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(d *IMU)
	}{
		{"one sensor", func(d *IMU) { d.Sensors = d.Sensors[:1] }},
		{"out of order", func(d *IMU) { d.Sensors[0], d.Sensors[1] = d.Sensors[1], d.Sensors[0] }},
		{"negative scale", func(d *IMU) { d.Sensors[1].Scale = -1 }},
		{"bad rate", func(d *IMU) { d.SampleRate = 0 }},
		{"bad type", func(d *IMU) { d.SampleType = 9 }},
		{"long unit", func(d *IMU) { d.Sensors[2].Unit = strings.Repeat("u", 256) }},
	} {
		d := testIMU()
		tt.edit(d)
		if err := d.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate = %v", tt.name, err)
		}
		if _, err := d.AppendBinary(nil); err == nil {
			t.Errorf("%s: AppendBinary accepted it", tt.name)
		}
	}
}

// The offsets in format_imu.md are the code's.
func TestIMUFormatDoc(t *testing.T) {
	b, err := os.ReadFile("format_imu.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	want := map[string]int{"sample_rate": offIMUSampleRate, "sample_type": offIMUSampleType, "sensors": offIMUSensors}
	for _, row := range docTable(t, doc, "## IMU description, version 1")[1:] {
		if off, ok := want[row[3]]; ok {
			if got, _ := strconv.Atoi(row[0]); got != off {
				t.Errorf("%s documented at offset %s, code has %d", row[3], row[0], off)
			}
			delete(want, row[3])
		}
	}
	if len(want) != 0 {
		t.Errorf("fields not documented: %v", want)
	}
	sensorRows := docTable(t, doc, "Each sensor:")[1:]
	if len(sensorRows) != 4 || sensorRows[3][0] != strconv.Itoa(imuSensorMinSize) {
		t.Errorf("sensor table %v does not match a fixed part of %d bytes", sensorRows, imuSensorMinSize)
	}
}

func FuzzParseIMU(f *testing.F) {
	b, _ := testIMU().AppendBinary(nil)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseIMU(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		again, err := d.AppendBinary(nil)
		if err != nil || string(again) != string(b) {
			t.Fatalf("re-encoding differs: %x vs %x (%v)", again, b, err)
		}
	})
}
