// Command automotive-radar streams a simulated 77 GHz automotive RADAR into
// Sensorium in real time: at 20 Hz, the detection list of each scan on track
// 1 and its range × Doppler map (256 × 64, dB) on track 2.
//
//	sensorium serve &
//	go run ./examples/automotive-radar --stream radar-1 --duration 30s
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
	"github.com/sensorium-io/sensorium/simulate/radar"
)

func main() {
	cfg := stream.Flags("radar-1")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dets := &signals.Detections{}
	rd := &signals.Array{ElemType: signals.Float32, Rows: radar.RangeBins, Cols: radar.DopplerBins, Unit: "dB",
		RowAxis: signals.Axis{Name: "range", Unit: "m", Step: radar.RangeStep},
		ColAxis: signals.Axis{Name: "radial_velocity", Unit: "m/s", Start: -radar.DopplerBins / 2 * radar.DopplerStep, Step: radar.DopplerStep}}
	err := stream.Run(ctx, cfg, []signals.Description{dets, rd}, func(ctx context.Context, s *stream.Session) error {
		sensor := radar.New(uint64(time.Now().UnixNano()))
		m := make([]float32, radar.RangeBins*radar.DopplerBins)
		var scan []codecs.Detection
		period := int64(time.Second / radar.ScanHz)
		return s.Every(ctx, time.Duration(period), func(t int64) error {
			scan = sensor.Scan(scan, m)
			if err := s.P.PutRadarScan(ctx, 1, dets, t, period, scan, nil); err != nil {
				return err
			}
			return s.P.PutArray(ctx, 2, rd, t, period, codecs.Column{Type: signals.Float32, F32: m})
		})
	})
	if err != nil {
		log.Fatal("automotive-radar: ", err)
	}
}
