package query

// Partitions splits a prepared query into at most n queries over disjoint
// parts of its range that together return exactly its rows, in order: what
// Arrow Flight's GetFlightInfo hands to n workers, which then read without
// coordinating.
//
//   - samples: [start, end) is cut into n equal spans. On basis server the
//     spans select fragments by server time, so each fragment is in one.
//   - windows: each cut falls halfway between two grid times, and a window
//     is in the partition its grid time is in (Window.StartsBefore ends a
//     partition's windows). A partition reads on past its cut for the
//     samples of its last windows, which may overlap the next partition's.
//     Every partition keeps the query's anchor, so the grid is the same.
//   - aggregate: as windows; a partition reads on past its cut for the
//     samples of its last windows.
//   - aligned: the grid's times are cut into spans; every partition keeps
//     the query's anchor and reads its inputs a little around its span, as
//     the whole query does.
//
// A live query (Follow) is not split: its one partition follows the stream.
// Fewer than n come back when the range holds fewer grid times or ns than n.
func (p *Prepared) Partitions(n int) ([]Request, error) {
	req := p.req
	if p.multi != nil {
		return p.multi.partitions(n)
	}
	switch {
	case n < 1:
		return nil, invalid("partitions must be at least 1")
	case req.Follow && n > 1:
		return nil, invalid("a live query (follow) reads its stream in order and is not split: ask for 1 partition")
	case req.Follow || n == 1:
		return []Request{req}, nil
	}
	at := func(i int) int64 { return req.Start + int64(float64(req.End-req.Start)*float64(i)/float64(n)) }
	var out []Request
	prev := req.Start
	for i := 1; i <= n; i++ {
		part := req
		part.Start = prev
		cut := req.End
		switch {
		case p.grid() != nil:
			plan := p.grid()
			cut = plan.before
			if i < n {
				k := plan.firstAtOrAfter(at(i))
				g0, g1 := plan.grid(k-1), plan.grid(k)
				cut = min(g0+(g1-g0)/2, plan.before)
				// Read on for the samples of the partition's last windows: a
				// window's first sample is within a period of its grid time,
				// and no step between its samples is over 1.5 periods.
				part.End = min(req.End, satAdd(cut, int64(plan.period*(1.5*float64(plan.length)+2))))
			}
			part.Window.Anchor, part.Window.StartsBefore = plan.anchor, cut
		case i < n:
			cut = at(i)
			part.End = cut
		}
		if cut <= prev {
			continue
		}
		if p.aligned != nil {
			part.Align.Anchor = p.aligned.align.Anchor
		}
		out = append(out, part)
		prev = cut
	}
	return out, nil
}

// grid is the window grid of a windows or aggregate query; nil for others.
func (p *Prepared) grid() *windowPlan {
	switch {
	case p.win != nil:
		return p.win
	case p.agg != nil:
		return p.agg.grid
	}
	return nil
}

// partitions of a query of several streams: each stream is its own
// partition, cut in time when more than one per stream is asked for; each
// keeps the stream column (a one-name "streams").
func (m *multiPlan) partitions(n int) ([]Request, error) {
	if n < 1 {
		return nil, invalid("partitions must be at least 1")
	}
	per := max(1, (n+len(m.parts)-1)/len(m.parts))
	var out []Request
	for _, part := range m.parts {
		if part.req.Follow {
			per = 1 // a live query's partitions are its streams
		}
		reqs, err := part.Partitions(per)
		if err != nil {
			return nil, err
		}
		for _, r := range reqs {
			r.Streams, r.Stream = []string{r.Stream}, ""
			out = append(out, r)
		}
	}
	return out, nil
}
