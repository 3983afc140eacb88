package codecs

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/signals"
)

// The batch path (decoding straight into the batch's buffers) makes the same
// records as the builder path: over many frames and batch boundaries, with
// ranges that cut frames at both ends, selected and reordered channels,
// every codec, IMU counts scaled to physical units, and no leak.
func TestBatchPathMatchesBuilderPath(t *testing.T) {
	imu := &signals.IMU{SampleRate: 1000, SampleType: signals.Int16, Sensors: []signals.IMUSensor{
		{Type: signals.Accelerometer, Unit: "m/s²", Scale: 9.80665 / 2048},
		{Type: signals.Gyroscope, Unit: "rad/s"},
	}}
	type tc struct {
		name   string
		d      signals.Description
		scalar *signals.Scalar
		fields []string
		codec  ID
	}
	var cases []tc
	for _, typ := range signals.SampleTypes() {
		for _, id := range []ID{Numeric, Plain, Zstd, Auto} {
			d := testDesc(typ, 3)
			cases = append(cases, tc{fmt.Sprintf("%s/%s/all", typ, id), d, d, nil, id})
			cases = append(cases, tc{fmt.Sprintf("%s/%s/c2,c0", typ, id), d, d, []string{d.Channels[2].Name, d.Channels[0].Name}, id})
		}
	}
	cases = append(cases, tc{"imu/numeric", imu, imu.Scalar(), nil, Numeric}, tc{"imu/plain", imu, imu.Scalar(), nil, Plain})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rng := rand.New(rand.NewPCG(1, 2))
			enc, err := NewScalarEncoder(c.scalar, c.codec)
			if err != nil {
				t.Fatal(err)
			}
			var frames [][]byte
			start := int64(1_700_000_000_000_000_000)
			at := 0
			for range 12 {
				n := 50 + rng.IntN(300)
				s := &signals.Samples{Start: c.scalar.SampleTime(start, at)}
				s.Reset(c.scalar.SampleType, len(c.scalar.Channels), n)
				for i := range s.Len() {
					v := math.Round(1000 * math.Sin(float64(at*3+i)/40))
					switch c.scalar.SampleType {
					case signals.Int16:
						s.I16[i] = int16(v)
					case signals.Int32:
						s.I32[i] = int32(v) * 1000
					case signals.Float32:
						s.F32[i] = float32(v * 0.001)
					case signals.Float64:
						s.F64[i] = v * 0.01
					}
				}
				frame, err := enc.AppendFrame(nil, s)
				if err != nil {
					t.Fatal(err)
				}
				frames = append(frames, frame)
				at += n
			}
			r := TimeRange{Start: c.scalar.SampleTime(start, 120), End: c.scalar.SampleTime(start, at-77)}
			build := func(batch bool) []arrow.RecordBatch {
				dec, err := NewArrowDecoder(c.d, ArrowOptions{Fields: c.fields})
				if err != nil {
					t.Fatal(err)
				}
				var out []arrow.RecordBatch
				const rows = 500
				if batch {
					bd := dec.(BatchDecoder)
					bd.StartBatches(mem, 200) // fewer than a batch: the buffers grow
					defer bd.Release()
					n := 0
					for _, f := range frames {
						k, err := bd.AppendToBatch(Frame{Data: f}, r)
						if err != nil {
							t.Fatal(err)
						}
						if n += k; n >= rows {
							out, n = append(out, bd.NewRecordBatch()), 0
						}
					}
					if rec := bd.NewRecordBatch(); rec != nil {
						out = append(out, rec)
					}
					return out
				}
				b := array.NewRecordBuilder(mem, dec.Schema())
				defer b.Release()
				n := 0
				for _, f := range frames {
					k, err := dec.Append(b, Frame{Data: f}, r)
					if err != nil {
						t.Fatal(err)
					}
					if n += k; n >= rows {
						out, n = append(out, b.NewRecordBatch()), 0
					}
				}
				if n > 0 {
					out = append(out, b.NewRecordBatch())
				}
				return out
			}
			got, want := build(true), build(false)
			defer func() {
				for _, r := range append(got, want...) {
					r.Release()
				}
			}()
			if len(got) != len(want) || len(want) < 2 {
				t.Fatalf("%d batches, the builder path %d", len(got), len(want))
			}
			for i := range want {
				if !sameRecordBits(got[i], want[i]) {
					t.Fatalf("batch %d differs:\n%v\n%v", i, got[i], want[i])
				}
			}
		})
	}
}

// countingAllocator counts the allocations that reach it.
type countingAllocator struct {
	memory.Allocator
	n int
}

func (a *countingAllocator) Allocate(size int) []byte {
	a.n++
	return a.Allocator.Allocate(size)
}

// A batch decoder reuses the buffers of the batches its readers have
// released: after the first few batches a long read allocates nothing, a
// batch still held is never written over, and everything is freed once the
// decoder and the last batch are released.
func TestBatchBuffersRecycled(t *testing.T) {
	checked := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer checked.AssertSize(t, 0)
	mem := &countingAllocator{Allocator: checked}
	d := testDesc(signals.Float32, 3)
	enc, err := NewScalarEncoder(d, Auto)
	if err != nil {
		t.Fatal(err)
	}
	start := int64(1_700_000_000_000_000_000)
	frame := func(k int) []byte {
		s := &signals.Samples{Start: d.SampleTime(start, k*100)}
		s.Reset(signals.Float32, 3, 100)
		for i := range s.F32 {
			s.F32[i] = float32(k*300 + i)
		}
		b, err := enc.AppendFrame(nil, s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	dec, err := NewArrowDecoder(d, ArrowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bd := dec.(BatchDecoder)
	bd.StartBatches(mem, 250)
	var kept []arrow.RecordBatch
	var keptFirst []int // the frame each kept batch starts at
	allocsAfter := 0
	all := TimeRange{All: true}
	for k := 0; k < 300; k += 3 { // three frames a batch
		for f := k; f < k+3; f++ {
			if _, err := bd.AppendToBatch(Frame{Data: frame(f)}, all); err != nil {
				t.Fatal(err)
			}
		}
		rec := bd.NewRecordBatch()
		if k%30 == 0 { // held on to: its buffers must not be reused
			kept, keptFirst = append(kept, rec), append(keptFirst, k)
		} else {
			rec.Release()
		}
		if k == 30 {
			allocsAfter = mem.n
		}
	}
	if extra := mem.n - allocsAfter; extra > 4*len(kept) {
		t.Errorf("%d allocations after the first batches (%d batches held): the buffers are not reused", extra, len(kept))
	}
	bd.Release()
	for i, rec := range kept {
		x := rec.Column(1).(*array.Float32)
		for r := range x.Len() {
			if want := float32(keptFirst[i]*300 + r*3); x.Value(r) != want {
				t.Fatalf("a held batch was written over: row %d of the batch at frame %d is %v, want %v", r, keptFirst[i], x.Value(r), want)
			}
		}
		rec.Release()
	}
}
