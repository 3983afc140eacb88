package sdk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk/internal/spool"
)

// Acknowledgement events, re-exported so that users never need internal/platform/wire.
type (
	AckEvent  = wire.AckEvent
	EventType = wire.EventType
	ErrorCode = wire.ErrorCode
)

// Event types. EventRetry is Sensorium's: the server held a fragment back
// because the one before it had not arrived (it was lost in a crash while a
// later one survived); the producer re-sends it after that one.
const (
	EventRetry     = wire.EventRetry
	EventBuffering = wire.EventBuffering
	EventReceived  = wire.EventReceived
	EventPersisted = wire.EventPersisted
	EventError     = wire.EventError
	EventIdle      = wire.EventIdle
)

// ErrClosed is what PutFrame, Flush, PutFragmentMetadata, the typed puts and
// the sample writers return once Close has been called: the producer takes
// no more data. A PutFrame that was waiting for room in the buffer when
// Close gave up (its context ended) returns it too, and its fragment is
// reported through OnDrop.
var ErrClosed = errors.New("sdk: producer closed")

// BufferPolicy says what PutFrame does when the buffer of unacknowledged
// fragments is full.
type BufferPolicy int

const (
	// Block makes PutFrame wait (bounded by its context) until acknowledgements
	// free room: nothing is lost, the producer slows down. The seed SDK's
	// offline mode.
	Block BufferPolicy = iota
	// DropOldest drops the oldest fragments not yet PERSISTED to make room, even
	// if they are on the wire, and reports each through OnDrop: the newest data
	// wins. The seed SDK's real-time mode. With a spool it drops the oldest
	// segment file's fragments together (SpoolConfig.Budget).
	DropOldest
	// RefuseNew keeps what the buffer (or the spool) holds and drops the new
	// fragment at once: the PutFrame that closed it returns an error wrapping
	// ErrBufferFull, and OnDrop reports it. The oldest data wins, and the
	// producer never waits.
	RefuseNew
)

// DropCause says why a fragment was dropped.
type DropCause uint8

const (
	// DroppedOldest: DropOldest made room for newer fragments.
	DroppedOldest DropCause = iota
	// DroppedNew: the new fragment found no room (RefuseNew; a Block-ed
	// PutFrame whose context ended or whose producer was closed; a spool
	// that could not write it).
	DroppedNew
	// DroppedDamaged: the fragment's record in the spool was damaged on disk.
	DroppedDamaged
)

func (c DropCause) String() string {
	switch c {
	case DroppedOldest:
		return "oldest"
	case DroppedNew:
		return "new"
	case DroppedDamaged:
		return "damaged"
	}
	return "unknown"
}

// Dropped describes a fragment given up (Cause says why: DropOldest made
// room, RefuseNew or a blocked PutFrame's end left none, or its spool record
// was damaged): the producer no longer holds it, in memory or in its spool,
// and never re-sends it.
type Dropped struct {
	Sequence   uint64
	Start, End int64 // producer time span, ns
	Frames     int
	Bytes      int
	// OnTheWire is set when the fragment had been published before it was
	// dropped: the bus may have it, and the server may still store it. If it
	// does, its PERSISTED event still reaches OnAck, after this notice (as
	// long as the producer is connected when it comes: events are core
	// NATS). A fragment dropped before it was ever sent is never stored.
	// A spooled fragment of an earlier process counts as on the wire.
	OnTheWire bool
	Cause     DropCause
}

// maxDroppedOnTheWire bounds how many dropped-while-published fragments a
// producer keeps listening for.
const maxDroppedOnTheWire = 4096

// ProducerConfig configures a Producer. Zero values take the defaults.
type ProducerConfig struct {
	Stream string
	Prefix string // subject prefix; default "sensorium"
	// ProducerID with each fragment's sequence is the server's dedupe key;
	// default: random "p-" + 16 hex digits. A producer started again under a
	// configured id begins at sequence 1 again, and the server answers its
	// fragments as duplicates of the earlier run's: a configured id names one
	// run of fragments (an importer resumes that way). With a Spool the id is
	// the spool's and sequences continue across runs.
	ProducerID          string
	Tracks              []Track       // 1 to 3
	MinFragmentDuration time.Duration // close at a key frame once this long; default 2 s
	MaxFragmentDuration time.Duration // close at this length in any case; default 10 s, at most 30 s
	// MaxFragmentSize bounds a fragment's encoded bytes, its metadata tags
	// included; default 4 MiB, or less if the NATS server's max_payload is
	// smaller (a stock nats-server takes 1 MB), so that a fragment is one
	// message; at most 50 MB (MaxFragmentSizeLimit, the server's and the seed
	// service's limit). A fragment larger than the server's max_payload less
	// PublishHeaderBytes is sent as chunk messages that the server puts back
	// together (docs/NATS.md, "Fragments larger than a message").
	MaxFragmentSize int
	BufferBytes     int64 // fragments not yet PERSISTED held in memory (with a Spool: those on their way; the rest wait on disk); default 64 MiB
	Policy          BufferPolicy
	// PersistTimeout re-sends a fragment that the bus has (RECEIVED) but whose
	// PERSISTED has not come this long after, while the server has said
	// nothing about the producer's fragments for as long; the wait doubles
	// with each re-send of the fragment, up to 16 × PersistTimeout, which is
	// also how long a fragment waits at most while events for others keep
	// coming — unless a later fragment's PERSISTED has come: the server
	// applies a stream's fragments in order, so this one's verdict was lost
	// on the way (core NATS drops events to a slow consumer), and it is
	// re-sent a quarter of PersistTimeout after. After a reconnect every
	// RECEIVED fragment is re-sent at once. Default 15 s.
	PersistTimeout time.Duration
	// PublishTimeout is how long a fragment's publish waits for the bus's
	// acknowledgement (RECEIVED) before it is sent again, plus one second
	// per MiB of the fragment for the transfer itself. A cluster's bus shard
	// whose leader died never answers the publishes it was sent; its new
	// leader takes the re-sends (docs/CLUSTER.md). Default 3 s.
	PublishTimeout time.Duration
	NoLive         bool           // do not publish frames on the live subject
	OnAck          func(AckEvent) // every event of every fragment, in order, from one goroutine
	OnDrop         func(Dropped)  // from the same goroutine as OnAck
	Logger         *slog.Logger
	// Spool keeps fragments on disk until PERSISTED, across crashes and
	// restarts (sdk/SPOOL.md); nil keeps them in memory only.
	Spool *SpoolConfig
	// Clock is the device's clock for the producer's wall-time rule (a
	// fragment open MaxFragmentDuration is closed); default time.Now. A
	// simulation that produces faster than real time passes its own.
	// Network timeouts keep real time.
	Clock func() time.Time
}

// MaxPublishesInFlight is how many fragment publishes a producer has on the
// wire before it waits for their publish acks.
const MaxPublishesInFlight = 32

// Limits of the configuration.
const (
	MaxFragmentDurationLimit = 30 * time.Second // MKV block timecodes are int16 ms
	MaxFragmentSizeLimit     = 50_000_000       // the server's limit (ingest.MaxFragmentSizeDefault), the seed service's
	// MaxMessageFragmentSize is the largest fragment that goes as one message
	// on the embedded bus (8 MiB, less headers); larger ones go as chunks.
	MaxMessageFragmentSize = 8<<20 - PublishHeaderBytes
	// PublishHeaderBytes is what a fragment's message may need besides the
	// fragment: its NATS headers (msg id, producer id of up to 256 bytes,
	// sequences) with room to spare. A fragment fits the bus when
	// MaxFragmentSize + PublishHeaderBytes ≤ the server's max_payload.
	PublishHeaderBytes  = 4 << 10
	defaultFragmentSize = 4 << 20
	minFragmentSize     = 4 << 10
	maxTracks           = 3 // the seed service's limit
	defaultBufferBytes  = 64 << 20
)

// publishWait is how long a publish of size bytes waits for its
// acknowledgement: the configured timeout, and a second per MiB on the wire.
func (c *ProducerConfig) publishWait(size int) time.Duration {
	return c.PublishTimeout + time.Duration(size)*time.Second/(1<<20)
}

// check fills in the defaults and checks the configuration against the
// limits and against maxPayload, the server's max_payload (0: not known yet).
func (c *ProducerConfig) check(maxPayload int64) error {
	if c.Stream == "" {
		return errors.New("sdk: ProducerConfig.Stream is required")
	}
	if n := len(c.Tracks); n < 1 || n > maxTracks {
		return fmt.Errorf("sdk: a producer has 1 to %d tracks, not %d", maxTracks, n)
	}
	seen := map[uint64]bool{}
	for _, t := range c.Tracks {
		if t.Number == 0 || seen[t.Number] {
			return fmt.Errorf("sdk: track numbers must be unique and not 0 (%d)", t.Number)
		}
		if t.CodecID == "" {
			return fmt.Errorf("sdk: track %d needs a CodecID", t.Number)
		}
		seen[t.Number] = true
	}
	if c.MinFragmentDuration == 0 {
		c.MinFragmentDuration = 2 * time.Second
	}
	if c.MaxFragmentDuration == 0 {
		c.MaxFragmentDuration = 10 * time.Second
	}
	if c.MaxFragmentDuration > MaxFragmentDurationLimit || c.MinFragmentDuration < 0 || c.MinFragmentDuration > c.MaxFragmentDuration {
		return fmt.Errorf("sdk: need 0 ≤ MinFragmentDuration ≤ MaxFragmentDuration ≤ %s", MaxFragmentDurationLimit)
	}
	if c.MaxFragmentSize == 0 {
		c.MaxFragmentSize = defaultFragmentSize
		if maxPayload > 0 && int64(c.MaxFragmentSize)+PublishHeaderBytes > maxPayload {
			c.MaxFragmentSize = int(max(maxPayload-PublishHeaderBytes, minFragmentSize))
		}
	}
	if c.MaxFragmentSize < minFragmentSize || c.MaxFragmentSize > MaxFragmentSizeLimit {
		return fmt.Errorf("sdk: MaxFragmentSize must be %d to %d bytes", minFragmentSize, MaxFragmentSizeLimit)
	}
	if maxPayload > 0 && int64(wire.MaxChunkPayload(maxPayload, PublishHeaderBytes))*wire.MaxChunks < int64(c.MaxFragmentSize) {
		// Even as chunks a full fragment would not go (a max_payload of a few
		// KiB): say so now rather than at the first large fragment.
		return fmt.Errorf("sdk: the NATS server's max_payload of %d bytes is too small for fragments of %d bytes, even in %d chunks: lower MaxFragmentSize or raise max_payload",
			maxPayload, c.MaxFragmentSize, wire.MaxChunks)
	}
	if c.BufferBytes == 0 {
		c.BufferBytes = defaultBufferBytes
	}
	if c.BufferBytes < int64(c.MaxFragmentSize) {
		return fmt.Errorf("sdk: BufferBytes must hold at least one fragment (MaxFragmentSize)")
	}
	if c.PersistTimeout == 0 {
		c.PersistTimeout = 15 * time.Second
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 3 * time.Second
	}
	if c.ProducerID == "" && c.Spool == nil { // a spool keeps its own
		var b [8]byte
		_, _ = rand.Read(b[:])
		c.ProducerID = "p-" + hex.EncodeToString(b[:])
	}
	if len(c.ProducerID) > 256 {
		return errors.New("sdk: ProducerID is longer than 256 bytes")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c.checkSpool()
}

// ProducerStats are a producer's counters.
type ProducerStats struct {
	Fragments int64 // made
	Published int64 // publishes, re-sends included
	Resent    int64 // re-sends after an error, a reconnect or a PERSISTED timeout
	Persisted int64
	Errors    int64 // fragments refused with an ERROR event
	Retries   int64 // RETRY answers: a fragment arrived before the one it follows
	// PublishFailures counts publishes that failed and were put back to be
	// re-sent: no connection, no publish ack in time, or the bus refused the
	// message (it is full, or the server closed it while its disk is full).
	PublishFailures int64
	Dropped         int64
	// PersistedAfterDrop counts fragments dropped while on the wire that the
	// server stored anyway (their PERSISTED came after the drop notice); they
	// are in Persisted too.
	PersistedAfterDrop int64
	Buffered           int // fragments not yet PERSISTED (with a spool: those in memory to send)
	BufferedBytes      int64
	// Spooled counts the fragments in the spool not yet PERSISTED (this
	// process's and earlier ones'), SpoolBytes its files on disk.
	Spooled    int
	SpoolBytes int64
}

type fragState uint8

const (
	stateQueued   fragState = iota // to be published
	stateInFlight                  // published, no publish ack yet
	stateReceived                  // the bus has it; waiting for PERSISTED
)

// outFragment is a fragment held until it is terminal.
type outFragment struct {
	seq        uint64
	data       []byte
	start, end int64
	frames     int
	state      fragState
	attempt    int // bumped for a re-send that must get past the bus's dedupe
	gen        int // bumped on every publish, to ignore a stale failure
	receivedAt time.Time
	resends    int // re-sends for an overdue PERSISTED: each doubles the next wait
	// overtakenAt is when a later fragment of the producer was PERSISTED
	// while this one, RECEIVED, had no verdict: zero while none was.
	overtakenAt time.Time
	number      string
	// prev is the sequence this fragment must follow on the server (sent as
	// Sensorium-Producer-Prev); 0 once that fragment is dropped or refused.
	prev uint64
	// waitFor holds a re-send back until that fragment is RECEIVED (after the
	// server answered RETRY).
	waitFor uint64
	// retrying is set by a RETRY answer until the re-send goes out: a late
	// publish ack of the refused copy must not mark it RECEIVED.
	retrying bool
	// refusalReported is set once OnAck has been told that the bus refuses
	// this fragment (a retriable ERROR), so that a re-send says it once.
	refusalReported bool
	// spooledBytes is the size of a spooled fragment dropped without its
	// data ever being read back.
	spooledBytes int
}

func (f *outFragment) timecodeMS() int64 { return floorMS(f.start) }

// Producer turns frames into fragments and delivers them to a stream over
// NATS JetStream. Every fragment is kept until the server says PERSISTED (or
// refuses it with ERROR) and re-sent until then:
//   - a publish that fails or gets no publish ack is re-sent with the same
//     Nats-Msg-Id, so the bus stores it once;
//   - after a reconnect, and when PERSISTED has not come PersistTimeout after
//     RECEIVED (the event is core NATS and is lost while disconnected), the
//     fragment is re-sent with a fresh Nats-Msg-Id; the store recognises it by
//     producer id and sequence and answers PERSISTED again (Duplicate: true),
//     however late;
//   - an ERROR is final: the fragment is not re-sent.
//
// Fragments are published in order, and each names the one it follows
// (Sensorium-Producer-Prev). When a connection or a server dies, a fragment can
// be lost while the next one survives in the client's write buffer and arrives
// first; the server then answers RETRY instead of storing it out of order, and
// the producer re-sends it once its predecessor is RECEIVED.
//
// PutFrame and PutFragmentMetadata are for one goroutine at a time; Flush,
// Close and Stats may be called from any.
type Producer struct {
	cfg       ProducerConfig
	nc        *nats.Conn
	js        jetstream.JetStream
	subs      wire.Subjects
	tracks    map[uint64]*trackState
	tracksRaw []byte
	fixed     int // encoded bytes of a fragment besides its frames and tags
	log       *slog.Logger

	// putLock guards the open fragment (PutFrame, PutFragmentMetadata, Flush
	// and the wall-clock closer): whoever holds it has put a token in. A
	// channel rather than a mutex, so that waiting for it is bounded by a
	// context: a PutFrame blocked on a full buffer holds it, and Flush and
	// Close must still honour their deadlines. Close keeps it for good.
	putLock  chan struct{}
	open     openFragment
	openedAt time.Time
	tags     fragmentTags
	seq      uint64 // sequence of the last fragment made

	mu             sync.Mutex // guards everything below
	pending        []*outFragment
	bytes          int64
	changed        chan struct{} // closed and replaced whenever pending shrinks
	stats          ProducerStats
	reconnects     uint64
	closing        bool      // Close was called: puts return ErrClosed
	lastRefusalLog time.Time // when a refusal by the bus was last logged
	lastEvent      time.Time // when the server last said anything about this producer's fragments
	// droppedSent are fragments dropped after they were published, whose
	// PERSISTED may still come (Dropped.OnTheWire).
	droppedSent map[uint64]struct{}

	// With a spool: loadMu orders the moves of spooled fragments into
	// pending (enqueueSpool, load); loaded is the newest moved, caughtUp
	// says that none newer waits on disk (both guarded by mu as well).
	spool          *spool.Spool
	reader         *spool.Reader // used under loadMu
	loadMu         sync.Mutex
	loaded         uint64
	caughtUp       bool
	spoolStartHigh uint64 // the spool's highest sequence when the producer started
	spoolEpoch     int    // the msg-id attempt of re-sends of earlier processes' fragments
	// freshAttempt is the msg-id attempt of this producer's new fragments:
	// 0 under a random producer id, an epoch of this run under a configured
	// one, whose earlier run's messages the bus may still hold under the
	// same ids (its 2-minute dedupe window would swallow these, and their
	// PERSISTED would wait for PersistTimeout and a re-send).
	freshAttempt int
	timeFloor    int64 // PutFrame refuses frames before it: the spool holds fragments up to it

	events *eventQueue
	sub    *nats.Subscription
	wake   chan struct{}
	stop   chan struct{} // closed when Close stops the producer
	// sendTicks counts the send loop's ticks, which it takes only while it
	// has work (sendLoop); tests read it.
	sendTicks atomic.Int64
	// loseEvent, in tests, loses the acknowledgement events it returns true
	// for, as a slow consumer's connection does.
	loseEvent atomic.Pointer[func(AckEvent) bool]
	closed    chan struct{} // closed when Close has finished
	wg        sync.WaitGroup
}

type trackState struct {
	Track
	// encoders are PutSamples' per-codec scalar encoders of the track, which
	// remember each channel's mapping from frame to frame; guarded by encMu
	// (PutSamples may be called from several goroutines).
	encMu    sync.Mutex
	encoders map[codecs.ID]*codecs.ScalarEncoder
	last     int64 // latest timestamp of the track's frames
	lastKey  int64 // timestamp of the track's last key frame
	describedTrack
}

// NewProducer starts a producer on nc. It subscribes to the stream's
// acknowledgement subject before anything is published. It parses the
// description of every track of a known kind from its CodecPrivate once, for
// the typed puts.
func NewProducer(ctx context.Context, nc *nats.Conn, cfg ProducerConfig) (*Producer, error) {
	configuredID := cfg.ProducerID != "" && cfg.Spool == nil
	if err := cfg.check(nc.MaxPayload()); err != nil {
		return nil, err
	}
	// The sender's wake-up, made first: the spool's flusher wakes it after
	// each fsync, from the moment the spool is open.
	wake := make(chan struct{}, 1)
	var sp *spool.Spool
	if cfg.Spool != nil {
		var err error
		kick := func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
		if sp, err = openSpool(&cfg, kick); err != nil {
			return nil, err
		}
	}
	p, err := newProducer(ctx, nc, cfg, sp, wake)
	if err != nil && sp != nil {
		sp.Close()
	}
	if err == nil && configuredID {
		p.freshAttempt = int(time.Now().UnixMilli()&0x3fffffff) | 1
	}
	return p, err
}

func newProducer(ctx context.Context, nc *nats.Conn, cfg ProducerConfig, sp *spool.Spool, wake chan struct{}) (p *Producer, err error) {
	// The client's own timeout frees a publish's slot among those in flight;
	// each fragment's wait (await) is shorter for a small fragment.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(MaxPublishesInFlight),
		jetstream.WithPublishAsyncTimeout(cfg.publishWait(cfg.MaxFragmentSize)))
	if err != nil {
		return nil, fmt.Errorf("sdk: new producer: %w", err)
	}
	p = &Producer{
		spool: sp,
		cfg:   cfg, nc: nc, js: js, subs: wire.NewSubjects(cfg.Prefix), tracks: map[uint64]*trackState{},
		log:     cfg.Logger.With("stream", cfg.Stream, "producer", cfg.ProducerID),
		putLock: make(chan struct{}, 1),
		changed: make(chan struct{}), wake: wake, stop: make(chan struct{}), closed: make(chan struct{}),
		reconnects: nc.Stats().Reconnects,
	}
	for _, t := range cfg.Tracks {
		p.tracks[t.Number] = &trackState{Track: t, last: -1 << 63, lastKey: -1 << 63, describedTrack: describe(t)}
	}
	if sp != nil {
		p.reader = sp.NewReader()
		var end int64
		p.seq, end = sp.High()
		p.spoolStartHigh, p.timeFloor = p.seq, end
		p.spoolEpoch = int(time.Now().UnixMilli()&0x3fffffff) | 1
		p.caughtUp = sp.Stats().Live == 0
		if end == 0 {
			p.timeFloor = -1 << 63
		}
	}
	p.tracksRaw = encodeTracks(cfg.Tracks)
	p.fixed = len(p.tracksRaw) + fragmentOverhead
	p.events = newEventQueue(cfg.OnAck, cfg.OnDrop)
	p.sub, err = nc.Subscribe(p.subs.Ack(cfg.Stream), p.onAckMsg)
	if err != nil {
		p.events.close()
		return nil, fmt.Errorf("sdk: subscribe to acknowledgements: %w", err)
	}
	_ = p.sub.SetPendingLimits(-1, -1) // a producer must not miss its own acks for being busy
	if sp != nil && !nc.IsConnected() {
		// A device that starts offline (nats.RetryOnFailedConnect) still
		// spools: the subscription goes out when the connection comes, and
		// nothing is published before that.
		p.log.Info("sdk: starting without a connection; the spool keeps fragments until the server is reachable")
	} else {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := nc.FlushWithContext(fctx); err != nil {
			p.sub.Unsubscribe()
			p.events.close()
			return nil, fmt.Errorf("sdk: subscribe to acknowledgements: %w", err)
		}
	}
	p.wg.Add(2)
	go p.sendLoop()
	go p.closeLoop()
	return p, nil
}

// lockPut takes putLock, waiting at most until ctx ends or the producer
// stops.
func (p *Producer) lockPut(ctx context.Context) error {
	select {
	case p.putLock <- struct{}{}:
		return nil
	default:
	}
	select {
	case p.putLock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.stop:
		return ErrClosed
	}
}

func (p *Producer) unlockPut() { <-p.putLock }

func (p *Producer) isClosing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closing
}

// PutFrame adds a frame. It may close the open fragment (at a key frame once
// it is MinFragmentDuration long, or when the frame would take it past
// MaxFragmentDuration or MaxFragmentSize) and hand it to the sender; under the
// Block policy that waits for room in the buffer, bounded by ctx. After Close
// it returns ErrClosed.
//
// Unless NoLive is set, the frame goes out on the live subject before the
// fragment it closes is handed over, so live subscribers never wait for a
// fragment to close nor for room in the buffer. A PutFrame that then fails
// (its context ended while it waited for room) has still been seen live; the
// stored fragments do not hold the frame.
//
// A track's frames come in time order, with one exception: on a video track
// (Type mkv.TrackTypeVideo) Timestamp is the presentation time and frames
// come in decode order, so a frame that is not a key frame (a B-frame) may be
// earlier than the one before it, but never earlier than the track's last key
// frame nor than the open fragment's first frame: a fragment's producer
// timestamp is its first frame's, and nothing in it may come before. A key
// frame is never earlier than any frame of its track before it (H.264 IDR
// pictures start closed groups, as encoders make them by default). A frame
// of one track may start before the open fragment's first frame (another
// track's), by at most 32.768 s: an MKV block's timecode, in ms from its
// Cluster's, is an int16.
func (p *Producer) PutFrame(ctx context.Context, f Frame) error {
	t := p.tracks[f.Track]
	switch {
	case t == nil:
		return fmt.Errorf("sdk: put frame: track %d is not one of the producer's", f.Track)
	case f.Duration < 0 || f.Duration > int64(p.cfg.MaxFragmentDuration):
		return fmt.Errorf("sdk: put frame: duration %s is not within 0 and MaxFragmentDuration", time.Duration(f.Duration))
	case p.isClosing():
		return fmt.Errorf("sdk: put frame: %w", ErrClosed)
	}
	if err := p.lockPut(ctx); err != nil {
		return fmt.Errorf("sdk: put frame: %w", err)
	}
	defer p.unlockPut()
	if p.isClosing() {
		return fmt.Errorf("sdk: put frame: %w", ErrClosed)
	}
	fixed := p.fixed + p.tags.bytes
	if len(f.Data)+blockOverhead+fixed > p.cfg.MaxFragmentSize {
		return fmt.Errorf("sdk: put frame: a %d-byte frame does not fit a fragment of at most %d bytes with %d bytes of tracks and tags (MAX_FRAGMENT_SIZE_REACHED)",
			len(f.Data), p.cfg.MaxFragmentSize, fixed)
	}
	if err := p.checkTimeLocked(t, &f); err != nil {
		return err
	}
	closes := false // the frame closes the open fragment and starts the next
	if !p.open.empty() {
		span := max(p.open.end, f.Timestamp+f.Duration) - p.open.start
		must := span > int64(p.cfg.MaxFragmentDuration) || p.open.size+len(f.Data)+blockOverhead+fixed > p.cfg.MaxFragmentSize
		if must && !f.Key {
			return fmt.Errorf("sdk: put frame: the fragment is full and the frame is not a key frame; key frames must come at least every %s", p.cfg.MaxFragmentDuration)
		}
		closes = must || f.Key && f.Timestamp-p.open.start >= int64(p.cfg.MinFragmentDuration)
	}
	if p.open.empty() && !f.Key {
		return errors.New("sdk: put frame: a fragment must start with a key frame")
	}
	if back := floorMS(p.open.start) - floorMS(f.Timestamp); !closes && !p.open.empty() && back > -math.MinInt16 {
		// Its MKV block would start before its Cluster by more than the
		// block's int16 timecode holds, and wrap around to a time in the
		// future (a track that starts late, with a first frame from long
		// before the other tracks' open fragment).
		return fmt.Errorf("sdk: put frame: track %d: a frame at %d is %s before the open fragment's first frame (%d); a frame may be at most 32.768 s before it (the tracks of a producer advance together)",
			f.Track, f.Timestamp, time.Duration(p.open.start-f.Timestamp), p.open.start)
	}
	// Live first: closing a fragment encodes it, hands it to the sender (whose
	// publish would go on the connection ahead of the frame) and, under the
	// Block policy, waits for room in the buffer. A live subscriber waits for
	// none of that.
	if !p.cfg.NoLive {
		p.publishLive(&f, t)
	}
	if closes {
		if err := p.closeOpenLocked(ctx); err != nil {
			return err
		}
	}
	if p.open.empty() {
		p.openedAt = p.cfg.Clock()
	}
	p.open.add(&f)
	t.last = max(t.last, f.Timestamp)
	if f.Key {
		t.lastKey = f.Timestamp
	}
	return nil
}

// checkTimeLocked applies PutFrame's rule on time order. putLock held.
func (p *Producer) checkTimeLocked(t *trackState, f *Frame) error {
	if p.spool != nil && f.Timestamp < p.timeFloor {
		return fmt.Errorf("sdk: put frame: track %d: the spool already holds this producer's fragments up to %d (made before a restart); frames continue from there, not at %d",
			f.Track, p.timeFloor, f.Timestamp)
	}
	if f.Timestamp >= t.last {
		return nil
	}
	if t.Type != mkv.TrackTypeVideo {
		return fmt.Errorf("sdk: put frame: track %d goes back in time (%d < %d)", f.Track, f.Timestamp, t.last)
	}
	if f.Key {
		return fmt.Errorf("sdk: put frame: video track %d: a key frame at %d is earlier than a frame before it (%d); a key frame must start a closed group of pictures",
			f.Track, f.Timestamp, t.last)
	}
	if floor := max(t.lastKey, p.open.start); p.open.empty() || f.Timestamp < floor {
		return fmt.Errorf("sdk: put frame: video track %d: a frame at %d is earlier than its key frame or its fragment's first frame (%d); "+
			"frames in decode order may step back in presentation time, but not before the key frame that starts their group", f.Track, f.Timestamp, floor)
	}
	return nil
}

// publishLive sends the frame on the live subject: best effort, never waits.
func (p *Producer) publishLive(f *Frame, t *trackState) {
	m := &nats.Msg{Subject: p.subs.Live(p.cfg.Stream), Data: f.Data, Header: nats.Header{}}
	m.Header.Set(wire.HeaderTimestamp, strconv.FormatInt(f.Timestamp, 10))
	m.Header.Set(wire.HeaderDuration, strconv.FormatInt(f.Duration, 10))
	m.Header.Set(wire.HeaderTrack, strconv.FormatUint(f.Track, 10))
	key := "0"
	if f.Key {
		key = "1"
	}
	m.Header.Set(wire.HeaderKey, key)
	m.Header.Set(wire.HeaderCodecID, t.CodecID)
	_ = p.nc.PublishMsg(m)
}

// PutFragmentMetadata adds a tag to the next fragment, or with persistent to
// every fragment from the next on (the seed SDK's putFragmentMetadata). At
// most 10 per fragment; names may not start with AWS_KINESISVIDEO_. Tags
// count towards MaxFragmentSize: a tag that would take the open fragment past
// it is refused. It waits while a PutFrame holds the open fragment.
func (p *Producer) PutFragmentMetadata(name, value string, persistent bool) error {
	if p.isClosing() {
		return fmt.Errorf("sdk: put fragment metadata: %w", ErrClosed)
	}
	if err := p.lockPut(context.Background()); err != nil {
		return fmt.Errorf("sdk: put fragment metadata: %w", err)
	}
	defer p.unlockPut()
	next := p.tags.clone()
	if err := next.put(name, value, persistent); err != nil {
		return err
	}
	if !p.open.empty() && p.open.size+p.fixed+next.bytes > p.cfg.MaxFragmentSize {
		return fmt.Errorf("sdk: fragment metadata %q: with %d bytes of tags the open fragment would exceed MaxFragmentSize (%d bytes) (MAX_FRAGMENT_SIZE_REACHED)",
			name, next.bytes, p.cfg.MaxFragmentSize)
	}
	p.tags = next
	return nil
}

// closeOpenLocked turns the open fragment into an outFragment and queues it.
// putLock held.
func (p *Producer) closeOpenLocked(ctx context.Context) error {
	if p.open.empty() {
		return nil
	}
	data := p.open.encode(p.tracksRaw, p.tags.take())
	p.seq++
	f := &outFragment{seq: p.seq, data: data, start: p.open.start, end: p.open.end, frames: len(p.open.frames), prev: p.seq - 1, attempt: p.freshAttempt}
	p.open.reset()
	if p.spool != nil {
		return p.enqueueSpool(ctx, f)
	}
	return p.enqueue(ctx, f)
}

// enqueue adds a fragment to the buffer, applying the buffer policy.
func (p *Producer) enqueue(ctx context.Context, f *outFragment) error {
	p.mu.Lock()
	p.stats.Fragments++
	for p.bytes+int64(len(f.data)) > p.cfg.BufferBytes && len(p.pending) > 0 {
		if p.cfg.Policy == DropOldest {
			p.dropLocked(0)
			continue
		}
		if p.cfg.Policy == RefuseNew {
			p.reportDropLocked(f, DroppedNew)
			p.mu.Unlock()
			return fmt.Errorf("sdk: buffer full (%d bytes), fragment %d dropped: %w", p.cfg.BufferBytes, f.seq, ErrBufferFull)
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return p.blockedDrop(f, ctx.Err())
		case <-p.stop:
			return p.blockedDrop(f, ErrClosed)
		}
		p.mu.Lock()
	}
	p.pending = append(p.pending, f)
	p.bytes += int64(len(f.data))
	p.mu.Unlock()
	p.kick()
	return nil
}

func (p *Producer) dropLocked(i int) {
	f := p.pending[i]
	p.removeLocked(i, spool.Dropped)
	p.reportDropLocked(f, DroppedOldest)
}

// goneLocked lifts the ordering constraint on fragments that were to follow a
// fragment that will never be stored (dropped or refused).
func (p *Producer) goneLocked(seq uint64) {
	for _, f := range p.pending {
		if f.prev == seq {
			f.prev = 0
		}
		if f.waitFor == seq {
			f.waitFor = 0
		}
	}
}

func (p *Producer) reportDropLocked(f *outFragment, cause DropCause) {
	p.goneLocked(f.seq)
	p.stats.Dropped++
	sent := f.gen > 0 // published at least once
	if sent {
		if p.droppedSent == nil {
			p.droppedSent = map[uint64]struct{}{}
		}
		if len(p.droppedSent) >= maxDroppedOnTheWire {
			clear(p.droppedSent) // the oldest are long settled; forgetting them only hides a late PERSISTED
		}
		p.droppedSent[f.seq] = struct{}{}
	}
	p.events.push(Dropped{Sequence: f.seq, Start: f.start, End: f.end, Frames: f.frames, Bytes: max(len(f.data), f.spooledBytes), OnTheWire: sent, Cause: cause})
}

// removeLocked takes a terminal fragment out of the buffer, and out of the
// spool: kind says why it needs no re-send.
func (p *Producer) removeLocked(i int, kind spool.DoneKind) {
	if p.spool != nil {
		if err := p.spool.Done(p.pending[i].seq, kind); err != nil {
			p.log.Error("sdk: spool", "err", err)
		}
	}
	p.bytes -= int64(len(p.pending[i].data))
	p.pending = append(p.pending[:i], p.pending[i+1:]...)
	p.notifyLocked()
}

// notifyLocked wakes whoever waits for the buffer or the spool to shrink.
func (p *Producer) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// overtakeLocked notes that seq is PERSISTED: the RECEIVED fragments
// before it are overtaken, their verdicts lost on the way (requeue).
func (p *Producer) overtakeLocked(seq uint64) {
	var now time.Time
	for _, f := range p.pending { // short: the fragments not yet PERSISTED
		if f.seq < seq && f.state == stateReceived && f.overtakenAt.IsZero() {
			if now.IsZero() {
				now = time.Now()
			}
			f.overtakenAt = now
		}
	}
}

func (p *Producer) findLocked(seq uint64) (*outFragment, int) {
	for i, f := range p.pending { // short: the fragments not yet PERSISTED
		if f.seq == seq {
			return f, i
		}
	}
	return nil, -1
}

func (p *Producer) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Flush closes the open fragment and waits until every fragment made so far
// is PERSISTED, refused or dropped, or ctx ends. While a PutFrame waits for
// room in the buffer, Flush waits for it (bounded by ctx). After Close it
// returns ErrClosed.
func (p *Producer) Flush(ctx context.Context) error {
	if p.isClosing() {
		return fmt.Errorf("sdk: flush: %w", ErrClosed)
	}
	return p.flush(ctx)
}

func (p *Producer) flush(ctx context.Context) error {
	if err := p.lockPut(ctx); err != nil {
		return fmt.Errorf("sdk: flush: %w", err)
	}
	err := p.closeOpenLocked(ctx)
	last := p.seq
	p.unlockPut()
	if err != nil {
		return err
	}
	for {
		p.mu.Lock()
		done := len(p.pending) == 0 || p.pending[0].seq > last
		n, ch := len(p.pending), p.changed
		var serr error
		if p.spool != nil {
			first, any := p.spool.FirstLive()
			done, n, serr = !any || first > last, p.spool.Stats().Live, p.spool.Err()
		}
		p.mu.Unlock()
		if done {
			return nil
		}
		if serr != nil { // a failed fsync: what it holds is never sent
			return fmt.Errorf("sdk: flush: %d fragments not PERSISTED: %w", n, serr)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("sdk: flush: %d fragments not yet PERSISTED: %w", n, ctx.Err())
		}
	}
}

// Close stops the producer: from its call on, puts and Flush return
// ErrClosed. It first flushes what was put (bounded by ctx: a PutFrame
// blocked on a full buffer may still get its room meanwhile), then stops; a
// PutFrame still blocked then returns ErrClosed and its fragment is dropped.
// Its error says how many fragments were not PERSISTED, were refused or were
// dropped. A second Close waits for the first (bounded by its ctx) and
// returns nil.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		select {
		case <-p.closed:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("sdk: close: %w", ctx.Err())
		}
	}
	p.closing = true
	p.mu.Unlock()
	defer close(p.closed)
	ferr := p.flush(ctx)
	close(p.stop)
	// Every holder of putLock returns promptly once stop is closed (a blocked
	// enqueue wakes on it); holding it from now on means no put is half done
	// when Close returns, and its drop notice is delivered.
	p.putLock <- struct{}{}
	unsent := len(p.open.frames)
	p.wg.Wait()
	_ = p.sub.Unsubscribe()
	st := p.Stats()
	var errs []error
	if p.spool != nil {
		p.reader.Close()
		if err := p.spool.Close(); err != nil {
			errs = append(errs, fmt.Errorf("sdk: close: %w", err))
		}
	}
	p.events.close()
	switch {
	case st.Spooled > 0:
		errs = append(errs, fmt.Errorf("sdk: close: %d fragments not PERSISTED; the spool keeps them for the next producer on %s", st.Spooled, p.cfg.Spool.Dir))
	case st.Buffered > 0:
		errs = append(errs, fmt.Errorf("sdk: close: %d fragments not PERSISTED", st.Buffered))
	}
	if unsent > 0 {
		errs = append(errs, fmt.Errorf("sdk: close: %d frames of the open fragment were never sent", unsent))
	}
	if len(errs) > 0 && ferr != nil {
		errs = append(errs, ferr)
	}
	if st.Errors > 0 {
		errs = append(errs, fmt.Errorf("sdk: close: the server refused %d fragments (see the ERROR events)", st.Errors))
	}
	if st.Dropped > 0 {
		errs = append(errs, fmt.Errorf("sdk: close: %d fragments were dropped", st.Dropped))
	}
	return errors.Join(errs...)
}

// Stats returns the producer's counters.
func (p *Producer) Stats() ProducerStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Buffered, s.BufferedBytes = len(p.pending), p.bytes
	if p.spool != nil {
		st := p.spool.Stats()
		s.Spooled, s.SpoolBytes = st.Live, st.DiskBytes
	}
	return s
}

// closeLoop closes a fragment that has been open MaxFragmentDuration of wall
// time, so that a producer that pauses does not sit on its data.
func (p *Producer) closeLoop() {
	defer p.wg.Done()
	t := time.NewTicker(min(p.cfg.MaxFragmentDuration/4, time.Second))
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-p.stop; cancel() }()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			if p.lockPut(ctx) != nil {
				return
			}
			if !p.open.empty() && p.cfg.Clock().Sub(p.openedAt) >= p.cfg.MaxFragmentDuration {
				if err := p.closeOpenLocked(ctx); err != nil {
					p.log.Warn("sdk: closing an idle fragment", "err", err)
				}
			}
			p.unlockPut()
		}
	}
}

// onAckMsg handles an acknowledgement event from the server.
func (p *Producer) onAckMsg(m *nats.Msg) {
	var ev AckEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil || ev.ProducerID != p.cfg.ProducerID {
		return
	}
	if lose := p.loseEvent.Load(); lose != nil && (*lose)(ev) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastEvent = time.Now() // the server is at work on this producer's fragments
	f, i := p.findLocked(ev.ProducerSequence)
	if f == nil && p.spool != nil && ev.EventType == EventPersisted && p.spool.Live(ev.ProducerSequence) {
		// A spooled fragment not yet loaded to send, which an earlier
		// process had sent: PERSISTED now, so it needs no re-send. The
		// caller hears of it as of the others, RECEIVED first.
		_ = p.spool.Done(ev.ProducerSequence, spool.Persisted)
		p.notifyLocked()
		p.stats.Persisted++
		p.events.push(AckEvent{EventType: EventReceived, FragmentTimecode: ev.FragmentTimecode, FragmentNumber: ev.FragmentNumber,
			ProducerID: p.cfg.ProducerID, ProducerSequence: ev.ProducerSequence})
		p.events.push(ev)
		return
	}
	if f == nil {
		// Already terminal: a repeat after a re-send, or the verdict on a
		// fragment dropped while it was on the wire, which the caller hears.
		if _, ok := p.droppedSent[ev.ProducerSequence]; ok && ev.Terminal() {
			delete(p.droppedSent, ev.ProducerSequence)
			if ev.EventType == EventPersisted {
				p.stats.Persisted++
				p.stats.PersistedAfterDrop++
			}
			p.events.push(ev)
		}
		return
	}
	if ev.EventType == wire.EventRetry {
		p.retryLocked(f, ev.After)
	}
	if !ev.Terminal() {
		p.events.push(ev)
		return
	}
	if f.state != stateReceived && ev.EventType == EventPersisted {
		// The publish ack is still on its way: say RECEIVED first, so that the
		// caller always sees RECEIVED before PERSISTED.
		p.events.push(AckEvent{EventType: EventReceived, FragmentTimecode: f.timecodeMS(), FragmentNumber: ev.FragmentNumber,
			ProducerID: p.cfg.ProducerID, ProducerSequence: f.seq})
	}
	kind := spool.Persisted
	switch ev.EventType {
	case EventPersisted:
		p.stats.Persisted++
		p.overtakeLocked(f.seq)
	case EventError:
		kind = spool.Refused
		p.stats.Errors++
		p.goneLocked(f.seq)
		p.log.Warn("sdk: fragment refused", "sequence", f.seq, "code", ev.ErrorCode, "reason", ev.Message)
	}
	p.removeLocked(i, kind)
	p.events.push(ev)
}
