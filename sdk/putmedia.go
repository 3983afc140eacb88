package sdk

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
)

// PutMediaInput is one PutMedia session: an MKV stream whose Clusters become
// fragments, as the seed service's PutMedia takes it. Producers that make
// their own frames use Publisher (over NATS); PutMedia is for MKV made
// elsewhere: a GetMedia download put back, a recording, ffmpeg's output.
type PutMediaInput struct {
	Stream StreamRef
	// Body is the MKV: one document or several after one another (GetMedia
	// output is one per fragment). It is read until its end.
	Body io.Reader
	// Relative makes the Cluster timecodes offsets from ProducerStart
	// (x-amzn-fragment-timecode-type RELATIVE); by default they are absolute
	// times, ms since the Unix epoch, as GetMedia writes them.
	Relative      bool
	ProducerStart time.Time
	// ProducerID and FirstSequence (Sensorium's; other servers ignore
	// them) make the session a producer that resumes: its Clusters are
	// published under the store's dedupe key (ProducerID, FirstSequence +
	// the Cluster's place in the body), so that one the store already
	// holds under that key — re-sent after a lost acknowledgement, or left
	// on the bus by a session that was cut — is answered PERSISTED with
	// Duplicate set instead of being stored twice; the events name
	// ProducerID. FirstSequence 0 is 1. ProducerID: 1–128 letters,
	// digits, '-', '_' or '.'. On the server's bus the id is "pm." +
	// ProducerID, apart from the ids of NATS producers.
	ProducerID    string
	FirstSequence uint64
	// FragmentDocuments (Sensorium's) says that each EBML document of Body
	// is one fragment with one Cluster, as GetMedia and
	// GetMediaForFragmentList write them (x-sensorium-documents:
	// fragments): the server then keeps each document's Info whole, its
	// Duration included, which otherwise it drops as a recording's length.
	// A document with a second Cluster ends the session with an ERROR.
	FragmentDocuments bool
}

// PutMedia sends in.Body as one PutMedia session and calls onEvent, from
// this goroutine, with each acknowledgement event as it arrives (BUFFERING,
// RECEIVED, PERSISTED, ERROR, IDLE). It returns once the server has ended
// the response: after the last fragment's PERSISTED, or after an ERROR,
// which ends the session (the event says why; PutMedia then returns nil).
// A refusal before the session starts is an *APIError. The client's timeout
// bounds the wait for the response to start, not the session; the clock
// starts again at each byte the server takes of the body, since a proxy
// that passes a request on only once its body has ended (nginx's default)
// makes the response start after the last byte, however long the body
// takes on a slow link.
func (c *Client) PutMedia(ctx context.Context, in PutMediaInput, onEvent func(AckEvent)) error {
	const op = "putMedia"
	url := c.base + "/" + op
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	te := &TimeoutError{Op: op, URL: url, After: c.timeout}
	start := &startTimer{}
	var body io.Reader = in.Body
	if c.timeout > 0 {
		start.t = time.AfterFunc(c.timeout, func() { cancel(te) })
		body = &progressReader{r: in.Body, start: start, after: c.timeout}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return fmt.Errorf("sdk: %s: %w", op, err)
	}
	req.ContentLength = -1 // chunked: the body streams
	if in.Stream.StreamARN != "" {
		req.Header.Set("x-amzn-stream-arn", in.Stream.StreamARN)
	} else {
		req.Header.Set("x-amzn-stream-name", in.Stream.StreamName)
	}
	if in.ProducerID != "" {
		req.Header.Set("x-sensorium-producer-id", in.ProducerID)
		req.Header.Set("x-sensorium-producer-sequence", strconv.FormatUint(max(in.FirstSequence, 1), 10))
	}
	if in.FragmentDocuments {
		req.Header.Set("x-sensorium-documents", "fragments")
	}
	if in.Relative {
		req.Header.Set("x-amzn-fragment-timecode-type", "RELATIVE")
		req.Header.Set("x-amzn-producer-start-timestamp", strconv.FormatFloat(float64(in.ProducerStart.UnixMilli())/1000, 'f', 3, 64))
	} else {
		req.Header.Set("x-amzn-fragment-timecode-type", "ABSOLUTE")
	}
	if c.creds != nil {
		region := c.creds.Region
		if region == "" {
			region = "us-east-1"
		}
		// The body streams: its headers are signed and the body is not, as
		// the seed service's producers sign PutMedia.
		key := awsauth.Key{AccessKeyID: c.creds.AccessKeyID, SecretAccessKey: c.creds.SecretAccessKey}
		if err := awsauth.SignUnsignedPayload(req, key, region, time.Now()); err != nil {
			return fmt.Errorf("sdk: %s: %w", op, err)
		}
	}
	resp, err := c.hc.Do(req)
	// The response did not start in time (the timer may have been started
	// again by a read that was under way when it fired).
	if !start.stop() || context.Cause(ctx) == error(te) {
		if err == nil {
			resp.Body.Close()
		}
		return te
	}
	if err != nil {
		return fmt.Errorf("sdk: %s: %w", op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeAPIError(resp, op, url)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var ev AckEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("sdk: %s: an acknowledgement that is not an event: %s", op, snippet(sc.Bytes(), 200))
		}
		onEvent(ev)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("sdk: %s: reading acknowledgements: %w", op, err)
	}
	return nil
}

// startTimer is PutMedia's wait for its response to start: reset by the
// body's progress until the response starts, then stopped for good.
type startTimer struct {
	mu      sync.Mutex
	t       *time.Timer // nil: no timeout
	stopped bool
}

// reset starts the wait again, unless the response has started.
func (s *startTimer) reset(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.t != nil && !s.stopped {
		s.t.Reset(d)
	}
}

// stop ends the wait; false when the timeout fired first.
func (s *startTimer) stop() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	return s.t == nil || s.t.Stop()
}

// progressReader is a PutMedia body that restarts the wait for the
// response at each byte the server takes.
type progressReader struct {
	r     io.Reader
	start *startTimer
	after time.Duration
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 || err == io.EOF {
		p.start.reset(p.after)
	}
	return n, err
}
