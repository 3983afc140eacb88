// Command pump streams a simulated pump into Sensorium in real time: 3-axis
// vibration at 25.6 kHz from an accelerometer on the bearing housing, with an
// outer-race bearing fault that starts after --fault-after. It is the producer
// a gateway next to a real pump would run, with the simulator where the ADC
// would be.
//
//	sensorium serve &
//	go run ./examples/pump --stream pump-1 --fault-after 2m
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

	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/simulate/pump"
)

func main() {
	natsURL := flag.String("nats", "nats://127.0.0.1:4222", "NATS URL of the Sensorium server")
	endpoint := flag.String("endpoint", "http://127.0.0.1:8080", "HTTP API of the server (to create the stream when missing)")
	stream := flag.String("stream", "pump-1", "stream to write")
	faultAfter := flag.Duration("fault-after", time.Minute, "when the bearing fault appears")
	duration := flag.Duration("duration", 0, "stop after this long (0: until interrupted)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *natsURL, *endpoint, *stream, *faultAfter, *duration); err != nil {
		log.Fatal("pump: ", err)
	}
}

func run(ctx context.Context, natsURL, endpoint, stream string, faultAfter, duration time.Duration) error {
	const rate = 25600.0
	creds, err := sdk.LoadCredentials("") // for a server with --credentials; none: unsigned
	if err != nil {
		return err
	}
	client := sdk.NewClientWithOptions(endpoint, sdk.ClientOptions{Credentials: creds})
	if _, err := client.DescribeStream(ctx, sdk.ByName(stream)); errors.Is(err, sdk.ErrResourceNotFound) {
		if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: stream, DataRetentionInHours: 24, MediaType: "application/x-sensorium"}); err != nil {
			return err
		}
		log.Printf("created stream %s (retention 24 h)", stream)
	} else if err != nil {
		return err
	}
	nc, err := nats.Connect(natsURL, nats.Name("pump-"+stream), nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	desc := &signals.Scalar{SampleRate: rate, SampleType: signals.Float32,
		Channels: []signals.Channel{{Name: "x", Unit: "g"}, {Name: "y", Unit: "g"}, {Name: "z", Unit: "g"}}}
	track, err := sdk.ScalarTrack(1, "vibration", desc)
	if err != nil {
		return err
	}
	var persisted, refused atomic.Int64
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{
		Stream: stream, Tracks: []sdk.Track{track},
		OnAck: func(ev sdk.AckEvent) {
			switch ev.EventType {
			case sdk.EventPersisted:
				persisted.Add(1)
			case sdk.EventError:
				refused.Add(1)
				log.Printf("fragment refused: %s (%d): %s", ev.ErrorCode, ev.ErrorID, ev.Message)
			}
		},
	})
	if err != nil {
		return err
	}
	start := time.Now()
	w, err := sdk.NewSampleWriter(p, 1, desc, sdk.SampleWriterOptions{Origin: start.UnixNano()})
	if err != nil {
		return err
	}
	sim := pump.New(rate, int64(faultAfter.Seconds()*rate), uint64(start.UnixNano()))
	buf := make([]float32, 3*int(rate)/10) // 100 ms
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	report := time.NewTicker(5 * time.Second)
	defer report.Stop()
	log.Printf("streaming 3-axis vibration at 25.6 kHz to %s; bearing fault after %s", stream, faultAfter)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-report.C:
			log.Printf("%s: %d fragments PERSISTED, %d refused", time.Since(start).Round(time.Second), persisted.Load(), refused.Load())
		case <-tick.C:
			// Catch up to real time: the simulator makes exactly rate samples per second.
			for sim.Samples() < int64(time.Since(start).Seconds()*rate)-int64(len(buf)/3) {
				sim.Fill(buf)
				if err := w.WriteFloat32(ctx, buf); err != nil {
					return err
				}
			}
			if duration > 0 && time.Since(start) >= duration {
				break loop
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
