// Command street-lidar streams a simulated 32-beam spinning LIDAR into
// Sensorium in real time: one sweep of about 28,000 points every 100 ms,
// quantised to 1 mm.
//
//	sensorium serve &
//	go run ./examples/street-lidar --stream lidar-1 --duration 30s
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/examples/internal/stream"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/simulate/lidar"
)

func main() {
	cfg := stream.Flags("lidar-1")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pc := &signals.PointCloud{Rings: lidar.Rings, Resolution: 0.001}
	err := stream.Run(ctx, cfg, []signals.Description{pc}, func(ctx context.Context, s *stream.Session) error {
		street := lidar.New(uint64(time.Now().UnixNano()))
		var sw codecs.Sweep
		period := time.Second / lidar.SweepHz
		return s.Every(ctx, period, func(t int64) error {
			street.Sweep(t, &sw)
			return s.P.PutPointCloud(ctx, 1, pc, &sw, int64(period))
		})
	})
	if err != nil {
		log.Fatal("street-lidar: ", err)
	}
}
