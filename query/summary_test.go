package query

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/store"
)

// summarizeAll runs a Summarizer's turns over stream until it has nothing
// left, and returns it.
func summarizeAll(t testing.TB, st *store.Store, stream string, z *Summarizer) *Summarizer {
	t.Helper()
	if z == nil {
		z = NewSummarizer(SummarizerOptions{Store: st, Share: 1})
	}
	for z.turn(stream) {
	}
	return z
}

// The aggregate shape gives the same windows from summaries as from the
// samples — min and max to the bit, mean and RMS to rounding — on whole-second
// grids (tumbling, sliding, spaced; ranges that cut fragments and seconds;
// channels chosen and reordered; across the gaps), and decodes where a
// summary cannot stand for its fragment: grids off whole seconds, and
// tracks too slow to be summarised.
func TestAggregateFromSummaries(t *testing.T) {
	fx := newShapeFixture(t)
	z := summarizeAll(t, fx.st, "s", nil)
	if done, failed := z.Summarised(); done == 0 || failed != 0 {
		t.Fatalf("summarised %d fragments, %d failed", done, failed)
	}
	vib, temp := fx.tracks[0], fx.tracks[1]
	v := vib.samples
	sec := int64(time.Second)
	whole := queryBase // a whole second, before the first sample
	end := v[len(v)-1].t + 1
	cases := []struct {
		name       string
		tr         *refTrack
		fields     []string
		chans      []int
		start, end int64
		w          Window
		summarised bool // some fragment's summary is used
	}{
		{"tumbling 1 s", vib, nil, []int{0, 1, 2}, whole, end, Window{Length: 1000}, true},
		{"tumbling 1 s, end mid-second", vib, []string{"z", "x"}, []int{2, 0}, whole, v[len(v)-1].t - 400*int64(time.Millisecond), Window{Length: 1000}, true},
		{"tumbling 2 s from a later second", vib, []string{"y"}, []int{1}, whole + 3*sec, end, Window{Length: 2000}, true},
		{"sliding 3 s by 1 s", vib, nil, []int{0, 1, 2}, whole, end, Window{Length: 3000, Hop: 1000}, true},
		{"spaced: 1 s every 2 s", vib, []string{"x"}, []int{0}, whole + sec, end, Window{Length: 1000, Hop: 2000}, true},
		{"anchor a second before the range", vib, []string{"x"}, []int{0}, whole + 2*sec + 5, end, Window{Length: 1000, Anchor: whole + sec}, true},
		{"grid off whole seconds", vib, []string{"x"}, []int{0}, v[10].t, end, Window{Length: 1000}, false},
		{"100 ms windows", vib, []string{"x"}, []int{0}, whole, end, Window{Length: 100}, false},
		{"too slow to summarise", temp, nil, []int{0}, whole, temp.samples[len(temp.samples)-1].t + 1, Window{Length: 10}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := refAggregates(tc.tr, tc.start, tc.end, tc.w, tc.chans)
			if len(want) < 2 {
				t.Fatalf("the reference has %d windows: a case that proves little", len(want))
			}
			req := Request{Stream: "s", Track: tc.tr.number, Fields: tc.fields, Start: tc.start, End: tc.end, Shape: "aggregate", Window: tc.w}
			for wi, svc := range fx.svcs {
				before := svc.SummariesUsed()
				sameAggregates(t, fmt.Sprintf("%d workers", wi+1), readAggregates(t, svc, req, wi == 1), want)
				used := svc.SummariesUsed() - before
				if tc.summarised && used == 0 {
					t.Fatalf("%d workers: no summary used", wi+1)
				}
				if !tc.summarised && used != 0 {
					t.Fatalf("%d workers: %d summaries used where none can stand for a fragment", wi+1, used)
				}
			}
			off := req
			off.NoSummaries = true
			before := fx.svcs[0].SummariesUsed()
			sameAggregates(t, "without summaries", readAggregates(t, fx.svcs[0], off, false), want)
			if fx.svcs[0].SummariesUsed() != before {
				t.Fatal("NoSummaries used summaries")
			}
		})
	}
}

// A crash that tears the newest summary file's tail: the next Summarizer
// makes that file again from its first fragment, and queries give the same
// windows. New fragments are summarised after the ones before.
func TestSummariesResumeAfterATornFile(t *testing.T) {
	fx := newShapeFixture(t)
	summarizeAll(t, fx.st, "s", nil)
	names, err := fx.st.ListDerived("s", summaryFilePrefix)
	if err != nil || len(names) != 1 {
		t.Fatalf("summary files %v, %v", names, err)
	}
	var path string
	filepath.WalkDir(fx.st.Dir(), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == names[0] {
			path = p
		}
		return nil
	})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()-5); err != nil {
		t.Fatal(err)
	}
	z := summarizeAll(t, fx.st, "s", nil)
	if done, _ := z.Summarised(); done == 0 {
		t.Fatal("the torn file was not made again")
	}
	var blocks int
	if err := fx.st.ReadDerived("s", names[0], func([]byte) error { blocks++; return nil }); err != nil {
		t.Fatalf("the file made again: %v", err)
	}
	frags, _ := fx.st.Fragments("s", 0, 1000)
	if blocks != len(frags) {
		t.Fatalf("%d blocks for %d fragments", blocks, len(frags))
	}
	v := fx.tracks[0].samples
	req := Request{Stream: "s", Track: 1, Start: queryBase, End: v[len(v)-1].t + 1, Shape: "aggregate", Window: Window{Length: 1000}}
	sameAggregates(t, "after the repair", readAggregates(t, fx.svcs[0], req, false), refAggregates(fx.tracks[0], req.Start, req.End, req.Window, []int{0, 1, 2}))
}

// Run summarises every stream at start-up and what Notify names later.
func TestSummarizerRun(t *testing.T) {
	fx := newShapeFixture(t)
	z := NewSummarizer(SummarizerOptions{Store: fx.st})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- z.Run(ctx) }()
	frags, _ := fx.st.Fragments("s", 0, 1000)
	poll.Until(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n, _ := z.Summarised(); n != uint64(len(frags)) {
			return fmt.Errorf("%d of %d fragments summarised", n, len(frags))
		}
		return nil
	})
	// A stream made later, told of by Notify.
	if _, err := fx.st.CreateStream(store.CreateStreamInput{Name: "later", RetentionHours: 1}); err != nil {
		t.Fatal(err)
	}
	shapeStream(t, fx.st, "later")
	z.Notify("later")
	poll.Until(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n, _ := z.Summarised(); n != 2*uint64(len(frags)) {
			return fmt.Errorf("%d of %d fragments summarised (the later stream's told of by Notify)", n, 2*len(frags))
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A summary stands for its fragment only if every second of it lies inside
// the range; a second with samples in the 2 ns before it (rounding) only if
// those are inside too.
func TestSummaryLookupEdges(t *testing.T) {
	sec := int64(time.Second)
	base := queryBase / sec
	bin := func(s int64, early bool) summaryBin {
		return summaryBin{second: s, count: 10, early: early, acc: make([]float64, 4)}
	}
	cases := []struct {
		name       string
		bins       []summaryBin
		start, end int64
		ok         bool
	}{
		{"inside", []summaryBin{bin(base+1, false), bin(base+2, false)}, queryBase, queryBase + 3*sec, true},
		{"starts at the range's start", []summaryBin{bin(base, false)}, queryBase, queryBase + sec, true},
		{"early sample before the start", []summaryBin{bin(base, true)}, queryBase, queryBase + sec, false},
		{"early sample inside", []summaryBin{bin(base, true)}, queryBase - 2, queryBase + sec, true},
		{"second cut by the end", []summaryBin{bin(base, false)}, queryBase, queryBase + sec - 3, false},
		{"second before the start", []summaryBin{bin(base-1, false), bin(base, false)}, queryBase, queryBase + 2*sec, false},
		{"no seconds", nil, queryBase, queryBase + sec, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := &trackSummary{track: 1, desc: 7, channels: 1, bins: tc.bins}
			u := &summaryUse{track: 1, desc: 7, chans: []int{0}, slack: summarySlack, start: tc.start, end: tc.end,
				firsts: []uint64{5}, files: []*summaryFile{{first: 5, numbers: []uint64{5}, tracks: []*trackSummary{ts}}}}
			if got := u.lookup(5) != nil; got != tc.ok {
				t.Fatalf("usable %v, want %v", got, tc.ok)
			}
		})
	}
}

func TestSummaryBlockRoundTrip(t *testing.T) {
	in := fragmentSummary{number: 1 << 40, tracks: []trackSummary{
		{track: 1, desc: 99, channels: 2, bins: []summaryBin{
			{second: 1_790_000_000, count: 25600, acc: []float64{-1, 1, 0.5, 3, -2, 2, 0, 8}},
			{second: 1_790_000_001, count: 12, early: true, acc: []float64{0, 0, 0, 0, 1, 1, 12, 12}},
		}},
		{track: 3, desc: 5, channels: 1},
	}}
	b := appendSummary(nil, &in)
	out, err := parseSummary(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(out) != fmt.Sprint(in) {
		t.Fatalf("round trip\n got %v\nwant %v", out, in)
	}
	one, err := parseSummary(b, 3)
	if err != nil || len(one.tracks) != 1 || one.tracks[0].track != 3 {
		t.Fatalf("one track: %+v %v", one, err)
	}
	for n := range b {
		if _, err := parseSummary(b[:n], 0); err == nil {
			t.Fatalf("a block cut at %d of %d parses", n, len(b))
		}
	}
}

// A fragment that fails part way through (its payload cut) leaves none of
// its samples in the next fragment's summary: the next one's block is what
// a Summarizer that never saw the bad fragment makes of it.
func TestSummaryAfterAFailedFragment(t *testing.T) {
	fx := newShapeFixture(t)
	infos, err := fx.st.Fragments("s", 0, 2)
	if err != nil || len(infos) != 2 {
		t.Fatalf("fragments %v, %v", infos, err)
	}
	r, err := fx.st.NewReader("s")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var payloads [2][]byte
	for i, fi := range infos {
		f, err := r.Read(fi)
		if err != nil {
			t.Fatal(err)
		}
		payloads[i] = append([]byte(nil), f.Payload...) // the reader reuses its buffer
	}
	tracks := map[uint64]*trackSummarizer{}
	if _, err := summarizeFragment(infos[0].Number, payloads[0][:len(payloads[0])-1], 1000, tracks); err == nil {
		t.Fatal("a cut fragment was summarised")
	}
	got, err := summarizeFragment(infos[1].Number, payloads[1], 1000, tracks)
	if err != nil {
		t.Fatal(err)
	}
	fresh := map[uint64]*trackSummarizer{}
	want, err := summarizeFragment(infos[1].Number, payloads[1], 1000, fresh)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []map[uint64]*trackSummarizer{tracks, fresh} {
		for _, ts := range m {
			ts.release()
		}
	}
	if len(want.tracks) == 0 || len(want.tracks[0].bins) == 0 {
		t.Fatalf("the reference summary is empty: %+v", want)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after a cut fragment, the next one's summary is\n%+v\nwithout it\n%+v", got, want)
	}
}

// Blocks a turn computed from a stream that was deleted and made again
// under its name meanwhile do not reach the new stream, and the Summarizer
// starts the new one afresh.
func TestSummariesOfADeletedStreamDoNotReachItsSuccessor(t *testing.T) {
	st, _ := newTestService(t, "r")
	tracks := shapeStream(t, st, "r")
	z := NewSummarizer(SummarizerOptions{Store: st, Share: 1})
	for z.turn("r") {
	}
	old := z.streams["r"]
	if old == nil || old.file == "" {
		t.Fatal("the stream was not summarised")
	}
	blocks := [][]byte{appendSummary(nil, &fragmentSummary{number: old.next})}
	info, err := st.DescribeStream(store.StreamRef{Name: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteStream(store.StreamRef{Name: "r"}, ""); err != nil {
		t.Fatal(err)
	}
	for time.Now().UnixMilli() <= info.CreationTime.UnixMilli() {
		// the next ms: another ARN
	}
	if _, err := st.CreateStream(store.CreateStreamInput{Name: "r", RetentionHours: 1}); err != nil {
		t.Fatal(err)
	}
	// What the turn that was under way when the stream was deleted writes.
	if err := z.flush("r", old, blocks); err == nil {
		t.Fatal("blocks of the deleted stream were written")
	}
	if names, err := st.ListDerived("r", ""); err != nil || len(names) != 0 {
		t.Fatalf("the new stream has the deleted one's summary files %v (%v)", names, err)
	}
	// The new stream's fragments are summarised from its first.
	appendShapeFragment(t, st, "r", 1, tracks, queryBase, queryBase, queryBase+int64(time.Second), queryBase+int64(time.Second))
	if err := st.Sync("r"); err != nil {
		t.Fatal(err)
	}
	for z.turn("r") {
	}
	names, err := st.ListDerived("r", summaryFilePrefix)
	if err != nil || len(names) != 1 || names[0] != summaryFileName(1) {
		t.Fatalf("the new stream's summary files: %v (%v)", names, err)
	}
}

// A stream of slow tracks only gets no summary file: its fragments are
// passed over and, after newIdleFragments of them, the stream is set aside.
func TestSlowStreamsGetNoSummaryFiles(t *testing.T) {
	st, _ := newTestService(t, "slow")
	temp := &refTrack{number: 1, name: "temp", frameN: 5, desc: &signals.Scalar{SampleRate: 10, SampleType: signals.Float64,
		Channels: []signals.Channel{{Name: "temp", Unit: "°C"}}}}
	sec := int64(time.Second)
	for i := range newIdleFragments + 4 {
		from := queryBase + int64(i)*sec
		appendShapeFragment(t, st, "slow", uint64(i+1), []*refTrack{temp}, queryBase, from, from+sec, queryBase+int64(newIdleFragments+4)*sec)
	}
	if err := st.Sync("slow"); err != nil {
		t.Fatal(err)
	}
	z := NewSummarizer(SummarizerOptions{Store: st, Share: 1})
	if !z.turn("slow") {
		t.Fatal("the first turn does not ask for the next")
	}
	// newIdleFragments read, not the four after them in the same batch.
	if s := z.streams["slow"]; s == nil || s.next != uint64(newIdleFragments+1) || s.idle != newIdleFragments || !s.skipUntil.IsZero() {
		t.Fatalf("after the first turn the slow stream's state is %+v: want its first %d fragments read, and no more", s, newIdleFragments)
	}
	for z.turn("slow") {
	}
	if names, err := st.ListDerived("slow", ""); err != nil || len(names) != 0 {
		t.Fatalf("a stream of slow tracks has summary files %v (%v)", names, err)
	}
	// Then it is set aside at its newest fragment: no fragment of it is
	// read for a while, a new one neither.
	s := z.streams["slow"]
	if s == nil || s.skipUntil.IsZero() || s.next != uint64(newIdleFragments+4) {
		t.Fatalf("the slow stream's state %+v: want it set aside at its newest fragment", s)
	}
	from := queryBase + int64(newIdleFragments+4)*sec
	appendShapeFragment(t, st, "slow", uint64(newIdleFragments+5), []*refTrack{temp}, queryBase, from, from+sec, from+sec)
	if err := st.Sync("slow"); err != nil {
		t.Fatal(err)
	}
	z.turn("slow")
	if s := z.streams["slow"]; s.skipUntil.IsZero() || s.next != uint64(newIdleFragments+4) {
		t.Fatalf("the slow stream's state %+v: want it still set aside", s)
	}
	if names, _ := st.ListDerived("slow", ""); len(names) != 0 {
		t.Fatalf("a stream of slow tracks has summary files %v", names)
	}
}

// A stream of large fragments without a summarised track (a camera's) is
// set aside after idleBytes of them rather than idleFragments: deciding
// means reading each back whole, and a 4K camera's fragments are 30 MB each.
func TestLargeUnsummarisedFragmentsAreSetAsideByBytes(t *testing.T) {
	st, _ := newTestService(t, "cam")
	const size = 6 << 20
	frame := bytes.Repeat([]byte{0x5a}, size)
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale})
	b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeVideo, CodecID: "V_MPEG4/ISO/AVC"}})
	head := len(b)
	for i := range 8 {
		start := queryBase + int64(i)*int64(time.Second)
		f := &store.Fragment{Number: uint64(i + 1), ServerTime: start + int64(time.Second), ProducerTime: start, Duration: int64(time.Second),
			ClusterOffset: uint32(head), Payload: mkv.AppendCluster(bytes.Clone(b[:head]), uint64(start/int64(time.Millisecond)), []mkv.Block{{Track: 1, Keyframe: true, Data: frame}})}
		if _, err := st.Append("cam", f); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Sync("cam"); err != nil {
		t.Fatal(err)
	}
	z := NewSummarizer(SummarizerOptions{Store: st, Share: 1})
	z.turn("cam")
	read := (idleBytes + size - 1) / size // 3 of 6 MiB reach 16 MiB
	if s := z.streams["cam"]; s == nil || s.next != uint64(read+1) {
		t.Fatalf("after the first turn the camera's state is %+v: want %d fragments read, not all 8", s, read)
	}
	z.turn("cam")
	if s := z.streams["cam"]; s.skipUntil.IsZero() || s.next != 8 {
		t.Fatalf("the camera's state %+v: want it set aside at its newest fragment", s)
	}
}

// A stream that has had a summarised track (1 kHz vibration) is not set
// aside when that track pauses for a few fragments (newIdleFragments of
// them, the slow temperature going on): the fragments after the pause are
// summarised as they come. Only a stream that never had one is passed over
// that soon.
func TestPausedTrackDoesNotSetAStreamAside(t *testing.T) {
	st, _ := newTestService(t, "rig")
	vib := &refTrack{number: 1, name: "vib", frameN: 100, desc: &signals.Scalar{SampleRate: 1000, SampleType: signals.Float32,
		Channels: []signals.Channel{{Name: "x", Unit: "g"}}}}
	temp := &refTrack{number: 2, name: "temp", frameN: 5, desc: &signals.Scalar{SampleRate: 10, SampleType: signals.Float64,
		Channels: []signals.Channel{{Name: "temp", Unit: "°C"}}}}
	sec := int64(time.Second)
	const n = 20
	for i := range n {
		from := queryBase + int64(i)*sec
		tracks := []*refTrack{vib, temp}
		if i >= 3 && i < 3+newIdleFragments { // the vibration sensor pauses
			tracks = []*refTrack{temp}
		}
		appendShapeFragment(t, st, "rig", uint64(i+1), tracks, queryBase, from, from+sec, queryBase+n*sec)
	}
	if err := st.Sync("rig"); err != nil {
		t.Fatal(err)
	}
	z := NewSummarizer(SummarizerOptions{Store: st, Share: 1})
	for z.turn("rig") {
	}
	if s := z.streams["rig"]; !s.skipUntil.IsZero() || s.next != n+1 {
		t.Fatalf("after a pause of %d fragments the stream's state is %+v: want every fragment summarised, not set aside", newIdleFragments, s)
	}
}
