package sampletable

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/sensorium-io/sensorium/signals"
)

// A Chunk is a block of evenly spaced samples of every channel: one frame
// of a scalar track. Chunks are cut at the same places whenever the same
// file is read with the same options, so that Index names the same samples
// in every run of an import (what lets an import resume).
type Chunk struct {
	Index   int64 // from 0, over the whole file
	Samples signals.Samples
	Where   string // the first row's place in the file, for messages
}

// Limits of a chunk: a frame of at most MaxChunkDuration of samples and
// MaxChunkBytes of raw values, which the codecs make no larger than a
// fragment of the bus's default size (4 MiB, or a stock NATS server's 1 MB).
const (
	MaxChunkDuration = 10 * time.Second
	MaxChunkBytes    = 768 << 10
	// MaxFramePeriod is the longest sample period a frame can have: a frame
	// of one sample lasts a period, and a fragment at most 30 s.
	MaxFramePeriod = 30 * time.Second
)

// ChunkSamples is how many samples per channel a chunk holds for a signal
// of this rate, channel count and sample type.
func ChunkSamples(d *signals.Scalar) int {
	n := int(math.Floor(d.SampleRate * MaxChunkDuration.Seconds()))
	n = min(n, MaxChunkBytes/(len(d.Channels)*d.SampleType.Size()))
	return max(n, 1)
}

// Stats describe what a Chunker has seen.
type Stats struct {
	Rows   int64
	Chunks int64
	// First is the time of the first sample and End that of the last
	// sample plus a period (ns).
	First, End int64
	// Gaps counts places where samples are missing (the time is a period
	// or more past the grid); LongestGap is the longest in ns.
	Gaps         int64
	LongestGap   int64
	LongestGapAt string
	// Retimed counts places where the time column drifts more than half a
	// period from the rate's grid without a whole sample missing; a new
	// block starts there at the file's time.
	Retimed   int64
	RetimedAt string // the first one
}

// Chunker cuts rows into chunks. Samples come from the rows in order; a
// row's time (when the table has one) must be within half a period of the
// grid SampleTime(runStart, k) of the current run, or else a new run
// starts at it: a gap (time jumps ahead by a period or more) or a retiming
// (the file's clock drifted). Times that do not increase are refused.
type Chunker struct {
	desc    *signals.Scalar
	size    int
	period  float64 // ns
	tol     float64 // ns: half a period
	origin  int64
	inRun   bool
	runT    int64 // time of the run's first sample
	runN    int64 // samples in the run so far
	lastT   int64
	cur     *Chunk
	next    int64
	free    chan *Chunk
	stats   Stats
	started bool
}

// NewChunker returns a chunker of size samples per channel per chunk for
// desc. start is the time of the first sample of a table without a time
// column (ignored when the batches carry times).
func NewChunker(desc *signals.Scalar, size int, start int64) *Chunker {
	p := 1e9 / desc.SampleRate
	return &Chunker{desc: desc, size: size, period: p, tol: p / 2, origin: start, free: make(chan *Chunk, 64)}
}

// Stats returns what the chunker has seen so far.
func (c *Chunker) Stats() Stats { return c.stats }

// Release gives a chunk's buffers back for reuse; the chunk must not be
// used after. It may be called from any goroutine.
func (c *Chunker) Release(ch *Chunk) {
	select {
	case c.free <- ch:
	default:
	}
}

func (c *Chunker) newChunk(start int64, where string) *Chunk {
	var ch *Chunk
	select {
	case ch = <-c.free:
	default:
		ch = &Chunk{}
	}
	ch.Samples.Reset(c.desc.SampleType, len(c.desc.Channels), c.size)
	ch.Index = c.next
	c.next++
	ch.Samples.Start = start
	ch.Samples.N = 0
	ch.Where = where
	return ch
}

// emitCur hands the current chunk to emit.
func (c *Chunker) emitCur(emit func(*Chunk) error) error {
	ch := c.cur
	if ch == nil || ch.Samples.N == 0 {
		return nil
	}
	c.cur = nil
	c.stats.Chunks++
	nch := len(c.desc.Channels)
	s := &ch.Samples
	switch s.Type {
	case signals.Float32:
		s.F32 = s.F32[:s.N*nch]
	case signals.Float64:
		s.F64 = s.F64[:s.N*nch]
	case signals.Int16:
		s.I16 = s.I16[:s.N*nch]
	case signals.Int32:
		s.I32 = s.I32[:s.N*nch]
	}
	return emit(ch)
}

// Add cuts the rows of b into chunks, handing each full one to emit, which
// owns it until it calls Release.
func (c *Chunker) Add(b *Batch, emit func(*Chunk) error) error {
	hasTime := b.Time != nil
	for i := 0; i < b.N; {
		if !c.started {
			c.started = true
			if hasTime {
				c.stats.First = b.Time[0]
			} else {
				c.stats.First = c.origin
			}
		}
		if hasTime {
			t := b.Time[i]
			if c.inRun {
				if t <= c.lastT {
					return fmt.Errorf("%s: the time %s is not after the previous row's %s: a time column must increase",
						b.Where(i), fmtTime(t), fmtTime(c.lastT))
				}
				if dev := float64(t-c.runT) - float64(c.runN)*c.period; math.Abs(dev) > c.tol {
					if err := c.breakRun(b, i, t, dev, emit); err != nil {
						return err
					}
				}
			} else {
				c.inRun, c.runT, c.runN = true, t, 0
			}
		} else if !c.inRun {
			c.inRun, c.runT, c.runN = true, c.origin, 0
		}
		if c.cur == nil {
			c.cur = c.newChunk(c.desc.SampleTime(c.runT, int(c.runN)), b.Where(i))
		}
		// The span of rows that continue the run and fit the chunk.
		room := c.size - c.cur.Samples.N
		j := i + 1
		if hasTime {
			for j < b.N && j-i < room {
				t := b.Time[j]
				dev := float64(t-c.runT) - float64(c.runN+int64(j-i))*c.period
				if t <= b.Time[j-1] || math.Abs(dev) > c.tol {
					break
				}
				j++
			}
			c.lastT = b.Time[j-1]
		} else {
			j = min(b.N, i+room)
		}
		if err := c.copyRows(b, i, j); err != nil {
			return err
		}
		c.runN += int64(j - i)
		c.stats.Rows += int64(j - i)
		c.stats.End = c.desc.SampleTime(c.runT, int(c.runN))
		if c.cur.Samples.N == c.size {
			if err := c.emitCur(emit); err != nil {
				return err
			}
		}
		i = j
	}
	return nil
}

// breakRun ends the run before row i (time t, dev ns off the grid) and
// starts another at t.
func (c *Chunker) breakRun(b *Batch, i int, t int64, dev float64, emit func(*Chunk) error) error {
	if dev >= c.period {
		c.stats.Gaps++
		if gap := int64(dev); gap > c.stats.LongestGap {
			c.stats.LongestGap, c.stats.LongestGapAt = gap, b.Where(i)
		}
	} else {
		c.stats.Retimed++
		if c.stats.RetimedAt == "" {
			c.stats.RetimedAt = b.Where(i)
		}
		// Files whose clock wanders by half a period now and then are
		// real; a column that is off the grid all the time is not a
		// sampled signal at this rate, and splitting it into blocks of a
		// few samples would store it badly.
		if c.stats.Retimed > 100 && c.stats.Retimed*100 > c.stats.Rows {
			return fmt.Errorf("%s: the time column is not evenly spaced at %s Hz: %d of the first %d rows are off the rate's grid by more than half a period (the first at %s); "+
				"a sampled signal has a constant rate: give the right one with --rate",
				b.Where(i), strconv.FormatFloat(c.desc.SampleRate, 'g', -1, 64), c.stats.Retimed, c.stats.Rows, c.stats.RetimedAt)
		}
	}
	if err := c.emitCur(emit); err != nil {
		return err
	}
	// The new run starts at the file's time, but never at or before the
	// last sample's place on the old grid: samples stay in time order.
	last := c.desc.SampleTime(c.runT, int(c.runN-1))
	c.runT, c.runN = max(t, last+1), 0
	return nil
}

// copyRows converts rows [i, j) of b into the current chunk.
func (c *Chunker) copyRows(b *Batch, i, j int) error {
	s := &c.cur.Samples
	nch := len(c.desc.Channels)
	base := s.N
	for k, col := range b.Values {
		src := col[i:j]
		switch s.Type {
		case signals.Float32:
			dst := s.F32[base*nch:]
			for r, v := range src {
				dst[r*nch+k] = float32(v)
			}
		case signals.Float64:
			dst := s.F64[base*nch:]
			for r, v := range src {
				dst[r*nch+k] = v
			}
		case signals.Int16:
			dst := s.I16[base*nch:]
			for r, v := range src {
				if !(v >= math.MinInt16 && v <= math.MaxInt16) || v != math.Trunc(v) {
					return c.notInt(b, i+r, k, v)
				}
				dst[r*nch+k] = int16(v)
			}
		case signals.Int32:
			dst := s.I32[base*nch:]
			for r, v := range src {
				if !(v >= math.MinInt32 && v <= math.MaxInt32) || v != math.Trunc(v) {
					return c.notInt(b, i+r, k, v)
				}
				dst[r*nch+k] = int32(v)
			}
		}
	}
	s.N += j - i
	return nil
}

func (c *Chunker) notInt(b *Batch, row, ch int, v float64) error {
	what := fmt.Sprintf("%v is not an %s", v, c.desc.SampleType)
	if math.IsNaN(v) {
		what = "is empty (null or NaN), which an " + c.desc.SampleType.String() + " channel cannot hold"
	}
	return fmt.Errorf("%s: channel %q: %s; import it as --type float32 or float64", b.Where(row), c.desc.Channels[ch].Name, what)
}

// Close hands the last, partial chunk to emit.
func (c *Chunker) Close(emit func(*Chunk) error) error { return c.emitCur(emit) }

// EstimateRate tells the sample rate of a time column (ns) from its first
// rows: over the longest stretch whose steps are within half of the median
// step, rounded to six significant digits (a file's times are rounded to
// its clock's resolution; 25,600 Hz written in ns reads 25,600.0003).
func EstimateRate(times []int64) (float64, error) {
	times = times[:min(len(times), 100_000)]
	if len(times) < 2 {
		return 0, fmt.Errorf("a single row: cannot tell the sample rate from the time column; give it with --rate")
	}
	steps := make([]int64, 0, len(times)-1)
	for k := 1; k < len(times); k++ {
		if d := times[k] - times[k-1]; d > 0 {
			steps = append(steps, d)
		}
	}
	if len(steps) == 0 {
		return 0, fmt.Errorf("the time column does not increase: cannot tell the sample rate from it; give it with --rate")
	}
	sorted := append([]int64(nil), steps...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a] < sorted[b] })
	m := float64(sorted[len(sorted)/2])
	bestA, bestL := 0, 0
	for a := 0; a < len(times)-1; {
		l := 0
		for a+l < len(times)-1 {
			d := float64(times[a+l+1] - times[a+l])
			if d < m/2 || d > 1.5*m {
				break
			}
			l++
		}
		if l > bestL {
			bestA, bestL = a, l
		}
		a += max(l, 1)
	}
	if bestL == 0 {
		return 0, fmt.Errorf("the time column is not evenly spaced: cannot tell the sample rate from it; give it with --rate")
	}
	r := float64(bestL) * 1e9 / float64(times[bestA+bestL]-times[bestA])
	r, _ = strconv.ParseFloat(strconv.FormatFloat(r, 'g', 6, 64), 64)
	return r, nil
}

func fmtTime(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }
