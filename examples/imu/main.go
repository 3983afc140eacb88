// Command imu streams a simulated 6-axis IMU on a running machine into
// Sensorium in real time: raw int16 accelerometer and gyroscope counts at
// 1 kHz, described with the chip's scales so that queries return m/s² and
// rad/s.
//
//	sensorium serve &
//	go run ./examples/imu --stream imu-1 --duration 30s
//	sensorium query imu-1 --start -30s --channels accel_z,gyro_x -o imu.arrow
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sensorium-io/sensorium/examples/internal/stream"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/simulate/imu"
)

func main() {
	cfg := stream.Flags("imu-1")
	rate := flag.Float64("rate", 1000, "samples per second")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	desc := Description(*rate)
	err := stream.Run(ctx, cfg, []signals.Description{desc}, func(ctx context.Context, s *stream.Session) error {
		w, err := sdk.NewIMUWriter(s.P, 1, desc, sdk.SampleWriterOptions{Origin: s.Start.UnixNano()})
		if err != nil {
			return err
		}
		sim := imu.New(*rate, uint64(s.Start.UnixNano()))
		buf := make([]int16, 6*max(1, int(*rate)/10)) // 100 ms
		err = s.Every(ctx, 100*time.Millisecond, func(int64) error {
			sim.Fill(buf)
			return w.WriteInt16(ctx, buf)
		})
		if ferr := w.Flush(context.Background()); err == nil {
			err = ferr
		}
		return err
	})
	if err != nil {
		log.Fatal("imu: ", err)
	}
}

// Description is the IMU's description: raw int16 counts with the chip's
// scales.
func Description(rate float64) *signals.IMU {
	return &signals.IMU{SampleRate: rate, SampleType: signals.Int16, Sensors: []signals.IMUSensor{
		{Type: signals.Accelerometer, Unit: "m/s²", Scale: imu.AccelScale},
		{Type: signals.Gyroscope, Unit: "rad/s", Scale: imu.GyroScale},
	}}
}
