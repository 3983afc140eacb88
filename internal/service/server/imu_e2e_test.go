package server

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
	imusim "github.com/sensorium-io/sensorium/simulate/imu"
)

// An IMU streamed as raw int16 counts through the SDK comes back from a
// query in m/s² and rad/s, sample for sample, with exact times.
func TestIMUEndToEnd(t *testing.T) {
	srv := startServer(t, "")
	ctx := context.Background()
	client, nc := newStream(t, srv, "imu-1", 1)
	desc := &signals.IMU{SampleRate: 1000, SampleType: signals.Int16, Sensors: []signals.IMUSensor{
		{Type: signals.Accelerometer, Unit: "m/s²", Scale: imusim.AccelScale},
		{Type: signals.Gyroscope, Unit: "rad/s", Scale: imusim.GyroScale},
	}}
	track, err := sdk.IMUTrack(1, "imu", desc)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "imu-1", Tracks: []sdk.Track{track},
		MinFragmentDuration: time.Second, MaxFragmentDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	origin := time.Now().Add(-time.Minute).Truncate(time.Second).UnixNano() + 123_456
	w, err := sdk.NewIMUWriter(p, 1, desc, sdk.SampleWriterOptions{Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	sim := imusim.New(1000, 3)
	sent := make([]int16, 6*3500) // 3.5 s
	sim.Fill(sent)
	if err := w.WriteInt16(ctx, sent); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatal(err)
	}

	scalar := desc.Scalar()
	lo, hi := 250, 3100
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	res, err := client.Query(ctx, sdk.QueryInput{Stream: "imu-1", Fields: []string{"accel_z", "gyro_x"},
		Start: time.Unix(0, scalar.SampleTime(origin, lo)), End: time.Unix(0, scalar.SampleTime(origin, hi))}, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if s := res.Schema(); s.NumFields() != 3 || s.Field(1).Name != "accel_z" || s.Field(1).Type.ID() != arrow.FLOAT64 {
		t.Fatalf("schema %v", s)
	}
	i := lo
	for res.Next() {
		rec := res.RecordBatch()
		tc, az, gx := rec.Column(0).(*array.Timestamp), rec.Column(1).(*array.Float64), rec.Column(2).(*array.Float64)
		for r := 0; r < int(rec.NumRows()); r++ {
			if int64(tc.Value(r)) != scalar.SampleTime(origin, i) {
				t.Fatalf("row %d: time %d, want %d", i, tc.Value(r), scalar.SampleTime(origin, i))
			}
			if want := float64(sent[6*i+2]) * imusim.AccelScale; az.Value(r) != want {
				t.Fatalf("row %d: accel_z %v, want %v", i, az.Value(r), want)
			}
			if want := float64(sent[6*i+3]) * imusim.GyroScale; gx.Value(r) != want {
				t.Fatalf("row %d: gyro_x %v, want %v", i, gx.Value(r), want)
			}
			i++
		}
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if i != hi {
		t.Fatalf("query returned samples %d..%d, want %d..%d", lo, i, lo, hi)
	}
}

// PutSamples puts caller-cut blocks; they read back through a query.
func TestPutSamples(t *testing.T) {
	srv := startServer(t, "")
	ctx := context.Background()
	client, nc := newStream(t, srv, "blocks", 1)
	desc := &signals.Scalar{SampleRate: 100, SampleType: signals.Float64, Channels: []signals.Channel{{Name: "t", Unit: "°C"}}}
	track, _ := sdk.ScalarTrack(1, "temperature", desc)
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "blocks", Tracks: []sdk.Track{track}})
	if err != nil {
		t.Fatal(err)
	}
	origin := time.Now().Add(-time.Minute).Truncate(time.Second).UnixNano()
	for b := 0; b < 5; b++ {
		s := &signals.Samples{Start: desc.SampleTime(origin, b*100)}
		s.Reset(signals.Float64, 1, 100)
		for i := range s.F64 {
			s.F64[i] = float64(b*100+i) / 100
		}
		if err := p.PutSamples(ctx, 1, desc, s, 0); err != nil {
			t.Fatal(err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatal(err)
	}
	res, err := client.Query(ctx, sdk.QueryInput{Stream: "blocks", Start: time.Unix(0, origin), End: time.Unix(0, origin+int64(time.Hour))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	n := 0
	for res.Next() {
		v := res.RecordBatch().Column(1).(*array.Float64)
		for r := 0; r < v.Len(); r++ {
			if v.Value(r) != float64(n)/100 {
				t.Fatalf("sample %d = %v", n, v.Value(r))
			}
			n++
		}
	}
	if n != 500 {
		t.Fatalf("%d samples, want 500", n)
	}
}
