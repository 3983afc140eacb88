package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/mkv"
)

// FragmentMeta is what a GetMedia chunk says about its fragment: the server's
// tags (number, timestamps, continuation token) and the producer's own tags.
type FragmentMeta struct {
	Number            string
	ServerTimestamp   time.Time
	ProducerTimestamp time.Time
	// ContinuationToken and MillisBehindNow come after the fragment's frames:
	// they are set once its last frame has been read.
	ContinuationToken string
	MillisBehindNow   int64
	Tags              map[string]string // the producer's fragment metadata
}

// MediaFrame is one frame read from GetMedia or GetMediaForFragmentList output.
type MediaFrame struct {
	Track     *mkv.TrackEntry // the frame's track (codec id, codec private data …)
	Timestamp int64           // ns since the Unix epoch (millisecond resolution: MKV's timecode)
	Key       bool
	Data      []byte // valid until the next call to Next
	Fragment  *FragmentMeta
}

// ChunkError is an error the server reported inside the response (the
// AWS_KINESISVIDEO_ERROR_* tags), for example a damaged fragment that was
// skipped. Reading can go on after it.
type ChunkError struct {
	Code     string
	ID       int
	Fragment string // the fragment it is about, when known
}

func (e *ChunkError) Error() string {
	return fmt.Sprintf("sdk: server reported %s (%d) for fragment %s", e.Code, e.ID, e.Fragment)
}

// MediaReader reads frames from a stream of MKV chunks, one at a time, with
// their track and fragment metadata. It never holds more than one frame.
type MediaReader struct {
	r       *mkv.Reader
	pending *FragmentMeta // tags seen before the next cluster
	current *FragmentMeta // the fragment whose frames are being read
	token   string        // continuation token of the last complete fragment
	frame   MediaFrame
}

// NewMediaReader reads chunks from r.
func NewMediaReader(r io.Reader) *MediaReader {
	return &MediaReader{r: mkv.NewReader(r)}
}

// ContinuationToken is the token of the last fragment read to its end: resume
// with StartAfterToken(token) to get the fragments after it.
func (m *MediaReader) ContinuationToken() string { return m.token }

// Next returns the next frame, io.EOF at the end of the response, or a
// *ChunkError for an error the server reported (Next may be called again).
func (m *MediaReader) Next() (*MediaFrame, error) {
	for {
		it, err := m.r.Next()
		if err != nil {
			return nil, err
		}
		switch it.Kind {
		case mkv.ItemSegmentStart:
			m.pending = &FragmentMeta{Tags: map[string]string{}}
		case mkv.ItemTags:
			if cerr := m.tags(it.Tags); cerr != nil {
				return nil, cerr
			}
		case mkv.ItemClusterStart:
			if m.pending == nil {
				m.pending = &FragmentMeta{Tags: map[string]string{}}
			}
			m.current, m.pending = m.pending, &FragmentMeta{Tags: map[string]string{}}
		case mkv.ItemBlock:
			m.frame = MediaFrame{
				Track: m.r.Track(it.Block.Track), Timestamp: it.Time, Key: it.Block.Keyframe,
				Data: it.Block.Data, Fragment: m.current,
			}
			return &m.frame, nil
		}
	}
}

// tags files a Tags element under the fragment it belongs to: before a
// cluster, the coming fragment; after it, the one just read.
func (m *MediaReader) tags(tags []mkv.SimpleTag) error {
	var cerr *ChunkError
	for _, t := range tags {
		switch t.Name {
		case mkv.TagFragmentNumber:
			m.pending.Number = t.Value
		case mkv.TagServerTimestamp:
			m.pending.ServerTimestamp = parseKVSTime(t.Value)
		case mkv.TagProducerTimestamp:
			m.pending.ProducerTimestamp = parseKVSTime(t.Value)
		case mkv.TagContinuationToken:
			if m.current != nil {
				m.current.ContinuationToken = t.Value
			}
			m.token = t.Value
		case mkv.TagMillisBehindNow:
			if m.current != nil {
				m.current.MillisBehindNow, _ = strconv.ParseInt(t.Value, 10, 64)
			}
		case mkv.TagErrorCode:
			if cerr == nil {
				cerr = &ChunkError{}
			}
			cerr.Code = t.Value
		case mkv.TagErrorID:
			if cerr == nil {
				cerr = &ChunkError{}
			}
			cerr.ID, _ = strconv.Atoi(t.Value)
		default:
			if !strings.HasPrefix(t.Name, "AWS_KINESISVIDEO_") {
				m.pending.Tags[t.Name] = t.Value
			}
		}
	}
	if cerr != nil {
		cerr.Fragment = m.pending.Number
		return cerr
	}
	return nil
}

// parseKVSTime parses "seconds.millis".
func parseKVSTime(s string) time.Time {
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}
	}
	ns := int64(0)
	if frac != "" {
		frac = (frac + "000000000")[:9]
		ns, _ = strconv.ParseInt(frac, 10, 64)
	}
	return time.Unix(n, ns).UTC()
}

// Follow reads a stream's frames from start on and keeps following it live
// until ctx is done or fn returns an error (which Follow then returns). After a
// dropped connection it reconnects with the continuation token of the last
// fragment read to its end, so no fragment is missed: delivery is at least
// once — the frames of a fragment cut off mid-way come again, from its first
// frame (a frame's Fragment.Number tells them apart). Errors the server
// reports inside the response go to onChunkError when it is not nil.
func (c *Client) Follow(ctx context.Context, ref StreamRef, start StartSelector, fn func(*MediaFrame) error, onChunkError func(*ChunkError)) error {
	backoff := 100 * time.Millisecond
	for {
		body, err := c.GetMedia(ctx, ref, start, true)
		if err != nil {
			// An answer of the server (or of something that is not one) is
			// final, but for ClientLimitExceededException: the stream's
			// GetMedia rate is spent, which the backoff waits out. A
			// dropped connection or a TimeoutError is retried.
			var apiErr *APIError
			var httpErr *HTTPError
			if (errors.As(err, &apiErr) && apiErr.Name != httpwire.ClientLimitExceeded) || errors.As(err, &httpErr) || ctx.Err() != nil {
				return err
			}
		} else {
			mr := NewMediaReader(body)
			err = readAll(mr, fn, onChunkError)
			body.Close()
			if tok := mr.ContinuationToken(); tok != "" {
				start, backoff = StartAfterToken(tok), 100*time.Millisecond
			}
			var stop *stopError
			if errors.As(err, &stop) {
				return stop.err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

type stopError struct{ err error }

func (s *stopError) Error() string { return s.err.Error() }

func readAll(mr *MediaReader, fn func(*MediaFrame) error, onChunkError func(*ChunkError)) error {
	for {
		f, err := mr.Next()
		var cerr *ChunkError
		switch {
		case errors.As(err, &cerr):
			if onChunkError != nil {
				onChunkError(cerr)
			}
			continue
		case err != nil:
			return err
		}
		if err := fn(f); err != nil {
			return &stopError{err}
		}
	}
}
