package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/internal/sampletable"
	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/simulate/pump"
)

// BenchmarkImportTable measures `sensorium import` of the demo pump's
// 3-axis 25.6 kHz float32 vibration from each format (the file as `sensorium
// query` writes it) to PERSISTED, and beside it, in the same run and on the
// same server, its peer: the SDK's PutSamples of the same samples in the
// same chunks, from memory — the producer path alone, without the file.
// The ratio is what reading the file costs. Issue 14's goal is ≥ 20 M
// samples/s on 2 cores. SENSORIUM_IMPORT_BENCH_SECONDS sets the signal's
// length (default 60 s: 4.6 M samples).
func BenchmarkImportTable(b *testing.B) {
	seconds := 60
	if s := os.Getenv("SENSORIUM_IMPORT_BENCH_SECONDS"); s != "" {
		fmt.Sscan(s, &seconds)
	}
	const rate = 25600
	desc := &signals.Scalar{SampleRate: rate, SampleType: signals.Float32,
		Channels: []signals.Channel{{Name: "x", Unit: "g"}, {Name: "y", Unit: "g"}, {Name: "z", Unit: "g"}}}
	n := seconds * rate
	vals := make([]float32, 3*n)
	pump.New(rate, int64(n/2), 1).Fill(vals)
	total := float64(len(vals))

	srv, err := server.Start(context.Background(), server.Config{DataDir: b.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	ep := srv.HTTPURL()
	origin := time.Now().Add(-time.Duration(seconds)*time.Second - time.Hour).Truncate(time.Second)

	// The files, written by `sensorium query` from a stream of the samples.
	produceBench(b, srv, "bench-src", desc, origin, vals)
	dir := b.TempDir()
	files := map[string]string{}
	for _, ext := range []string{"parquet", "arrow", "csv"} {
		files[ext] = filepath.Join(dir, "pump."+ext)
		var stderr strings.Builder
		code := run(context.Background(), []string{"query", "bench-src", "--start", origin.Add(-time.Second).Format(time.RFC3339Nano),
			"--end", origin.Add(time.Duration(seconds+1) * time.Second).Format(time.RFC3339Nano), "-o", files[ext], "--endpoint", ep}, &strings.Builder{}, &stderr)
		if code != 0 {
			b.Fatalf("query: %s", stderr.String())
		}
	}
	streams := 0
	for _, ext := range []string{"parquet", "arrow", "csv"} {
		b.Run(ext, func(b *testing.B) {
			var ours, peer time.Duration
			for i := 0; i < b.N; i++ {
				streams++
				stream := fmt.Sprintf("bench-%d", streams)
				t0 := time.Now()
				var out, stderr strings.Builder
				args := []string{"import", files[ext], "--stream", stream, "--create", "--endpoint", ep, "--nats", srv.NATSURL()}
				if ext == "csv" {
					args = append(args, "--type", "float32")
				}
				if code := run(context.Background(), args, &out, &stderr); code != 0 {
					b.Fatalf("import: exit %d: %s", code, stderr.String())
				}
				ours += time.Since(t0)
				peer += putSamplesPeer(b, srv, fmt.Sprintf("peer-%d", streams), desc, origin, vals)
			}
			o, p := total*float64(b.N)/ours.Seconds(), total*float64(b.N)/peer.Seconds()
			b.ReportMetric(o/1e6, "Msamples/s")
			b.ReportMetric(p/1e6, "peer-Msamples/s")
			b.ReportMetric(o/p, "ratio")
			b.Logf("%s: import %.1f M samples/s; peer PutSamples from memory %.1f M samples/s; ratio %.2f× (goal ≥ 20 M samples/s)", ext, o/1e6, p/1e6, o/p)
		})
	}
}

// produceBench puts vals into a new stream as one SampleWriter would.
func produceBench(b *testing.B, srv *server.Server, stream string, desc *signals.Scalar, origin time.Time, vals []float32) {
	ctx := context.Background()
	if _, err := sdk.NewClient(srv.HTTPURL(), nil).CreateStream(ctx, sdk.CreateStreamInput{StreamName: stream, DataRetentionInHours: 1}); err != nil {
		b.Fatal(err)
	}
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	track, _ := sdk.ScalarTrack(1, stream, desc)
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: stream, Tracks: []sdk.Track{track}, NoLive: true, BufferBytes: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	w, _ := sdk.NewSampleWriter(p, 1, desc, sdk.SampleWriterOptions{Origin: origin.UnixNano(), FrameSamples: 25600})
	if err := w.WriteFloat32(ctx, vals); err != nil {
		b.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		b.Fatal(err)
	}
}

// putSamplesPeer puts vals into a new stream with PutSamples in the chunks
// the import cuts, a fragment each, and returns the time to the last
// PERSISTED: the import's path without the file.
func putSamplesPeer(b *testing.B, srv *server.Server, stream string, desc *signals.Scalar, origin time.Time, vals []float32) time.Duration {
	ctx := context.Background()
	if _, err := sdk.NewClient(srv.HTTPURL(), nil).CreateStream(ctx, sdk.CreateStreamInput{StreamName: stream, DataRetentionInHours: 1}); err != nil {
		b.Fatal(err)
	}
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	track, _ := sdk.ScalarTrack(1, stream, desc)
	t0 := time.Now()
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: stream, Tracks: []sdk.Track{track}, NoLive: true, BufferBytes: importProducerBuffer,
		MinFragmentDuration: time.Nanosecond, MaxFragmentDuration: sdk.MaxFragmentDurationLimit})
	if err != nil {
		b.Fatal(err)
	}
	size := sampletable.ChunkSamples(desc)
	for k := 0; k < len(vals)/3; k += size {
		m := min(size, len(vals)/3-k)
		s := &signals.Samples{Type: signals.Float32, Channels: 3, N: m, Start: desc.SampleTime(origin.UnixNano(), k), F32: vals[3*k : 3*(k+m)]}
		if err := p.PutSamples(ctx, 1, nil, s, codecs.Auto); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		b.Fatal(err)
	}
	return time.Since(t0)
}
