package query

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/store"
)

// The decode pipeline. A range is read as jobs — runs of consecutive
// fragments expected to hold about a batch of rows — that a few workers
// decode in parallel, each with its own store reader and decoder, while the
// caller's goroutine hands the batches on in fragment order:
//
//	dispatcher ──jobs──► workers (decodeWorkers) ──batches──► collector (emit)
//	     └──────── the same jobs, in order (at most queueDepth) ──────┘
//
// Memory is bounded whatever the range: at most queueDepth jobs are in flight
// and a worker holds at most jobBatches finished batches of a job before the
// collector takes them. A batch never spans two jobs, so each job ends with a
// batch of the rows left over (batches hold about Prepared.decodeRows rows, never
// fewer than one frame's unless the job has fewer). The work stops when ctx
// is done, or when emit fails: the workers are cancelled and every batch not
// handed on is released.

// jobBatches is how many finished batches a worker may hold for its job.
const jobBatches = 4

// maxJobFragments bounds a job (and is the store listing's page).
const maxJobFragments = 64

// queueDepth is how many jobs may wait for the collector besides the one it
// hands on: one more than the workers, so that each has the next job to
// decode while the collector waits for the oldest; but a lone worker (one
// core) gains nothing from a second job decoded ahead, whose batches only
// hold memory: Flight's four partitions read on one core held ~40 MB of
// decoded batches, most of the live heap, and a read that starts from a
// collected heap faults all of it in again (~10 µs a page on a VM).
func queueDepth(workers int) int {
	if workers <= 1 {
		return 1
	}
	return workers + 1
}

// firstBatchBytes bounds a query's first batch, so that a reader has rows
// (and an HTTP client its status) within a few ms of asking, whatever the
// batch size: a 65536-row batch of 3-axis float32 takes a few ms to decode
// on a core shared with the other workers, and a first Arrow Flight message
// larger than HTTP/2's initial 64 KiB window waits a round trip for the
// client's window update. The batches after it double up to decodeRows, so
// that while the reader takes its first rows (it needs a core for that,
// perhaps this one) the worker hands over the core often.
const firstBatchBytes = 48 << 10

// firstBatchPause is how long every worker waits once the first batch is
// handed on, before decoding on. Go polls the network only when a P has
// nothing to run, or every 10 ms (sysmon): workers that keep every P busy
// leave the batch just written in the socket of a reader in this process
// (14–22 ms to Flight DoGet's first batch on the bench's 2 cores, most of it
// after the server had written it), and a remote reader's window update
// unread. A pause lets a P idle and poll; it ends earlier in effect when the
// network wakes the idle P (a P waits for a timer in 1 ms steps), and it is
// paid once per query.
const firstBatchPause = 500 * time.Microsecond

// firstBatchRows is the rows of the first batch: firstBatchBytes of rows of
// fixed width, or 4096 rows of others.
func firstBatchRows(s *arrow.Schema) int {
	width := 0
	for _, f := range s.Fields() {
		fw, ok := f.Type.(arrow.FixedWidthDataType)
		if !ok {
			return 4096
		}
		width += max(1, fw.BitWidth()/8)
	}
	return max(256, firstBatchBytes/max(1, width))
}

// piece is what the pipeline hands on: a record batch and the fragment its
// rows came from (when batches are cut at fragments: the windows shape), or
// an idle mark (rec nil): a live query has caught up with the stored data
// and is waiting for more, so a consumer that holds rows back hands them on.
type piece struct {
	rec  arrow.RecordBatch
	frag uint64
}

// decodeJob is a run of fragments one worker decodes.
type decodeJob struct {
	infos []store.FragmentInfo
	first bool       // the query's first job: its first batch is small
	idle  bool       // no fragments: the idle mark, in order
	out   chan piece // its batches, in order; closed when the job is done
	err   error      // why it stopped, set before out is closed
}

// pipeline is one run of the decode pipeline.
type pipeline struct {
	s    *Service
	p    *Prepared
	cut  bool // cut batches at fragment boundaries (pieces carry their fragment)
	jobs chan *decodeJob
	work chan *decodeJob
	// started is closed firstBatchPause after the first batch is handed
	// on. Until then one worker decodes, so that the first batch does not
	// wait for a core behind the others (Go preempts a busy goroutine only
	// every 10 ms, and the writer and the client need a core too), and once
	// it has sent that batch it waits too.
	started   chan struct{}
	startOnce sync.Once
	pause     *time.Timer // closes started; set by the collector at the first batch
	// rowsPerFragment is what the fragments decoded so far held (rows ×
	// 1024, a running average); 0 before any. It sizes jobs of kinds whose
	// rows a fragment's duration does not tell.
	rowsPerFragment atomic.Int64
}

// decode runs the pipeline over p's range and calls emit in order for each
// batch (and for each idle mark of a live query). emit must not keep a
// batch past its return without retaining it.
func (s *Service) decode(ctx context.Context, p *Prepared, cut bool, emit func(piece) error) error {
	ctx, cancel := context.WithCancel(ctx)
	workers := s.decodeWorkers()
	depth := queueDepth(workers)
	pl := &pipeline{s: s, p: p, cut: cut, jobs: make(chan *decodeJob, depth), work: make(chan *decodeJob, depth), started: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(func() { pl.dispatch(ctx) })
	for i := range workers {
		wg.Go(func() { pl.worker(ctx, i == 0) })
	}
	var current *decodeJob
	err := pl.collect(ctx, emit, &current)
	cancel()
	wg.Wait()
	if pl.pause != nil {
		pl.pause.Stop()
	}
	// Every goroutine is done: release what is left in the queues.
	if current != nil {
		drain(current.out)
	}
	for j := range pl.jobs {
		drain(j.out)
	}
	return err
}

// collect hands on the jobs' batches in order; current is the job it is at.
func (pl *pipeline) collect(ctx context.Context, emit func(piece) error, current **decodeJob) error {
	defer pl.start()
	inner := emit
	emit = func(pc piece) error {
		err := inner(pc)
		if pl.pause == nil {
			pl.pause = time.AfterFunc(firstBatchPause, pl.start)
		}
		return err
	}
	for j := range pl.jobs {
		*current = j
		if j.idle {
			if err := emit(piece{}); err != nil {
				return err
			}
			continue
		}
		for pc := range j.out {
			if err := ctx.Err(); err != nil {
				pc.rec.Release()
				return err
			}
			err := emit(pc)
			pc.rec.Release()
			if err != nil {
				return err
			}
		}
		if j.err != nil {
			return j.err
		}
	}
	return ctx.Err()
}

// start lets every worker decode.
func (pl *pipeline) start() { pl.startOnce.Do(func() { close(pl.started) }) }

// drain releases the batches left in a finished job's queue.
func drain(out chan piece) {
	for {
		select {
		case pc, ok := <-out:
			if !ok {
				return
			}
			pc.rec.Release()
		default:
			return
		}
	}
}

// dispatch lists the range's fragments and hands them out as jobs; in a live
// query it then waits for new ones. It closes both queues when it returns.
func (pl *pipeline) dispatch(ctx context.Context) {
	defer close(pl.jobs)
	defer close(pl.work)
	req := pl.p.req
	send := func(j *decodeJob) bool {
		select {
		case pl.jobs <- j:
		case <-ctx.Done():
			return false
		}
		if j.idle || j.err != nil {
			close(j.out)
			return true
		}
		select {
		case pl.work <- j:
			return true
		case <-ctx.Done():
			j.err = ctx.Err()
			close(j.out)
			return false
		}
	}
	fail := func(err error) { send(&decodeJob{out: make(chan piece), err: err}) }
	var from uint64
	first := true
	for ctx.Err() == nil {
		infos, err := pl.s.st.Range(req.Stream, req.Basis, req.Start, req.End, from, maxJobFragments)
		if err != nil {
			fail(err)
			return
		}
		if len(infos) == 0 {
			if !req.Follow {
				return
			}
			if !send(&decodeJob{idle: true, out: make(chan piece)}) {
				return
			}
			if from, err = pl.waitForMore(ctx, from); err != nil {
				fail(err)
				return
			}
			continue
		}
		from = infos[len(infos)-1].Number + 1
		for len(infos) > 0 {
			n := pl.jobLength(infos)
			if !send(&decodeJob{infos: infos[:n], first: first, out: make(chan piece, jobBatches)}) {
				return
			}
			first = false
			infos = infos[n:]
		}
	}
}

// jobLength is how many of the listed fragments make the next job: enough
// for about one batch, by the signal's rate and the fragments' durations or
// by what the fragments decoded so far held. A job never waits for
// fragments not yet listed, so a live query hands on what it has.
func (pl *pipeline) jobLength(infos []store.FragmentInfo) int {
	want := float64(pl.p.decodeRows)
	var rows float64
	for i := range infos {
		switch avg := pl.rowsPerFragment.Load(); {
		case pl.p.sums != nil && pl.p.sums.covers(infos[i].Number):
			// Most likely summarised: a few rows to read, not samples to
			// decode.
			rows += float64(infos[i].Duration) * pl.p.rate / 1e9 / 256
		case pl.p.rate > 0:
			rows += float64(infos[i].Duration) * pl.p.rate / 1e9
		case avg > 0:
			rows += float64(avg) / 1024
		default:
			return 1
		}
		if rows >= want {
			return i + 1
		}
	}
	return len(infos)
}

// waitForMore, in a live query, waits until a fragment newer than any seen
// is durable; it returns the fragment number to list from. Fragments outside
// the range are passed over, not waited on.
func (pl *pipeline) waitForMore(ctx context.Context, from uint64) (uint64, error) {
	st, name := pl.s.st, pl.p.req.Stream
	if last, ok, err := st.Durable(name); err != nil {
		return from, err
	} else if ok && last.Number+1 > from {
		from = last.Number + 1
	}
	return from, st.Wait(ctx, name, from)
}

// worker decodes jobs with its own reader and decoder.
type worker struct {
	pl    *pipeline
	r     *store.Reader
	dec   codecs.ArrowDecoder
	bd    codecs.BatchDecoder  // dec, when it builds batches itself
	rb    *array.RecordBuilder // the batch, unless bd builds it
	rows  int                  // in the batch
	limit int                  // rows that fill the batch
	room  int                  // rows the batch's buffers were made for (setLimit)
	// sb holds the partial statistics read from summaries (the aggregate
	// shape), sbRows of them, handed on before the next decoded rows.
	sb     *array.RecordBuilder
	sbRows int
}

func (pl *pipeline) worker(ctx context.Context, first bool) {
	if !first {
		select {
		case <-pl.started:
		case <-ctx.Done():
		}
	}
	w, err := pl.newWorker()
	if err != nil {
		for j := range pl.work {
			j.err = err
			close(j.out)
		}
		return
	}
	defer w.close()
	for j := range pl.work {
		j.err = w.job(ctx, j)
		close(j.out)
	}
}

func (pl *pipeline) newWorker() (*worker, error) {
	p := pl.p
	dec, err := p.newDecoder()
	if err != nil {
		return nil, err
	}
	r, err := pl.s.st.NewReader(p.req.Stream)
	if err != nil {
		return nil, err
	}
	w := &worker{pl: pl, r: r, dec: dec}
	if bd, ok := dec.(codecs.BatchDecoder); ok {
		// The decoder builds the batches itself, decoding straight into
		// their arrays' buffers (sized by setLimit).
		w.bd = bd
	} else {
		w.rb = array.NewRecordBuilder(p.req.Allocator, dec.Schema())
	}
	return w, nil
}

// setLimit sets the rows that fill a batch, and makes the buffers of the
// next batch for that many: each batch's buffers are sized once, not grown
// (and copied) by doubling, and the small first batches are not built in
// buffers of decodeRows rows, whose allocation and first touch (a page fault
// per 4 KiB of memory the runtime had given back to the OS) cost the first
// batch milliseconds. Call it only between batches.
func (w *worker) setLimit(limit int) {
	w.limit = limit
	if w.bd != nil {
		if w.room != limit {
			w.bd.StartBatches(w.pl.p.req.Allocator, limit)
		}
	} else if w.room < limit {
		w.rb.Reserve(limit)
	}
	w.room = limit
}

func (w *worker) close() {
	if w.sb != nil {
		w.sb.Release()
	}
	if w.bd != nil {
		w.bd.Release()
	} else {
		w.rb.Release()
	}
	w.r.Close()
}

// job decodes a job's fragments and sends its batches.
func (w *worker) job(ctx context.Context, j *decodeJob) error {
	p := w.pl.p
	limit := p.decodeRows
	if j.first {
		limit = min(limit, firstBatchRows(p.samples))
	}
	w.setLimit(limit)
	for _, info := range j.infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if p.sums != nil {
			if t := p.sums.lookup(info.Number); t != nil {
				// In order: the rows decoded before this fragment first.
				if err := w.flush(ctx, j.out, 0); err != nil {
					return err
				}
				if w.sb == nil {
					w.sb = array.NewRecordBuilder(p.req.Allocator, p.agg.partial)
				}
				w.sbRows += p.sums.appendRows(w.sb, t)
				w.pl.s.summariesUsed.Add(1)
				continue
			}
			if err := w.flushSummaries(ctx, j.out); err != nil {
				return err
			}
		}
		f, err := w.r.Read(info)
		if err != nil {
			w.discard()
			return p.readError(info.Number, err)
		}
		before := w.rows
		sent, err := w.fragment(ctx, j.out, f)
		if err != nil {
			w.discard()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return p.decodeError(info.Number, err)
		}
		w.pl.learnRows(sent + w.rows - before)
		if w.pl.cut {
			if err := w.flush(ctx, j.out, info.Number); err != nil {
				return err
			}
		}
	}
	if err := w.flushSummaries(ctx, j.out); err != nil {
		return err
	}
	return w.flush(ctx, j.out, 0)
}

// flushSummaries sends the partial statistics read from summaries, if any.
func (w *worker) flushSummaries(ctx context.Context, out chan piece) error {
	if w.sbRows == 0 {
		return nil
	}
	w.sbRows = 0
	rec := w.sb.NewRecordBatch()
	select {
	case out <- piece{rec: rec}:
		return nil
	case <-ctx.Done():
		rec.Release()
		return ctx.Err()
	}
}

// fragment decodes the query's track of one fragment, sending each batch it
// fills; it returns the rows of the batches it sent.
func (w *worker) fragment(ctx context.Context, out chan piece, f store.StoredFragment) (int, error) {
	p := w.pl.p
	req := p.req
	rng := codecs.TimeRange{Start: req.Start, End: req.End, All: req.Basis == store.ServerTime}
	// A new context per fragment: decoders keep state across the frames of
	// one fragment and reset it when the pointer changes.
	fc := &codecs.FragmentContext{Number: f.Number, Tags: map[string]string{}}
	mr := mkv.NewBytesReader(f.Payload) // large frames (a LIDAR sweep) decoded in place
	sent := 0
	for {
		it, err := mr.Next()
		if errors.Is(err, io.EOF) {
			return sent, nil
		}
		if err != nil {
			return sent, err
		}
		switch it.Kind {
		case mkv.ItemTracks:
			for _, t := range it.Tracks {
				if t.Number == p.track && (!bytes.Equal(t.CodecPrivate, p.descRaw) || identityOf(&t) != p.descTrack) {
					return sent, invalid("the signal description of track %d changed at fragment %d; query the ranges before and after it separately", t.Number, f.Number)
				}
			}
		case mkv.ItemTags:
			for _, t := range it.Tags {
				fc.Tags[t.Name] = t.Value
			}
		case mkv.ItemBlock:
			if it.Block.Track != p.track {
				continue
			}
			if err := ctx.Err(); err != nil { // the reader went away: stop within a frame
				return sent, err
			}
			frame := codecs.Frame{Data: it.Block.Data, Time: it.Time, Key: it.Block.Keyframe, Fragment: fc}
			var n int
			if w.bd != nil {
				n, err = w.bd.AppendToBatch(frame, rng)
			} else {
				n, err = w.dec.Append(w.rb, frame, rng)
			}
			if err != nil {
				return sent, err
			}
			w.rows += n
			if w.rows >= w.limit {
				sent += w.rows
				if err := w.flush(ctx, out, f.Number); err != nil {
					return sent, err
				}
				w.setLimit(min(2*w.limit, p.decodeRows))
			}
		}
	}
}

// flush sends the batch, if it has rows.
func (w *worker) flush(ctx context.Context, out chan piece, frag uint64) error {
	if w.rows == 0 {
		return nil
	}
	rec := w.record()
	if reduce := w.pl.p.reduce; reduce != nil {
		small, err := reduce(rec)
		rec.Release()
		if err != nil {
			return err
		}
		rec = small
	}
	select {
	case out <- piece{rec: rec, frag: frag}:
	case <-ctx.Done():
		rec.Release()
		return ctx.Err()
	}
	select {
	case <-w.pl.started:
		// The collector is now runnable on this P, behind a worker that would
		// decode on for its whole time slice (10 ms) while the other cores
		// are busy too: let it hand the batch on first.
		runtime.Gosched()
	default:
		// The query's first batch: the collector hands it on while this
		// worker waits, and the pause after it lets the runtime poll the
		// network.
		select {
		case <-w.pl.started:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// record hands out the batch and starts the next.
func (w *worker) record() arrow.RecordBatch {
	w.rows = 0
	if w.bd != nil {
		return w.bd.NewRecordBatch()
	}
	rec := w.rb.NewRecordBatch()
	w.rb.Reserve(w.limit)
	w.room = w.limit
	return rec
}

// discard drops the rows of an unfinished batch (the job failed).
func (w *worker) discard() {
	if w.rows > 0 {
		w.record().Release()
	}
	if w.sbRows > 0 {
		w.sbRows = 0
		w.sb.NewRecordBatch().Release()
	}
}

// learnRows keeps the running average of rows per fragment.
func (pl *pipeline) learnRows(rows int) {
	old := pl.rowsPerFragment.Load()
	v := int64(rows) * 1024
	if old > 0 {
		v = (7*old + v) / 8
	}
	pl.rowsPerFragment.Store(max(v, 1))
}
