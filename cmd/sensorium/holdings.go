package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sensorium-io/sensorium/sdk"
)

// holdings says what the streams of a query hold, for a query that came back
// with no rows: "stream pump-1 holds 2026-12-05 07:20:45–07:21:25 (UTC,
// producer time)", or "stream pump-1 holds no fragments". It is advice, so a
// failure to list is said in its place, never returned.
func holdings(ctx context.Context, c *sdk.Client, in sdk.QueryInput) string {
	streams := []string{in.Stream}
	if in.Stream == "" {
		streams = streams[:0]
		for _, s := range in.Inputs {
			streams = append(streams, s.Stream)
		}
	}
	basis := "PRODUCER_TIMESTAMP"
	if in.Basis == "server" {
		basis = "SERVER_TIMESTAMP"
	}
	var says []string
	for _, s := range streams {
		says = append(says, streamHoldings(ctx, c, s, basis))
	}
	return strings.Join(says, "; ")
}

// streamHoldings finds the first and the last fragment of one stream without
// listing all of them: the first is the first by number; the last is found
// in ranges reaching back from now, each 16 times longer than the one before,
// the first that holds fragments listed to its end.
func streamHoldings(ctx context.Context, c *sdk.Client, stream, basis string) string {
	ref := sdk.StreamRef{StreamName: stream}
	first, _, err := c.ListFragments(ctx, sdk.ListFragmentsInput{Stream: ref, MaxResults: 1})
	if err != nil {
		return fmt.Sprintf("stream %s: listing its fragments failed: %v", stream, err)
	}
	if len(first) == 0 {
		return fmt.Sprintf("stream %s holds no fragments", stream)
	}
	span := func(f sdk.Fragment) (time.Time, time.Time) {
		t := f.ProducerTimestamp.Time
		if basis == "SERVER_TIMESTAMP" {
			t = f.ServerTimestamp.Time
		}
		return t, t.Add(time.Duration(f.FragmentLengthInMilliseconds) * time.Millisecond)
	}
	from, to := span(first[0])
	const maxPages = 20 // 20,000 fragments: past that, the first is enough to say
	now := time.Now()
	end := now.Add(100 * 365 * 24 * time.Hour) // producers may run ahead of the clock
	pages := 0
	for back := time.Minute; pages < maxPages; back *= 16 {
		start := now.Add(-back)
		token, found := "", false
		for pages < maxPages {
			page, next, err := c.ListFragments(ctx, sdk.ListFragmentsInput{Stream: ref, Selector: basis, Start: start, End: end, MaxResults: 1000, NextToken: token})
			pages++
			if err != nil {
				return fmt.Sprintf("stream %s: listing its fragments failed: %v", stream, err)
			}
			for _, f := range page {
				found = true
				a, b := span(f)
				from, to = minTime(from, a), maxTime(to, b)
			}
			if token = next; token == "" {
				break
			}
		}
		if found || start.Before(from) {
			break
		}
	}
	what := "producer time"
	if basis == "SERVER_TIMESTAMP" {
		what = "server time"
	}
	from, to = from.UTC(), to.UTC()
	if from.Format(time.DateOnly) == to.Format(time.DateOnly) {
		return fmt.Sprintf("stream %s holds %s %s–%s (UTC, %s)", stream, from.Format(time.DateOnly), from.Format(time.TimeOnly), to.Format(time.TimeOnly), what)
	}
	return fmt.Sprintf("stream %s holds %s – %s (UTC, %s)", stream, from.Format(time.DateTime), to.Format(time.DateTime), what)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
