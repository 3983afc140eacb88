package api

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/service/throttle"
	"github.com/sensorium-io/sensorium/store"
)

// PutMedia (POST /putMedia): the seed service's producer protocol. The body
// is one MKV stream of any length, read incrementally as it arrives; each
// Cluster becomes one fragment on the bus, exactly as the SDK would publish
// it, and the response streams the acknowledgement events — RECEIVED when the
// bus has a fragment, then PERSISTED or ERROR from the store — one JSON
// object per line, with the service's field names and numeric codes.

// Headers of a PutMedia request.
const (
	headerStreamName    = "x-amzn-stream-name"
	headerStreamARN     = "x-amzn-stream-arn"
	headerTimecodeType  = "x-amzn-fragment-timecode-type"
	headerProducerStart = "x-amzn-producer-start-timestamp"
	// headerAcks "none" (Sensorium's) leaves the acknowledgements out of the
	// response, for a producer that never reads it: ffmpeg's HTTP output
	// closes its connection with the events unread, and a socket closed with
	// unread data is reset, which throws away what it had not yet sent, the
	// last fragments. Refusals then go to the server log.
	headerAcks = "x-sensorium-acks"
	// headerProducerID and headerProducerSeq (Sensorium's, given together)
	// give the session the store's dedupe key of a producer that resumes:
	// its clusters are published under that producer id, numbered from that
	// sequence, so that a cluster the store already holds under the key —
	// one a killed session left on the bus, or one re-sent after a lost
	// acknowledgement — is answered PERSISTED, Duplicate, and not stored
	// twice. Without them every session has an id of its own.
	headerProducerID  = "x-sensorium-producer-id"
	headerProducerSeq = "x-sensorium-producer-sequence"
	// headerDocuments "fragments" (Sensorium's) says that each EBML
	// document of the body is one fragment with one Cluster, as GetMedia
	// writes them: its Info is then kept whole — its Duration is the
	// fragment's — where by default only what holds for every Cluster of a
	// recording is kept. A document with a second Cluster is refused.
	headerDocuments = "x-sensorium-documents"
)

// maxProducerIDLen bounds a producer id given in headerProducerID.
const maxProducerIDLen = 128

// validProducerID reports whether id may be a PutMedia session's producer
// id: letters, digits and "-_." (safe in a message id and a log line), and
// not the server's own "putmedia-" ids.
func validProducerID(id string) bool {
	if id == "" || len(id) > maxProducerIDLen || strings.HasPrefix(id, "putmedia-") {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// putMediaSession is one PutMedia connection.
type putMediaSession struct {
	a        *api
	w        http.ResponseWriter
	rc       *http.ResponseController
	stream   string
	producer string // the id on the bus and in the store
	given    string // the id the client gave (headerProducerID), which its events name; "" when none
	startMS  int64  // added to cluster timecodes when they are RELATIVE
	firstSeq uint64 // the producer sequence of the first cluster
	attempt  int    // the message ids' attempt number (wire.MsgID)
	// fragmentDocs: each document is one fragment (headerDocuments), whose
	// Info is kept whole.
	fragmentDocs bool

	deadline time.Time    // the session ends at the first cluster after it (MaxPutMediaDuration)
	lastRead atomic.Int64 // unix ns of the body's latest bytes, for IDLE

	mu      sync.Mutex // guards the response and the counts
	open    map[uint64]bool
	persist chan struct{} // signalled on every terminal event
	failed  bool          // an ERROR ended the session
	quiet   bool          // headerAcks "none": no events in the response
	done    bool          // the handler has returned: the response is gone
}

func (a *api) putMedia(w http.ResponseWriter, r *http.Request) {
	if a.opts.NATS == nil {
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "this server takes PutMedia only with its bus connected"))
		return
	}
	ref := store.StreamRef{Name: r.Header.Get(headerStreamName), ARN: r.Header.Get(headerStreamARN)}
	if ref.Name == "" && ref.ARN == "" {
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "PutMedia needs the %s or %s header", headerStreamName, headerStreamARN))
		return
	}
	info, err := a.cat.DescribeStream(r.Context(), ref)
	if err != nil {
		writeError(w, err)
		return
	}
	// PutMedia calls per second per stream, as the seed service counts
	// them: a producer reconnecting in a tight loop is refused, not served.
	if err := a.limits.Allow(throttle.PutMediaConnections, info.Name, info.Tags); err != nil {
		writeError(w, err)
		return
	}
	// One PutMedia session per stream, as the seed service allows.
	a.mediaMu.Lock()
	busy := a.putting[info.Name]
	a.putting[info.Name] = true
	a.mediaMu.Unlock()
	if busy {
		writeError(w, httpwire.Errorf(httpwire.ConnectionLimitExceeded, "stream %s already has a PutMedia connection", info.Name))
		return
	}
	defer func() {
		a.mediaMu.Lock()
		delete(a.putting, info.Name)
		a.mediaMu.Unlock()
	}()
	s := &putMediaSession{a: a, w: w, rc: http.NewResponseController(w), stream: info.Name, open: map[uint64]bool{}, persist: make(chan struct{}, 1)}
	switch acks := r.Header.Get(headerAcks); acks {
	case "", "all":
	case "none":
		s.quiet = true
	default:
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "%s must be all or none, not %q", headerAcks, acks))
		return
	}
	switch d := r.Header.Get(headerDocuments); d {
	case "":
	case "fragments":
		s.fragmentDocs = true
	default:
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "%s must be fragments (each EBML document one fragment), not %q", headerDocuments, d))
		return
	}
	switch tt := r.Header.Get(headerTimecodeType); tt {
	case "", "ABSOLUTE":
	case "RELATIVE":
		start, err := strconv.ParseFloat(r.Header.Get(headerProducerStart), 64)
		if err != nil || start <= 0 || math.IsInf(start, 0) {
			writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "RELATIVE timecodes need %s in seconds since the Unix epoch", headerProducerStart))
			return
		}
		s.startMS = int64(start * 1000)
	default:
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "%s must be ABSOLUTE or RELATIVE, not %q", headerTimecodeType, tt))
		return
	}
	s.firstSeq = 1
	if given := r.Header.Get(headerProducerID); given != "" || r.Header.Get(headerProducerSeq) != "" {
		if !validProducerID(given) {
			writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "%s must be 1–%d letters, digits, '-', '_' or '.', not starting with putmedia-; %s needs it", headerProducerID, maxProducerIDLen, headerProducerSeq))
			return
		}
		// The sequence is required: a producer that gave a lasting id and
		// let every session number from 1 would have all but its first
		// session's clusters answered as duplicates and dropped.
		v := r.Header.Get(headerProducerSeq)
		n, err := strconv.ParseUint(v, 10, 63)
		if err != nil || n == 0 {
			writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "%s must come with %s, the producer sequence of the session's first cluster: a whole number from 1, not %q", headerProducerID, headerProducerSeq, v))
			return
		}
		s.firstSeq, s.given, s.producer = n, given, wire.PutMediaProducerPrefix+given
		// A message id of this session's own: the bus drops a message whose
		// id it saw in the last two minutes without the store hearing of it,
		// so a re-send under an earlier session's id would get no verdict.
		var b [4]byte
		_, _ = rand.Read(b[:])
		s.attempt = 1 + int(binary.BigEndian.Uint32(b[:])>>1)
	} else {
		id := make([]byte, 8)
		_, _ = rand.Read(id)
		s.producer = "putmedia-" + hex.EncodeToString(id)
	}
	sub, err := a.opts.NATS.Subscribe(a.opts.Subjects.Ack(info.Name), s.onAck)
	if err != nil {
		writeError(w, fmt.Errorf("api: putMedia: subscribe to acknowledgements: %w", err))
		return
	}
	defer func() {
		_ = sub.Unsubscribe()
		// An acknowledgement callback may already be running (Unsubscribe does
		// not wait for it): nothing may be written once the handler returns.
		s.mu.Lock()
		s.done = true
		s.mu.Unlock()
	}()
	if err := a.opts.NATS.Flush(); err != nil {
		writeError(w, fmt.Errorf("api: putMedia: %w", err))
		return
	}
	// Events stream back while the body still arrives: HTTP/1.1 full duplex.
	if err := s.rc.EnableFullDuplex(); err != nil {
		writeError(w, fmt.Errorf("api: putMedia: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = s.rc.SetWriteDeadline(time.Time{})
	// Past its duration the session ends at the next cluster boundary; a
	// body that brings no boundary in the grace after it is cut there.
	s.deadline = time.Now().Add(a.opts.MaxPutMediaDuration)
	_ = s.rc.SetReadDeadline(s.deadline.Add(putMediaDurationGrace))
	s.lastRead.Store(time.Now().UnixNano())
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() { defer close(stopped); s.keepAlive(done) }()
	defer func() { close(done); <-stopped }() // no IDLE may be written once the handler returns
	// Past its bytes per second the body is read more slowly, never
	// refused: the producer is held back by TCP flow control and its
	// fragments are all taken (its SDK buffers meanwhile).
	body, release := a.limits.Reader(r.Context(), throttle.PutMediaBytes, info.Name, info.Tags, r.Body)
	defer release()
	s.run(r.Context(), body)
}

// putMediaDurationGrace is how long past MaxPutMediaDuration a session may
// take to reach its next cluster boundary before its body is cut.
const putMediaDurationGrace = 15 * time.Second

// keepAlive sends IDLE while the body brings nothing, as the seed service
// does, so that a producer between fragments (and any proxy in between) sees
// a live connection.
func (s *putMediaSession) keepAlive(done <-chan struct{}) {
	every := s.a.opts.PutMediaIdle
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if time.Since(time.Unix(0, s.lastRead.Load())) >= every {
				s.send(wire.AckEvent{EventType: wire.EventIdle})
			}
		}
	}
}

// send writes one event to the response and flushes it.
func (s *putMediaSession) send(ev wire.AckEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writeLocked(ev)
}

// writeLocked writes an event with s.mu held; with acknowledgements off the
// session's ERROR goes to the log instead, the only place left to say it.
func (s *putMediaSession) writeLocked(ev wire.AckEvent) {
	if s.done {
		return
	}
	if s.quiet {
		if ev.EventType == wire.EventError {
			s.a.log.Warn("putMedia: session ended", "stream", s.stream, "error", ev.ErrorCode, "code", int(ev.ErrorID),
				"fragment_timecode", ev.FragmentTimecode, "reason", ev.Message)
		}
		return
	}
	b, _ := jsonLine(ev)
	_, _ = s.w.Write(b)
	_ = s.rc.Flush()
}

// jsonLine is an event as one line of JSON.
func jsonLine(ev wire.AckEvent) ([]byte, error) {
	b, err := json.Marshal(ev)
	return append(b, '\n'), err
}

// onAck forwards the store's events about this session's fragments.
func (s *putMediaSession) onAck(m *nats.Msg) {
	var ev wire.AckEvent
	if json.Unmarshal(m.Data, &ev) != nil || ev.ProducerID != s.producer {
		return
	}
	if ev.EventType == wire.EventRetry {
		// The store dropped the fragment and asks for it again (a chunked
		// cluster whose chunks could not all be read back, or one that
		// overtook its predecessor). The session no longer has its bytes:
		// its producer must send it again, which an ERROR tells it.
		retry := ev
		ev = wire.ErrorEvent(wire.ErrInternal, retry.FragmentTimecode, "the server could not store this fragment ("+retry.Message+"); send it again from this fragment on")
		ev.ProducerID, ev.ProducerSequence = retry.ProducerID, retry.ProducerSequence
	}
	if ev.EventType != wire.EventPersisted && ev.EventType != wire.EventError {
		return // RECEIVED is sent when the bus acknowledges the publish
	}
	ev.ProducerID = s.eventProducer()
	s.send(ev)
	s.mu.Lock()
	delete(s.open, ev.ProducerSequence)
	if ev.EventType == wire.EventError {
		s.failed = true
	}
	s.mu.Unlock()
	select {
	case s.persist <- struct{}{}:
	default:
	}
}

// eventProducer is the producer id the session's events name: the one the
// client gave, else the session's own.
func (s *putMediaSession) eventProducer() string {
	if s.given != "" {
		return s.given
	}
	return s.producer
}

// errorEvent ends the session with an ERROR event.
func (s *putMediaSession) errorEvent(code wire.ErrorCode, timecodeMS int64, msg string) {
	s.send(wire.ErrorEvent(code, timecodeMS, msg))
}
