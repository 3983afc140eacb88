package replicate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
)

// Finding out what the centre already holds: its newest fragment of the
// stream and the edge fragment it came from (its origin_fragment_number
// and origin_server_timestamp, which the centre's ingest wrote from the
// edge's server tags).

// centreLast is the centre's newest fragment of a stream.
type centreLast struct {
	Number       string // the centre's own number
	ProducerTime int64
	Origin       string // origin_fragment_number; "" when it has none
	OriginServer int64  // origin_server_timestamp in ns (ms precision); 0 when absent
}

// lookbacks are the producer-time windows, back from now, in which the
// newest fragment is looked for before listing the whole stream: a stream
// written to in the last minutes is answered in one small listing.
var lookbacks = []time.Duration{10 * time.Minute, 6 * time.Hour, 8 * 24 * time.Hour, 120 * 24 * time.Hour}

// newestAtCentre returns the centre's newest fragment of stream, nil when
// it has none.
func newestAtCentre(ctx context.Context, c *sdk.Client, stream string, now time.Time) (*centreLast, error) {
	var best *sdk.Fragment
	scan := func(in sdk.ListFragmentsInput) error {
		in.Stream, in.MaxResults = sdk.ByName(stream), 1000
		for {
			page, next, err := c.ListFragments(ctx, in)
			if err != nil {
				return fmt.Errorf("list fragments of %s at the centre: %w", stream, err)
			}
			for i := range page {
				if best == nil || numberLess(best.FragmentNumber, page[i].FragmentNumber) {
					f := page[i]
					best = &f
				}
			}
			if next == "" {
				return nil
			}
			in.NextToken = next
		}
	}
	for _, back := range lookbacks {
		err := scan(sdk.ListFragmentsInput{Selector: "PRODUCER_TIMESTAMP", Start: now.Add(-back), End: now.AddDate(1, 0, 0)})
		if err != nil {
			return nil, err
		}
		if best != nil {
			break
		}
	}
	if best == nil {
		if err := scan(sdk.ListFragmentsInput{}); err != nil {
			return nil, err
		}
	}
	if best == nil {
		return nil, nil
	}
	last := &centreLast{Number: best.FragmentNumber, ProducerTime: best.ProducerTimestamp.UnixNano()}
	if err := readOriginTags(ctx, c, stream, last); err != nil {
		return nil, err
	}
	return last, nil
}

// readOriginTags reads the origin_ tags of the centre's fragment last.
func readOriginTags(ctx context.Context, c *sdk.Client, stream string, last *centreLast) error {
	body, err := c.GetMediaForFragmentList(ctx, sdk.ByName(stream), []string{last.Number})
	if err != nil {
		return fmt.Errorf("read fragment %s of %s at the centre: %w", last.Number, stream, err)
	}
	defer body.Close()
	rd := mkv.NewReader(body, mkv.MaxElementSize(maxChunk))
	for {
		it, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read fragment %s of %s at the centre: %w", last.Number, stream, err)
		}
		switch it.Kind {
		case mkv.ItemTags:
			for _, t := range it.Tags {
				switch t.Name {
				case mkv.TagOriginFragmentNumber:
					if validNumber(t.Value) {
						last.Origin = t.Value
					}
				case mkv.TagOriginServerTimestamp:
					if ns, ok := parseSeconds(t.Value); ok {
						last.OriginServer = ns
					}
				}
			}
		case mkv.ItemClusterStart:
			return nil // the tags come before the Cluster
		}
	}
}

// parseSeconds reads seconds since the Unix epoch with a decimal fraction
// ("1764966896.123"), as the server tags write them, exactly.
func parseSeconds(s string) (int64, bool) {
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || n < 0 || len(frac) > 9 || n > (1<<63-1)/int64(time.Second)-1 {
		return 0, false
	}
	var f int64
	if frac != "" {
		if f, err = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64); err != nil || f < 0 {
			return 0, false
		}
	}
	return n*int64(time.Second) + f, true
}

// startFromCentre makes the cursor of a new journal from what the centre
// holds, so that a replicator without its state (a first run, or a lost
// folder) neither re-sends what the centre has nor skips what it lacks.
//
// When the centre's newest fragment names an edge fragment that the edge
// still has with the same producer time, the copy resumes right after it.
// Otherwise (the edge no longer has it, or the stream at the centre was
// filled by something else, or the edge stream is itself an import whose
// fragments carry an older origin) it resumes after the centre's newest
// producer time: fragments of the edge at that very time are taken as
// copied.
func startFromCentre(ctx context.Context, edge *sdk.Client, edgeStream string, last *centreLast, j *journal) error {
	if last == nil {
		return nil // an empty centre stream: from the edge's first fragment
	}
	if last.Origin != "" {
		start := time.Unix(0, last.OriginServer).Truncate(time.Millisecond)
		page, _, err := edge.ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName(edgeStream), Selector: "SERVER_TIMESTAMP",
			Start: start, End: start.Add(time.Millisecond), MaxResults: 1000})
		if err != nil {
			return fmt.Errorf("find fragment %s at the edge: %w", last.Origin, err)
		}
		for _, f := range page {
			if f.FragmentNumber == last.Origin && f.ProducerTimestamp.UnixNano() == last.ProducerTime {
				j.Cursor = &fragRef{Number: f.FragmentNumber, ServerTime: f.ServerTimestamp.UnixNano(),
					ProducerTime: f.ProducerTimestamp.UnixNano(), Size: f.FragmentSizeInBytes}
				return nil
			}
		}
	}
	j.AfterProducerTime = last.ProducerTime
	return nil
}

// reconcile brings a journal in line with the centre: the pending
// fragments up to the centre's newest one are confirmed, so that a fragment
// the centre stored long ago (beyond what its dedupe remembers, 30 days of
// the producer's silence by default) is never sent again. The centre's
// newest fragment must be one of the journal's pending fragments (same
// edge number and producer time): an origin tag that names another
// numbering (an edge stream that is itself an import) proves nothing.
//
// The centre's newest proves only itself: the centre stores a fragment
// after one it refused (its ingest does not hold it back), and the
// replicator may have died before it heard the refusal. So each pending
// fragment up to the newest must also be found at the centre by its
// producer time; confirmation stops before the first that is not, which
// the next round sends again and the centre then stores (or refuses again,
// and the journal records it). Nor does it go past a refusal the journal
// already records.
func reconcile(ctx context.Context, c *sdk.Client, stream string, j *journal, last *centreLast) error {
	match := centreMatch(j, last)
	if match < 0 {
		return nil
	}
	held, err := centreProducerTimes(ctx, c, stream, j.Pending[0].ProducerTime, last.ProducerTime)
	if err != nil {
		return err
	}
	confirmHeld(j, match, held)
	return nil
}

// centreMatch is the index of the pending fragment that the centre's
// newest fragment is a copy of; -1 for none.
func centreMatch(j *journal, last *centreLast) int {
	if last == nil || last.Origin == "" {
		return -1
	}
	for i, p := range j.Pending {
		if p.Number == last.Origin && p.ProducerTime == last.ProducerTime {
			return i
		}
	}
	return -1
}

// confirmHeld confirms the pending fragments up to Pending[match] that
// held (the centre's fragments counted by producer time in ms) accounts
// for, in order, up to the first it does not; and notes in a recorded
// refusal that the centre holds fragments after it.
func confirmHeld(j *journal, match int, held map[int64]int) {
	if r := j.Refused; r != nil && j.Pending[match].Seq > r.Seq {
		n := 0
		for _, p := range j.Pending[:match+1] {
			if p.Seq > r.Seq {
				n++
			}
		}
		r.StoredAfter = max(r.StoredAfter, n)
	}
	upTo := uint64(0)
	for _, p := range j.Pending[:match+1] {
		ms := floorMS(p.ProducerTime)
		if held[ms] == 0 {
			break
		}
		held[ms]--
		upTo = p.Seq
	}
	if upTo > 0 {
		j.confirm(upTo) // which stops before a recorded refusal
	}
}

// centreProducerTimes counts the centre's fragments of stream by producer
// time (ms; listings give ms) from from to to (ns, both inclusive).
func centreProducerTimes(ctx context.Context, c *sdk.Client, stream string, from, to int64) (map[int64]int, error) {
	held := map[int64]int{}
	in := sdk.ListFragmentsInput{Stream: sdk.ByName(stream), Selector: "PRODUCER_TIMESTAMP", MaxResults: 1000,
		Start: time.Unix(0, from).Truncate(time.Millisecond), End: time.Unix(0, to)}
	for {
		page, next, err := c.ListFragments(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list fragments of %s at the centre: %w", stream, err)
		}
		for _, f := range page {
			held[f.ProducerTimestamp.UnixMilli()]++
		}
		if next == "" {
			return held, nil
		}
		in.NextToken = next
	}
}

// floorMS is ns as whole ms, rounded down as listings round.
func floorMS(ns int64) int64 {
	ms := ns / int64(time.Millisecond)
	if ns < 0 && ns%int64(time.Millisecond) != 0 {
		ms--
	}
	return ms
}
