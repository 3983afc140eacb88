package sdk_test

import (
	"context"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// float64 PCM is a valid description (A_PCM/FLOAT/IEEE, 64 bits): the
// writer takes float64 samples and frames them as they are, little-endian,
// bit for bit, and refuses them on a track of another type.
func TestPCMWriterFloat64(t *testing.T) {
	r := newRig(t, false)
	desc := &signals.Audio{SampleRate: 1000, SampleType: signals.Float64, Channels: []string{"left", "right"}}
	track, err := sdk.AudioTrack(1, "mic", desc)
	if err != nil {
		t.Fatal(err)
	}
	i16 := &signals.Audio{SampleRate: 1000, SampleType: signals.Int16, Channels: []string{"mono"}}
	track2, err := sdk.AudioTrack(2, "mic16", i16)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdk.NewProducer(context.Background(), r.client(), sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{track, track2}, NoLive: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w16, err := sdk.NewPCMWriter(p, 2, nil, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := w16.WriteFloat64(ctx, []float64{1}); err == nil {
		t.Fatal("float64 samples accepted on an int16 track")
	}
	w, err := sdk.NewPCMWriter(p, 1, desc, t0, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	sent := make([]float64, 2*250) // 250 ms: 12 frames of 20 samples and 10 samples
	for i := range sent {
		sent[i] = math.Sin(float64(i)*0.01) * (1 + 1e-12*float64(i)) // needs all 64 bits
	}
	if err := w.WriteFloat64(ctx, sent[:77]); err == nil {
		t.Fatal("77 values accepted for 2 channels")
	}
	for _, part := range [][]float64{sent[:78], sent[78:300], sent[300:]} {
		if err := w.WriteFloat64(ctx, part); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_ = p.Flush(fctx)
	cancel()
	var frags []parsedFragment
	eventually(t, 5*time.Second, "the audio on the bus", func() bool { frags = r.busFragments(); return len(frags) == 1 })
	var got []float64
	for i, b := range frags[0].blocks {
		if want := t0/ms*ms + int64(i)*20*ms; frags[0].times[i] != want {
			t.Fatalf("frame %d at %d, want %d", i, frags[0].times[i], want)
		}
		for off := 0; off+8 <= len(b.Data); off += 8 {
			got = append(got, math.Float64frombits(binary.LittleEndian.Uint64(b.Data[off:])))
		}
	}
	if len(frags[0].blocks) != 13 || len(got) != len(sent) {
		t.Fatalf("%d frames, %d values; want 13 frames, %d values", len(frags[0].blocks), len(got), len(sent))
	}
	for i := range sent {
		if math.Float64bits(got[i]) != math.Float64bits(sent[i]) {
			t.Fatalf("value %d = %v, sent %v", i, got[i], sent[i])
		}
	}
}
