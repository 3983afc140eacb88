package server

import (
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// TestEndToEnd is the foundation's promise in one test: samples go in through
// the SDK producer over NATS, come back identical through GetMedia (frame by
// frame) and through an Arrow query (sample by sample), and ListFragments
// lists what the producer was told is PERSISTED.
func TestEndToEnd(t *testing.T) {
	srv := startServer(t, "")
	ctx := context.Background()
	client := sdk.NewClient(srv.HTTPURL(), nil)
	if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: "pump-7", DataRetentionInHours: 24}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	desc := &signals.Scalar{SampleRate: 25600, SampleType: signals.Float32,
		Channels: []signals.Channel{{Name: "x", Unit: "g"}, {Name: "y", Unit: "g"}, {Name: "z", Unit: "g"}}}
	track, err := sdk.ScalarTrack(1, "vibration", desc)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	events := map[uint64][]sdk.EventType{}
	persisted := map[string]bool{}
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{
		Stream: "pump-7", Tracks: []sdk.Track{track}, MinFragmentDuration: time.Second, MaxFragmentDuration: 2 * time.Second,
		OnAck: func(ev sdk.AckEvent) {
			mu.Lock()
			defer mu.Unlock()
			events[ev.ProducerSequence] = append(events[ev.ProducerSequence], ev.EventType)
			if ev.EventType == sdk.EventPersisted {
				persisted[ev.FragmentNumber] = true
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// 12.34 s of random samples, NaN, ±Inf, -0 and denormals among them; the
	// origin is not on a millisecond.
	origin := time.Now().Add(-time.Hour).Truncate(time.Second).UnixNano() + 987_654_321
	w, err := sdk.NewSampleWriter(p, 1, desc, sdk.SampleWriterOptions{Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	total := int(12.34 * desc.SampleRate)
	sent := make([]float32, 0, total*3)
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32}
	for len(sent) < total*3 {
		n := min(3*(1+rng.IntN(4000)), total*3-len(sent))
		chunk := make([]float32, n)
		for i := range chunk {
			chunk[i] = float32(rng.NormFloat64())
			if rng.IntN(1000) == 0 {
				chunk[i] = special[rng.IntN(len(special))]
			}
		}
		if err := w.WriteFloat32(ctx, chunk); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, chunk...)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	mu.Lock()
	for seq, evs := range events {
		if len(evs) < 2 || evs[0] != sdk.EventReceived || evs[len(evs)-1] != sdk.EventPersisted {
			t.Fatalf("fragment %d saw %v, want RECEIVED … PERSISTED", seq, evs)
		}
	}
	mu.Unlock()

	// ListFragments lists exactly the PERSISTED fragments.
	frags, _, err := client.ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName("pump-7"), MaxResults: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(frags) != len(persisted) || len(frags) < 6 {
		t.Fatalf("ListFragments: %d fragments, %d PERSISTED", len(frags), len(persisted))
	}
	for _, f := range frags {
		if !persisted[f.FragmentNumber] {
			t.Fatalf("listed fragment %s was never acknowledged PERSISTED", f.FragmentNumber)
		}
	}

	// GetMedia: the same frames, sample for sample.
	body, err := client.GetMedia(ctx, sdk.ByName("pump-7"), sdk.StartEarliest(), false)
	if err != nil {
		t.Fatal(err)
	}
	mr := sdk.NewMediaReader(body)
	var s signals.Samples
	at := 0
	for {
		f, err := mr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.Track.CodecID != signals.CodecIDScalar || f.Fragment.Number == "" || f.Fragment.ProducerTimestamp.IsZero() {
			t.Fatalf("frame metadata: track %+v fragment %+v", f.Track, f.Fragment)
		}
		if err := codecs.DecodeScalarFrameAt(f.Data, f.Timestamp, desc, &s); err != nil {
			t.Fatal(err)
		}
		if s.Start != desc.SampleTime(origin, at/3) {
			t.Fatalf("frame at sample %d starts at %d, want %d", at/3, s.Start, desc.SampleTime(origin, at/3))
		}
		for i, v := range s.F32 {
			if math.Float32bits(v) != math.Float32bits(sent[at+i]) {
				t.Fatalf("GetMedia: sample %d differs", at+i)
			}
		}
		at += len(s.F32)
	}
	body.Close()
	if at != len(sent) {
		t.Fatalf("GetMedia returned %d values, sent %d", at, len(sent))
	}

	// Arrow: a range that starts and ends mid-frame and mid-fragment.
	lo, hi := 30001, total-12345
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	res, err := client.Query(ctx, sdk.QueryInput{Stream: "pump-7",
		Start: time.Unix(0, desc.SampleTime(origin, lo)), End: time.Unix(0, desc.SampleTime(origin, hi))}, mem)
	if err != nil {
		t.Fatal(err)
	}
	i := lo
	for res.Next() {
		rec := res.RecordBatch()
		tc := rec.Column(0).(*array.Timestamp)
		cols := []*array.Float32{rec.Column(1).(*array.Float32), rec.Column(2).(*array.Float32), rec.Column(3).(*array.Float32)}
		for r := 0; r < int(rec.NumRows()); r++ {
			if int64(tc.Value(r)) != desc.SampleTime(origin, i) {
				t.Fatalf("row %d: time %d, want %d", i, tc.Value(r), desc.SampleTime(origin, i))
			}
			for c := 0; c < 3; c++ {
				if math.Float32bits(cols[c].Value(r)) != math.Float32bits(sent[i*3+c]) {
					t.Fatalf("Arrow: sample %d channel %d differs", i, c)
				}
			}
			i++
		}
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	res.Close()
	if i != hi {
		t.Fatalf("Arrow returned samples %d..%d, want %d..%d", lo, i, lo, hi)
	}
}
