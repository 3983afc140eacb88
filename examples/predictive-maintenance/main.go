// Command predictive-maintenance watches a pump for a bearing fault: it reads
// the pump's vibration as 1-second windows through the query API, computes
// RMS, kurtosis and 2–4 kHz band energy per window, and flags the fault when
// it appears; with --follow it keeps polling for new windows, and a restart
// goes on from its checkpoint.
//
//	sensorium serve &
//	go run ./examples/pump --stream pump-1 --fault-after 1m &
//	go run ./examples/predictive-maintenance --stream pump-1 --from -2m --follow
package main

import (
	"context"
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
	follow := flag.Bool("follow", false, "keep watching for new windows")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &detect.Detector{Client: sdk.NewClient(*endpoint, nil), Stream: *stream, Rate: *rate, Window: int(*rate), Checkpoint: *checkpoint}
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
	for {
		// Stop 2 s short of now: the newest fragments may still be on their way.
		if err := d.Run(ctx, time.Now().Add(-*from), time.Now().Add(-2*time.Second), report); err != nil && ctx.Err() == nil {
			log.Print("predictive-maintenance: ", err)
		}
		if !*follow || ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}
