package detect

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/simulate/pump"
)

const rate = 25600

var pumpDesc = &signals.Scalar{SampleRate: rate, SampleType: signals.Float32,
	Channels: []signals.Channel{{Name: "x", Unit: "g"}, {Name: "y", Unit: "g"}, {Name: "z", Unit: "g"}}}

// pumpFeed writes the simulated pump into a stream, a few seconds at a time.
type pumpFeed struct {
	t    *testing.T
	p    *sdk.Producer
	w    *sdk.SampleWriter
	pump *pump.Pump
	buf  []float32
}

func newPumpFeed(t *testing.T, srv *server.Server, origin time.Time, faultAt int) (*pumpFeed, *sdk.Client) {
	ctx := context.Background()
	client := sdk.NewClient(srv.HTTPURL(), nil)
	if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: "pump-1", DataRetentionInHours: 1}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	track, _ := sdk.ScalarTrack(1, "vibration", pumpDesc)
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "pump-1", Tracks: []sdk.Track{track}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	w, err := sdk.NewSampleWriter(p, 1, pumpDesc, sdk.SampleWriterOptions{Origin: origin.UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	return &pumpFeed{t: t, p: p, w: w, pump: pump.New(rate, int64(faultAt)*rate, 11), buf: make([]float32, 3*rate)}, client
}

// write streams seconds more of the pump and waits until they are stored.
func (f *pumpFeed) write(seconds int) {
	ctx := context.Background()
	for range seconds {
		f.pump.Fill(f.buf)
		if err := f.w.WriteFloat32(ctx, f.buf); err != nil {
			f.t.Fatal(err)
		}
	}
	if err := f.w.Flush(ctx); err != nil {
		f.t.Fatal(err)
	}
	if err := f.p.Flush(ctx); err != nil { // PERSISTED
		f.t.Fatal(err)
	}
}

func startServer(t *testing.T) *server.Server {
	ctx := context.Background()
	srv, err := server.Start(ctx, server.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(ctx) })
	return srv
}

// checkVerdicts: one verdict per second from origin, in order, none missed
// or repeated; no flag before the fault, every window flagged once it has
// grown (2 s after it starts).
func checkVerdicts(t *testing.T, verdicts []Verdict, origin time.Time, seconds, faultAt int) {
	t.Helper()
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

// The job, reading stored windows, flags the bearing fault from the windows
// after it starts and none before, and a restart from the checkpoint goes on
// exactly where it stopped.
func TestDetectsFaultAndResumes(t *testing.T) {
	srv := startServer(t)
	const seconds, faultAt = 50, 30
	origin := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	feed, client := newPumpFeed(t, srv, origin, faultAt)
	feed.write(seconds)

	cp := filepath.Join(t.TempDir(), "checkpoint.json")
	var verdicts []Verdict
	collect := func(v Verdict) { verdicts = append(verdicts, v) }
	d := &Detector{Client: client, Stream: "pump-1", Rate: rate, Window: rate, Checkpoint: cp}
	if err := d.Run(context.Background(), origin, origin.Add(40*time.Second), collect); err != nil {
		t.Fatal(err)
	}
	// A restart: a new detector, the same checkpoint.
	d2 := &Detector{Client: client, Stream: "pump-1", Rate: rate, Window: rate, Checkpoint: cp}
	if err := d2.Load(); err != nil {
		t.Fatal(err)
	}
	if err := d2.Run(context.Background(), origin, origin.Add(seconds*time.Second), collect); err != nil {
		t.Fatal(err)
	}
	checkVerdicts(t, verdicts, origin, seconds, faultAt)
}

// The job follows the stream live: it judges each window as the pump's
// fragments are stored, keeps flagging once the fault appears, and, stopped
// and started again from its checkpoint while the pump runs on, judges the
// windows it missed and follows on, none repeated.
func TestFollowsLiveAndResumes(t *testing.T) {
	srv := startServer(t)
	const faultAt = 22
	origin := time.Now().Add(-time.Minute).Truncate(time.Second)
	feed, client := newPumpFeed(t, srv, origin, faultAt)
	cp := filepath.Join(t.TempDir(), "checkpoint.json")

	var mu sync.Mutex
	var verdicts []Verdict
	collect := func(v Verdict) {
		mu.Lock()
		verdicts = append(verdicts, v)
		mu.Unlock()
	}
	// follow runs a detector from the checkpoint until stop is called.
	follow := func() (stop func()) {
		d := &Detector{Client: client, Stream: "pump-1", Rate: rate, Window: rate, Checkpoint: cp}
		if err := d.Load(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Follow(ctx, origin, collect) }()
		return func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Follow ended with %v", err)
			}
		}
	}
	await := func(n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			got := len(verdicts)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d verdicts after 30 s, want %d", got, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	feed.write(12)
	stop := follow()
	await(12) // the stored windows
	feed.write(6)
	await(18) // live
	stop()
	feed.write(12) // while the job is down: the fault starts
	stop = follow()
	await(30) // the windows it missed
	feed.write(6)
	await(36) // and live again
	stop()
	checkVerdicts(t, verdicts, origin, 36, faultAt)
}
