package query

import (
	"math"
	"sort"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sensorium-io/sensorium/codecs"
)

// summaryUse is what an aggregate query takes from the stream's summaries:
// for a fragment whose summary gives exactly what decoding it would (every
// second of it inside the range, the windows on whole seconds), the
// partial statistics of its buckets, read instead of its samples.
type summaryUse struct {
	s      *Service
	stream string
	track  uint64
	desc   uint64
	chans  []int // the summary's channel of each of the query's value columns
	anchor int64
	hopNs  int64 // from one bucket's start to the next
	lenNs  int64 // of a bucket's samples (less than hopNs: samples between windows are left out)
	slack  int64
	start  int64
	end    int64
	firsts []uint64 // the first fragment of each summary file, ascending
	names  []string

	mu    sync.Mutex
	files []*summaryFile // the files read, most recent last; at most summaryFilesHeld
}

// summaryFilesHeld bounds the summary files a query holds parsed: the
// workers read jobs in fragment order, so they are in one file or two.
const summaryFilesHeld = 4

// summaryFile is one summary file's blocks of the query's track.
type summaryFile struct {
	first   uint64
	numbers []uint64        // ascending
	tracks  []*trackSummary // of numbers[i]; nil: no summary of the track
}

// summariesFor returns how p's aggregate query uses summaries, or nil when
// it cannot: the windows are not on whole seconds, the rate is not a whole
// number of samples per second, or the stream has none.
func (s *Service) summariesFor(p *Prepared) *summaryUse {
	a := p.agg
	if a == nil || p.rate != math.Trunc(p.rate) || p.rate < 1 || p.rate > 125e6 {
		return nil
	}
	rate := int(p.rate)
	g := a.grid
	if g.anchor%1e9 != 0 || g.hop%rate != 0 || a.bucketLen%rate != 0 || g.slack != summarySlack {
		return nil
	}
	names, err := s.st.ListDerived(p.req.Stream, summaryFilePrefix)
	if err != nil || len(names) == 0 {
		return nil
	}
	u := &summaryUse{s: s, stream: p.req.Stream, track: p.track, desc: descHash(p.descRaw, p.descTrack),
		anchor: g.anchor, hopNs: int64(g.hop/rate) * 1e9, lenNs: int64(a.bucketLen/rate) * 1e9, slack: g.slack,
		start: p.req.Start, end: p.req.End}
	for _, n := range names {
		if first, ok := parseSummaryFileName(n); ok {
			u.firsts = append(u.firsts, first)
			u.names = append(u.names, n)
		}
	}
	if len(u.firsts) == 0 {
		return nil
	}
	// The query's columns may be some of the channels, in any order.
	full, err := codecs.NewArrowDecoder(p.desc, codecs.ArrowOptions{})
	if err != nil {
		return nil
	}
	fields := full.Schema().Fields()[1:]
	for _, f := range p.samples.Fields()[1:] {
		c := -1
		for i := range fields {
			if fields[i].Name == f.Name && arrow.TypeEqual(fields[i].Type, f.Type) {
				c = i
			}
		}
		if c < 0 {
			return nil
		}
		u.chans = append(u.chans, c)
	}
	return u
}

// covers reports whether fragment number may have a summary: its cost in
// a job is then small.
func (u *summaryUse) covers(number uint64) bool { return number >= u.firsts[0] }

// lookup returns the summary of the query's track in fragment number if it
// can stand for decoding the fragment; nil if not.
func (u *summaryUse) lookup(number uint64) *trackSummary {
	i := sort.Search(len(u.firsts), func(i int) bool { return u.firsts[i] > number }) - 1
	if i < 0 {
		return nil
	}
	f := u.file(i)
	if f == nil {
		return nil
	}
	j := sort.Search(len(f.numbers), func(j int) bool { return f.numbers[j] >= number })
	if j == len(f.numbers) || f.numbers[j] != number {
		return nil
	}
	t := f.tracks[j]
	if t == nil || t.desc != u.desc || t.channels <= maxChan(u.chans) {
		return nil
	}
	for _, b := range t.bins {
		at := b.second * 1e9
		from := at
		if b.early {
			from = at - u.slack
		}
		if from < u.start || at < u.start || at+1e9-u.slack > u.end {
			return nil
		}
	}
	return t
}

func maxChan(c []int) int {
	m := -1
	for _, v := range c {
		m = max(m, v)
	}
	return m
}

// file returns summary file i parsed, reading it if need be; nil if it
// cannot be read.
func (u *summaryUse) file(i int) *summaryFile {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, f := range u.files {
		if f.first == u.firsts[i] {
			return f
		}
	}
	f := &summaryFile{first: u.firsts[i]}
	err := u.s.st.ReadDerived(u.stream, u.names[i], func(b []byte) error {
		fs, err := parseSummary(b, u.track)
		if err != nil {
			return err
		}
		var t *trackSummary
		if len(fs.tracks) == 1 {
			t = &fs.tracks[0]
		}
		if n := len(f.numbers); n == 0 || fs.number > f.numbers[n-1] {
			f.numbers = append(f.numbers, fs.number)
			f.tracks = append(f.tracks, t)
		}
		return nil
	})
	// A torn tail (a block being appended) leaves the blocks before it; a
	// file that does not read at all leaves its fragments to be decoded.
	if err != nil && len(f.numbers) == 0 {
		u.s.log.Debug("query: summaries not used", "stream", u.stream, "file", u.names[i], "err", err)
	}
	if len(u.files) >= summaryFilesHeld {
		u.files = u.files[1:]
	}
	u.files = append(u.files, f)
	return f
}

// appendRows appends the partial statistics of a fragment's summary to b
// (the aggregate plan's partial schema): one row per second, with its
// bucket; seconds between windows are left out, as decoding leaves out
// their samples.
func (u *summaryUse) appendRows(b *array.RecordBuilder, t *trackSummary) int {
	rows := 0
	buckets := b.Field(0).(*array.Int64Builder)
	counts := b.Field(1).(*array.Int64Builder)
	for _, bin := range t.bins {
		off := bin.second*1e9 - u.anchor
		k := off / u.hopNs
		if off%u.hopNs < 0 {
			k--
		}
		if off-k*u.hopNs >= u.lenNs {
			continue
		}
		buckets.Append(k)
		counts.Append(bin.count)
		for c, ch := range u.chans {
			for s := range 4 {
				b.Field(2 + 4*c + s).(*array.Float64Builder).Append(bin.acc[4*ch+s])
			}
		}
		rows++
	}
	return rows
}
