package replicate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
)

// Reading the edge: which fragments are new, and their chunks.

// maxListed bounds how many new fragments one pass keeps in memory; the
// rest of a long backlog is counted (for the backlog figures) and listed
// again on the next pass.
const maxListed = 20_000

// listing is the edge's fragments after a cursor, oldest first.
type listing struct {
	frags []fragRef // at most maxListed
	// count and bytes are the whole backlog, including what frags left out.
	count int64
	bytes int64
}

// listAfter lists the edge fragments of stream newer than cursor (nil: all),
// sorted by number. Server timestamps never go back within a stream, so the
// listing asks from the cursor's server time (inclusive) and drops the
// cursor itself and anything at or before it.
func listAfter(ctx context.Context, c *sdk.Client, stream string, cursor *fragRef, maxResults int) (listing, error) {
	in := sdk.ListFragmentsInput{Stream: sdk.ByName(stream), MaxResults: maxResults}
	if cursor != nil {
		in.Selector = "SERVER_TIMESTAMP"
		in.Start = time.Unix(0, cursor.ServerTime)
		in.End = time.Now().AddDate(10, 0, 0)
	}
	var all []fragRef
	var l listing
	for {
		page, next, err := c.ListFragments(ctx, in)
		if err != nil {
			return listing{}, fmt.Errorf("list fragments of %s at the edge: %w", stream, err)
		}
		for _, f := range page {
			if !validNumber(f.FragmentNumber) {
				return listing{}, fmt.Errorf("list fragments of %s at the edge: %q is not a fragment number", stream, f.FragmentNumber)
			}
			if cursor != nil && !numberLess(cursor.Number, f.FragmentNumber) {
				continue
			}
			l.count++
			l.bytes += f.FragmentSizeInBytes
			all = append(all, fragRef{Number: f.FragmentNumber, ServerTime: f.ServerTimestamp.UnixNano(),
				ProducerTime: f.ProducerTimestamp.UnixNano(), Size: f.FragmentSizeInBytes})
		}
		// Pages come in number order from a Sensorium edge; a listing
		// that keeps more than it may would be trimmed to the oldest
		// after sorting, below.
		if next == "" {
			break
		}
		in.NextToken = next
		if len(all) > 2*maxListed {
			slices.SortFunc(all, cmpFrag)
			all = all[:maxListed]
		}
	}
	slices.SortFunc(all, cmpFrag)
	if len(all) > maxListed {
		all = all[:maxListed]
	}
	l.frags = all
	return l, nil
}

func cmpFrag(a, b fragRef) int {
	switch {
	case numberLess(a.Number, b.Number):
		return -1
	case numberLess(b.Number, a.Number):
		return 1
	}
	return 0
}

// chunk is one fragment as GetMediaForFragmentList serves it: a complete
// MKV document with the edge's server tags before its Cluster, which the
// centre's ingest keeps as origin_fragment_number and
// origin_server_timestamp (ingest/archive.go).
type chunk struct {
	number string
	data   []byte
}

// recorder keeps the bytes read through it from a stream offset on, so
// that a document the mkv reader has walked can be cut out whole.
type recorder struct {
	r    io.Reader
	buf  []byte
	base int64 // stream offset of buf[0]
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.buf = append(r.buf, p[:n]...)
	return n, err
}

// dropBefore forgets the bytes before stream offset off.
func (r *recorder) dropBefore(off int64) {
	if k := off - r.base; k > 0 && k <= int64(len(r.buf)) {
		r.buf = append(r.buf[:0], r.buf[k:]...)
		r.base = off
	}
}

// slice is a copy of the bytes [from, to) of the stream.
func (r *recorder) slice(from, to int64) ([]byte, error) {
	if from < r.base || to > r.base+int64(len(r.buf)) || from > to {
		return nil, fmt.Errorf("document at %d–%d is outside the bytes kept (%d–%d)", from, to, r.base, r.base+int64(len(r.buf)))
	}
	return slices.Clone(r.buf[from-r.base : to-r.base]), nil
}

// maxChunk bounds one chunk read from the edge.
const maxChunk = 64 << 20

// fetchChunks reads the chunks of numbers (in that order) from the edge and
// hands each to fn as soon as it is whole, so that memory holds one
// fragment at a time whatever the batch. A chunk that is not the fragment
// asked for next is an error: the copy would otherwise be out of order.
func fetchChunks(ctx context.Context, c *sdk.Client, stream string, numbers []string, fn func(chunk) error) error {
	body, err := c.GetMediaForFragmentList(ctx, sdk.ByName(stream), numbers)
	if err != nil {
		return fmt.Errorf("get fragments of %s from the edge: %w", stream, err)
	}
	defer body.Close()
	return splitChunks(body, stream, numbers, fn)
}

// splitChunks cuts a GetMediaForFragmentList answer into its documents,
// each checked to be the next fragment of numbers.
func splitChunks(body io.Reader, stream string, numbers []string, fn func(chunk) error) error {
	rec := &recorder{r: body}
	rd := mkv.NewReader(rec, mkv.MaxElementSize(maxChunk))
	var start int64 = -1
	number := ""
	i := 0
	for {
		it, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("get fragments of %s from the edge: chunk %d of %d: %w", stream, i+1, len(numbers), err)
		}
		switch it.Kind {
		case mkv.ItemEBMLHeader:
			rec.dropBefore(it.Offset)
			start, number = it.Offset, ""
		case mkv.ItemTags:
			for _, t := range it.Tags {
				if t.Name == mkv.TagFragmentNumber {
					number = t.Value
				}
			}
		case mkv.ItemClusterEnd:
			if start < 0 {
				return fmt.Errorf("get fragments of %s from the edge: a Cluster outside a document", stream)
			}
			if i >= len(numbers) {
				return fmt.Errorf("get fragments of %s from the edge: more chunks than the %d fragments asked for", stream, len(numbers))
			}
			if number != numbers[i] {
				return fmt.Errorf("get fragments of %s from the edge: chunk %d is fragment %q, not %s", stream, i+1, number, numbers[i])
			}
			data, err := rec.slice(start, it.Offset)
			if err != nil {
				return fmt.Errorf("get fragments of %s from the edge: fragment %s: %w", stream, number, err)
			}
			if err := fn(chunk{number: number, data: data}); err != nil {
				return err
			}
			i++
			start = -1
			rec.dropBefore(it.Offset)
		}
	}
	if i != len(numbers) {
		return fmt.Errorf("get fragments of %s from the edge: the answer ended after %d of %d fragments", stream, i, len(numbers))
	}
	return nil
}
