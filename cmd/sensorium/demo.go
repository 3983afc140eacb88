package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/simulate/pump"
)

const (
	demoStream = "pump-1"
	demoRate   = 25600.0
	demoSeed   = 42
)

func newDemoCmd() *cobra.Command {
	var dataDir string
	var seconds int
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a server, stream a simulated pump into it, and query it back",
		Long: `Start a server on an embedded NATS (free ports, a temporary data folder),
stream a simulated pump — 3-axis vibration at 25.6 kHz with a bearing fault
that appears halfway — through the Go SDK, then read it back three ways:
ListFragments, GetMedia (checked frame by frame against what was sent) and an
Arrow query, from which it computes per-window condition indicators that show
the fault.`,
		Example: `  sensorium demo
  sensorium demo --seconds 120 --data ./demo-data --keep`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if seconds < 10 || seconds > 3600 {
				return usagef("--seconds must be 10 to 3600")
			}
			if dataDir == "" {
				d, err := os.MkdirTemp("", "sensorium-demo-")
				if err != nil {
					return err
				}
				dataDir = d
				if !keep {
					defer os.RemoveAll(d)
				}
			}
			return runDemo(cmd.Context(), os.Stdout, dataDir, seconds)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", "", "data folder (default: a temporary one)")
	cmd.Flags().IntVar(&seconds, "seconds", 60, "seconds of pump data to stream")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary data folder")
	return cmd
}

func runDemo(ctx context.Context, out io.Writer, dataDir string, seconds int) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// The keyring is named explicitly, in the demo's own folder: the demo's
	// data is not production data, and the server's warning about a keyring
	// kept beside the data would be the first line a newcomer reads.
	srv, err := server.Start(ctx, server.Config{DataDir: dataDir, Keyring: filepath.Join(dataDir, "keyring.json"),
		NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Fprintf(out, "Sensorium demo\n\n")
	fmt.Fprintf(out, "  server       %s (HTTP)  %s (NATS)  data in %s\n", srv.HTTPURL(), srv.NATSURL(), dataDir)
	client := sdk.NewClient(srv.HTTPURL(), nil)
	if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: demoStream, DataRetentionInHours: 24, MediaType: "application/x-sensorium", DeviceName: "pump-gateway"}); err != nil {
		return err
	}
	fmt.Fprintf(out, "  stream       %s, retention 24 h\n", demoStream)

	desc := &signals.Scalar{SampleRate: demoRate, SampleType: signals.Float32,
		Channels: []signals.Channel{{Name: "x", Unit: "g"}, {Name: "y", Unit: "g"}, {Name: "z", Unit: "g"}}}
	origin := time.Now().Add(-time.Duration(seconds) * time.Second).Truncate(time.Millisecond)
	t0 := time.Now()
	persisted, err := demoProduce(ctx, srv.NATSURL(), desc, origin, seconds)
	if err != nil {
		return err
	}
	total := int64(seconds) * int64(demoRate)
	fmt.Fprintf(out, "  produce      %d s of 3-axis vibration at 25.6 kHz (%s samples per axis, %s raw), bearing fault from %d s:\n",
		seconds, groupDigits(total), humanBytes(total*12), seconds/2)
	fmt.Fprintf(out, "               %d fragments PERSISTED in %s\n", persisted, time.Since(t0).Round(time.Millisecond))

	frags, bytes, err := demoList(ctx, client)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  fragments    ListFragments: %d fragments, %s\n", frags, humanBytes(bytes))

	frames, err := demoGetMedia(ctx, client, desc, origin, faultAt(seconds))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  get media    GetMedia: %d frames back, every sample identical to what was sent\n", frames)

	return demoQuery(ctx, out, client, origin, seconds)
}

// demoProduce streams the pump through the SDK and returns how many fragments were PERSISTED.
func demoProduce(ctx context.Context, natsURL string, desc *signals.Scalar, origin time.Time, seconds int) (int64, error) {
	nc, err := nats.Connect(natsURL, nats.Name("sensorium-demo-producer"))
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	track, err := sdk.ScalarTrack(1, "vibration", desc)
	if err != nil {
		return 0, err
	}
	var persisted, refused atomic.Int64
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{
		Stream: demoStream, Tracks: []sdk.Track{track},
		MinFragmentDuration: time.Second, MaxFragmentDuration: 2 * time.Second,
		OnAck: func(ev sdk.AckEvent) {
			switch ev.EventType {
			case sdk.EventPersisted:
				persisted.Add(1)
			case sdk.EventError:
				refused.Add(1)
			}
		},
	})
	if err != nil {
		return 0, err
	}
	w, err := sdk.NewSampleWriter(p, 1, desc, sdk.SampleWriterOptions{Origin: origin.UnixNano()})
	if err != nil {
		return 0, err
	}
	sim := pump.New(demoRate, faultAt(seconds), demoSeed)
	buf := make([]float32, 3*int(demoRate)/10)
	for i := 0; i < seconds*10; i++ {
		sim.Fill(buf)
		if err := w.WriteFloat32(ctx, buf); err != nil {
			return 0, err
		}
	}
	if err := w.Flush(ctx); err != nil {
		return 0, err
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		return persisted.Load(), err
	}
	if n := refused.Load(); n > 0 {
		return persisted.Load(), fmt.Errorf("the server refused %d fragments", n)
	}
	return persisted.Load(), nil
}

func demoList(ctx context.Context, c *sdk.Client) (int, int64, error) {
	in := sdk.ListFragmentsInput{Stream: sdk.ByName(demoStream), MaxResults: 1000}
	n, bytes := 0, int64(0)
	for {
		frags, next, err := c.ListFragments(ctx, in)
		if err != nil {
			return 0, 0, err
		}
		for _, f := range frags {
			n++
			bytes += f.FragmentSizeInBytes
		}
		if next == "" {
			return n, bytes, nil
		}
		in.NextToken = next
	}
}

// demoGetMedia reads the stream back with GetMedia and checks every sample,
// bit for bit, against a second run of the same simulation.
func demoGetMedia(ctx context.Context, c *sdk.Client, desc *signals.Scalar, origin time.Time, faultAt int64) (int, error) {
	body, err := c.GetMedia(ctx, sdk.ByName(demoStream), sdk.StartEarliest(), false)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	mr := sdk.NewMediaReader(body)
	var s signals.Samples
	ref := pump.New(demoRate, faultAt, demoSeed)
	var want []float32
	frames, next := 0, int64(0)
	for {
		f, err := mr.Next()
		if errors.Is(err, io.EOF) {
			return frames, nil
		}
		if err != nil {
			return frames, err
		}
		if err := codecs.DecodeScalarFrame(f.Data, desc, &s); err != nil {
			return frames, fmt.Errorf("frame %d: %w", frames, err)
		}
		if s.Start != desc.SampleTime(origin.UnixNano(), int(next)) {
			return frames, fmt.Errorf("frame %d starts at %d ns, not at sample %d's time", frames, s.Start, next)
		}
		want = append(want[:0], make([]float32, len(s.F32))...)
		ref.Fill(want)
		for i := range want {
			if math.Float32bits(want[i]) != math.Float32bits(s.F32[i]) {
				return frames, fmt.Errorf("frame %d: sample %d differs from what was sent", frames, i)
			}
		}
		frames++
		next += int64(s.N)
	}
}

// faultAt is the sample where the demo's bearing fault starts: halfway.
func faultAt(seconds int) int64 { return int64(seconds) * int64(demoRate) / 2 }

func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func demoQuery(ctx context.Context, out io.Writer, c *sdk.Client, origin time.Time, seconds int) error {
	t0 := time.Now()
	res, err := c.Query(ctx, sdk.QueryInput{Stream: demoStream, Start: origin, End: origin.Add(time.Duration(seconds) * time.Second)}, nil)
	if err != nil {
		return err
	}
	defer res.Close()
	const window = 5 * int(demoRate)
	x := make([]float32, 0, window)
	rows := 0
	type row struct {
		at int
		f  pump.Features
	}
	var table []row
	for res.Next() {
		rec := res.RecordBatch()
		col := rec.Column(1).(*array.Float32)
		for i := 0; i < col.Len(); i++ {
			x = append(x, col.Value(i))
			if len(x) == window {
				table = append(table, row{at: rows / int(demoRate), f: pump.Analyze(x, demoRate)})
				rows += len(x)
				x = x[:0]
			}
		}
	}
	if err := res.Err(); err != nil {
		return err
	}
	rows += len(x)
	fmt.Fprintf(out, "  query        Arrow: %s rows × 4 columns (time, x, y, z) in %s\n\n", groupDigits(int64(rows)), time.Since(t0).Round(time.Millisecond))
	fmt.Fprintf(out, "  window    rms x (g)   kurtosis x   2–4 kHz band (g)\n")
	base := math.Inf(1)
	for _, r := range table {
		base = math.Min(base, r.f.BandRMS)
		mark := ""
		if r.f.BandRMS > 5*base && r.f.Kurtosis > 4 {
			mark = "  ◀ bearing fault"
		}
		fmt.Fprintf(out, "  %3d–%-3ds  %9.3f   %10.2f   %16.4f%s\n", r.at, r.at+5, r.f.RMS, r.f.Kurtosis, r.f.BandRMS, mark)
	}
	fmt.Fprintf(out, "\nNext: `sensorium serve`, then `go run ./examples/pump` and `sensorium query %s --start -1m -o pump.arrow`.\n", demoStream)
	return nil
}
