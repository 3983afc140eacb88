package query

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/store"
)

// SelectorType is GetMedia's StartSelectorType.
type SelectorType string

// Start selector types, as the seed service names them.
const (
	Earliest          SelectorType = "EARLIEST"
	Now               SelectorType = "NOW"
	FragmentNumber    SelectorType = "FRAGMENT_NUMBER"
	ProducerTimestamp SelectorType = "PRODUCER_TIMESTAMP"
	ServerTimestamp   SelectorType = "SERVER_TIMESTAMP"
	ContinuationTok   SelectorType = "CONTINUATION_TOKEN"
)

// StartSelector says where GetMedia starts.
type StartSelector struct {
	Type                SelectorType
	AfterFragmentNumber string // FRAGMENT_NUMBER: start at this fragment
	StartTimestamp      int64  // *_TIMESTAMP: ns; start at the fragment holding it, or the next
	ContinuationToken   string // CONTINUATION_TOKEN: start after the fragment it names
}

// GetMediaInput is a GetMedia request.
type GetMediaInput struct {
	Stream store.StreamRef
	Start  StartSelector
	// Follow keeps the response open and streams new fragments as they become
	// durable, as the seed service does; false ends it once caught up.
	Follow bool
}

// ResolveStream checks a stream reference and returns the stream's info.
func (s *Service) ResolveStream(ref store.StreamRef) (store.StreamInfo, error) {
	return s.st.DescribeStream(ref)
}

// start returns the first fragment number to serve.
func (s *Service) start(name string, sel StartSelector) (uint64, error) {
	switch sel.Type {
	case Earliest:
		return 0, nil
	case Now:
		last, ok, err := s.st.Durable(name)
		if err != nil || !ok {
			return 0, err
		}
		return last.Number + 1, nil
	case FragmentNumber:
		if sel.AfterFragmentNumber == "" {
			return 0, invalid("StartSelector.AfterFragmentNumber is required for FRAGMENT_NUMBER")
		}
		n, err := strconv.ParseUint(sel.AfterFragmentNumber, 10, 64)
		if err != nil {
			return 0, invalid("AfterFragmentNumber %q is not a fragment number", sel.AfterFragmentNumber)
		}
		// As the seed service does, a number the stream does not hold is
		// ResourceNotFound, not an empty response (or, following, a wait for a
		// fragment that may never come: numbers are not contiguous).
		if _, err := s.st.Fragment(name, n); err != nil {
			if isNotFound(err) {
				return 0, notFound("stream %s holds no fragment %d (AfterFragmentNumber must name a stored fragment; ListFragments lists them)", name, n)
			}
			return 0, err
		}
		return n, nil
	case ContinuationTok:
		n, err := strconv.ParseUint(sel.ContinuationToken, 10, 64)
		if err != nil {
			return 0, invalid("ContinuationToken %q is not one this server issued", sel.ContinuationToken)
		}
		return n + 1, nil
	case ProducerTimestamp, ServerTimestamp:
		if sel.StartTimestamp == 0 {
			return 0, invalid("StartSelector.StartTimestamp is required for %s", sel.Type)
		}
		basis := store.ProducerTime
		if sel.Type == ServerTimestamp {
			basis = store.ServerTime
		}
		n, ok, err := s.st.Seek(name, basis, sel.StartTimestamp)
		if err != nil {
			return 0, err
		}
		if ok {
			return n, nil
		}
		// Nothing stored holds it yet: start with whatever arrives next.
		last, have, err := s.st.Durable(name)
		if err != nil || !have {
			return 0, err
		}
		return last.Number + 1, nil
	case "":
		return 0, invalid("StartSelector.StartSelectorType is required")
	}
	return 0, invalid("StartSelectorType %q is not one of EARLIEST, NOW, FRAGMENT_NUMBER, PRODUCER_TIMESTAMP, SERVER_TIMESTAMP, CONTINUATION_TOKEN", sel.Type)
}

// PrepareGetMedia validates a request before any byte of the response is
// written, so that a bad request is a clean HTTP error.
func (s *Service) PrepareGetMedia(in GetMediaInput) (store.StreamInfo, uint64, error) {
	info, err := s.st.DescribeStream(in.Stream)
	if err != nil {
		return info, 0, err
	}
	from, err := s.start(info.Name, in.Start)
	return info, from, err
}

// GetMedia writes chunks from fragment number `from` on (see PrepareGetMedia)
// and, when following, keeps writing new ones until ctx is done. flush is
// called after each burst so that a live reader sees chunks at once.
func (s *Service) GetMedia(ctx context.Context, name string, from uint64, follow bool, w io.Writer, flush func()) error {
	r, err := s.st.NewReader(name)
	if err != nil {
		return err
	}
	defer r.Close()
	cw := &chunkWriter{w: w, now: s.now}
	for {
		infos, err := s.st.Fragments(name, from, 32)
		if err != nil {
			return err
		}
		for _, info := range infos {
			if err := s.serve(cw, r, info); err != nil {
				return err
			}
			from = info.Number + 1
		}
		if flush != nil {
			flush()
		}
		if len(infos) > 0 {
			continue
		}
		if !follow {
			return nil
		}
		if err := s.st.Wait(ctx, name, from); err != nil {
			if ctx.Err() != nil {
				return nil // the client went away or the server is stopping
			}
			return err
		}
	}
}

// serve writes one fragment's chunk, or an error chunk for a fragment that
// cannot be read (damaged, or removed by retention meanwhile); the response
// goes on with the next fragment.
func (s *Service) serve(cw *chunkWriter, r *store.Reader, info store.FragmentInfo) error {
	f, err := r.Read(info)
	var ce *store.CorruptionError
	switch {
	case errors.As(err, &ce):
		s.log.Error("query: damaged fragment skipped", "fragment", info.Number, "err", err)
		return cw.writeError(wire.ErrInternal.String(), int(wire.ErrInternal), info.Number)
	case errors.Is(err, store.ErrFragmentGone):
		return cw.writeError("FRAGMENT_NOT_FOUND", 4000, info.Number)
	case err != nil:
		return err
	}
	return cw.write(f)
}

// MaxFragmentList is the most fragments GetMediaForFragmentList takes.
const MaxFragmentList = 1000

// PrepareFragmentList checks a GetMediaForFragmentList request: every number
// must parse and be stored.
func (s *Service) PrepareFragmentList(ref store.StreamRef, numbers []string) (store.StreamInfo, []store.FragmentInfo, error) {
	info, err := s.st.DescribeStream(ref)
	if err != nil {
		return info, nil, err
	}
	if len(numbers) == 0 || len(numbers) > MaxFragmentList {
		return info, nil, invalid("Fragments must list 1 to %d fragment numbers", MaxFragmentList)
	}
	out := make([]store.FragmentInfo, 0, len(numbers))
	var missing []string
	for _, ns := range numbers {
		n, err := strconv.ParseUint(ns, 10, 64)
		if err != nil {
			return info, nil, invalid("%q is not a fragment number", ns)
		}
		fi, err := s.st.Fragment(info.Name, n)
		if isNotFound(err) {
			missing = append(missing, ns)
			continue
		}
		if err != nil {
			return info, nil, err
		}
		out = append(out, fi)
	}
	if len(missing) > 0 {
		if len(missing) > 10 {
			missing = append(missing[:10], fmt.Sprintf("and %d more", len(missing)-10))
		}
		return info, nil, notFound("stream %s has no fragment %s", info.Name, strings.Join(missing, ", "))
	}
	return info, out, nil
}

// GetMediaForFragmentList writes the chunks of the given fragments, in the
// order given.
func (s *Service) GetMediaForFragmentList(name string, frags []store.FragmentInfo, w io.Writer) error {
	r, err := s.st.NewReader(name)
	if err != nil {
		return err
	}
	defer r.Close()
	cw := &chunkWriter{w: w, now: s.now}
	for _, info := range frags {
		if err := s.serve(cw, r, info); err != nil {
			return err
		}
	}
	return nil
}

// FragmentSelector is ListFragments' selector.
type FragmentSelector struct {
	Basis store.TimeBasis
	// Start and End are ns, both inclusive, as the seed service's
	// TimestampRange. An End on a whole millisecond covers that whole
	// millisecond (see exclusiveEnd).
	Start, End int64
}

// exclusiveEnd turns a TimestampRange's inclusive end into the exclusive end
// store.Range takes. The seed service's timestamps are seconds with a
// millisecond fraction, and ListFragments reports times floored to the
// millisecond while the store keeps them to the ns: so an end with
// millisecond precision covers its whole millisecond, and an end copied from
// a listed ServerTimestamp or ProducerTimestamp includes that fragment. An end
// with finer digits is taken to the ns.
func exclusiveEnd(end int64) int64 {
	const ms = int64(time.Millisecond)
	switch {
	case end > math.MaxInt64-ms:
		return math.MaxInt64
	case end%ms != 0:
		return end + 1
	}
	return end + ms
}

// DefaultListResults and MaxListResults bound ListFragments pages.
const (
	DefaultListResults = 100
	MaxListResults     = 1000
)

// ListFragments returns a page of fragments in number order, and the token
// for the next page ("" at the end).
func (s *Service) ListFragments(ref store.StreamRef, sel *FragmentSelector, maxResults int, nextToken string) ([]store.FragmentInfo, string, error) {
	info, err := s.st.DescribeStream(ref)
	if err != nil {
		return nil, "", err
	}
	if maxResults == 0 {
		maxResults = DefaultListResults
	}
	if maxResults < 1 || maxResults > MaxListResults {
		return nil, "", invalid("MaxResults must be 1 to %d", MaxListResults)
	}
	var from uint64
	if nextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(nextToken)
		if err == nil && strings.HasPrefix(string(b), "lf:") {
			from, err = strconv.ParseUint(string(b[3:]), 10, 64)
		}
		if err != nil || from == 0 {
			return nil, "", invalid("NextToken is not one this server issued")
		}
	}
	var frags []store.FragmentInfo
	if sel == nil {
		frags, err = s.st.Fragments(info.Name, from, maxResults+1)
	} else {
		if sel.End < sel.Start {
			return nil, "", invalid("TimestampRange.EndTimestamp is before StartTimestamp")
		}
		frags, err = s.st.Range(info.Name, sel.Basis, sel.Start, exclusiveEnd(sel.End), from, maxResults+1)
	}
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(frags) > maxResults {
		frags = frags[:maxResults]
		next = base64.RawURLEncoding.EncodeToString([]byte("lf:" + strconv.FormatUint(frags[maxResults-1].Number+1, 10)))
	}
	return frags, next, nil
}
