// Command imu streams a simulated 6-axis IMU on a running machine into
// Sensorium in real time: raw int16 accelerometer and gyroscope counts at
// 1 kHz, described with the chip's scales so that queries return m/s² and
// rad/s.
//
//	sensorium serve &
//	go run ./examples/imu --stream imu-1 --duration 30s
//	sensorium query imu-1 --channels accel_z,gyro_x
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/examples/imu/simulate"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

func main() {
	natsURL := flag.String("nats", "nats://127.0.0.1:4222", "NATS URL of the Sensorium server")
	endpoint := flag.String("endpoint", "http://127.0.0.1:8080", "HTTP API of the server (to create the stream when missing)")
	stream := flag.String("stream", "imu-1", "stream to write")
	rate := flag.Float64("rate", 1000, "samples per second")
	duration := flag.Duration("duration", 0, "stop after this long (0: until interrupted)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *natsURL, *endpoint, *stream, *rate, *duration); err != nil {
		log.Fatal("imu: ", err)
	}
}

// Description is the IMU's description: raw int16 counts with the chip's
// scales.
func Description(rate float64) *signals.IMU {
	return &signals.IMU{SampleRate: rate, SampleType: signals.Int16, Sensors: []signals.IMUSensor{
		{Type: signals.Accelerometer, Unit: "m/s²", Scale: simulate.AccelScale},
		{Type: signals.Gyroscope, Unit: "rad/s", Scale: simulate.GyroScale},
	}}
}

func run(ctx context.Context, natsURL, endpoint, stream string, rate float64, duration time.Duration) error {
	client := sdk.NewClient(endpoint, nil)
	if _, err := client.DescribeStream(ctx, sdk.ByName(stream)); errors.Is(err, sdk.ErrResourceNotFound) {
		if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: stream, DataRetentionInHours: 24, MediaType: "application/x-sensorium"}); err != nil {
			return err
		}
		log.Printf("created stream %s (retention 24 h)", stream)
	} else if err != nil {
		return err
	}
	nc, err := nats.Connect(natsURL, nats.Name("imu-"+stream), nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	desc := Description(rate)
	track, err := sdk.IMUTrack(1, "imu", desc)
	if err != nil {
		return err
	}
	var persisted atomic.Int64
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{
		Stream: stream, Tracks: []sdk.Track{track},
		OnAck: func(ev sdk.AckEvent) {
			switch ev.EventType {
			case sdk.EventPersisted:
				persisted.Add(1)
			case sdk.EventError:
				log.Printf("fragment refused: %s (%d): %s", ev.ErrorCode, ev.ErrorID, ev.Message)
			}
		},
	})
	if err != nil {
		return err
	}
	start := time.Now()
	w, err := sdk.NewIMUWriter(p, 1, desc, sdk.SampleWriterOptions{Origin: start.UnixNano()})
	if err != nil {
		return err
	}
	imu := simulate.New(rate, uint64(start.UnixNano()))
	buf := make([]int16, 6*max(1, int(rate)/10)) // 100 ms
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	log.Printf("streaming a 6-axis IMU at %g Hz to %s", rate, stream)
	for ctx.Err() == nil && (duration == 0 || time.Since(start) < duration) {
		select {
		case <-ctx.Done():
		case <-tick.C:
			for imu.Samples() < int64(time.Since(start).Seconds()*rate)-int64(len(buf)/6) {
				imu.Fill(buf)
				if err := w.WriteInt16(ctx, buf); err != nil {
					return err
				}
			}
		}
	}
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Flush(cctx); err != nil {
		return err
	}
	if err := p.Close(cctx); err != nil {
		return fmt.Errorf("closing: %w", err)
	}
	log.Printf("done: %d fragments PERSISTED", persisted.Load())
	return nil
}
