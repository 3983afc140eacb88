package replicate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/signals"
)

// Decimation: a stream of sampled signals (scalar tracks) may reach the
// centre at a fraction of its rate, for a centre that keeps an overview of
// many sites. Each output sample is the mean, per channel, of Factor input
// samples: a block of the output's sampling grid, which is counted from the
// Unix epoch (block b starts at SampleTime(0, b) of the output rate), so
// that the blocks are the same whatever fragment they come from and however
// often a fragment is sent. A block cut by a fragment boundary belongs to
// the fragment that holds its first sample and is averaged over that
// fragment's samples; the next fragment leaves out the rest of it (and so
// does the stream's first fragment with a block begun before its first
// sample: it is taken as cut). The output sample's time is its block's
// start.
// Other tracks (video, audio, LIDAR …) pass unchanged, and so do the
// fragment's producer timestamp, Info and tags.

// Decimation is one --decimate rule: the streams matching Pattern reach the
// centre with their scalar tracks at 1/Factor of their rate.
type Decimation struct {
	Pattern string
	Factor  int
}

// ParseDecimations reads "pattern=factor,…" (e.g. "vib-*=10,temp-?=100").
func ParseDecimations(s string) ([]Decimation, error) {
	var out []Decimation
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, f, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not pattern=factor", part)
		}
		if err := CheckPatterns([]string{p}); err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 || n > 1_000_000 {
			return nil, fmt.Errorf("%q: the factor must be a whole number from 2 to 1000000", part)
		}
		out = append(out, Decimation{Pattern: strings.TrimSpace(p), Factor: n})
	}
	return out, nil
}

// decimationFor is the factor for stream (the first matching rule), 0 for none.
func decimationFor(rules []Decimation, stream string) int {
	for _, d := range rules {
		if ok, _ := path.Match(d.Pattern, stream); ok {
			return d.Factor
		}
	}
	return 0
}

// scalarTrack is a scalar track of the document being decimated.
type scalarTrack struct {
	in, out *signals.Scalar
	frames  []signals.Samples // the fragment's frames of the track, decoded
}

// decimateDocument rewrites one MKV document (a fragment with its tags)
// with its scalar tracks at 1/factor of their rate.
func decimateDocument(doc []byte, factor int) ([]byte, error) {
	rd := mkv.NewReader(bytes.NewReader(doc), mkv.MaxElementSize(maxChunk))
	var out []byte
	scalars := map[uint64]*scalarTrack{}
	var blocks []mkv.Block
	var clusterTC uint64
	for {
		it, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decimate: %w", err)
		}
		switch it.Kind {
		case mkv.ItemEBMLHeader:
			out = mkv.AppendEBMLHeader(out, it.Header.DocType)
			out = mkv.AppendSegmentStart(out)
		case mkv.ItemInfo, mkv.ItemTags:
			out = append(out, it.Raw...)
		case mkv.ItemTracks:
			entries := slices.Clone(it.Tracks)
			for i := range entries {
				te := &entries[i]
				if te.CodecID != signals.CodecIDScalar {
					continue
				}
				in, err := signals.ParseScalar(te.CodecPrivate)
				if err != nil {
					return nil, fmt.Errorf("decimate: track %d: %w", te.Number, err)
				}
				o := *in
				o.Channels = slices.Clone(in.Channels)
				o.SampleRate = in.SampleRate / float64(factor)
				if err := o.Validate(); err != nil {
					return nil, fmt.Errorf("decimate: track %d at %g Hz / %d: %w", te.Number, in.SampleRate, factor, err)
				}
				if te.CodecPrivate, err = o.MarshalBinary(); err != nil {
					return nil, fmt.Errorf("decimate: track %d: %w", te.Number, err)
				}
				te.DefaultDuration = 0 // a frame now spans what the fragment's frames did
				scalars[te.Number] = &scalarTrack{in: in, out: &o}
			}
			out = mkv.AppendTracks(out, entries)
		case mkv.ItemClusterStart:
			clusterTC, blocks = it.Timecode, blocks[:0]
			for _, st := range scalars {
				st.frames = st.frames[:0]
			}
		case mkv.ItemBlock:
			b := *it.Block
			st := scalars[b.Track]
			if st == nil {
				b.Data = slices.Clone(b.Data)
				blocks = append(blocks, b)
				continue
			}
			var s signals.Samples
			if err := codecs.DecodeScalarFrameAt(b.Data, it.Time, st.in, &s); err != nil {
				return nil, fmt.Errorf("decimate: track %d: %w", b.Track, err)
			}
			st.frames = append(st.frames, s)
		case mkv.ItemClusterEnd:
			for _, num := range sortedKeys(scalars) {
				frames, err := scalars[num].decimate(factor)
				if err != nil {
					return nil, fmt.Errorf("decimate: track %d: %w", num, err)
				}
				for _, f := range frames {
					rel := f.Start/1e6 - int64(clusterTC)
					if rel < math.MinInt16 || rel > math.MaxInt16 {
						return nil, fmt.Errorf("decimate: track %d: a frame %d ms from its cluster", num, rel)
					}
					data, err := codecs.AppendScalarFrame(nil, scalars[num].out, &f, codecs.Plain)
					if err != nil {
						return nil, fmt.Errorf("decimate: track %d: %w", num, err)
					}
					blocks = append(blocks, mkv.Block{Track: num, Timecode: int16(rel), Keyframe: true, Data: data})
				}
			}
			slices.SortStableFunc(blocks, func(a, b mkv.Block) int { return int(a.Timecode) - int(b.Timecode) })
			out = mkv.AppendCluster(out, clusterTC, blocks)
		}
	}
}

func sortedKeys(m map[uint64]*scalarTrack) []uint64 {
	keys := make([]uint64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// decimate averages the track's frames into the output grid's blocks: one
// output frame per run of consecutive blocks (a gap in the input starts a
// new one).
func (st *scalarTrack) decimate(factor int) ([]signals.Samples, error) {
	ch := len(st.in.Channels)
	var outFrames []signals.Samples
	var run []float64 // means of the current run's blocks, channel-interleaved
	runStart := int64(0)
	sums := make([]float64, ch)
	count := 0
	cur := int64(math.MinInt64) // the block being summed
	next := int64(0)            // start time of the block after cur
	flushBlock := func() {
		if count == 0 {
			return
		}
		for c := range sums {
			run = append(run, sums[c]/float64(count))
			sums[c] = 0
		}
		count = 0
	}
	closeRun := func() {
		if len(run) > 0 {
			outFrames = append(outFrames, toSamples(st.out.SampleType, ch, st.out.SampleTime(0, int(runStart)), run))
		}
		run = nil
	}
	first := true
	skip := int64(math.MinInt64) // a block begun in the previous fragment: left out
	for fi := range st.frames {
		f := &st.frames[fi]
		for i := 0; i < f.N; i++ {
			t := st.in.SampleTime(f.Start, i)
			if cur == math.MinInt64 || t >= next || t < st.out.SampleTime(0, int(cur)) {
				b, err := blockOf(st.out, t)
				if err != nil {
					return nil, err
				}
				if first {
					first = false
					if st.in.SampleTime(t, -1) >= st.out.SampleTime(0, int(b)) {
						skip = b
					}
				}
				if b == skip {
					continue
				}
				switch {
				case cur == math.MinInt64:
					runStart = b
				case b == cur+1:
					flushBlock()
				case b > cur+1:
					flushBlock()
					closeRun()
					runStart = b
				default:
					return nil, fmt.Errorf("sample at %d goes back before block %d", t, cur)
				}
				cur, next = b, st.out.SampleTime(0, int(b)+1)
			}
			for c := 0; c < ch; c++ {
				sums[c] += f.Value(i*ch + c)
			}
			count++
		}
	}
	flushBlock()
	closeRun()
	return outFrames, nil
}

// blockOf is the output block holding time t: the b with
// SampleTime(0, b) ≤ t < SampleTime(0, b+1). The estimate in 200-bit
// floating point is off by at most one either way; a time whose block is
// not found within a few steps (near the ends of the int64 range, where
// SampleTime saturates) is refused.
func blockOf(d *signals.Scalar, t int64) (int64, error) {
	r := new(big.Float).SetPrec(200).SetFloat64(d.SampleRate)
	x := new(big.Float).SetPrec(200).SetInt64(t)
	x.Mul(x, r)
	x.Quo(x, big.NewFloat(1e9).SetPrec(200))
	b, _ := x.Int64()
	for step := 0; ; step++ {
		switch {
		case step > 4 || b <= math.MinInt64+1 || b >= math.MaxInt64-1:
			return 0, fmt.Errorf("a sample at %d ns is outside the times a grid of %g Hz can count", t, d.SampleRate)
		case d.SampleTime(0, int(b)+1) <= t:
			b++
		case d.SampleTime(0, int(b)) > t:
			b--
		default:
			return b, nil
		}
	}
}

// toSamples makes a block of type t from means, rounding to the nearest
// integer (and clamping) for integer types.
func toSamples(t signals.SampleType, ch int, start int64, means []float64) signals.Samples {
	var s signals.Samples
	s.Reset(t, ch, len(means)/ch)
	s.Start = start
	for k, v := range means {
		switch t {
		case signals.Int16:
			s.I16[k] = int16(max(min(math.Round(v), math.MaxInt16), math.MinInt16))
		case signals.Int32:
			s.I32[k] = int32(max(min(math.Round(v), math.MaxInt32), math.MinInt32))
		case signals.Float32:
			s.F32[k] = float32(v)
		default:
			s.F64[k] = v
		}
	}
	return s
}
