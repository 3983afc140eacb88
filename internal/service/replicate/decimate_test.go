package replicate

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/internal/service/replicate/replicatetest"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

func TestParseDecimations(t *testing.T) {
	got, err := ParseDecimations(" vib-*=10, temp-?=100 ")
	if err != nil || len(got) != 2 || got[0] != (Decimation{"vib-*", 10}) || got[1] != (Decimation{"temp-?", 100}) {
		t.Fatalf("got %v, %v", got, err)
	}
	if decimationFor(got, "vib-3") != 10 || decimationFor(got, "temp-1") != 100 || decimationFor(got, "cam") != 0 {
		t.Error("decimationFor picks the wrong rule")
	}
	for _, bad := range []string{"vib", "vib=1", "vib=x", "vib-[=10", "=10"} {
		if _, err := ParseDecimations(bad); err == nil {
			t.Errorf("%q taken", bad)
		}
	}
}

// sample is one decoded sample of a single-channel float64 track.
type sample struct {
	t    int64
	v    float64
	frag int // the fragment it came in
}

// decodeStream decodes every sample of track 1 of a stream, with the
// fragment each came in, and the track's description.
func decodeStream(t *testing.T, c *sdk.Client, stream string) ([]sample, *signals.Scalar, []sdk.Fragment) {
	t.Helper()
	ctx := context.Background()
	list, err := replicatetest.List(ctx, c, stream)
	if err != nil {
		t.Fatal(err)
	}
	var out []sample
	var desc *signals.Scalar
	for fi, f := range list {
		body, err := c.GetMediaForFragmentList(ctx, sdk.ByName(stream), []string{f.FragmentNumber})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(body)
		body.Close()
		rd := mkv.NewReader(bytes.NewReader(raw))
		for {
			it, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			switch it.Kind {
			case mkv.ItemTracks:
				if desc, err = signals.ParseScalar(it.Tracks[0].CodecPrivate); err != nil {
					t.Fatal(err)
				}
			case mkv.ItemBlock:
				var s signals.Samples
				if err := codecs.DecodeScalarFrameAt(it.Block.Data, it.Time, desc, &s); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < s.N; i++ {
					out = append(out, sample{t: desc.SampleTime(s.Start, i), v: s.F64[i], frag: fi})
				}
			}
		}
	}
	return out, desc, list
}

// A 1 kHz signal reaches the centre at 100 Hz: each sample the mean of the
// ten of its 10 ms block of the epoch's grid, the blocks cut by a fragment
// boundary taken from the fragment that holds their first sample, every
// block once; the fragments keep their producer timestamps.
func TestDecimatedCopy(t *testing.T) {
	r := newRig(t, ViaNATS)
	r.createEdge(t, "vib-1", 1)
	ctx := context.Background()
	nc, err := nats.Connect(r.edgeSrv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	desc := &signals.Scalar{SampleRate: 1000, SampleType: signals.Float64, Channels: []signals.Channel{{Name: "x", Unit: "g"}}}
	track, _ := sdk.ScalarTrack(1, "x", desc)
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "vib-1", Tracks: []sdk.Track{track}, MinFragmentDuration: 700 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// The origin is off the 10 ms grid (…3.3 ms), so every fragment
	// boundary cuts a block.
	origin := time.Now().Add(-time.Hour).Truncate(10 * time.Millisecond).Add(3300 * time.Microsecond)
	w, err := sdk.NewSampleWriter(p, 1, desc, sdk.SampleWriterOptions{Origin: origin.UnixNano(), FrameSamples: 100})
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]float64, 5000)
	for i := range vals {
		vals[i] = float64(i)
	}
	if err := w.WriteFloat64(ctx, vals); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := r.config(t, "vib-*")
	cfg.Decimate = []Decimation{{"vib-*", 10}}
	start(t, cfg)
	r.waitCopied(t, "vib-1", "vib-1", 30*time.Second)

	in, _, edgeFrags := decodeStream(t, r.edge, "vib-1")
	out, outDesc, centreFrags := decodeStream(t, r.centre, "vib-1")
	if len(in) != 5000 || len(edgeFrags) < 4 {
		t.Fatalf("the edge holds %d samples in %d fragments", len(in), len(edgeFrags))
	}
	if outDesc.SampleRate != 100 {
		t.Fatalf("the centre's track is at %g Hz", outDesc.SampleRate)
	}
	for i := range edgeFrags {
		if !centreFrags[i].ProducerTimestamp.Equal(edgeFrags[i].ProducerTimestamp.Time) {
			t.Errorf("fragment %d: producer time %v at the centre, %v at the edge", i, centreFrags[i].ProducerTimestamp, edgeFrags[i].ProducerTimestamp)
		}
	}
	// The expectation, from the edge's samples: block b = [b×10 ms, (b+1)×10 ms).
	const block = int64(10 * time.Millisecond)
	type want struct {
		sum   float64
		n     int
		frag  int
		first bool // holds the stream's first sample: its block began before it
	}
	blocks := map[int64]*want{}
	var order []int64
	for k, s := range in {
		b := s.t / block
		wb := blocks[b]
		if wb == nil {
			wb = &want{frag: s.frag, first: k == 0 && s.t%block != 0}
			blocks[b] = wb
			order = append(order, b)
		}
		if s.frag == wb.frag {
			wb.sum += s.v
			wb.n++
		}
	}
	var expect []sample
	for _, b := range order {
		if wb := blocks[b]; !wb.first {
			expect = append(expect, sample{t: b * block, v: wb.sum / float64(wb.n)})
		}
	}
	if len(out) != len(expect) {
		t.Fatalf("the centre holds %d samples, want %d (one per 10 ms block but the stream's first, begun before its first sample)", len(out), len(expect))
	}
	for i := range expect {
		if out[i].t != expect[i].t || out[i].v != expect[i].v {
			t.Fatalf("sample %d: (%d, %v) at the centre, want (%d, %v)", i, out[i].t, out[i].v, expect[i].t, expect[i].v)
		}
	}
	// And the centre's query layer reads them as Arrow rows.
	res, err := r.centre.Query(ctx, sdk.QueryInput{Stream: "vib-1", Start: origin.Add(-time.Second), End: origin.Add(time.Minute)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	var rows int64
	for res.Next() {
		rows += res.RecordBatch().NumRows()
	}
	if err := res.Err(); err != nil || rows != int64(len(expect)) {
		t.Fatalf("the centre's query returns %d rows (%v); want %d", rows, err, len(expect))
	}
}
