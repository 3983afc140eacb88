package detect

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/examples/pump/simulate"
	"github.com/sensorium-io/sensorium/internal/server"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// The job flags the bearing fault from the windows after it starts and none
// before, and a restart from the checkpoint goes on exactly where it stopped.
func TestDetectsFaultAndResumes(t *testing.T) {
	ctx := context.Background()
	srv, err := server.Start(ctx, server.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(ctx)
	client := sdk.NewClient(srv.HTTPURL(), nil)
	if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: "pump-1", DataRetentionInHours: 1}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const rate, seconds, faultAt = 25600, 50, 30
	desc := &signals.Scalar{SampleRate: rate, SampleType: signals.Float32,
		Channels: []signals.Channel{{Name: "x", Unit: "g"}, {Name: "y", Unit: "g"}, {Name: "z", Unit: "g"}}}
	track, _ := sdk.ScalarTrack(1, "vibration", desc)
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "pump-1", Tracks: []sdk.Track{track}})
	if err != nil {
		t.Fatal(err)
	}
	origin := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	w, _ := sdk.NewSampleWriter(p, 1, desc, sdk.SampleWriterOptions{Origin: origin.UnixNano()})
	pump := simulate.New(rate, faultAt*rate, 11)
	buf := make([]float32, 3*rate)
	for range seconds {
		pump.Fill(buf)
		if err := w.WriteFloat32(ctx, buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}

	cp := filepath.Join(t.TempDir(), "checkpoint.json")
	var verdicts []Verdict
	collect := func(v Verdict) { verdicts = append(verdicts, v) }
	d := &Detector{Client: client, Stream: "pump-1", Rate: rate, Window: rate, Checkpoint: cp}
	if err := d.Run(ctx, origin, origin.Add(40*time.Second), collect); err != nil {
		t.Fatal(err)
	}
	// A restart: a new detector, the same checkpoint.
	d2 := &Detector{Client: client, Stream: "pump-1", Rate: rate, Window: rate, Checkpoint: cp}
	if err := d2.Load(); err != nil {
		t.Fatal(err)
	}
	if err := d2.Run(ctx, origin, origin.Add(seconds*time.Second), collect); err != nil {
		t.Fatal(err)
	}
	if len(verdicts) != seconds {
		t.Fatalf("%d verdicts for %d one-second windows", len(verdicts), seconds)
	}
	for i, v := range verdicts {
		if want := origin.Add(time.Duration(i) * time.Second); !v.Start.Equal(want) {
			t.Fatalf("verdict %d starts at %s, want %s (a window missed or repeated across the restart)", i, v.Start, want)
		}
		switch {
		case i < faultAt && v.Fault:
			t.Errorf("second %d flagged before the fault: %s", i, v.Why)
		case i >= faultAt+2 && !v.Fault:
			t.Errorf("second %d not flagged after the fault (%+v)", i, v.Features)
		}
	}
	t.Logf("first flag: %s — %s", verdicts[faultAt+1].Start.Sub(origin), verdicts[faultAt+1].Why)
}
