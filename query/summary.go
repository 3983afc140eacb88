package query

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/signals"
)

// Summaries (SUMMARIES.md): per fragment, per sampled track, the count,
// minimum, maximum, sum and sum of squares of each channel's samples in each
// whole second of the Unix epoch — what the aggregate shape needs of a
// fragment whose seconds all lie inside the query's windows, so that a day
// of 25.6 kHz vibration at 1 s resolution reads 86,400 summaries instead of
// decoding two billion samples. The Summarizer writes them, after the
// fragments are stored, into the stream's derived files (sealed like the
// fragments); a query uses a fragment's summary when it gives exactly what
// decoding the fragment would, and decodes the fragment otherwise (at the
// range's ends, off a whole-second grid, not summarised yet).

const (
	summaryVersion = 1
	// summaryFilePrefix names a stream's summary files: the prefix and the
	// number of the first fragment the file describes, 20 digits.
	summaryFilePrefix = "summary-"
	// summaryFileBlocks is how many fragments one file describes at most:
	// a query reads whole files, so they stay small (about an hour of 1 s
	// fragments), and retention removes whole files.
	summaryFileBlocks = 4096
	// summarySlack is where a second's bin starts before the second: sample
	// times are rounded to the ns twice (signals.SampleTime), so the sample
	// a producer took at the second may be read 1 or 2 ns before it. It is
	// the windows grid's slack (windowSlack), which a summary must share to
	// put each sample in the window a decoded one goes to.
	summarySlack = windowSlack
)

func summaryFileName(first uint64) string {
	return fmt.Sprintf("%s%020d", summaryFilePrefix, first)
}

func parseSummaryFileName(name string) (uint64, bool) {
	rest, ok := strings.CutPrefix(name, summaryFilePrefix)
	if !ok || len(rest) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	return n, err == nil
}

// summaryBin is one second of one track's samples in one fragment: the
// samples whose times are in [Second·10⁹ − 2, (Second+1)·10⁹ − 2) ns.
type summaryBin struct {
	second int64
	count  int64
	// early: some sample is in the 2 ns before the second — a query that
	// starts at the second leaves it out, so it cannot use the bin there.
	early bool
	acc   []float64 // per channel: min, max, sum, sum of squares
}

// trackSummary is one track's bins in one fragment.
type trackSummary struct {
	track    uint64
	desc     uint64 // descHash of the track's description
	channels int
	bins     []summaryBin
}

// fragmentSummary is a fragment's block: the summaries of its tracks that
// are summarised (none, when it has no such track).
type fragmentSummary struct {
	number uint64
	tracks []trackSummary
}

// descHash identifies a track's description: a summary is used only for
// the description the query decodes with.
func descHash(codecPrivate []byte, id trackIdentity) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id.codecID))
	h.Write([]byte{0})
	h.Write(codecPrivate)
	fmt.Fprintf(h, "\x00%v", id.audio)
	return h.Sum64()
}

// appendSummary encodes a fragment's block (SUMMARIES.md, "Block").
func appendSummary(dst []byte, fs *fragmentSummary) []byte {
	dst = append(dst, summaryVersion)
	dst = binary.AppendUvarint(dst, fs.number)
	dst = binary.AppendUvarint(dst, uint64(len(fs.tracks)))
	for _, t := range fs.tracks {
		dst = binary.AppendUvarint(dst, t.track)
		dst = binary.LittleEndian.AppendUint64(dst, t.desc)
		dst = binary.AppendUvarint(dst, uint64(t.channels))
		dst = binary.AppendUvarint(dst, uint64(len(t.bins)))
		prev := int64(0)
		for i, b := range t.bins {
			if i == 0 {
				dst = binary.AppendVarint(dst, b.second)
			} else {
				dst = binary.AppendUvarint(dst, uint64(b.second-prev))
			}
			prev = b.second
			flag := uint64(0)
			if b.early {
				flag = 1
			}
			dst = binary.AppendUvarint(dst, uint64(b.count)<<1|flag)
			for _, v := range b.acc {
				dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
			}
		}
	}
	return dst
}

var errSummaryFormat = errors.New("query: malformed summary block")

// parseSummary decodes a block. With only ≠ 0 it keeps that track's
// summary alone (a query reads one track).
func parseSummary(b []byte, only uint64) (fragmentSummary, error) {
	var fs fragmentSummary
	if len(b) < 1 || b[0] != summaryVersion {
		return fs, errSummaryFormat
	}
	r := bytes.NewReader(b[1:])
	var err error
	uv := func() uint64 {
		if err != nil {
			return 0
		}
		var v uint64
		v, err = binary.ReadUvarint(r)
		return v
	}
	u64 := func() uint64 {
		if err != nil {
			return 0
		}
		var x [8]byte
		if _, e := io.ReadFull(r, x[:]); e != nil {
			err = e
		}
		return binary.LittleEndian.Uint64(x[:])
	}
	fs.number = uv()
	nt := uv()
	for i := uint64(0); i < nt && err == nil; i++ {
		t := trackSummary{track: uv(), desc: u64()}
		ch, nb := uv(), uv()
		if err != nil || ch == 0 || ch > 1<<12 || nb > uint64(r.Len()) {
			return fs, errSummaryFormat
		}
		t.channels = int(ch)
		keep := only == 0 || t.track == only
		if keep {
			t.bins = make([]summaryBin, 0, nb)
		}
		prev := int64(0)
		for j := uint64(0); j < nb && err == nil; j++ {
			var sec int64
			if j == 0 {
				sec, err = binary.ReadVarint(r)
			} else {
				sec = prev + int64(uv())
			}
			prev = sec
			cf := uv()
			bin := summaryBin{second: sec, count: int64(cf >> 1), early: cf&1 != 0}
			if keep {
				bin.acc = make([]float64, 4*t.channels)
			}
			for k := 0; k < 4*t.channels; k++ {
				v := math.Float64frombits(u64())
				if keep {
					bin.acc[k] = v
				}
			}
			if keep {
				t.bins = append(t.bins, bin)
			}
		}
		if keep {
			fs.tracks = append(fs.tracks, t)
		}
	}
	if err != nil {
		return fs, fmt.Errorf("%w: %v", errSummaryFormat, err)
	}
	return fs, nil
}

// summarizable reports whether a track's description is summarised, and
// its rate: sampled at a whole number of samples per second (so that a
// second is a whole number of samples, and a grid of whole seconds is one of
// samples), with channels the aggregate shape reads, fast enough
// (minRate samples per second over its channels) that decoding it costs
// more than reading summaries.
func summarizable(desc signals.Description, minRate float64) (rate int, schema *arrow.Schema, ok bool) {
	r, sampled := sampleRate(desc)
	if !sampled || r != math.Trunc(r) || r < 1 || r > 125e6 {
		return 0, nil, false
	}
	dec, err := codecs.NewArrowDecoder(desc, codecs.ArrowOptions{})
	if err != nil {
		return 0, nil, false
	}
	s := dec.Schema()
	for _, f := range s.Fields()[1:] {
		switch f.Type.ID() {
		case arrow.FLOAT32, arrow.FLOAT64, arrow.INT16, arrow.INT32:
		default:
			return 0, nil, false
		}
	}
	if r*float64(s.NumFields()-1) < minRate {
		return 0, nil, false
	}
	return int(r), s, true
}

// secondsPlan is the aggregate plan of one-second buckets on the epoch's
// whole seconds at a rate: what a summary's bins are.
func secondsPlan(rate int) *aggPlan {
	period := 1e9 / float64(rate)
	grid := &windowPlan{length: rate, hop: rate, anchor: 0, clock: &signals.Scalar{SampleRate: float64(rate)},
		period: period, slack: min(summarySlack, int64(period/4))}
	return &aggPlan{grid: grid, bucketLen: rate, span: 1}
}

// trackSummarizer summarises one track of the fragments of one stream.
type trackSummarizer struct {
	number   uint64
	desc     uint64
	channels int
	dec      codecs.ArrowDecoder
	rb       *array.RecordBuilder
	plan     *aggPlan
	bad      bool // the fragment's samples are not in time order: no summary
}

func newTrackSummarizer(t *mkv.TrackEntry, minRate float64) (*trackSummarizer, bool) {
	desc, err := describeTrack(t)
	if err != nil {
		return nil, false
	}
	rate, schema, ok := summarizable(desc, minRate)
	if !ok {
		return nil, false
	}
	dec, err := codecs.NewArrowDecoder(desc, codecs.ArrowOptions{})
	if err != nil {
		return nil, false
	}
	return &trackSummarizer{number: t.Number, desc: descHash(t.CodecPrivate, identityOf(t)), channels: schema.NumFields() - 1,
		dec: dec, rb: array.NewRecordBuilder(memory.DefaultAllocator, dec.Schema()), plan: secondsPlan(rate)}, true
}

func (ts *trackSummarizer) release() { ts.rb.Release() }

// summarizeFragment decodes a fragment's summarised tracks and returns its
// block. tracks caches the summarisers of the stream's tracks by their
// description; it is updated when a fragment's tracks differ.
func summarizeFragment(number uint64, payload []byte, minRate float64, tracks map[uint64]*trackSummarizer) (fs fragmentSummary, err error) {
	fs = fragmentSummary{number: number}
	defer func() {
		if err != nil {
			// A fragment that fails part way leaves samples (and decoder
			// state) behind: the next fragment starts from new summarisers,
			// so that none of this one's samples reach its summary.
			for n, ts := range tracks {
				ts.release()
				delete(tracks, n)
			}
		}
	}()
	fc := &codecs.FragmentContext{Number: number, Tags: map[string]string{}}
	var active []*trackSummarizer
	byNumber := map[uint64]*trackSummarizer{}
	mr := mkv.NewBytesReader(payload)
	for {
		it, err := mr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fs, err
		}
		switch it.Kind {
		case mkv.ItemTracks:
			for i := range it.Tracks {
				t := &it.Tracks[i]
				h := descHash(t.CodecPrivate, identityOf(t))
				ts := tracks[t.Number]
				if ts == nil || ts.desc != h {
					if ts != nil {
						ts.release()
						delete(tracks, t.Number)
					}
					var ok bool
					if ts, ok = newTrackSummarizer(t, minRate); !ok {
						continue
					}
					tracks[t.Number] = ts
				}
				ts.bad = false
				active = append(active, ts)
				byNumber[t.Number] = ts
			}
		case mkv.ItemTags:
			for _, t := range it.Tags {
				fc.Tags[t.Name] = t.Value
			}
		case mkv.ItemBlock:
			ts := byNumber[it.Block.Track]
			if ts == nil {
				continue
			}
			frame := codecs.Frame{Data: it.Block.Data, Time: it.Time, Key: it.Block.Keyframe, Fragment: fc}
			if _, err := ts.dec.Append(ts.rb, frame, codecs.TimeRange{All: true}); err != nil {
				return fs, fmt.Errorf("track %d: %w", it.Block.Track, err)
			}
		}
	}
	for _, ts := range active {
		rec := ts.rb.NewRecordBatch()
		// A track without samples in the fragment has a summary of no
		// seconds: a query then need not read the fragment either.
		if t, ok := ts.bins(rec); ok {
			fs.tracks = append(fs.tracks, t)
		}
		rec.Release()
	}
	return fs, nil
}

// bins cuts a fragment's samples of the track into seconds; not ok when
// their times are not in order (a second would come twice).
func (ts *trackSummarizer) bins(rec arrow.RecordBatch) (trackSummary, bool) {
	t := trackSummary{track: ts.number, desc: ts.desc, channels: ts.channels}
	if rec.NumRows() == 0 {
		return t, true
	}
	times := rec.Column(0).(*array.Timestamp).TimestampValues()
	for _, r := range ts.plan.runs(times, nil) {
		for i := r.i + 1; i < r.j; i++ {
			if times[i] < times[i-1] {
				return t, false
			}
		}
		if n := len(t.bins); n > 0 && t.bins[n-1].second >= r.bucket {
			return t, false
		}
		bin := summaryBin{second: r.bucket, count: int64(r.j - r.i), early: int64(times[r.i]) < r.bucket*1e9, acc: make([]float64, 4*ts.channels)}
		for c := range ts.channels {
			mn, mx, sum, sq, ok := summarizeColumn(rec.Column(c+1), r.i, r.j)
			if !ok {
				return t, false
			}
			copy(bin.acc[4*c:], []float64{mn, mx, sum, sq})
		}
		t.bins = append(t.bins, bin)
	}
	return t, true
}
