package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/store"
)

// The live section (issue 15, goal 4): how soon a frame put through the SDK
// reaches those who follow the stream live.
//
// The server is started in this process (server.Start, as the ingest
// section's is), so that -cpuprofile sees the server and the clients in one
// profile; every client still reaches it over loopback TCP, as a separate
// process would. For each rate in liveRates, one SDK producer puts frames
// paced on the wall clock (deadline by deadline, not sleep by sleep) into a
// fresh stream, with live frames on and fragments that close at the first
// frame -live-fragment after the fragment's first, while on other
// connections:
//
//	live      a core NATS subscriber of sensorium.live.<stream>; a frame's
//	          latency runs from the start of its PutFrame to its arrival
//	raw       the peer, and the floor: right beside each PutFrame, a raw core
//	          NATS publish of the same message (subject aside: the same
//	          headers, built the same way, and the same payload) from its own
//	          connection to a subscriber on another, on the same server at the
//	          same moments; which of the two goes first alternates
//	getmedia  a GetMedia reader started at NOW before the first frame; a
//	          fragment's latency runs from the start of the PutFrame of its
//	          last frame to the reader's arrival at that frame
//	persisted the peer of getmedia: the same fragments' PERSISTED events,
//	          from the same instant, on a core NATS subscriber of
//	          sensorium.ack.<stream>
//
// Beside the peers, rows that place a fragment's time: from its last
// PutFrame to RECEIVED (the SDK's OnAck: the bus has it), from RECEIVED to
// PERSISTED (the server: ingest, the store's append and fsync, the event),
// the store's own fsync histogram over the run, and a raw write and fsync
// of as many bytes in the server's data folder half a fragment after each
// close (the disk's floor, at a moment the store is not syncing).
//
// GetMedia serves only fragments the store has made durable (query.GetMedia
// starts NOW after the newest durable fragment and waits on store.Wait,
// which wakes when an fsync makes fragments durable): the PERSISTED event is
// sent after that same fsync, so it is the floor a GetMedia reader can reach
// without serving fragments before they are on disk.
//
// A fragment's last frame waits for the next frame before its fragment
// closes (a producer cannot know that a frame is a fragment's last until a
// later key frame comes), so one frame interval is in every getmedia and
// persisted figure. The fragment that Flush closes at the end is not
// counted. SENSORIUM_BENCH_SKIP_LIVE=1 leaves the section out of `make bench`.

// skipLiveEnv set to 1 leaves the live section out of `make bench`.
const skipLiveEnv = "SENSORIUM_BENCH_SKIP_LIVE"

// Goals of issue 15, goal 4.
const (
	goalLiveP99     = 5 * time.Millisecond  // PutFrame → live subscriber
	goalGetMediaP99 = 50 * time.Millisecond // beyond the fragment's duration
)

// liveFlags are the section's flags.
type liveFlags struct {
	seconds  int           // frames are put for this long per rate
	fragment time.Duration // a fragment closes at the first frame this long after its first
}

// liveRate is one producer's shape.
type liveRate struct {
	name     string
	hz       int
	frameLen int
}

var liveRates = []liveRate{
	{"vibration", 100, 1536}, // 10 ms of 3-axis int16 at 25.6 kHz
	{"imu", 1000, 28},        // one 6-axis float32 sample and a counter
}

// liveRun is one rate's run: what was put when, and what arrived when. Times
// are ns since t0 on the monotonic clock; an arrival of 0 is none yet.
type liveRun struct {
	rate       liveRate
	stream     string
	n          int
	interval   time.Duration
	t0         time.Time
	base       int64 // producer timestamp of frame 0, ns on a whole millisecond
	fragFrames int   // frames of a fragment
	probe      *fsyncProbe

	put, rawPut       []atomic.Int64 // when frame i's PutFrame / raw publish began
	liveAt, rawAt     []atomic.Int64 // when frame i reached the live / raw subscriber
	liveGot, rawGot   atomic.Int64
	strayLive, strayR atomic.Int64 // messages no frame of this run accounts for

	mu        sync.Mutex
	frags     []liveFrag           // closed by a PutFrame, in order; producer's goroutine only until the run ends
	readerAt  map[int64]readerFrag // GetMedia arrivals by fragment start, ms
	persisted map[uint64]int64     // PERSISTED arrivals by producer sequence
	received  map[uint64]int64     // RECEIVED (the bus's publish ack, through the SDK's OnAck) by sequence
	readerErr error                // why the GetMedia reader stopped early
}

// liveFrag is a fragment the producer closed: its sequence and frames.
type liveFrag struct {
	seq         uint64
	first, last int
}

// readerFrag is what the GetMedia reader saw of one fragment.
type readerFrag struct {
	frames int
	at     int64 // when its latest frame arrived
}

func (r *liveRun) since() int64 { return int64(time.Since(r.t0)) }

// liveResult is one rate's figures.
type liveResult struct {
	rate                liveRate
	frames, fragments   int
	fragDur             time.Duration
	ours, raw           []time.Duration // PutFrame → live subscriber; raw publish → subscriber
	closers, closersRaw []time.Duration // ours and the peer's, of the frames whose PutFrame closed a fragment
	lostOurs, lostRaw   int
	getMedia, persisted []time.Duration // a fragment's last PutFrame → reader / PERSISTED
	received            []time.Duration // … → RECEIVED
	toPersisted         []time.Duration // RECEIVED → PERSISTED, the same fragment
	missGM, missPer     int
	fsync               fsyncDelta      // the store's fsyncs during the run
	probe               []time.Duration // the disk's: write and fsync of a fragment's bytes beside the store
	stray               int64           // live or raw messages no frame of the run accounts for
	readerErr           error           // why the GetMedia reader stopped early, if it did
}

func (b *bench) live(lf liveFlags) error {
	if lf.seconds <= 0 || lf.fragment <= 0 || lf.fragment > sdk.MaxFragmentDurationLimit/2 {
		return fmt.Errorf("-live-seconds must be positive and -live-fragment within (0, %s]", sdk.MaxFragmentDurationLimit/2)
	}
	t0 := time.Now()
	fmt.Printf("Live latency: a server in this process (server.Start), clients over loopback TCP; per rate, one SDK producer "+
		"puts frames for %d s with live frames on, fragments close every %s; the raw peer publishes the same messages beside it\n\n",
		lf.seconds, lf.fragment)
	dir := b.scratch("live")
	srv, err := server.Start(context.Background(), server.Config{DataDir: dir, NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: quiet})
	if err != nil {
		return err
	}
	defer srv.Shutdown(context.Background())
	var results []liveResult
	for _, rate := range liveRates {
		res, err := runLive(srv, dir, rate, lf)
		if err != nil {
			return fmt.Errorf("live %s: %w", rate.name, err)
		}
		results = append(results, res)
	}
	printLive(results)
	fmt.Printf("(live section: %s, set %s=1 to skip it)\n", time.Since(t0).Round(time.Second), skipLiveEnv)
	return nil
}

// liveConns are the run's connections: each role its own, so that no
// client's queue delays another's.
type liveConns struct{ producer, sub, rawPub, rawSub, acks *nats.Conn }

func dialLive(url string) (*liveConns, error) {
	var c liveConns
	for _, p := range []**nats.Conn{&c.producer, &c.sub, &c.rawPub, &c.rawSub, &c.acks} {
		nc, err := nats.Connect(url)
		if err != nil {
			c.close()
			return nil, err
		}
		*p = nc
	}
	return &c, nil
}

func (c *liveConns) close() {
	for _, nc := range []*nats.Conn{c.producer, c.sub, c.rawPub, c.rawSub, c.acks} {
		if nc != nil {
			nc.Close()
		}
	}
}

// runLive runs one rate on its own stream of srv, whose data folder is
// dataDir.
func runLive(srv *server.Server, dataDir string, rate liveRate, lf liveFlags) (liveResult, error) {
	ctx := context.Background()
	n := lf.seconds * rate.hz
	r := &liveRun{rate: rate, stream: "live-" + rate.name, n: n, interval: time.Second / time.Duration(rate.hz),
		fragFrames: max(1, int(lf.fragment*time.Duration(rate.hz)/time.Second)),
		put:        make([]atomic.Int64, n), rawPut: make([]atomic.Int64, n), liveAt: make([]atomic.Int64, n), rawAt: make([]atomic.Int64, n),
		readerAt: map[int64]readerFrag{}, persisted: map[uint64]int64{}, received: map[uint64]int64{}}
	client := sdk.NewClient(srv.HTTPURL(), nil)
	if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: r.stream, DataRetentionInHours: 1}); err != nil {
		return liveResult{}, err
	}
	conns, err := dialLive(srv.NATSURL())
	if err != nil {
		return liveResult{}, err
	}
	defer conns.close()
	subjects := wire.NewSubjects("")
	rawSubject := "sensorium-bench.raw." + r.stream
	subs := []struct {
		nc      *nats.Conn
		subject string
		fn      nats.MsgHandler
	}{
		{conns.sub, subjects.Live(r.stream), func(m *nats.Msg) { r.arrived(m, r.liveAt, &r.liveGot, &r.strayLive) }},
		{conns.rawSub, rawSubject, func(m *nats.Msg) { r.arrived(m, r.rawAt, &r.rawGot, &r.strayR) }},
		{conns.acks, subjects.Ack(r.stream), r.onAck},
	}
	for _, s := range subs {
		sub, err := s.nc.Subscribe(s.subject, s.fn)
		if err != nil {
			return liveResult{}, err
		}
		_ = sub.SetPendingLimits(-1, -1) // a slow moment must show as latency, not as loss
		if err := s.nc.Flush(); err != nil {
			return liveResult{}, err
		}
	}
	p, err := sdk.NewProducer(ctx, conns.producer, sdk.ProducerConfig{
		Stream: r.stream, Tracks: []sdk.Track{liveTrack()},
		MinFragmentDuration: lf.fragment, MaxFragmentDuration: 2 * lf.fragment, Logger: quiet, OnAck: r.onProducerAck,
	})
	if err != nil {
		return liveResult{}, err
	}
	rctx, stopReader := context.WithCancel(ctx)
	defer stopReader()
	readerDone, err := r.startReader(rctx, client)
	if err != nil {
		return liveResult{}, err
	}
	// The disk's floor for the store's fsync: as many bytes as a fragment,
	// written and fsynced in the server's data folder (the store's file
	// system) half a fragment after each close, when the store's own fsync
	// is done.
	if r.probe, err = startFsyncProbe(filepath.Join(dataDir, "bench-fsync-probe"), r.fragFrames*(rate.frameLen+16)+1024); err != nil {
		return liveResult{}, err
	}
	before := srv.Store().Stats()
	err = r.putFrames(ctx, p, conns.rawPub, rawSubject)
	probed := r.probe.stop()
	if err != nil {
		return liveResult{}, err
	}
	if err := r.drain(ctx, p); err != nil {
		return liveResult{}, err
	}
	stopReader()
	<-readerDone
	res := r.result(lf)
	res.fsync, res.probe = fsyncsSince(before, srv.Store().Stats()), probed
	return res, nil
}

// liveTrack is the producers' one track: opaque bytes, as the payload is
// not what is measured.
func liveTrack() sdk.Track {
	t, err := sdk.OpaqueTrack(1, "payload", "application/octet-stream")
	if err != nil {
		panic(err) // a constant description
	}
	return t
}

// frameIndex is the run's frame i that a live message carries, from its
// producer timestamp.
func (r *liveRun) frameIndex(m *nats.Msg) (int, bool) {
	ts, err := strconv.ParseInt(m.Header.Get(wire.HeaderTimestamp), 10, 64)
	if err != nil || ts < r.base || (ts-r.base)%int64(r.interval) != 0 {
		return 0, false
	}
	i := (ts - r.base) / int64(r.interval)
	return int(i), i < int64(r.n)
}

func (r *liveRun) arrived(m *nats.Msg, at []atomic.Int64, got, stray *atomic.Int64) {
	now := r.since()
	i, ok := r.frameIndex(m)
	if !ok || !at[i].CompareAndSwap(0, now) {
		stray.Add(1)
		return
	}
	got.Add(1)
}

func (r *liveRun) onAck(m *nats.Msg) {
	now := r.since()
	var ev wire.AckEvent
	if json.Unmarshal(m.Data, &ev) != nil || ev.EventType != wire.EventPersisted {
		return
	}
	r.mu.Lock()
	if _, seen := r.persisted[ev.ProducerSequence]; !seen {
		r.persisted[ev.ProducerSequence] = now
	}
	r.mu.Unlock()
}

// onProducerAck notes when the producer heard RECEIVED: the bus has the
// fragment, and the rest of its way to PERSISTED is the server's.
func (r *liveRun) onProducerAck(ev sdk.AckEvent) {
	now := r.since()
	if ev.EventType != sdk.EventReceived {
		return
	}
	r.mu.Lock()
	if _, seen := r.received[ev.ProducerSequence]; !seen {
		r.received[ev.ProducerSequence] = now
	}
	r.mu.Unlock()
}

// startReader opens GetMedia at NOW and records when each fragment's frames
// arrive, until ctx ends.
func (r *liveRun) startReader(ctx context.Context, client *sdk.Client) (<-chan struct{}, error) {
	body, err := client.GetMedia(ctx, sdk.StreamRef{StreamName: r.stream}, sdk.StartNow(), true)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer body.Close()
		mr := sdk.NewMediaReader(body)
		var cur *sdk.FragmentMeta
		var start int64
		frames := 0
		for {
			f, err := mr.Next()
			var ce *sdk.ChunkError
			switch {
			case errors.As(err, &ce):
				r.setReaderErr(err)
				continue
			case err != nil:
				if ctx.Err() == nil && !errors.Is(err, io.EOF) {
					r.setReaderErr(err)
				}
				return
			}
			now := r.since()
			if f.Fragment != cur {
				cur, start, frames = f.Fragment, f.Fragment.ProducerTimestamp.UnixMilli(), 0
			}
			frames++
			r.mu.Lock()
			r.readerAt[start] = readerFrag{frames: frames, at: now}
			r.mu.Unlock()
		}
	}()
	return done, nil
}

func (r *liveRun) setReaderErr(err error) {
	r.mu.Lock()
	if r.readerErr == nil {
		r.readerErr = err
	}
	r.mu.Unlock()
}

// putFrames puts the run's frames on their deadlines, each beside its raw peer,
// and notes which PutFrame closed which fragment.
func (r *liveRun) putFrames(ctx context.Context, p *sdk.Producer, rawPub *nats.Conn, rawSubject string) error {
	frame := make([]byte, r.rate.frameLen)
	x := uint32(2463534242)
	for i := range frame {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		frame[i] = byte(x)
	}
	codecID := liveTrack().CodecID
	r.t0 = time.Now()
	r.base = r.t0.UnixMilli() * int64(time.Millisecond)
	closed, first := int64(0), 0
	for i := 0; i < r.n; i++ {
		if d := time.Until(r.t0.Add(time.Duration(i) * r.interval)); d > 0 {
			time.Sleep(d)
		}
		frame[0], frame[1], frame[2], frame[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
		f := sdk.Frame{Track: 1, Timestamp: r.base + int64(i)*int64(r.interval), Duration: int64(r.interval), Key: true, Data: frame}
		ours := func() error {
			r.put[i].Store(r.since())
			return p.PutFrame(ctx, f)
		}
		raw := func() error {
			r.rawPut[i].Store(r.since())
			return rawPub.PublishMsg(rawLiveMsg(rawSubject, &f, codecID))
		}
		one, two := ours, raw
		if i%2 == 1 {
			one, two = raw, ours
		}
		if err := one(); err != nil {
			return err
		}
		if err := two(); err != nil {
			return err
		}
		if i == first+r.fragFrames/2 {
			r.probe.kick()
		}
		if k := p.Stats().Fragments; k > closed {
			// One close per PutFrame; more means the producer's wall-clock
			// closer stepped in after a stall, and those are not counted.
			if k == closed+1 {
				r.mu.Lock()
				r.frags = append(r.frags, liveFrag{seq: uint64(k), first: first, last: i - 1})
				r.mu.Unlock()
			}
			closed, first = k, i
		}
	}
	return nil
}

// rawLiveMsg is the message the SDK publishes for a live frame
// (sdk.Producer's publishLive), on the peer's subject: the same headers,
// built the same way, and the same payload.
func rawLiveMsg(subject string, f *sdk.Frame, codecID string) *nats.Msg {
	m := &nats.Msg{Subject: subject, Data: f.Data, Header: nats.Header{}}
	m.Header.Set(wire.HeaderTimestamp, strconv.FormatInt(f.Timestamp, 10))
	m.Header.Set(wire.HeaderDuration, strconv.FormatInt(f.Duration, 10))
	m.Header.Set(wire.HeaderTrack, strconv.FormatUint(f.Track, 10))
	key := "0"
	if f.Key {
		key = "1"
	}
	m.Header.Set(wire.HeaderKey, key)
	m.Header.Set(wire.HeaderCodecID, codecID)
	return m
}

// Bounds on the waits after the last frame: a live frame later than
// liveLate is counted lost, and every counted fragment must have reached
// the reader and been PERSISTED within liveSettle.
const (
	liveLate   = 5 * time.Second
	liveSettle = 30 * time.Second
)

// drain waits for the frames still on their way, then closes the producer
// (its last fragment, not counted, is flushed) and waits for every counted
// fragment to reach the GetMedia reader and be PERSISTED.
func (r *liveRun) drain(ctx context.Context, p *sdk.Producer) error {
	_ = waitFor(liveLate, time.Millisecond, func() error {
		if ours, raw := r.liveGot.Load(), r.rawGot.Load(); ours < int64(r.n) || raw < int64(r.n) {
			return fmt.Errorf("live frames: %d and %d of %d", ours, raw, r.n)
		}
		return nil
	}) // what is still missing is reported as lost
	cctx, cancel := context.WithTimeout(ctx, liveSettle)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		return err
	}
	return waitFor(liveSettle, time.Millisecond, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.readerErr != nil {
			return nil // reported with the result
		}
		for _, f := range r.frags {
			if got := r.readerAt[r.startMS(f)]; got.frames < f.last-f.first+1 {
				return fmt.Errorf("GetMedia reader: fragment %d has %d of its %d frames", f.seq, got.frames, f.last-f.first+1)
			}
			if _, ok := r.persisted[f.seq]; !ok {
				return fmt.Errorf("fragment %d not PERSISTED", f.seq)
			}
		}
		return nil
	})
}

// startMS is a fragment's producer timestamp as GetMedia reports it: its
// first frame's, in whole milliseconds.
func (r *liveRun) startMS(f liveFrag) int64 {
	return (r.base + int64(f.first)*int64(r.interval)) / int64(time.Millisecond)
}

func (r *liveRun) result(lf liveFlags) liveResult {
	res := liveResult{rate: r.rate, frames: r.n, fragDur: lf.fragment}
	for i := 0; i < r.n; i++ {
		if at := r.liveAt[i].Load(); at != 0 {
			res.ours = append(res.ours, time.Duration(at-r.put[i].Load()))
		} else {
			res.lostOurs++
		}
		if at := r.rawAt[i].Load(); at != 0 {
			res.raw = append(res.raw, time.Duration(at-r.rawPut[i].Load()))
		} else {
			res.lostRaw++
		}
	}
	res.stray = r.strayLive.Load() + r.strayR.Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	res.fragments, res.readerErr = len(r.frags), r.readerErr
	for _, f := range r.frags {
		if at := r.liveAt[f.last+1].Load(); at != 0 {
			res.closers = append(res.closers, time.Duration(at-r.put[f.last+1].Load()))
		}
		if at := r.rawAt[f.last+1].Load(); at != 0 {
			res.closersRaw = append(res.closersRaw, time.Duration(at-r.rawPut[f.last+1].Load()))
		}
		last := r.put[f.last].Load()
		if got := r.readerAt[r.startMS(f)]; got.frames == f.last-f.first+1 {
			res.getMedia = append(res.getMedia, time.Duration(got.at-last))
		} else {
			res.missGM++
		}
		if at, ok := r.persisted[f.seq]; ok {
			res.persisted = append(res.persisted, time.Duration(at-last))
		} else {
			res.missPer++
		}
		if at, ok := r.received[f.seq]; ok {
			res.received = append(res.received, time.Duration(at-last))
			if per, ok := r.persisted[f.seq]; ok {
				res.toPersisted = append(res.toPersisted, time.Duration(per-at))
			}
		}
	}
	if len(r.frags) > 0 {
		res.fragDur = time.Duration(r.frags[0].last-r.frags[0].first+1) * r.interval
	}
	return res
}

// quantile is the q-quantile (0..1) of l by nearest rank; 0 when l is empty.
func quantile(l []time.Duration, q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(float64(len(s))*q+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

func printLive(results []liveResult) {
	row := func(name string, l []time.Duration, lost int) {
		fmt.Printf("  %-50s %6d %10s %10s %10s %6d\n", name, len(l), ms(quantile(l, .5)), ms(quantile(l, .99)), ms(slices.Max(append([]time.Duration{0}, l...))), lost)
	}
	ratio := func(a, b []time.Duration) float64 {
		return float64(quantile(a, .99)) / float64(max(1, quantile(b, .99)))
	}
	fmt.Printf("  %-50s %6s %10s %10s %10s %6s\n", "", "n", "p50", "p99", "max", "lost")
	for _, r := range results {
		fmt.Printf("%s: %d frames/s of %d B, %d frames, fragments of %s\n", r.rate.name, r.rate.hz, r.rate.frameLen, r.frames, r.fragDur)
		row("SDK PutFrame → live subscriber", r.ours, r.lostOurs)
		row("  of which the PutFrames that closed a fragment", r.closers, 0)
		row("raw core-NATS publish → subscriber (peer, floor)", r.raw, r.lostRaw)
		row("  of which the same frames", r.closersRaw, 0)
		p99 := quantile(r.ours, .99)
		fmt.Printf("  %-50s ratio %.2f× the peer's p99; goal p99 ≤ %s: %s\n", "", ratio(r.ours, r.raw), goalLiveP99,
			met(r.lostOurs == 0 && len(r.ours) > 0 && p99 <= goalLiveP99))
		row("fragment's last PutFrame → GetMedia NOW reader", r.getMedia, r.missGM)
		row("fragment's last PutFrame → PERSISTED (peer)", r.persisted, r.missPer)
		row("  split: → RECEIVED (the bus's publish ack)", r.received, r.fragments-len(r.received))
		row("  split: RECEIVED → PERSISTED (ingest, append, fsync)", r.toPersisted, r.fragments-len(r.toPersisted))
		fmt.Printf("  %-50s %6d %10s %10s %10s\n", "store fsyncs meanwhile (mean; p99: its bucket's bound)", r.fsync.n, ms(r.fsync.mean()), ms(r.fsync.p99()), "")
		row("raw write + fsync of a fragment's bytes beside it", r.probe, 0)
		if r.stray > 0 {
			fmt.Printf("  %d live or raw messages belonged to no frame of the run\n", r.stray)
		}
		if r.readerErr != nil {
			fmt.Printf("  the GetMedia reader stopped early: %v\n", r.readerErr)
		}
		gm := quantile(r.getMedia, .99)
		fmt.Printf("  %-50s ratio %.2f× the peer's p99; fragment duration + p99 = %s + %s = %s; goal p99 ≤ %s: %s\n\n", "",
			ratio(r.getMedia, r.persisted), r.fragDur, ms(gm), (r.fragDur + gm).Round(10*time.Microsecond), goalGetMediaP99,
			met(r.missGM == 0 && len(r.getMedia) > 0 && gm <= goalGetMediaP99))
	}
	fmt.Println("GetMedia serves only fragments made durable by the store's fsync; PERSISTED is sent after that same fsync.")
}

// fsyncDelta is what the store's fsync histogram gained over a run.
type fsyncDelta struct {
	n       int64
	total   time.Duration
	buckets []int64 // as store.Stats.FsyncBuckets: the last counts those past every bound
	bounds  []time.Duration
}

func fsyncsSince(before, after store.Stats) fsyncDelta {
	d := fsyncDelta{n: after.Fsyncs - before.Fsyncs, total: after.FsyncTotal - before.FsyncTotal, bounds: after.FsyncBounds}
	for i := range after.FsyncBuckets {
		d.buckets = append(d.buckets, after.FsyncBuckets[i]-before.FsyncBuckets[i])
	}
	return d
}

func (d fsyncDelta) mean() time.Duration { return d.total / time.Duration(max(1, d.n)) }

// p99 is the upper bound of the bucket that holds the 99th percentile; past
// the last bound it is reported as twice that bound.
func (d fsyncDelta) p99() time.Duration {
	var cum int64
	for i, c := range d.buckets {
		cum += c
		if float64(cum) >= 0.99*float64(d.n) {
			if i < len(d.bounds) {
				return d.bounds[i]
			}
			break
		}
	}
	if len(d.bounds) == 0 {
		return 0
	}
	return 2 * d.bounds[len(d.bounds)-1]
}

// fsyncProbe writes and fsyncs size bytes to a file each time it is kicked,
// from its own goroutine, and times the two.
type fsyncProbe struct {
	kicks chan struct{}
	done  chan []time.Duration
}

func startFsyncProbe(path string, size int) (*fsyncProbe, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	p := &fsyncProbe{kicks: make(chan struct{}, 1), done: make(chan []time.Duration, 1)}
	go func() {
		defer os.Remove(path)
		defer f.Close()
		buf := make([]byte, size)
		var took []time.Duration
		for range p.kicks {
			t := time.Now() // the write too, as the store's fsync metric times its last write
			if _, err := f.Write(buf); err != nil || f.Sync() != nil {
				break
			}
			took = append(took, time.Since(t))
		}
		p.done <- took
	}()
	return p, nil
}

// kick asks for one more write and fsync, unless one is still waiting.
func (p *fsyncProbe) kick() {
	select {
	case p.kicks <- struct{}{}:
	default:
	}
}

func (p *fsyncProbe) stop() []time.Duration {
	close(p.kicks)
	return <-p.done
}
