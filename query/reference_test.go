package query

import (
	"math"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/store"
)

// The data the shape tests query, and the brute-force reference they check
// against: what the producer made, sample by sample, and the documented
// definitions of each shape computed from it the slow, obvious way.

// refSample is one produced sample of a track.
type refSample struct {
	t    int64
	v    []float64 // per channel, as produced (float32 values widened exactly)
	frag uint64
}

// refTrack is one track of the test stream.
type refTrack struct {
	number  uint64
	name    string
	desc    *signals.Scalar
	frameN  int // samples per frame
	samples []refSample
}

// refRun is a run of samples without a gap: from origin, n samples of the
// first track and as many of the others as fit in the same time.
type refRun struct {
	origin int64
	dur    time.Duration
}

// shapeStream is the stream of the shape tests: two tracks — 3-axis
// vibration at 1 kHz (float32) and a 10 Hz temperature (float64) — cut
// into frames of 100 ms (vibration) and 500 ms (temperature), the frames of
// both tracks muxed in 1 s fragments, over three runs: the second after a
// gap of 2.25 s and half a vibration period off the first run's sample
// grid, the third after a gap of 30 ms (30 vibration samples; the
// temperature's last frame of the second run does not fit in it).
func shapeStream(tb testing.TB, st *store.Store, stream string) []*refTrack {
	tb.Helper()
	vib := &refTrack{number: 1, name: "vib", frameN: 100, desc: &signals.Scalar{SampleRate: 1000, SampleType: signals.Float32,
		Channels: []signals.Channel{{Name: "x", Unit: "g"}, {Name: "y", Unit: "g"}, {Name: "z", Unit: "g"}}}}
	temp := &refTrack{number: 2, name: "temp", frameN: 5, desc: &signals.Scalar{SampleRate: 10, SampleType: signals.Float64,
		Channels: []signals.Channel{{Name: "temp", Unit: "°C"}}}}
	tracks := []*refTrack{vib, temp}
	sec := int64(time.Second)
	runs := []refRun{
		{queryBase + 250_000, 4500 * time.Millisecond},
		{queryBase + 250_000 + 6750*int64(time.Millisecond) + 500_000, 3200 * time.Millisecond},
		{queryBase + 250_000 + 9980*int64(time.Millisecond) + 500_000, 2 * time.Second},
	}
	number := uint64(10)
	for _, run := range runs {
		for fragStart := run.origin; fragStart < run.origin+int64(run.dur); fragStart += sec {
			fragEnd := min(fragStart+sec, run.origin+int64(run.dur))
			appendShapeFragment(tb, st, stream, number, tracks, run.origin, fragStart, fragEnd, run.origin+int64(run.dur))
			number += 10
		}
	}
	if err := st.Sync(stream); err != nil {
		tb.Fatal(err)
	}
	return tracks
}

// appendShapeFragment appends the frames of every track whose first sample
// (counted from origin) lies in [from, to) and whose last is before runEnd
// as fragment number.
func appendShapeFragment(tb testing.TB, st *store.Store, stream string, number uint64, tracks []*refTrack, origin, from, to, runEnd int64) {
	tb.Helper()
	var entries []mkv.TrackEntry
	for _, tr := range tracks {
		priv, err := tr.desc.MarshalBinary()
		if err != nil {
			tb.Fatal(err)
		}
		entries = append(entries, mkv.TrackEntry{Number: tr.number, UID: tr.number, Type: mkv.TrackTypeMetadata, CodecID: signals.CodecIDScalar, CodecPrivate: priv})
	}
	type frame struct {
		t     int64
		block mkv.Block
	}
	var frames []frame
	end := from
	for _, tr := range tracks {
		enc, err := codecs.NewScalarEncoder(tr.desc, codecs.Auto)
		if err != nil {
			tb.Fatal(err)
		}
		ch := len(tr.desc.Channels)
		// The frames of this track that start in [from, to).
		first := int(math.Ceil(float64(from-origin) * tr.desc.SampleRate / 1e9 / float64(tr.frameN)))
		for f := first; ; f++ {
			i0 := f * tr.frameN
			start := tr.desc.SampleTime(origin, i0)
			if start >= to || tr.desc.SampleTime(origin, i0+tr.frameN-1) >= runEnd {
				break
			}
			if start < from {
				continue
			}
			var s signals.Samples
			s.Reset(tr.desc.SampleType, ch, tr.frameN)
			s.Start = start
			for i := range tr.frameN {
				rs := refSample{t: tr.desc.SampleTime(origin, i0+i), frag: number}
				for c := range ch {
					// Distinct per sample and channel, exact in float32.
					v := float64(int64(origin/1000)%7919+int64(i0+i))*0.25 + float64(c)*1000 + float64(tr.number)*100000
					if tr.desc.SampleType == signals.Float32 {
						s.F32[i*ch+c] = float32(v)
						v = float64(float32(v))
					} else {
						s.F64[i*ch+c] = v
					}
					rs.v = append(rs.v, v)
				}
				tr.samples = append(tr.samples, rs)
			}
			end = max(end, tr.desc.SampleTime(origin, i0+tr.frameN))
			data, err := enc.AppendFrame(nil, &s)
			if err != nil {
				tb.Fatal(err)
			}
			frames = append(frames, frame{t: start, block: mkv.Block{Track: tr.number, Keyframe: true, Data: data}})
		}
	}
	// Blocks in time order, as a producer muxes them.
	for i := 1; i < len(frames); i++ {
		for j := i; j > 0 && frames[j].t < frames[j-1].t; j-- {
			frames[j], frames[j-1] = frames[j-1], frames[j]
		}
	}
	clusterMS := frames[0].t / int64(time.Millisecond)
	var blocks []mkv.Block
	for _, f := range frames {
		f.block.Timecode = int16(f.t/int64(time.Millisecond) - clusterMS)
		blocks = append(blocks, f.block)
	}
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, Duration: float64(end-frames[0].t) / 1e6})
	b = mkv.AppendTracks(b, entries)
	clusterAt := len(b)
	frag := &store.Fragment{Number: number, ServerTime: frames[0].t + int64(time.Hour), ProducerTime: frames[0].t, Duration: end - frames[0].t,
		ClusterOffset: uint32(clusterAt), Payload: mkv.AppendCluster(b, uint64(clusterMS), blocks)}
	if _, err := st.Append(stream, frag); err != nil {
		tb.Fatalf("append %d: %v", number, err)
	}
}

// inRange is the track's samples with times in [start, end).
func (tr *refTrack) inRange(start, end int64) []refSample {
	var out []refSample
	for _, s := range tr.samples {
		if s.t >= start && s.t < end {
			out = append(out, s)
		}
	}
	return out
}

// refWindow is a window of the reference.
type refWindow struct {
	start int64
	frags []uint64
	v     [][]float64 // per channel, the window's values
}

// refWindows is the windows shape as query.Window defines it, computed from
// the samples in range one grid time at a time.
func refWindows(tr *refTrack, start, end int64, w Window, chans []int) []refWindow {
	anchor, before := w.Anchor, w.StartsBefore
	if anchor == 0 {
		anchor = start
	}
	if before == 0 {
		before = end
	}
	period := 1e9 / tr.desc.SampleRate
	clock := &signals.Scalar{SampleRate: tr.desc.SampleRate}
	samples := tr.inRange(start, end)
	var out []refWindow
	// Every grid time in [start, before): k from far below to far above.
	k := int64(math.Floor(float64(start-anchor)/(period*float64(w.Hop)))) - 2
	for ; ; k++ {
		g := clock.SampleTime(anchor, int(k)*w.Hop)
		if g >= before || g >= end {
			break
		}
		if g < start {
			continue
		}
		first := -1
		for i, s := range samples {
			if s.t >= g-windowSlack {
				first = i
				break
			}
		}
		if first < 0 || float64(samples[first].t-(g-windowSlack)) >= period || first+w.Length > len(samples) {
			continue
		}
		win := refWindow{start: samples[first].t, v: make([][]float64, len(chans))}
		ok := true
		for i := first; i < first+w.Length; i++ {
			if i > first {
				step := samples[i].t - samples[i-1].t
				if step <= 0 || step > int64(1.5*period) {
					ok = false
					break
				}
			}
			if n := len(win.frags); n == 0 || win.frags[n-1] != samples[i].frag {
				win.frags = append(win.frags, samples[i].frag)
			}
			for c, ch := range chans {
				win.v[c] = append(win.v[c], samples[i].v[ch])
			}
		}
		if ok {
			out = append(out, win)
		}
	}
	return out
}

// refAligned is the value of a track's channel at grid time t under the
// policy (query.Align), from all its samples; ok false is a null.
func refAligned(tr *refTrack, ch int, t int64, policy string) (float64, bool) {
	period := 1e9 / tr.desc.SampleRate
	prev, next := -1, -1
	for i, s := range tr.samples {
		if s.t <= t {
			prev = i
		} else {
			next = i
			break
		}
	}
	switch {
	case prev >= 0 && tr.samples[prev].t == t:
		return tr.samples[prev].v[ch], true
	case policy == "previous" && prev >= 0 && float64(t-tr.samples[prev].t) < period:
		return tr.samples[prev].v[ch], true
	case policy == "linear" && prev >= 0 && next >= 0 && tr.samples[next].t-tr.samples[prev].t <= int64(1.5e9/tr.desc.SampleRate):
		p, n := tr.samples[prev], tr.samples[next]
		w := float64(t-p.t) / float64(n.t-p.t)
		return p.v[ch] + w*(n.v[ch]-p.v[ch]), true
	}
	return 0, false
}
