// Command can-bus streams a simulated vehicle CAN bus into Sensorium in real
// time, as opaque frames of media type application/vnd.sensorium.socketcan:
// engine speed (0x0C0, 100 Hz), vehicle speed (0x0D0, 50 Hz), temperatures
// (0x1A0, 10 Hz) and gear and brake (0x3E8, 20 Hz) over a repeating drive
// cycle (idle, accelerate, cruise, brake). Each frame's payload is its
// receive time in ns (8 bytes, little-endian) followed by the 16-byte
// SocketCAN struct can_frame; the time is in the payload because CAN frames
// arrive microseconds apart while opaque frames are timed to the
// millisecond. The layout and the signals are in the doc of package
// simulate/canbus.
//
//	sensorium serve &
//	go run ./examples/can-bus --stream can-1 --duration 30s
//	sensorium query can-1 --start -30s -o can.arrow   # time, key, data: a row per CAN frame
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
	"github.com/sensorium-io/sensorium/simulate/canbus"
)

func main() {
	cfg := stream.Flags("can-1")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	track, err := sdk.OpaqueTrack(1, "can0", canbus.MediaType)
	if err != nil {
		log.Fatal("can-bus: ", err)
	}
	err = stream.RunTracks(ctx, cfg, []sdk.Track{track}, func(ctx context.Context, s *stream.Session) error {
		bus := canbus.New(s.Start.UnixNano(), uint64(s.Start.UnixNano()))
		var frames []canbus.Frame
		payload := make([]byte, 0, canbus.PayloadSize)
		// Every 10 ms, the frames the bus sent since the last tick.
		return s.Every(ctx, 10*time.Millisecond, func(t int64) error {
			frames = bus.Until(frames[:0], t)
			for _, f := range frames {
				payload = f.AppendPayload(payload[:0])
				if err := s.P.PutOpaque(ctx, 1, f.Time, 0, payload, true); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		log.Fatal("can-bus: ", err)
	}
}
