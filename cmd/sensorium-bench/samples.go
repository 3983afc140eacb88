package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/simulate/pump"
)

// The dense-samples section (issue 15, goal 3: ≥ 50 M float32 samples/s
// from PutSamples to PERSISTED on 2 cores) puts the demo pump's 3-axis
// 25.6 kHz vibration through one producer's PutSamples, a second of samples
// per call, as fast as the server takes it, and times it to the last
// PERSISTED. The peer is the bus alone: raw JetStream publish of the same
// samples as raw float32 bytes, one message per second of samples, on a
// stream set up as the bus is (rawJetStream). Ours encodes (the numeric
// codec), frames, stores and fsyncs; the peer only publishes.
const (
	samplesRate     = 25600
	samplesChannels = 3
	samplesBlocks   = 60 // distinct seconds of pump data, put in turn
)

func (b *bench) samples(seconds int) error {
	block := samplesRate * samplesChannels
	data := make([][]float32, samplesBlocks)
	sim := pump.New(samplesRate, int64(seconds)*samplesRate/2, 1)
	for i := range data {
		data[i] = make([]float32, block)
		sim.Fill(data[i])
	}
	total := float64(seconds * block)
	fmt.Printf("Dense samples: %d s of 3-axis %d Hz float32 vibration (%.1f M samples), one PutSamples per second of samples\n\n",
		seconds, samplesRate, total/1e6)

	ours, cpuShare, err := b.samplesOurs(seconds, data)
	if err != nil {
		return err
	}
	raw := make([][]byte, seconds)
	for i := range raw {
		src := data[i%samplesBlocks]
		buf := make([]byte, 4*len(src))
		for j, v := range src {
			binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(v))
		}
		raw[i] = buf
	}
	peerBytes, _, err := b.rawJetStream(raw, false)
	if err != nil {
		return err
	}
	peer := peerBytes / 4
	verdict := "met"
	if ours < 50e6 {
		verdict = "NOT met"
	}
	fmt.Printf("%-52s %10s\n", "path", "samples/s")
	fmt.Printf("%-52s %8.1f M   %s\n", "PutSamples → PERSISTED (numeric codec, store fsync)", ours/1e6, cpuShare)
	fmt.Printf("%-52s %8.1f M   ratio %.2f×\n", "raw JetStream publish of the raw float32 bytes (peer)", peer/1e6, ours/peer)
	fmt.Printf("%-52s goal ≥ 50 M samples/s on 2 cores: %s\n", "", verdict)
	return nil
}

// samplesOurs runs the producer against an in-process server and returns
// samples/s and where the process's CPU went.
func (b *bench) samplesOurs(seconds int, data [][]float32) (float64, string, error) {
	dir := b.scratch("samples")
	srv, err := server.Start(context.Background(), server.Config{DataDir: dir, NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: quiet})
	if err != nil {
		return 0, "", err
	}
	defer srv.Shutdown(context.Background())
	ctx := context.Background()
	if _, err := sdk.NewClient(srv.HTTPURL(), nil).CreateStream(ctx, sdk.CreateStreamInput{StreamName: "samples", DataRetentionInHours: 1}); err != nil {
		return 0, "", err
	}
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		return 0, "", err
	}
	defer nc.Close()
	desc := &signals.Scalar{SampleRate: samplesRate, SampleType: signals.Float32,
		Channels: []signals.Channel{{Name: "x", Unit: "g"}, {Name: "y", Unit: "g"}, {Name: "z", Unit: "g"}}}
	track, err := sdk.ScalarTrack(1, "vibration", desc)
	if err != nil {
		return 0, "", err
	}
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "samples", Tracks: []sdk.Track{track}, NoLive: true, Logger: quiet,
		BufferBytes: 256 << 20})
	if err != nil {
		return 0, "", err
	}
	origin := time.Now().Add(-time.Duration(seconds+60) * time.Second).Truncate(time.Second).UnixNano()
	before, err := sampleProcess(os.Getpid())
	if err != nil {
		return 0, "", err
	}
	t0 := time.Now()
	for i := 0; i < seconds; i++ {
		s := &signals.Samples{Type: signals.Float32, Channels: samplesChannels, N: samplesRate,
			Start: desc.SampleTime(origin, i*samplesRate), F32: data[i%samplesBlocks]}
		if err := p.PutSamples(ctx, 1, nil, s, codecs.Auto); err != nil {
			return 0, "", err
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		return 0, "", err
	}
	elapsed := time.Since(t0)
	after, err := sampleProcess(os.Getpid())
	if err != nil {
		return 0, "", err
	}
	if st := p.Stats(); st.Dropped > 0 || st.Persisted != st.Fragments {
		return 0, "", fmt.Errorf("samples: %d of %d fragments PERSISTED, %d dropped", st.Persisted, st.Fragments, st.Dropped)
	}
	cores := (after.cpu - before.cpu).Seconds() / elapsed.Seconds()
	return float64(seconds*samplesRate*samplesChannels) / elapsed.Seconds(), fmt.Sprintf("process %.2f cores (producer and server)", cores), nil
}
