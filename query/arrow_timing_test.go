package query

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/simulate/pump"
	"github.com/sensorium-io/sensorium/store"
)

// pumpDesc is the demo pump's vibration: 3 axes at 25.6 kHz, float32 in g.
var pumpDesc = &signals.Scalar{SampleRate: 25600, SampleType: signals.Float32,
	Channels: []signals.Channel{{Name: "x", Unit: "g"}, {Name: "y", Unit: "g"}, {Name: "z", Unit: "g"}}}

// pumpFragments appends seconds of the simulated pump to stream as the SDK
// cuts them: 100 ms frames (codecs.ScalarEncoder, Auto) in 10 s fragments.
// It returns the range's start and end.
func pumpFragments(tb testing.TB, st *store.Store, stream string, seconds int) (int64, int64) {
	tb.Helper()
	priv, err := pumpDesc.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	enc, err := codecs.NewScalarEncoder(pumpDesc, codecs.Auto)
	if err != nil {
		tb.Fatal(err)
	}
	const frameN, framesPerFragment = 2560, 100
	sim := pump.New(pumpDesc.SampleRate, 1<<40, 1)
	origin := queryBase
	var s signals.Samples
	frame := 0
	for number := uint64(1); frame < seconds*10; number++ {
		start := pumpDesc.SampleTime(origin, frame*frameN)
		b := mkv.AppendEBMLHeader(nil, "matroska")
		b = mkv.AppendSegmentStart(b)
		b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, Duration: framesPerFragment * 100})
		b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: signals.CodecIDScalar, CodecPrivate: priv}})
		clusterAt := len(b)
		var blocks []mkv.Block
		k := 0
		for ; k < framesPerFragment && frame < seconds*10; k, frame = k+1, frame+1 {
			s.Reset(signals.Float32, 3, frameN)
			s.Start = pumpDesc.SampleTime(origin, frame*frameN)
			sim.Fill(s.F32)
			data, err := enc.AppendFrame(nil, &s)
			if err != nil {
				tb.Fatal(err)
			}
			blocks = append(blocks, mkv.Block{Track: 1, Timecode: int16(k * 100), Keyframe: true, Data: data})
		}
		f := &store.Fragment{Number: number, ServerTime: start, ProducerTime: start, Duration: int64(k) * int64(100*time.Millisecond),
			ClusterOffset: uint32(clusterAt), Payload: mkv.AppendCluster(b, uint64(start/int64(time.Millisecond)), blocks)}
		if _, err := st.Append(stream, f); err != nil {
			tb.Fatal(err)
		}
	}
	if err := st.Sync(stream); err != nil {
		tb.Fatal(err)
	}
	return origin, pumpDesc.SampleTime(origin, seconds*10*frameN)
}

// BenchmarkQueryPump is the server's half of make bench's Arrow read: a
// minute of the pump decoded into record batches (decode), written as an
// Arrow IPC stream (ipc), as 1 s windows (windows), and as 1 s statistics
// (aggregate: all four; minmax: what a plot draws). Rows (samples) per
// second are what to compare: the aggregate shape's peer is decode, the
// samples it reduces.
func BenchmarkQueryPump(b *testing.B) {
	st, svc := newTestService(b, "pump")
	const seconds = 60
	start, end := pumpFragments(b, st, "pump", seconds)
	rows := int64(seconds * 25600)
	run := func(b *testing.B, write func(p *Prepared) error, shape ...Request) {
		b.SetBytes(rows * 20)
		req := Request{Stream: "pump", Start: start, End: end}
		if len(shape) > 0 {
			req.Shape, req.Window, req.Aggregates = shape[0].Shape, shape[0].Window, shape[0].Aggregates
		}
		for b.Loop() {
			p, err := svc.PrepareQuery(req)
			if err != nil {
				b.Fatal(err)
			}
			if err := write(p); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mrows/s")
	}
	b.Run("decode", func(b *testing.B) {
		run(b, func(p *Prepared) error {
			var n int64
			err := svc.QueryBatches(context.Background(), p, func(rec arrow.RecordBatch) error { n += rec.NumRows(); return nil })
			if err == nil && n != rows {
				b.Fatalf("%d rows, want %d", n, rows)
			}
			return err
		})
	})
	b.Run("ipc", func(b *testing.B) {
		run(b, func(p *Prepared) error { return svc.Query(context.Background(), p, io.Discard) })
	})
	// 1 s windows of the three axes, as the predictive-maintenance job reads
	// them (Mrows/s counts samples).
	b.Run("windows", func(b *testing.B) {
		run(b, func(p *Prepared) error { return svc.Query(context.Background(), p, io.Discard) },
			Request{Shape: "windows", Window: Window{Length: 25600, Hop: 25600}})
	})
	b.Run("aggregate", func(b *testing.B) {
		run(b, func(p *Prepared) error { return svc.Query(context.Background(), p, io.Discard) },
			Request{Shape: "aggregate", Window: Window{Length: 25600, Hop: 25600}})
	})
	b.Run("minmax", func(b *testing.B) {
		run(b, func(p *Prepared) error { return svc.Query(context.Background(), p, io.Discard) },
			Request{Shape: "aggregate", Window: Window{Length: 2560, Hop: 2560}, Aggregates: []string{"min", "max"}})
	})
}
