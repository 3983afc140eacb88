// Command machine-audio streams 16 kHz audio of a running machine into
// Sensorium in real time, as PCM that players play: GetMedia's output opens
// in ffplay or VLC, and a query returns the samples with their exact times.
//
//	sensorium serve &
//	go run ./examples/machine-audio --stream mic-1 --duration 30s
//	sensorium get mic-1 --from -30s -o machine.mkv && ffplay machine.mkv
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
	"github.com/sensorium-io/sensorium/simulate/audio"
)

func main() {
	cfg := stream.Flags("mic-1")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	desc := &signals.Audio{SampleRate: 16000, SampleType: signals.Int16, Channels: []string{"mono"}}
	err := stream.Run(ctx, cfg, []signals.Description{desc}, func(ctx context.Context, s *stream.Session) error {
		w, err := sdk.NewPCMWriter(s.P, 1, desc, s.Start.UnixNano(), 0)
		if err != nil {
			return err
		}
		m := audio.New(desc.SampleRate, uint64(s.Start.UnixNano()))
		buf := make([]int16, int(desc.SampleRate)/10)
		err = s.Every(ctx, 100*time.Millisecond, func(int64) error {
			m.Fill(buf)
			return w.WriteInt16(ctx, buf)
		})
		if ferr := w.Flush(context.Background()); err == nil {
			err = ferr
		}
		return err
	})
	if err != nil {
		log.Fatal("machine-audio: ", err)
	}
}
