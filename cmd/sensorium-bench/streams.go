package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/ingest"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/service/natsembed"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/store"
)

// The many-streams section (issue 15, goal 1): many streams at once, each
// with its own SDK producer closing one ~4 KiB fragment per second.
//
// The server is the real `sensorium serve`, built from this tree and run as
// its own process on free loopback ports with its data in the scratch
// folder, so that its RSS, CPU and open files read from /proc/<pid> are the
// server's alone; the producers live in the bench process and share a few
// NATS connections, as a gateway's would. For each count of streams, on a
// fresh server:
//
//	create     CreateStream of every stream, a few at a time
//	list       ListStreams paged through every stream (checked: each once, in order)
//	describe   DescribeStream of random streams
//	steady     one producer per stream, phases spread over the second; each
//	           tick puts a fragment's frames and closes it (Flush), and the
//	           fragment's latency runs from its last PutFrame to its PERSISTED
//	           event; warm-up, then a measuring window, then every fragment
//	           sent must be PERSISTED within a bounded wait
//	burst      (once, on the first count with enough streams) the first
//	           -streams-burst-streams producers send as fast as their window
//	           allows, against raw JetStream publish of as many 4 KiB
//	           messages on the same streams' subjects
//
// The control-plane rate limit is raised for the run: the section measures
// the server's work, not its limiter (the default is 1000 calls/s).
// SENSORIUM_BENCH_SERVER_PPROF=127.0.0.1:6060 starts the server with
// --pprof there, to profile it while the section runs, and
// SENSORIUM_BENCH_SERVER_FLAGS adds serve flags (e.g. --per-file-sync).

// skipStreamsEnv set to 1 leaves the many-streams section out of `make bench`.
const skipStreamsEnv = "SENSORIUM_BENCH_SKIP_STREAMS"

// streamsFlags are the section's flags.
type streamsFlags struct {
	counts       string // stream counts to run, comma-separated
	seconds      int    // steady-state measuring window per count
	conns        int    // NATS connections the producers share
	burstStreams int    // streams of the burst
}

const (
	streamsWarmup        = 5 * time.Second
	streamsMaxWarmup     = 2 * time.Minute
	streamsDrain         = 60 * time.Second // bound on the wait for the last PERSISTED
	streamsBurstFor      = 10 * time.Second
	streamsCreateWorkers = 8
	streamsListPage      = 100 // ListStreams takes 1 to 10000
	streamsListSamples   = 200 // pages timed at least (whole passes)
	streamsDescribes     = 1000
	// streamsFragBytes makes frameBytes' frames 480 bytes: with its MKV a
	// fragment of framesPerFragment of them is ~4,096 bytes, as stored.
	streamsFragBytes      = (480 + 64) * framesPerFragment
	streamsFrameStep      = time.Second / framesPerFragment // producer time between frames: a fragment spans 1 s
	streamsMaxFragment    = 8 << 10                         // room for the 4 KiB fragment and its MKV
	streamsBufferBytes    = 64 << 10                        // per producer: 10,000 of them must fit the bench
	streamsRetentionHours = 24
	streamsControlPlane   = "100000" // calls/s: see the section's comment

	goalStreams      = 10000
	goalStreamsP99   = 50 * time.Millisecond
	goalStreamsRSS   = 1 << 30
	goalStreamsCores = 1.0
	goalBurstRate    = 20000.0
	goalBurstStreams = 1000

	clockTicks = 100 // USER_HZ, the unit of /proc/<pid>/stat's times (100 on Linux)
)

// streamsRun is what one count of streams measured.
type streamsRun struct {
	n                        int
	createTotal              time.Duration
	create, list, describe   []time.Duration
	fragBytes                int64 // a stored fragment, as ListFragments gives it
	steady                   steadyResult
	hwm, rssEnd              int64         // server VmHWM after the steady state, VmRSS then
	cores, benchCores        float64       // server's and the bench's CPU over the measuring window
	maxFDs                   int           // server open files, sampled over the whole run
	benchHWM, benchPerStream int64         // the bench process: peak RSS, RSS per producer
	logWarnings              int           // server log lines at WARN or ERROR
	warmup                   time.Duration // from the first fragment to the window's opening
}

// steadyResult is the steady state's measurements.
type steadyResult struct {
	offered, persisted float64         // fragments/s in the measuring window
	lat                []time.Duration // last PutFrame → PERSISTED, fragments put in the window
	recv               []time.Duration // last PutFrame → RECEIVED, the same fragments
	sent               int64           // fragments closed, warm-up and window
	acked              int64           // PERSISTED
	refused, dropped   int64
	putErr             error // first PutFrame error that is not back-pressure
}

func (s steadyResult) missing() int64 { return s.sent - s.acked }

// burstRun is the burst's measurements, ours and the peer's.
type burstRun struct {
	streams, window int
	sent, acked     int64
	rate, peer      float64 // PERSISTED fragments/s; raw publish acks/s
	cores           float64 // our server's CPU during the burst
	ourErr          error   // a failed PutFrame, or fragments Close found not PERSISTED
	err             error   // the peer's, if it failed
}

func (b *bench) streams(fl streamsFlags) error {
	counts, err := parseCounts(fl.counts)
	if err != nil {
		return err
	}
	if fl.seconds <= 0 || fl.conns <= 0 || fl.burstStreams <= 0 {
		return errors.New("-streams-seconds, -streams-conns and -streams-burst-streams must be positive")
	}
	t0 := time.Now()
	fmt.Printf("Many streams: per count, a fresh `sensorium serve` process; one SDK producer per stream over %d NATS connections, "+
		"each closing one ~4 KiB fragment (%d frames) per second, phases spread over the second; a warm-up of at least %s (until the backlog of first fragments drains), %d s measured\n\n",
		fl.conns, framesPerFragment, streamsWarmup, fl.seconds)
	dir, err := filepath.Abs(b.scratch("streams"))
	if err != nil {
		return err
	}
	bin, err := buildServer(dir)
	if err != nil {
		return err
	}
	var runs []*streamsRun
	var burst *burstRun
	for _, n := range counts {
		doBurst := burst == nil && (n >= fl.burstStreams || n == counts[len(counts)-1])
		r, br, err := b.streamsCount(bin, filepath.Join(dir, fmt.Sprint(n)), n, fl, doBurst)
		if err != nil {
			printStreams(runs, fl)
			return fmt.Errorf("%d streams: %w", n, err)
		}
		runs = append(runs, r)
		if br != nil {
			burst = br
		}
	}
	printStreams(runs, fl)
	if burst != nil {
		printBurst(burst)
	}
	fmt.Printf("(many-streams section: %s, set %s=1 to skip it)\n", time.Since(t0).Round(time.Second), skipStreamsEnv)
	return nil
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || n > store.DefaultStreamsLimit {
			return nil, fmt.Errorf("-streams %q: want counts of 1 to %d (the server's stream limit), comma-separated", s, store.DefaultStreamsLimit)
		}
		out = append(out, n)
	}
	return out, nil
}

func streamName(i int) string { return fmt.Sprintf("bench-%05d", i) }

// streamsCount runs one count of streams on a fresh server, and the burst
// when asked.
func (b *bench) streamsCount(bin, dir string, n int, fl streamsFlags, doBurst bool) (*streamsRun, *burstRun, error) {
	progress := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "streams %d: "+format+"\n", append([]any{n}, a...)...)
	}
	srv, err := startServerProcess(bin, dir)
	if err != nil {
		return nil, nil, err
	}
	defer srv.stop()
	defer srv.stopOnSignal()()
	mon := watchProcess(srv.pid(), 500*time.Millisecond)
	defer mon.close()
	ctx := context.Background()
	client := sdk.NewClient(srv.httpURL, nil)
	names := make([]string, n)
	for i := range names {
		names[i] = streamName(i)
	}
	r := &streamsRun{n: n}
	progress("creating")
	if r.createTotal, r.create, err = createStreams(ctx, client, names); err != nil {
		return nil, nil, err
	}
	if r.list, err = listAll(ctx, client, names); err != nil {
		return nil, nil, err
	}
	if r.describe, err = describeRandom(ctx, client, names); err != nil {
		return nil, nil, err
	}
	progress("created in %s (p99 %s); ListStreams page p99 %s; DescribeStream p99 %s; making %d producers",
		r.createTotal.Round(time.Millisecond), dur(pctDur(r.create, 99)), dur(pctDur(r.list, 99)), dur(pctDur(r.describe, 99)), n)
	fl2, err := newFleet(ctx, srv.natsURL, names, fl.conns)
	if err != nil {
		return nil, nil, err
	}
	defer fl2.close()
	r.benchPerStream = fl2.rssPerProducer
	progress("%d producers made (bench RSS %d MiB, ~%d KiB per producer); steady state", n, rssNow()>>20, fl2.rssPerProducer>>10)
	if err := r.measureSteady(ctx, fl2, srv, time.Duration(fl.seconds)*time.Second); err != nil {
		return nil, nil, err
	}
	if frags, _, err := client.ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName(names[0]), MaxResults: 1}); err == nil && len(frags) > 0 {
		r.fragBytes = frags[0].FragmentSizeInBytes
	}
	var br *burstRun
	if doBurst {
		progress("burst")
		if br, err = b.burst(ctx, fl2, srv, min(n, fl.burstStreams)); err != nil {
			// The steady state's figures stand; say why the burst has none.
			fmt.Printf("streams %d: burst not measured: %v\n", n, err)
			br = nil
		}
	}
	r.maxFDs = mon.peakFDs()
	if err := mon.failure(); err != nil {
		return nil, nil, err
	}
	r.logWarnings = countWarnings(srv.logPath)
	return r, br, nil
}

// measureSteady runs the steady state on f's producers and fills in r.
func (r *streamsRun) measureSteady(ctx context.Context, f *fleet, srv *serverProcess, window time.Duration) error {
	resetPeakRSS()
	start := time.Now().Add(100 * time.Millisecond)
	// The window opens once the warm-up is over: at least streamsWarmup,
	// and until the backlog of the streams' first fragments (each makes a
	// data key and a segment file) is down to half a second of fragments,
	// so that the figures are the steady state's and not the start's.
	never := start.Add(24 * time.Hour)
	f.tally.reset(never, never)
	var stopAt atomic.Int64
	stopAt.Store(never.UnixNano())
	var wg sync.WaitGroup
	for i, sp := range f.prods {
		phase := time.Duration(int64(time.Second) * int64(i) / int64(len(f.prods)))
		wg.Go(func() { sp.steady(ctx, f.tally, start.Add(phase), &stopAt) })
	}
	time.Sleep(time.Until(start.Add(streamsWarmup)))
	warmLimit := start.Add(streamsMaxWarmup)
	for f.tally.outstanding() > int64(len(f.prods)/2) && time.Now().Before(warmLimit) {
		time.Sleep(100 * time.Millisecond)
	}
	from := time.Now()
	to := from.Add(window)
	r.warmup = from.Sub(start)
	f.tally.setWindow(from, to)
	stopAt.Store(to.UnixNano())
	before, err := sampleProcess(srv.pid())
	if err != nil {
		return err
	}
	self, err := sampleProcess(os.Getpid())
	if err != nil {
		return err
	}
	time.Sleep(time.Until(to))
	after, err := sampleProcess(srv.pid())
	if err != nil {
		return err
	}
	selfAfter, err := sampleProcess(os.Getpid())
	if err != nil {
		return err
	}
	r.cores = (after.cpu - before.cpu).Seconds() / after.at.Sub(before.at).Seconds()
	r.benchCores = (selfAfter.cpu - self.cpu).Seconds() / selfAfter.at.Sub(self.at).Seconds()
	r.hwm, r.rssEnd = after.hwm, after.rss
	wg.Wait()
	// Every fragment sent must be PERSISTED (or be counted as missing).
	_ = waitFor(streamsDrain, 50*time.Millisecond, func() error {
		if m := f.tally.outstanding(); m > 0 {
			return fmt.Errorf("%d fragments not yet PERSISTED", m)
		}
		return nil
	})
	r.steady = f.tally.steady(window)
	r.benchHWM = peakRSS()
	return nil
}

// createStreams creates the streams streamsCreateWorkers at a time and
// returns the total time and each call's.
func createStreams(ctx context.Context, client *sdk.Client, names []string) (time.Duration, []time.Duration, error) {
	lat := make([]time.Duration, len(names))
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	t0 := time.Now()
	for range streamsCreateWorkers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(names); i = int(next.Add(1) - 1) {
				t := time.Now()
				_, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: names[i], DataRetentionInHours: streamsRetentionHours})
				lat[i] = time.Since(t)
				if err != nil {
					once.Do(func() { first = fmt.Errorf("create %s: %w", names[i], err) })
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(t0), lat, first
}

// listAll pages through every stream, whole passes until streamsListSamples
// pages are timed, and checks that each pass lists every stream once, in
// order.
func listAll(ctx context.Context, client *sdk.Client, names []string) ([]time.Duration, error) {
	var lat []time.Duration
	for len(lat) < streamsListSamples {
		token, at := "", 0
		for {
			t := time.Now()
			page, next, err := client.ListStreams(ctx, "", streamsListPage, token)
			lat = append(lat, time.Since(t))
			if err != nil {
				return nil, fmt.Errorf("ListStreams: %w", err)
			}
			for _, s := range page {
				if at >= len(names) || s.StreamName != names[at] {
					return nil, fmt.Errorf("ListStreams: stream %d of the listing is %q, want %q", at, s.StreamName, names[min(at, len(names)-1)])
				}
				at++
			}
			if token = next; token == "" {
				break
			}
		}
		if at != len(names) {
			return nil, fmt.Errorf("ListStreams listed %d of %d streams", at, len(names))
		}
	}
	return lat, nil
}

// describeRandom describes streamsDescribes random streams, one at a time.
func describeRandom(ctx context.Context, client *sdk.Client, names []string) ([]time.Duration, error) {
	rng := rand.New(rand.NewPCG(15, 1))
	lat := make([]time.Duration, 0, streamsDescribes)
	for range streamsDescribes {
		name := names[rng.IntN(len(names))]
		t := time.Now()
		info, err := client.DescribeStream(ctx, sdk.ByName(name))
		lat = append(lat, time.Since(t))
		if err != nil {
			return nil, fmt.Errorf("DescribeStream %s: %w", name, err)
		}
		if info.StreamName != name {
			return nil, fmt.Errorf("DescribeStream %s answered %q", name, info.StreamName)
		}
	}
	return lat, nil
}

// ackTally counts every producer's fragments and events. Times are offsets
// from its clock (monotonic).
type ackTally struct {
	clock time.Time
	// from and to are the measuring window (offsets, ns), set while the
	// producers run (measureSteady starts it when the warm-up's backlog
	// has drained).
	from, to atomic.Int64

	sent, offered     atomic.Int64 // fragments closed; of them, put in the window
	acked, ackedInWin atomic.Int64 // PERSISTED; of them, arrived in the window
	refused, dropped  atomic.Int64
	last              atomic.Int64 // offset of the latest PERSISTED, ns
	mu                sync.Mutex   // guards lat, recv and putErr
	lat               []time.Duration
	recv              []time.Duration // last PutFrame → RECEIVED (the bus's publish ack)
	putErr            error
}

func newTally() *ackTally { return &ackTally{clock: time.Now()} }

func (t *ackTally) now() time.Duration { return time.Since(t.clock) }

// reset zeroes the counts and sets the measuring window.
func (t *ackTally) reset(from, to time.Time) {
	t.setWindow(from, to)
	for _, c := range []*atomic.Int64{&t.sent, &t.offered, &t.acked, &t.ackedInWin, &t.refused, &t.dropped, &t.last} {
		c.Store(0)
	}
	t.mu.Lock()
	t.lat, t.recv, t.putErr = nil, nil, nil
	t.mu.Unlock()
}

// setWindow moves the measuring window, zeroing nothing.
func (t *ackTally) setWindow(from, to time.Time) {
	t.from.Store(int64(from.Sub(t.clock)))
	t.to.Store(int64(to.Sub(t.clock)))
}

func (t *ackTally) inWindow(at time.Duration) bool {
	return int64(at) >= t.from.Load() && int64(at) < t.to.Load()
}

// persisted counts a PERSISTED event; put is when the fragment's last frame
// was put (ok false: not known, a burst fragment).
func (t *ackTally) persisted(put time.Duration, ok bool) {
	now := t.now()
	t.acked.Add(1)
	if t.inWindow(now) {
		t.ackedInWin.Add(1)
	}
	for last := t.last.Load(); int64(now) > last && !t.last.CompareAndSwap(last, int64(now)); last = t.last.Load() {
	}
	if ok && t.inWindow(put) {
		t.mu.Lock()
		t.lat = append(t.lat, now-put)
		t.mu.Unlock()
	}
}

// received notes a RECEIVED event: the bus has the fragment. With
// PERSISTED it splits a fragment's latency between the bus and the store.
func (t *ackTally) received(put time.Duration) {
	if t.inWindow(put) {
		now := t.now()
		t.mu.Lock()
		t.recv = append(t.recv, now-put)
		t.mu.Unlock()
	}
}

func (t *ackTally) failed(err error) {
	t.mu.Lock()
	if t.putErr == nil {
		t.putErr = err
	}
	t.mu.Unlock()
}

func (t *ackTally) firstErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.putErr
}

// outstanding is how many fragments sent have no verdict yet.
func (t *ackTally) outstanding() int64 {
	return t.sent.Load() - t.acked.Load() - t.refused.Load() - t.dropped.Load()
}

func (t *ackTally) steady(window time.Duration) steadyResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	return steadyResult{
		offered: float64(t.offered.Load()) / window.Seconds(), persisted: float64(t.ackedInWin.Load()) / window.Seconds(),
		lat: slices.Clone(t.lat), recv: slices.Clone(t.recv), sent: t.sent.Load(), acked: t.acked.Load(),
		refused: t.refused.Load(), dropped: t.dropped.Load(), putErr: t.putErr,
	}
}

// fleet is one SDK producer per stream, spread over a few NATS connections.
type fleet struct {
	conns          []*nats.Conn
	prods          []*streamProducer
	tally          *ackTally
	frame          []byte
	rssPerProducer int64 // the bench process's RSS growth per producer made
}

// streamProducer is one stream's producer and its timeline. frames and seq
// belong to the goroutine driving it.
type streamProducer struct {
	p      *sdk.Producer
	frame  []byte
	base   int64  // producer time of the stream's frame 0, ns
	frames int64  // frames put into the stream so far (by every producer)
	seq    uint64 // fragments this producer closed
	mu     sync.Mutex
	putAt  map[uint64]time.Duration // sequence → tally offset of its last PutFrame
}

func newFleet(ctx context.Context, url string, names []string, conns int) (*fleet, error) {
	f := &fleet{tally: newTally(), frame: (&bench{fragBytes: streamsFragBytes}).frameBytes()}
	for i := range min(conns, len(names)) {
		nc, err := nats.Connect(url, nats.Name(fmt.Sprintf("sensorium-bench-streams-%d", i)))
		if err != nil {
			f.close()
			return nil, err
		}
		f.conns = append(f.conns, nc)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Second).UnixNano()
	f.prods = make([]*streamProducer, len(names))
	for i := range f.prods {
		f.prods[i] = &streamProducer{frame: f.frame, base: base}
	}
	rss0 := rssNow()
	if err := f.open(ctx, names); err != nil {
		f.close()
		return nil, err
	}
	f.rssPerProducer = (rssNow() - rss0) / int64(len(names))
	return f, nil
}

// open starts a producer for each of the first len(names) streams, a few at
// a time (each waits for a round trip to its connection).
func (f *fleet) open(ctx context.Context, names []string) error {
	var next atomic.Int64
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(names); i = int(next.Add(1) - 1) {
				errs[i] = f.prods[i].start(ctx, f.conns[i%len(f.conns)], names[i], f.tally)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (sp *streamProducer) start(ctx context.Context, nc *nats.Conn, stream string, t *ackTally) error {
	track, err := sdk.OpaqueTrack(1, "payload", "application/octet-stream")
	if err != nil {
		return err
	}
	sp.seq, sp.putAt = 0, map[uint64]time.Duration{}
	sp.p, err = sdk.NewProducer(ctx, nc, sdk.ProducerConfig{
		Stream: stream, Tracks: []sdk.Track{track},
		// A fragment closes on Flush (steady state) or at the first frame a
		// second of producer time after its first (burst), never by itself.
		MinFragmentDuration: time.Second, MaxFragmentDuration: 30 * time.Second,
		MaxFragmentSize: streamsMaxFragment, BufferBytes: streamsBufferBytes, NoLive: true, Logger: quiet,
		OnAck: func(ev sdk.AckEvent) {
			switch {
			case ev.EventType == sdk.EventReceived:
				sp.mu.Lock()
				put, ok := sp.putAt[ev.ProducerSequence]
				sp.mu.Unlock()
				if ok {
					t.received(put)
				}
			case ev.EventType == sdk.EventPersisted:
				sp.mu.Lock()
				put, ok := sp.putAt[ev.ProducerSequence]
				delete(sp.putAt, ev.ProducerSequence)
				sp.mu.Unlock()
				t.persisted(put, ok)
			case ev.EventType == sdk.EventError && !ev.Retriable:
				t.refused.Add(1)
			}
		},
		OnDrop: func(d sdk.Dropped) {
			t.dropped.Add(1)
			sp.mu.Lock()
			delete(sp.putAt, d.Sequence)
			sp.mu.Unlock()
		},
	})
	if err != nil {
		return fmt.Errorf("producer for %s: %w", stream, err)
	}
	return nil
}

// putFragment puts one fragment's frames, noting when its last one is put.
// The fragment closes at the next Flush, or at the next fragment's first
// frame.
func (sp *streamProducer) putFragment(ctx context.Context, t *ackTally) error {
	for k := range framesPerFragment {
		f := sdk.Frame{Track: 1, Timestamp: sp.base + sp.frames*int64(streamsFrameStep), Duration: int64(streamsFrameStep), Key: true, Data: sp.frame}
		if k == framesPerFragment-1 {
			at := t.now()
			sp.mu.Lock()
			sp.putAt[sp.seq+1] = at
			sp.mu.Unlock()
			t.sent.Add(1)
			if t.inWindow(at) {
				t.offered.Add(1)
			}
		}
		err := sp.p.PutFrame(ctx, f)
		sp.frames++
		if err != nil && !errors.Is(err, context.DeadlineExceeded) { // a full buffer past the deadline drops (OnDrop)
			return err
		}
	}
	sp.seq++
	return nil
}

// steady closes one fragment a second from first until until: its frames,
// then Flush, which closes it at once and waits for its PERSISTED at most
// until the next tick (a fragment still waiting is counted when it comes).
func (sp *streamProducer) steady(ctx context.Context, t *ackTally, first time.Time, until *atomic.Int64) {
	for tick := first; tick.UnixNano() < until.Load(); tick = tick.Add(time.Second) {
		time.Sleep(time.Until(tick))
		tctx, cancel := context.WithDeadline(ctx, tick.Add(time.Second))
		if err := sp.putFragment(tctx, t); err != nil {
			t.failed(err)
		}
		_ = sp.p.Flush(tctx)
		cancel()
	}
}

// burstLoop puts whole fragments as fast as the producer takes them until
// the deadline; PutFrame waits while the buffer is full.
func (sp *streamProducer) burstLoop(ctx context.Context, t *ackTally, until time.Time) {
	for time.Now().Before(until) {
		if err := sp.putFragment(ctx, t); err != nil {
			t.failed(err)
			return
		}
	}
}

// closeProducers closes the producers of f.prods[:n] (each flushes first),
// a few at a time.
func (f *fleet) closeProducers(n int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var next atomic.Int64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if p := f.prods[i].p; p != nil {
					errs[i] = p.Close(ctx)
					f.prods[i].p = nil
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (f *fleet) close() {
	_ = f.closeProducers(len(f.prods), 30*time.Second)
	for _, nc := range f.conns {
		nc.Close()
	}
}

// burst closes the steady producers, starts new ones on the first n
// streams (continuing their timelines) and has them send for
// streamsBurstFor; then the peer publishes as many messages.
func (b *bench) burst(ctx context.Context, f *fleet, srv *serverProcess, n int) (*burstRun, error) {
	if err := f.closeProducers(len(f.prods), time.Minute); err != nil {
		return nil, fmt.Errorf("closing the steady producers: %w", err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = streamName(i)
	}
	f.tally.reset(time.Now(), time.Now().Add(time.Hour))
	if err := f.open(ctx, names); err != nil {
		return nil, err
	}
	before, err := sampleProcess(srv.pid())
	if err != nil {
		return nil, err
	}
	t0 := f.tally.now()
	until := time.Now().Add(streamsBurstFor)
	var wg sync.WaitGroup
	for _, sp := range f.prods[:n] {
		wg.Go(func() { sp.burstLoop(ctx, f.tally, until) })
	}
	wg.Wait()
	cerr := f.closeProducers(n, 2*time.Minute) // flushes the last fragments
	after, err := sampleProcess(srv.pid())
	if err != nil {
		return nil, err
	}
	br := &burstRun{streams: n, window: burstWindow(f.frame), sent: f.tally.sent.Load(), acked: f.tally.acked.Load(),
		cores: (after.cpu - before.cpu).Seconds() / after.at.Sub(before.at).Seconds(), ourErr: errors.Join(f.tally.firstErr(), cerr)}
	br.rate = float64(br.acked) / (time.Duration(f.tally.last.Load()) - t0).Seconds()
	fmt.Fprintf(os.Stderr, "streams: burst %d fragments; raw JetStream peer\n", br.sent)
	br.peer, br.err = b.rawManyStreams(names, int(br.sent), len(f.conns), br.window)
	return br, nil
}

// burstWindow is how many fragments a producer has unacknowledged at most:
// its buffer's worth, and never more than its publishes in flight.
func burstWindow(frame []byte) int {
	return min(sdk.MaxPublishesInFlight, streamsBufferBytes/(framesPerFragment*len(frame)+512))
}

// rawManyStreams is the burst's peer: total 4 KiB messages (the MKV
// fragments of the ingest section's peer, at this size) published
// asynchronously to the streams' bus subjects, one publisher per stream
// with the producers' window, over conns connections, to an embedded
// JetStream set up as rawJetStream sets it up (the bus's stream and durable
// consumer, at-rest encryption, the bus's default sync). It returns
// messages/s to the last publish ack.
func (b *bench) rawManyStreams(names []string, total, conns, window int) (float64, error) {
	dir := b.scratch("jetstream-streams")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, err
	}
	ring, err := store.LoadKeyring(nil, filepath.Join(dir, "keyring.json"))
	if err != nil {
		return 0, err
	}
	jsKey, err := ring.JetStreamKey()
	if err != nil {
		return 0, err
	}
	ns, err := natsembed.Start(natsembed.Options{StoreDir: filepath.Join(dir, "nats"), Host: "127.0.0.1", Port: -1, JetStreamKey: jsKey})
	if err != nil {
		return 0, err
	}
	defer ns.Stop()
	ncs := make([]*nats.Conn, conns)
	for i := range ncs {
		if ncs[i], err = nats.Connect(ns.URL()); err != nil {
			return 0, err
		}
		defer ncs[i].Close()
	}
	ctx := context.Background()
	js, _ := jetstream.New(ncs[0])
	bus := ingest.BusConfig{}
	stream, err := js.CreateStream(ctx, bus.StreamConfig())
	if err != nil {
		return 0, err
	}
	if _, err := stream.CreateOrUpdateConsumer(ctx, bus.ConsumerConfig()); err != nil {
		return 0, err
	}
	payloads := (&bench{fragBytes: streamsFragBytes}).payloads(64)
	fmt.Fprintf(os.Stderr, "streams: raw peer messages of %d bytes\n", len(payloads[0]))
	subjects := wire.NewSubjects("")
	var failed atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for i, name := range names {
		count := total / len(names)
		if i < total%len(names) {
			count++
		}
		pjs, _ := jetstream.New(ncs[i%conns], jetstream.WithPublishAsyncMaxPending(window), jetstream.WithPublishAsyncTimeout(30*time.Second),
			jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed.Add(1) }))
		wg.Go(func() {
			for k := range count {
				msg := nats.NewMsg(subjects.Frag(name))
				msg.Data = payloads[k%len(payloads)]
				msg.Header.Set(nats.MsgIdHdr, fmt.Sprintf("raw:%s:%d", name, k))
				if _, err := pjs.PublishMsgAsync(msg, jetstream.WithStallWait(time.Minute)); err != nil {
					failed.Add(1)
				}
			}
			select {
			case <-pjs.PublishAsyncComplete():
			case <-time.After(5 * time.Minute):
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	rate := float64(total) / time.Since(t0).Seconds()
	if n := failed.Load(); n > 0 {
		return 0, fmt.Errorf("raw peer: %d publishes failed", n)
	}
	if info, err := stream.Info(ctx); err != nil {
		return 0, err
	} else if info.State.Msgs != uint64(total) {
		return 0, fmt.Errorf("raw peer: the stream kept %d of %d messages", info.State.Msgs, total)
	}
	return rate, nil
}

// serverProcess is `sensorium serve` as its own process.
type serverProcess struct {
	cmd              *exec.Cmd
	httpURL, natsURL string
	logPath          string
	exited           chan struct{}
	waitErr          error // once exited is closed
}

// buildServer builds the sensorium command of this tree into dir.
func buildServer(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "sensorium")
	out, err := exec.Command(cmp.Or(os.Getenv("GO"), "go"), "build", "-o", bin, "github.com/sensorium-io/sensorium/cmd/sensorium").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build sensorium: %w\n%s", err, out)
	}
	return bin, nil
}

// startServerProcess runs `sensorium serve` on free loopback ports with its
// data in dir/data and its log in dir/server.log, and returns once its API
// answers.
func startServerProcess(bin, dir string) (*serverProcess, error) {
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	natsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	s := &serverProcess{httpURL: "http://" + httpAddr, natsURL: "nats://" + natsAddr, logPath: filepath.Join(dir, "server.log"), exited: make(chan struct{})}
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	args := []string{"serve", "--data", filepath.Join(dir, "data"), "--http", httpAddr, "--nats", natsAddr,
		"--flight=", "--log-level", "warn", "--control-plane-per-second", streamsControlPlane}
	if addr := os.Getenv("SENSORIUM_BENCH_SERVER_PPROF"); addr != "" {
		// For `go tool pprof http://ADDR/debug/pprof/profile` while it runs.
		args = append(args, "--pprof", addr)
	}
	// More serve flags, to compare settings (e.g. --per-file-sync).
	args = append(args, strings.Fields(os.Getenv("SENSORIUM_BENCH_SERVER_FLAGS"))...)
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.waitErr = s.cmd.Wait(); close(s.exited) }()
	client := sdk.NewClient(s.httpURL, nil)
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("sensorium serve exited at start-up (%v); its log: %s", s.waitErr, s.logPath)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _, err := client.ListStreams(ctx, "", 1, "")
		cancel()
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("sensorium serve did not answer within a minute: %w (log: %s)", err, s.logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *serverProcess) pid() int { return s.cmd.Process.Pid }

// stop asks the server to stop (SIGTERM: it drains and fsyncs) and kills it
// if it has not exited within a minute.
func (s *serverProcess) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(time.Minute):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// stopOnSignal stops the server and exits when the bench is interrupted
// (SIGINT, SIGTERM), so that no `sensorium serve` outlives it; the returned
// function ends that.
func (s *serverProcess) stopOnSignal() func() {
	sig := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-sig:
			fmt.Fprintln(os.Stderr, "sensorium-bench: interrupted; stopping the server process")
			s.stop()
			os.Exit(130)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sig)
		close(done)
	}
}

// countWarnings counts the server log's lines at WARN or ERROR.
func countWarnings(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			n++
		}
	}
	return n
}

// procSample is what /proc says about a process at one time.
type procSample struct {
	at       time.Time
	cpu      time.Duration // utime + stime
	rss, hwm int64         // VmRSS, VmHWM
	fds      int           // entries of /proc/<pid>/fd
}

func sampleProcess(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) is in parentheses and may hold spaces; the
	// fields after it start at field 3, and utime and stime are 14 and 15.
	i := bytes.LastIndexByte(stat, ')')
	f := strings.Fields(string(stat[i+1:]))
	if i < 0 || len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, stat)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	s.cpu = time.Duration(ut+st) * time.Second / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if k == "VmRSS" {
			s.rss = kb << 10
		} else {
			s.hwm = kb << 10
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.fds = len(fds)
	return s, nil
}

// procMonitor samples a process's open files until closed, keeping the
// most seen; it notes when the process is gone.
type procMonitor struct {
	pid  int
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex // guards below
	max  int
	err  error
}

func watchProcess(pid int, every time.Duration) *procMonitor {
	m := &procMonitor{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s, err := sampleProcess(pid)
			m.mu.Lock()
			if err != nil && m.err == nil {
				m.err = fmt.Errorf("the server process: %w", err)
			}
			m.max = max(m.max, s.fds)
			m.mu.Unlock()
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *procMonitor) peakFDs() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.max
}

func (m *procMonitor) failure() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

func (m *procMonitor) close() {
	close(m.stop)
	<-m.done
}

// printStreams prints one column per count of streams and the goal beside
// each row it sets.
func printStreams(runs []*streamsRun, fl streamsFlags) {
	if len(runs) == 0 {
		return
	}
	fmt.Printf("%-44s", "streams")
	for _, r := range runs {
		fmt.Printf(" %17d", r.n)
	}
	fmt.Printf("   goal (at %d streams)\n", goalStreams)
	row := func(name, goal string, cell func(r *streamsRun) string) {
		fmt.Printf("%-44s", name)
		for _, r := range runs {
			fmt.Printf(" %17s", cell(r))
		}
		fmt.Printf("   %s\n", goal)
	}
	row("warm-up (first fragments' backlog drained)", "", func(r *streamsRun) string { return r.warmup.Round(100 * time.Millisecond).String() })
	one := func(l []time.Duration, p int) string {
		if len(l) == 0 {
			return "-"
		}
		return dur(pctDur(l, p))
	}
	two := func(l []time.Duration) string { return one(l, 50) + " / " + one(l, 99) }
	mib := func(v int64) string { return fmt.Sprintf("%.0f MiB", float64(v)/(1<<20)) }
	row(fmt.Sprintf("CreateStream, all (%d at a time)", streamsCreateWorkers), "", func(r *streamsRun) string { return r.createTotal.Round(10 * time.Millisecond).String() })
	row("CreateStream p50 / p99", "", func(r *streamsRun) string { return two(r.create) })
	row(fmt.Sprintf("ListStreams page of %d, p50 / p99", streamsListPage), "", func(r *streamsRun) string { return two(r.list) })
	row(fmt.Sprintf("DescribeStream p50 / p99 (%d random)", streamsDescribes), "", func(r *streamsRun) string { return two(r.describe) })
	row("fragment stored, bytes", "~4 KiB", func(r *streamsRun) string { return fmt.Sprint(r.fragBytes) })
	row("offered fragments/s", "1 per stream", func(r *streamsRun) string { return fmt.Sprintf("%.0f", r.steady.offered) })
	row("PERSISTED events/s in the window (*)", "all", func(r *streamsRun) string { return fmt.Sprintf("%.0f", r.steady.persisted) })
	row("last PutFrame → PERSISTED p50", "", func(r *streamsRun) string { return one(r.steady.lat, 50) })
	row("last PutFrame → PERSISTED p99", "≤ "+goalStreamsP99.String(), func(r *streamsRun) string { return one(r.steady.lat, 99) })
	row("last PutFrame → PERSISTED max", "", func(r *streamsRun) string { return one(r.steady.lat, 100) })
	row("last PutFrame → RECEIVED (bus) p50 / p99", "", func(r *streamsRun) string { return two(r.steady.recv) })
	row("fragments sent / not PERSISTED", "0 not PERSISTED", func(r *streamsRun) string {
		return fmt.Sprintf("%d / %d", r.steady.sent, r.steady.missing())
	})
	row("server RSS peak (VmHWM) / at end", "< 1 GiB", func(r *streamsRun) string { return mib(r.hwm) + " / " + mib(r.rssEnd) })
	row("server cores (measuring window)", fmt.Sprintf("< %.0f", goalStreamsCores), func(r *streamsRun) string { return fmt.Sprintf("%.2f", r.cores) })
	row("server open files, max sampled", "bounded", func(r *streamsRun) string { return fmt.Sprint(r.maxFDs) })
	row("server log lines at WARN or ERROR", "", func(r *streamsRun) string { return fmt.Sprint(r.logWarnings) })
	row("bench process RSS peak / per producer", "", func(r *streamsRun) string {
		return mib(r.benchHWM) + fmt.Sprintf(" / %.0f KiB", float64(r.benchPerStream)/1024)
	})
	row("bench process cores (producers)", "", func(r *streamsRun) string { return fmt.Sprintf("%.2f", r.benchCores) })
	row("goal", "", func(r *streamsRun) string { return met(len(r.misses()) == 0) })
	for _, r := range runs {
		if m := r.misses(); len(m) > 0 {
			fmt.Printf("%d streams, goal not met: %s\n", r.n, strings.Join(m, "; "))
		}
		if r.steady.putErr != nil {
			fmt.Printf("%d streams: a PutFrame failed: %v\n", r.n, r.steady.putErr)
		}
	}
	fmt.Printf("(steady state: %d s measured after a warm-up of at least %s, until at most half a second of fragments was waiting (the warm-up row); latency: from a fragment's last PutFrame to its PERSISTED event, fragments put in the window;\n"+
		" (*) PERSISTED events that arrived in the window, whenever their fragment was put: above the offered rate when a backlog from the warm-up drains;\n"+
		" not PERSISTED: of every fragment sent, after a wait of at most %s; cores: the server's utime+stime over the window; RSS peak: over the server's life up to the window's end;\n"+
		" %d NATS connections; control-plane rate limit raised to %s calls/s)\n\n",
		fl.seconds, streamsWarmup, streamsDrain, fl.conns, streamsControlPlane)
}

// misses lists what keeps a run from the goal's thresholds (the goal's own
// count is goalStreams; smaller counts are held to the same ones).
func (r *streamsRun) misses() []string {
	var out []string
	s := r.steady
	if s.missing() > 0 || s.refused > 0 || s.dropped > 0 {
		out = append(out, fmt.Sprintf("%d fragments not PERSISTED (%d refused, %d dropped by the producer)", s.missing(), s.refused, s.dropped))
	}
	if s.offered < 0.95*float64(r.n) {
		out = append(out, fmt.Sprintf("the bench offered only %.0f of %d fragments/s", s.offered, r.n))
	}
	switch {
	case len(s.lat) == 0:
		out = append(out, "no fragment put in the window was PERSISTED")
	case pctDur(s.lat, 99) > goalStreamsP99:
		out = append(out, "PERSISTED p99 "+dur(pctDur(s.lat, 99))+" > "+goalStreamsP99.String())
	}
	if r.hwm >= goalStreamsRSS {
		out = append(out, fmt.Sprintf("server RSS peak %.2f GiB ≥ 1 GiB", float64(r.hwm)/(1<<30)))
	}
	if r.cores >= goalStreamsCores {
		out = append(out, fmt.Sprintf("server used %.2f cores", r.cores))
	}
	return out
}

// dur prints a duration to about three significant digits.
func dur(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	case d < 100*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d < 10*time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

// pctDur is pct's value, unrounded.
func pctDur(l []time.Duration, p int) time.Duration {
	s := slices.Clone(l)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func printBurst(br *burstRun) {
	fmt.Printf("Burst: %d streams, each producer sending ~4 KiB fragments as fast as its window allows (%d unacknowledged) for %s, to the last PERSISTED\n",
		br.streams, br.window, streamsBurstFor)
	fmt.Printf("%-58s %12s\n", "path", "fragments/s")
	fmt.Printf("%-58s %12.0f   server %.2f cores\n", "SDK → PERSISTED (sensorium serve process)", br.rate, br.cores)
	if br.err != nil {
		fmt.Printf("%-58s %12s   %v\n", "raw JetStream async publish, default sync", "failed", br.err)
	} else {
		fmt.Printf("%-58s %12.0f   ratio %.2f×\n", "raw JetStream async publish, default sync (peer)", br.peer, br.rate/br.peer)
	}
	ok := br.rate >= goalBurstRate && br.acked == br.sent && br.ourErr == nil
	fmt.Printf("goal ≥ %.0f fragments/s across %d streams on 2 cores, every one PERSISTED (this burst: %d streams): %s\n",
		goalBurstRate, goalBurstStreams, br.streams, met(ok && br.streams >= goalBurstStreams))
	if br.ourErr != nil {
		fmt.Printf("burst: %v\n", br.ourErr)
	}
	fmt.Printf("(%d fragments sent, %d PERSISTED; the peer publishes as many 4 KiB MKV messages to the same streams' bus subjects, one publisher per stream "+
		"with the same window, over as many connections, to an embedded JetStream in the bench process set up as the bus is)\n\n", br.sent, br.acked)
}
