// Command predictive-maintenance watches a pump for a bearing fault: it reads
// the pump's vibration as 1-second windows through the query API, computes
// RMS, kurtosis and 2–4 kHz band energy per window, and flags the fault when
// it appears. With --follow it then follows the stream live — one query that
// hands on each window as it is stored — and keeps flagging; it checkpoints
// after every batch of windows, so a restart goes on where it stopped.
//
//	sensorium serve &
//	go run ./examples/pump --stream pump-1 --fault-after 1m &
//	go run ./examples/predictive-maintenance --stream pump-1 --from 2m --follow
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sensorium-io/sensorium/examples/predictive-maintenance/detect"
	"github.com/sensorium-io/sensorium/sdk"
)

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:8080", "HTTP API of the server")
	stream := flag.String("stream", "pump-1", "stream of the pump's vibration")
	from := flag.Duration("from", 10*time.Minute, "how far back to start when there is no checkpoint")
	rate := flag.Float64("rate", 25600, "samples per second of the stream")
	checkpoint := flag.String("checkpoint", "pm-checkpoint.json", "file that keeps the position across restarts")
	follow := flag.Bool("follow", false, "after the stored windows, follow the stream live")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	creds, err := sdk.LoadCredentials("") // for a server with --credentials; none: unsigned
	if err != nil {
		log.Fatal("predictive-maintenance: ", err)
	}
	d := &detect.Detector{Client: sdk.NewClientWithOptions(*endpoint, sdk.ClientOptions{Credentials: creds}),
		Stream: *stream, Rate: *rate, Window: int(*rate), Checkpoint: *checkpoint}
	if err := d.Load(); err != nil {
		log.Fatal("predictive-maintenance: ", err)
	}
	report := func(v detect.Verdict) {
		mark := "  "
		if v.Fault {
			mark = "!!"
		}
		fmt.Printf("%s %s  rms %.3f g  kurtosis %5.2f  band %.4f g  %s\n", mark, v.Start.Format(time.RFC3339), v.Features.RMS, v.Features.Kurtosis, v.Features.BandRMS, v.Why)
	}
	start := time.Now().Add(-*from)
	if !*follow {
		if err := d.Run(ctx, start, time.Now(), report); err != nil && ctx.Err() == nil {
			log.Fatal("predictive-maintenance: ", err)
		}
		return
	}
	for {
		err := d.Follow(ctx, start, report)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, sdk.ErrInvalidArgument) || errors.Is(err, sdk.ErrResourceNotFound) {
			log.Fatal("predictive-maintenance: ", err) // retrying would not help
		}
		// The server went away (a restart): go on from the checkpoint.
		log.Printf("predictive-maintenance: %v; resuming from the checkpoint in 2 s", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}
