package codecs

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/signals"
)

// FuzzDecodeScalarFrame feeds arbitrary frames, of a track of any sample type
// byte and channel count, to DecodeScalarFrame: every registered codec's
// decoder is reached through the codec byte. It must never panic, fail only
// with the package's sentinel errors, and whatever it accepts must be a valid
// block. A plain frame must re-encode to exactly the input; the other codecs
// are not canonical (many bodies decode to the same samples: a writer's
// choices of mode, order and Huffman table are not the only valid ones), so
// for them re-encoding and decoding again must give the same samples. Seeds
// live in testdata/fuzz/FuzzDecodeScalarFrame.
func FuzzDecodeScalarFrame(f *testing.F) {
	for _, g := range goldenFrames() {
		for _, id := range []ID{Plain, Zstd, S2, ShuffleZstd, Numeric} {
			frame, err := AppendScalarFrame(nil, g.desc, g.s, id)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(frame, byte(g.s.Type), uint16(g.s.Channels))
		}
	}
	for _, in := range numericInputs() {
		if in.s.N <= 200 {
			frame, err := AppendScalarFrame(nil, testDesc(in.s.Type, in.s.Channels), in.s, Numeric)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(frame, byte(in.s.Type), uint16(in.s.Channels))
		}
	}
	s, s2 := &signals.Samples{}, &signals.Samples{} // reused, as a reader does
	f.Fuzz(func(t *testing.T, frame []byte, st byte, channels uint16) {
		desc := &signals.Scalar{
			SampleRate: 1000,
			SampleType: signals.SampleType(st),
			Channels:   allChannels[:int(channels)%signals.MaxChannels+1],
		}
		cols, colErr := decodeColumnsOf(frame, desc)
		err := DecodeScalarFrame(frame, desc, s)
		if (err == nil) != (colErr == nil) {
			t.Fatalf("DecodeScalarFrame says %v, DecodeScalarColumns says %v", err, colErr)
		}
		if err == nil && !sameAsColumns(s, cols) {
			t.Fatalf("DecodeScalarColumns decodes other samples than DecodeScalarFrame")
		}
		if err != nil {
			// A compact frame is refused without its block time
			// (FuzzCompactFrame decodes those).
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownCodec) && !errors.Is(err, signals.ErrInvalid) && !errors.Is(err, ErrNeedsBlockTime) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		h, err := ParseScalarHeader(frame)
		if err != nil {
			t.Fatalf("decoded a frame whose header does not parse: %v", err)
		}
		if err := s.Validate(desc); err != nil || s.N != h.N || s.Start != h.Start {
			t.Fatalf("decoded an inconsistent block (n %d, header %+v): %v", s.N, h, err)
		}
		again, err := AppendScalarFrame(nil, desc, s, h.Codec)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		if h.Codec == Plain && !bytes.Equal(again, frame) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", frame, again)
		}
		if err := DecodeScalarFrame(again, desc, s2); err != nil {
			t.Fatalf("decoding the re-encoded frame: %v", err)
		}
		if !sameBits(s, s2) {
			t.Fatalf("re-encoded frame decodes to other samples")
		}
	})
}

// sameBits reports whether two blocks hold the same samples, floats by bits.
func sameBits(a, b *signals.Samples) bool {
	if a.N != b.N || a.Channels != b.Channels || a.Type != b.Type || a.Start != b.Start {
		return false
	}
	switch a.Type {
	case signals.Int16:
		return slices.Equal(a.I16, b.I16)
	case signals.Int32:
		return slices.Equal(a.I32, b.I32)
	case signals.Float32:
		for i := range a.F32 {
			if math.Float32bits(a.F32[i]) != math.Float32bits(b.F32[i]) {
				return false
			}
		}
	case signals.Float64:
		for i := range a.F64 {
			if math.Float64bits(a.F64[i]) != math.Float64bits(b.F64[i]) {
				return false
			}
		}
	}
	return true
}

func decodeColumnsOf(frame []byte, desc *signals.Scalar) ([]Column, error) {
	var scratch signals.Samples
	_, cols, err := DecodeScalarColumns(frame, desc, nil, &scratch)
	return cols, err
}

// sameAsColumns reports whether cols holds s channel by channel, bit for bit.
func sameAsColumns(s *signals.Samples, cols []Column) bool {
	split := splitChannels(s, nil)
	if len(split) != len(cols) {
		return false
	}
	for c := range cols {
		a, b := &split[c], &cols[c]
		if !slices.Equal(a.I16, b.I16) || !slices.Equal(a.I32, b.I32) || len(a.F32) != len(b.F32) || len(a.F64) != len(b.F64) {
			return false
		}
		for i := range a.F32 {
			if math.Float32bits(a.F32[i]) != math.Float32bits(b.F32[i]) {
				return false
			}
		}
		for i := range a.F64 {
			if math.Float64bits(a.F64[i]) != math.Float64bits(b.F64[i]) {
				return false
			}
		}
	}
	return true
}

// The Arrow decoders' Append paths get frames straight from storage, so
// they are fuzzed as decoders: arbitrary frame bytes, frame times and time
// ranges, every field selection and layout. An Append must not panic; when
// it fails the error wraps ErrCorrupt and the builder holds what it held
// before (no half-appended row); when it succeeds every column grew by the
// rows it reports, and a second Append of the same frame reports as many;
// and nothing leaks from the checked allocator. (A scalar frame may also
// name a codec this build does not have: ErrUnknownCodec.) Seeds live in
// testdata/fuzz/<target>.

// arrowFuzzInput is what the Arrow fuzz targets take after the frame.
type arrowFuzzInput struct {
	frameTime, start, end int64
	all                   bool
	sel                   uint16 // bit i: select field i (none: all); bit 15: the frames layout
}

// fuzzArrowAppend runs one decoder over one frame as described above.
func fuzzArrowAppend(t *testing.T, kind string, dec ArrowDecoder, frame []byte, in arrowFuzzInput) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := array.NewRecordBuilder(mem, dec.Schema())
	defer b.Release()
	lens := func() []int {
		out := make([]int, len(b.Fields()))
		for i, fb := range b.Fields() {
			out[i] = fb.Len()
		}
		return out
	}
	r := TimeRange{Start: in.start, End: in.end, All: in.all}
	f := Frame{Data: frame, Time: in.frameTime}
	before := lens()
	n, err := dec.Append(b, f, r)
	after := lens()
	if bd, ok := dec.(BatchDecoder); ok {
		fuzzBatchPath(t, kind, bd, mem, f, r, n, err)
	}
	if err != nil {
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownCodec) {
			t.Fatalf("%s: error without ErrCorrupt: %v", kind, err)
		}
		if n != 0 || !slices.Equal(before, after) {
			t.Fatalf("%s: a failed Append reported %d rows and changed the columns from %v to %v", kind, n, before, after)
		}
		return
	}
	for i := range after {
		if after[i]-before[i] != n {
			t.Fatalf("%s: Append reported %d rows, column %d grew by %d", kind, n, i, after[i]-before[i])
		}
	}
	// Decoders keep scratch between frames: the same frame again gives the
	// same rows.
	again, err := dec.Append(b, f, r)
	if err != nil || again != n {
		t.Fatalf("%s: the same frame again: %d rows, %v; first %d rows", kind, again, err, n)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	if rec.NumRows() != int64(2*n) {
		t.Fatalf("%s: a record of %d rows after two Appends of %d", kind, rec.NumRows(), n)
	}
}

// fuzzBatchPath holds a decoder's batch path (BatchDecoder) to its builder
// path on the same frame: the same verdict, the same rows; a failed frame
// leaves the batch as it was (a good frame after it comes out alone).
func fuzzBatchPath(t *testing.T, kind string, bd BatchDecoder, mem memory.Allocator, f Frame, r TimeRange, wantN int, wantErr error) {
	t.Helper()
	bd.StartBatches(mem, 16) // small: a frame overruns it and the buffers grow
	defer bd.Release()
	n, err := bd.AppendToBatch(f, r)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("%s: batch path %v, builder path %v", kind, err, wantErr)
	}
	if err != nil {
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownCodec) {
			t.Fatalf("%s: batch path error without ErrCorrupt: %v", kind, err)
		}
		if rec := bd.NewRecordBatch(); rec != nil {
			rec.Release()
			t.Fatalf("%s: a failed frame left rows in the batch", kind)
		}
		return
	}
	if n != wantN {
		t.Fatalf("%s: batch path %d rows, builder path %d", kind, n, wantN)
	}
	rec := bd.NewRecordBatch()
	if n == 0 {
		if rec != nil {
			rec.Release()
			t.Fatalf("%s: a batch of no rows", kind)
		}
		return
	}
	defer rec.Release()
	b := array.NewRecordBuilder(mem, bd.Schema())
	defer b.Release()
	if _, err := bd.Append(b, f, r); err != nil {
		t.Fatal(err)
	}
	want := b.NewRecordBatch()
	defer want.Release()
	if !sameRecordBits(rec, want) {
		t.Fatalf("%s: the batch path's record differs from the builder's:\n%v\n%v", kind, rec, want)
	}
}

// sameRecordBits reports whether two records of fixed-width columns without
// nulls hold the same schema and the same value bits (NaN payloads included,
// which Arrow's own comparison does not tell apart).
func sameRecordBits(a, b arrow.RecordBatch) bool {
	if !a.Schema().Equal(b.Schema()) || a.NumRows() != b.NumRows() {
		return false
	}
	for i := range int(a.NumCols()) {
		ca, cb := a.Column(i).Data(), b.Column(i).Data()
		w := ca.DataType().(arrow.FixedWidthDataType).Bytes()
		if ca.NullN() != 0 || cb.NullN() != 0 {
			return false
		}
		va := ca.Buffers()[1].Bytes()[ca.Offset()*w : (ca.Offset()+ca.Len())*w]
		vb := cb.Buffers()[1].Bytes()[cb.Offset()*w : (cb.Offset()+cb.Len())*w]
		if !bytes.Equal(va, vb) {
			return false
		}
	}
	return true
}

// selectFields returns the fields of fs that sel selects (nil: all) and the
// layout it asks for.
func selectFields(fs []string, sel uint16) ArrowOptions {
	var opts ArrowOptions
	for i, name := range fs {
		if i < 15 && sel&(1<<i) != 0 {
			opts.Fields = append(opts.Fields, name)
		}
	}
	if sel&(1<<15) != 0 {
		opts.Layout = LayoutFrames
	}
	return opts
}

func fieldNamesOf(fs []signals.Field) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name
	}
	return out
}

// Descriptions of the Arrow fuzz targets.
var (
	fuzzDetections = &signals.Detections{Extra: []signals.Field{
		{Name: "track_id", Type: signals.Int32}, {Name: "class", Type: signals.Int16}, {Name: "covariance", Type: signals.Float64},
	}}
	fuzzPointCloud = &signals.PointCloud{Rings: 32, Resolution: 0.001, Extra: []signals.Field{
		{Name: "reflectivity", Type: signals.Int16}, {Name: "range", Type: signals.Float32},
	}}
	fuzzArrays = []*signals.Array{
		{ElemType: signals.Float32, Rows: 3, Cols: 3},
		{ElemType: signals.Int32, Rows: 4, Cols: 5},
	}
	fuzzAudios = []*signals.Audio{
		{SampleRate: 48000, SampleType: signals.Int16, Channels: []string{"left", "right"}},
		{SampleRate: 44100, SampleType: signals.Float32, Channels: []string{"mono"}},
		{SampleRate: 8000, SampleType: signals.Int32, Channels: []string{"a", "b", "c"}},
	}
	fuzzIMU = &signals.IMU{SampleRate: 1000, SampleType: signals.Int16, Sensors: []signals.IMUSensor{
		{Type: signals.Accelerometer, Unit: "m/s²", Scale: 9.80665 / 8192},
		{Type: signals.Gyroscope, Unit: "rad/s", Scale: 0.001},
		{Type: signals.Magnetometer, Unit: "µT"},
	}}
)

// columnarArrowSeeds are real frames of the columnar kinds, with ranges that
// cut through them.
func columnarArrowSeeds() [][]byte {
	var out [][]byte
	dets, _ := testDetections(30, 2)
	extra := []Column{familyValues("noise", signals.Int32, 30, 1), familyValues("specials", signals.Int16, 30, 2), familyValues("specials", signals.Float64, 30, 3)}
	if fr, err := AppendDetectionsFrame(nil, fuzzDetections, 5_000, dets, extra); err == nil {
		out = append(out, fr)
	}
	sw := testSweep(96, 3)
	sw.Extra = []Column{familyValues("step", signals.Int16, 96, 1), familyValues("noise", signals.Float32, 96, 2)}
	if fr, err := AppendSweepFrame(nil, fuzzPointCloud, sw); err == nil {
		out = append(out, fr)
	}
	for _, a := range fuzzArrays {
		if fr, err := AppendArrayFrame(nil, a, 7_000, familyValues("noise", a.ElemType, int(a.Rows*a.Cols), 4)); err == nil {
			out = append(out, fr)
		}
	}
	return out
}

func FuzzColumnarArrow(f *testing.F) {
	for _, fr := range columnarArrowSeeds() {
		f.Add(fr, int64(0), int64(0), int64(0), true, uint16(0))
		f.Add(fr, int64(0), testSweep(1, 1).Time+5*55_296, testSweep(1, 1).Time+9*55_296, false, uint16(0x0013))
		f.Add(fr, int64(0), int64(0), int64(10_000), false, uint16(1<<15|0x0006))
	}
	f.Fuzz(func(t *testing.T, frame []byte, frameTime, start, end int64, all bool, sel uint16) {
		in := arrowFuzzInput{frameTime, start, end, all, sel}
		for _, d := range []signals.Description{fuzzDetections, fuzzPointCloud} {
			var fs []signals.Field
			switch d := d.(type) {
			case *signals.Detections:
				fs = d.Fields()
			case *signals.PointCloud:
				fs = d.Fields()
			}
			dec, err := NewArrowDecoder(d, selectFields(fieldNamesOf(fs), sel))
			if err != nil {
				t.Fatal(err)
			}
			fuzzArrowAppend(t, d.Kind().String(), dec, frame, in)
		}
		for _, a := range fuzzArrays {
			dec, err := NewArrowDecoder(a, selectFields([]string{"data"}, sel))
			if err != nil {
				t.Fatal(err)
			}
			fuzzArrowAppend(t, "array "+a.ElemType.String(), dec, frame, in)
		}
	})
}

// audioArrowSeeds are PCM frames of each fuzzed audio description.
func audioArrowSeeds() [][]byte {
	var out [][]byte
	for _, a := range fuzzAudios {
		for _, family := range []string{"noise", "specials"} {
			if body, err := AppendPlainBody(nil, familySamples(family, a.SampleType, len(a.Channels), 48)); err == nil {
				out = append(out, body)
			}
		}
	}
	return out
}

func FuzzAudioArrow(f *testing.F) {
	for _, fr := range audioArrowSeeds() {
		f.Add(fr, int64(1_000_000_000), int64(0), int64(0), true, uint16(0))
		f.Add(fr, int64(1_000_000_000), int64(1_000_100_000), int64(1_000_500_000), false, uint16(1))
		f.Add(fr, int64(-1), int64(-1_000_000), int64(1), false, uint16(1<<15))
	}
	f.Fuzz(func(t *testing.T, frame []byte, frameTime, start, end int64, all bool, sel uint16) {
		in := arrowFuzzInput{frameTime, start, end, all, sel &^ (1 << 15)}
		for _, a := range fuzzAudios {
			dec, err := NewArrowDecoder(a, selectFields(a.Channels, in.sel))
			if err != nil {
				t.Fatal(err)
			}
			fuzzArrowAppend(t, "audio "+a.SampleType.String(), dec, frame, in)
		}
	})
}

// imuArrowSeeds are IMU frames in each codec.
func imuArrowSeeds() [][]byte {
	var out [][]byte
	desc := fuzzIMU.Scalar()
	for _, family := range []string{"noise", "step", "specials"} {
		s := familySamples(family, desc.SampleType, len(desc.Channels), 64)
		s.Start = 1_000_000_000
		for _, id := range []ID{Plain, Zstd, S2, ShuffleZstd, Numeric} {
			if fr, err := AppendScalarFrame(nil, desc, s, id); err == nil {
				out = append(out, fr)
			}
		}
	}
	return out
}

func FuzzIMUArrow(f *testing.F) {
	for _, fr := range imuArrowSeeds() {
		f.Add(fr, int64(0), int64(0), int64(0), true, uint16(0))
		f.Add(fr, int64(0), int64(1_010_000_000), int64(1_030_000_000), false, uint16(0x0111))
	}
	desc := fuzzIMU.Scalar()
	names := make([]string, len(desc.Channels))
	for i, c := range desc.Channels {
		names[i] = c.Name
	}
	f.Fuzz(func(t *testing.T, frame []byte, frameTime, start, end int64, all bool, sel uint16) {
		in := arrowFuzzInput{frameTime, start, end, all, sel &^ (1 << 15)}
		opts := selectFields(names, in.sel)
		// The IMU decoder scales counts; the scalar decoder of the same
		// frames does not.
		for _, d := range []signals.Description{fuzzIMU, desc} {
			dec, err := NewArrowDecoder(d, opts)
			if err != nil {
				t.Fatal(err)
			}
			fuzzArrowAppend(t, d.Kind().String(), dec, frame, in)
		}
	})
}
