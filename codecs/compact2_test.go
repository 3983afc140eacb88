package codecs

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/signals"
)

// radarLikeScan is n detections as a sensor reports them, at its
// resolutions (0.05 m, 0.1° in radians, 0.1 m/s, 0.5 dBsm, 0.25 dB), in
// clusters of a few detections per target: what version 2's degree and
// binary scales and Exp-Golomb codes are for.
func radarLikeScan(n int, seed uint64) []Detection {
	rng := rand.New(rand.NewPCG(seed, 3))
	q := func(v, res float64) float32 { return float32(float64(int64(math.Round(v/res))) * res) }
	out := make([]Detection, 0, n)
	for len(out) < n {
		r, az, v := 5+rng.Float64()*150, (rng.Float64()*2-1)*0.9, rng.NormFloat64()*15
		for k := 0; k < 1+rng.IntN(5) && len(out) < n; k++ {
			snr := 60 - 20*math.Log10(r) + rng.NormFloat64()*3
			out = append(out, Detection{
				Range: q(r+rng.NormFloat64(), 0.05), Azimuth: q(az+rng.NormFloat64()*0.02, 0.1*math.Pi/180),
				Elevation: q(rng.NormFloat64()*0.01, 0.1*math.Pi/180), RadialVelocity: q(v+rng.NormFloat64()*0.2, 0.1),
				RCS: q(rng.NormFloat64()*5, 0.5), SNR: q(snr, 0.25),
			})
		}
	}
	return out
}

// compactHead reads the head of a float column in version 2's coding: its
// kind and, for a scaled one, the scale selector.
func compactHead(t *testing.T, body []byte) (kind, sel uint64) {
	t.Helper()
	rd := compactReader{bitReader: bitReader{src: body}, size: uint64(len(body)) * 8}
	kind = rd.read(2)
	if kind == compactScale {
		sel = rd.read(2) | rd.read(1)<<2
	}
	return kind, sel
}

// The writer finds what a sensor counted in: 0.1° as a decimal number of
// degrees (version 1 paid 32 bits for it as a float32), 0.25 dB as 1 / 2²,
// elevation on azimuth's scale; and the scan is smaller than version 1's.
func TestCompact2Scales(t *testing.T) {
	scan := radarLikeScan(40, 1)
	col := func(f int, scan []Detection) *signals.Samples {
		s := &signals.Samples{N: len(scan), Channels: 1, Type: signals.Float32, F32: make([]float32, len(scan))}
		for i, d := range scan {
			s.F32[i] = [6]float32{d.Range, d.Azimuth, d.Elevation, d.RadialVelocity, d.RCS, d.SNR}[f]
		}
		return s
	}
	sc := &numericScratch{}
	for _, c := range []struct {
		field     int
		prev      int // a column coded before it in the same frame, or -1
		kind, sel uint64
	}{
		{1, -1, compactScale, scaleDegrees},
		{2, 1, compactScale, scaleSame},
		{5, -1, compactScale, scaleBinary},
	} {
		sc.compactScale = 0
		if c.prev >= 0 {
			var w bitWriter
			writeCompactChannel(&w, col(c.prev, scan), 0, sc, nil, true)
		}
		var w bitWriter
		writeCompactChannel(&w, col(c.field, scan), 0, sc, nil, true)
		body := w.flush()
		if kind, sel := compactHead(t, body); kind != c.kind || sel != c.sel {
			t.Errorf("%s: kind %d, scale %d; want kind %d, scale %d", signals.DetectionFields[c.field].Name, kind, sel, c.kind, c.sel)
		}
	}
	d := &signals.Detections{}
	var v1, v2 int
	for seed := range uint64(50) {
		scan := radarLikeScan(32, seed)
		cols := make([]Column, 6)
		for f := range cols {
			cols[f] = Column{Type: signals.Float32, F32: col(f, scan).F32}
		}
		a, err := appendCompactColumnarFrame(nil, FormatDetections, goldenStart, len(scan), cols, false)
		if err != nil {
			t.Fatal(err)
		}
		b, err := AppendDetectionsFrame(nil, d, goldenStart, scan, nil)
		if err != nil {
			t.Fatal(err)
		}
		v1, v2 = v1+len(a), v2+len(b)
	}
	if 100*v2 > 95*v1 {
		t.Errorf("50 scans: %d bytes in version 4, %d in version 2: not 5 %% smaller", v2, v1)
	}
}

// Residuals of small steps and large jumps get Exp-Golomb codes, whose cost
// grows with the log of a jump instead of escaping it.
func TestCompact2ExpGolomb(t *testing.T) {
	r := []uint64{1000}
	for i := range 40 {
		if i%5 == 0 {
			r = append(r, 3000+uint64(i)*97)
		} else {
			r = append(r, uint64(i%7))
		}
	}
	cv := compactCoding{v2: true, width: 6}
	var w, w1 bitWriter
	writeCompactResiduals2(&w, r, cv)
	writeCompactResiduals(&w1, r, compactCoding{width: 7})
	body := w.flush()
	rd := compactReader{bitReader: bitReader{src: body}, size: uint64(len(body)) * 8}
	w0 := rd.read(cv.width)
	rd.read(uint(w0))
	if coder := rd.read(1); coder != coderEG {
		t.Errorf("coder %d, want Exp-Golomb (%d)", coder, coderEG)
	}
	if len(body) >= len(w1.flush()) {
		t.Errorf("Exp-Golomb: %d bytes, version 1's Rice: %d", len(body), len(w1.buf))
	}
	got := make([]uint64, len(r))
	if err := (&compactReader{bitReader: bitReader{src: body}, size: uint64(len(body)) * 8}).residuals2(got, cv); err != nil {
		t.Fatal(err)
	}
	for i := range r {
		if got[i] != r[i] {
			t.Fatalf("residual %d: %d, want %d", i, got[i], r[i])
		}
	}
}

// Every value survives both coders at every parameter, escapes included:
// the largest 64-bit values, whose Exp-Golomb value would overflow.
func TestCompact2CodersExtremes(t *testing.T) {
	vals := []uint64{0, 1, 2, 3, 1<<23 - 2, 1 << 23, 1<<40 + 5, math.MaxUint64 - 1, math.MaxUint64}
	for _, width := range []uint{5, 6, 7} {
		for coder := range 2 {
			for k := uint(0); k < 64; k += 7 {
				cv := compactCoding{v2: true, width: width}
				var w bitWriter
				for _, u := range vals {
					if width < 7 && bits.Len64(u) >= 1<<width { // not a value of this type
						continue
					}
					if coder == coderRice {
						writeRice2(&w, u, k, cv)
					} else {
						writeEG(&w, u, k, cv)
					}
				}
				body := w.flush()
				rd := compactReader{bitReader: bitReader{src: body}, size: uint64(len(body)) * 8}
				for _, u := range vals {
					if width < 7 && bits.Len64(u) >= 1<<width {
						continue
					}
					limit := compactEscape
					if coder == coderEG {
						limit = egEscape
					}
					q, ended := rd.unary(limit)
					var got uint64
					switch {
					case !ended:
						got = rd.read(uint(rd.read(width)))
					case coder == coderRice:
						got = uint64(q)<<k | rd.read(k)
					default:
						got = ((uint64(1)<<q|rd.read(uint(q)))-1)<<k | rd.read(k)
					}
					if got != u {
						t.Fatalf("width %d coder %d k %d: %d became %d", width, coder, k, u, got)
					}
				}
			}
		}
	}
}

// propertySamples makes a random block as slow sensors and detection lists
// give them: values on a decimal, degree, binary or arbitrary scale, in a
// random walk, in clusters or at random, with specials (NaN payloads, -0,
// infinities, subnormals) sprinkled in.
func propertySamples(rng *rand.Rand, t signals.SampleType, channels, n int) *signals.Samples {
	s := &signals.Samples{Start: 1_700_000_000_000_000_000 + rng.Int64N(3)*rng.Int64N(1e9)}
	s.Reset(t, channels, n)
	for c := range channels {
		scale := [...]float64{0.01, 0.1 * math.Pi / 180, 0.25, 1.0 / 3, 0.05, 1}[rng.IntN(6)]
		v, step := rng.NormFloat64()*1000, math.Exp(rng.NormFloat64()*3)
		shape := rng.IntN(3)
		for i := range n {
			switch shape {
			case 0: // a random walk
				v += rng.NormFloat64() * step
			case 1: // clusters
				if rng.IntN(4) == 0 {
					v = rng.NormFloat64() * 1000
				}
				v += rng.NormFloat64() * step
			default:
				v = rng.NormFloat64() * 1e4
			}
			k := math.Round(v / scale)
			x := k * scale
			j := i*channels + c
			switch t {
			case signals.Int16:
				s.I16[j] = int16(int64(k))
			case signals.Int32:
				s.I32[j] = int32(int64(k))
			case signals.Float32:
				s.F32[j] = float32(x)
				if rng.IntN(20) == 0 {
					s.F32[j] = [...]float32{math.Float32frombits(0x7fc00001 + rng.Uint32()%1000), math.Float32frombits(0x80000000),
						float32(math.Inf(-1)), math.Float32frombits(1 + rng.Uint32()%1000), math.Float32frombits(0xffa00000)}[rng.IntN(5)]
				}
			case signals.Float64:
				s.F64[j] = x
				if rng.IntN(20) == 0 {
					s.F64[j] = [...]float64{math.Float64frombits(0x7ff8000000000001 + rng.Uint64()%1000), math.Copysign(0, -1),
						math.Inf(1), math.Float64frombits(1 + rng.Uint64()%1000), math.Float64frombits(0xfff4000000000000)}[rng.IntN(5)]
				}
			}
		}
	}
	return s
}

// Random blocks round-trip bit for bit through a Compact2 frame (and
// through ScalarEncoder.AppendCompactFrame), and random detection scans
// with extra fields of every type through a version 4 columnar frame.
func TestCompact2RoundTripProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(2026, 12))
	out := &signals.Samples{}
	d := &signals.Detections{Extra: []signals.Field{
		{Name: "id", Type: signals.Int16}, {Name: "track", Type: signals.Int32},
		{Name: "q", Type: signals.Float32}, {Name: "cov", Type: signals.Float64},
	}}
	for iter := range 400 {
		st := signals.SampleTypes()[rng.IntN(4)]
		channels, n := 1+rng.IntN(4), rng.IntN(40)
		if iter%50 == 0 {
			n = 3000
		}
		desc := testDesc(st, channels)
		in := propertySamples(rng, st, channels, n)
		frame, err := AppendScalarFrame(nil, desc, in, Compact2)
		if err != nil {
			t.Fatal(err)
		}
		if err := DecodeScalarFrameAt(frame, floorMillisecond(in.Start), desc, out); err != nil {
			t.Fatalf("iteration %d (%s, %d×%d): %v", iter, st, channels, n, err)
		}
		sameSamples(t, out, in)
		enc, err := NewScalarEncoder(desc, Auto)
		if err != nil {
			t.Fatal(err)
		}
		frame, err = enc.AppendCompactFrame(nil, in)
		if err != nil {
			t.Fatal(err)
		}
		if err := DecodeScalarFrameAt(frame, floorMillisecond(in.Start), desc, out); err != nil {
			t.Fatal(err)
		}
		sameSamples(t, out, in)

		m := rng.IntN(50)
		std := propertySamples(rng, signals.Float32, 6, m)
		dets := make([]Detection, m)
		for i := range dets {
			f := std.F32[i*6 : i*6+6]
			dets[i] = Detection{f[0], f[1], f[2], f[3], f[4], f[5]}
		}
		var extra []Column
		for _, f := range d.Extra {
			e := propertySamples(rng, f.Type, 1, m)
			extra = append(extra, Column{Type: f.Type, I16: e.I16, I32: e.I32, F32: e.F32, F64: e.F64})
		}
		df, err := AppendDetectionsFrame(nil, d, in.Start, dets, extra)
		if err != nil {
			t.Fatal(err)
		}
		if df[1] != ColumnarCompact2Version {
			t.Fatalf("detections written in version %d", df[1])
		}
		tm, got, gotExtra, err := DecodeDetectionsFrame(df, d, nil)
		if err != nil || tm != in.Start || len(got) != m {
			t.Fatalf("iteration %d: time %d, %d detections: %v", iter, tm, len(got), err)
		}
		for i := range dets {
			a, b := dets[i], got[i]
			for f, pair := range [6][2]float32{{a.Range, b.Range}, {a.Azimuth, b.Azimuth}, {a.Elevation, b.Elevation},
				{a.RadialVelocity, b.RadialVelocity}, {a.RCS, b.RCS}, {a.SNR, b.SNR}} {
				if math.Float32bits(pair[0]) != math.Float32bits(pair[1]) {
					t.Fatalf("iteration %d detection %d: %s bits %#08x, want %#08x", iter, i, signals.DetectionFields[f].Name, math.Float32bits(pair[1]), math.Float32bits(pair[0]))
				}
			}
		}
		for e := range extra {
			sameColumn(t, d.Extra[e].Name, &gotExtra[e], &extra[e])
		}
	}
}

// The golden Compact2 frames pin the format: two float64 channels at 0.01
// whose start is off the millisecond, and an int16 pressure's counts on it.
func TestCompact2Golden(t *testing.T) {
	f64 := slowSamples(signals.Float64, 2)
	f64.Start += 250_000
	i16 := &signals.Samples{Start: 1_700_000_000_000_000_000}
	i16.Reset(signals.Int16, 1, 10)
	for i, v := range []int16{12000, 12000, 12001, 12001, 12000, 11999, 12000, 12000, 12000, 12001} {
		i16.I16[i] = v
	}
	for _, g := range []struct {
		file, comment string
		s             *signals.Samples
	}{
		{"compact2_float64_slow.hex", "two channels of ten float64 at 0.01, the start 250 µs after the block time", f64},
		{"compact2_int16_slow.hex", "ten int16 counts of a pressure transmitter, the start on the block time", i16},
	} {
		t.Run(g.file, func(t *testing.T) {
			desc := testDesc(g.s.Type, g.s.Channels)
			got, err := AppendScalarFrame(nil, desc, g.s, Compact2)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", g.file)
			if *update {
				if err := os.WriteFile(path, []byte("# a Compact2 frame (FORMAT.md, \"Compact frame, version 2\"): "+g.comment+"\n"+
					"# regenerate with: go test ./codecs -run Compact2Golden -update\n"+hexLines(got)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := readHex(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("the Compact2 encoder no longer writes the golden bytes:\n got %x\nwant %x", got, want)
			}
			out := &signals.Samples{}
			if err := DecodeScalarFrameAt(want, floorMillisecond(g.s.Start), desc, out); err != nil {
				t.Fatal(err)
			}
			sameSamples(t, out, g.s)
			if err := DecodeScalarFrame(want, desc, out); !errors.Is(err, ErrNeedsBlockTime) {
				t.Fatalf("without the block time: %v", err)
			}
			for cut := range want {
				if err := DecodeScalarFrameAt(want[:cut], 0, desc, out); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("cut to %d of %d bytes: %v", cut, len(want), err)
				}
			}
		})
	}
}

// A Compact2 header that says the start is off the block time must give a
// distance other than 0 (there is one way to write each frame's header).
func TestCompact2HeaderCanonical(t *testing.T) {
	if _, err := ParseScalarHeader([]byte{byte(Compact2), 10<<1 | 1, 0}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a start distance of 0 behind the flag: %v", err)
	}
	h, err := ParseScalarHeaderAt([]byte{byte(Compact2), 10<<1 | 1, 3}, 1000)
	if err != nil || h.N != 10 || h.Start != 998 || h.Size != 3 {
		t.Fatalf("%+v: %v", h, err)
	}
}

// FuzzCompact2RoundTrip: any samples (the fuzzer's bytes read as values of
// the type, NaN payloads and -0 included) round-trip bit for bit through a
// Compact2 frame. Seeds live in testdata/fuzz/FuzzCompact2RoundTrip.
func FuzzCompact2RoundTrip(f *testing.F) {
	for _, st := range signals.SampleTypes() {
		in := slowSamples(st, 2)
		f.Add(rawBytes(in), uint8(st), uint8(2), uint32(0))
	}
	f.Fuzz(func(t *testing.T, raw []byte, st, channels uint8, off uint32) {
		typ := signals.SampleTypes()[int(st)%4]
		ch := 1 + int(channels)%4
		n := len(raw) / (typ.Size() * ch)
		if n > 4096 {
			n = 4096
		}
		in := &signals.Samples{Start: 1_700_000_000_000_000_000 + int64(off%2_000_000)}
		in.Reset(typ, ch, n)
		fromRawBytes(in, raw)
		desc := testDesc(typ, ch)
		frame, err := AppendScalarFrame(nil, desc, in, Compact2)
		if err != nil {
			t.Fatal(err)
		}
		out := &signals.Samples{}
		if err := DecodeScalarFrameAt(frame, floorMillisecond(in.Start), desc, out); err != nil {
			t.Fatal(err)
		}
		sameSamples(t, out, in)
	})
}

// rawBytes is s's samples, little endian.
func rawBytes(s *signals.Samples) []byte {
	var b []byte
	for _, v := range s.I16 {
		b = append(b, byte(v), byte(uint16(v)>>8))
	}
	for _, v := range s.I32 {
		u := uint32(v)
		b = append(b, byte(u), byte(u>>8), byte(u>>16), byte(u>>24))
	}
	for _, v := range s.F32 {
		u := math.Float32bits(v)
		b = append(b, byte(u), byte(u>>8), byte(u>>16), byte(u>>24))
	}
	for _, v := range s.F64 {
		u := math.Float64bits(v)
		for i := range 8 {
			b = append(b, byte(u>>(8*i)))
		}
	}
	return b
}

// fromRawBytes fills s (reset to its shape) from little-endian bytes.
func fromRawBytes(s *signals.Samples, raw []byte) {
	le := func(at, size int) uint64 {
		var u uint64
		for i := range size {
			u |= uint64(raw[at+i]) << (8 * i)
		}
		return u
	}
	for i := range s.I16 {
		s.I16[i] = int16(le(2*i, 2))
	}
	for i := range s.I32 {
		s.I32[i] = int32(le(4*i, 4))
	}
	for i := range s.F32 {
		s.F32[i] = math.Float32frombits(uint32(le(4*i, 4)))
	}
	for i := range s.F64 {
		s.F64[i] = math.Float64frombits(le(8*i, 8))
	}
}

// BenchmarkCompact2Decode decodes slow frames (ten samples) and RADAR scans
// in both versions of the compact coding, and reports the bytes per frame.
func BenchmarkCompact2Decode(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 7))
	p := &signals.Samples{Start: 1_700_000_000_000_000_000}
	p.Reset(signals.Int16, 1, 10)
	v := 12000.0
	for i := range p.I16 {
		v += 0.3 * rng.NormFloat64()
		p.I16[i] = int16(math.Round(v))
	}
	for _, id := range []ID{Compact, Compact2} {
		desc := testDesc(signals.Int16, 1)
		frame, err := AppendScalarFrame(nil, desc, p, id)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("slow-int16/"+id.String(), func(b *testing.B) {
			out := &signals.Samples{}
			b.SetBytes(int64(len(rawBytes(p))))
			for b.Loop() {
				if err := DecodeScalarFrameAt(frame, p.Start, desc, out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(frame)), "B/frame")
		})
	}
	scan := radarLikeScan(32, 9)
	d := &signals.Detections{}
	cols := make([]Column, 6)
	for f := range cols {
		cols[f].Reset(signals.Float32, len(scan))
		for i, x := range scan {
			cols[f].F32[i] = [6]float32{x.Range, x.Azimuth, x.Elevation, x.RadialVelocity, x.RCS, x.SNR}[f]
		}
	}
	for _, v2 := range []bool{false, true} {
		frame, err := appendCompactColumnarFrame(nil, FormatDetections, goldenStart, len(scan), cols, v2)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("detections/version-%d", frame[1]), func(b *testing.B) {
			var dets []Detection
			b.SetBytes(int64(len(scan) * 24))
			for b.Loop() {
				var err error
				if _, dets, _, err = DecodeDetectionsFrame(frame, d, dets); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(frame)), "B/frame")
		})
	}
}

// Compact2 frames reach Arrow with their block time, through the builder
// path and the batch path alike: the times are the samples', the values
// bit for bit.
func TestCompact2Arrow(t *testing.T) {
	desc := testDesc(signals.Float64, 2)
	enc, err := NewScalarEncoder(desc, Auto)
	if err != nil {
		t.Fatal(err)
	}
	var frames []Frame
	var want []float64
	for k := range 5 {
		s := slowSamples(signals.Float64, 2)
		s.Start = desc.SampleTime(1_700_000_000_000_000_000, k*10)
		f, err := enc.AppendCompactFrame(nil, s)
		if err != nil || ID(f[0]) != Compact2 {
			t.Fatalf("frame %d: codec %d: %v", k, f[0], err)
		}
		frames = append(frames, Frame{Data: f, Time: floorMillisecond(s.Start)})
		for i := range s.N {
			want = append(want, s.F64[i*2+1])
		}
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, batch := range []bool{false, true} {
		dec, err := NewArrowDecoder(desc, ArrowOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var rec arrow.RecordBatch
		if batch {
			bd := dec.(BatchDecoder)
			bd.StartBatches(mem, 64)
			for _, f := range frames {
				if _, err := bd.AppendToBatch(f, TimeRange{All: true}); err != nil {
					t.Fatal(err)
				}
			}
			rec = bd.NewRecordBatch()
			bd.Release()
		} else {
			b := array.NewRecordBuilder(mem, dec.Schema())
			for _, f := range frames {
				if _, err := dec.Append(b, f, TimeRange{All: true}); err != nil {
					t.Fatal(err)
				}
			}
			rec = b.NewRecordBatch()
			b.Release()
		}
		times, ch1 := rec.Column(0).(*array.Timestamp), rec.Column(2).(*array.Float64)
		if int(rec.NumRows()) != len(want) {
			t.Fatalf("batch %v: %d rows, want %d", batch, rec.NumRows(), len(want))
		}
		for i := range want {
			if int64(times.Value(i)) != desc.SampleTime(1_700_000_000_000_000_000, i) || math.Float64bits(ch1.Value(i)) != math.Float64bits(want[i]) {
				t.Fatalf("batch %v row %d: time %d value %v, want %d %v", batch, i, times.Value(i), ch1.Value(i), desc.SampleTime(1_700_000_000_000_000_000, i), want[i])
			}
		}
		rec.Release()
	}
}
