package replicate

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/service/replicate/replicatetest"
	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/sdk"
)

// The refusal tests' edge fragments: total of them, the one at refusedK
// too large for the centre.
const refusedK, total = 3, 12

// refusalRig is a rig whose centre takes fragments of at most 16 KiB, and
// whose edge stream s holds total fragments of 1 KiB but for the one at
// refusedK (64 KiB). It returns the edge's listing and put, which writes
// the edge's fragment k.
func refusalRig(t *testing.T, via string) (*rig, []sdk.Fragment, func(k int)) {
	t.Helper()
	r := newRig(t, via, func(c *server.Config) { c.Limits.MaxFragmentSize = 16 << 10 })
	r.createEdge(t, "s", 1)
	origin := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	p := newProducer(t, r.edgeSrv.NATSURL(), "s", origin, 1<<10)
	put := func(k int) {
		size := 1 << 10
		if k == refusedK {
			size = 64 << 10 // the edge takes it; the centre (16 KiB) does not
		}
		if err := p.PutRaw(replicatetest.Fragment(origin, k, size), "test-producer", uint64(k+1), 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for k := 0; k < total; k++ {
		put(k)
	}
	edge, err := replicatetest.List(context.Background(), r.edge, "s")
	if err != nil || len(edge) != total {
		t.Fatalf("the edge lists %d fragments (%v), want %d", len(edge), err, total)
	}
	return r, edge, put
}

// The centre refuses one fragment (its size limit is smaller than the
// edge's) while the eight after it are already on their way, as they are
// on a link with a long round trip; the centre stores those, so its copy
// has a hole at the refused one. The copy stops there and says so: the
// refused fragment is never confirmed — not by the PERSISTED of those
// after it, nor at the next session's look at the centre, which finds them
// — it is tried again, alone, after each pause; the journal, the status
// and the metrics name it and count the fragments stored past it. An
// operator's skip lets the copy go on without it, and the hole stays on
// record.
func TestRefusedFragmentStopsTheCopy(t *testing.T) {
	r, edge, put := refusalRig(t, ViaNATS)
	refused := edge[refusedK].FragmentNumber

	// Outside the schedule the replicator waits with the whole backlog
	// listed; the link to the centre then stalls and the window opens, so
	// that every fragment is on its way before the centre answers the
	// refused one (the case of a long round trip, made certain).
	tomorrow := time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	clock := newTestClock(tomorrow.Add(12 * time.Hour))
	cfg := r.config(t, "s")
	cfg.Schedule, _ = ParseSchedule("22:00-06:00", time.UTC)
	cfg.Now = clock.Now
	cfg.AckTimeout = 10 * time.Second // the publishes outlast the stall
	rep, stop := start(t, cfg)
	streamStatus := func() StreamStatus {
		st := rep.Status().Streams
		if len(st) != 1 {
			return StreamStatus{}
		}
		return st[0]
	}
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		if s := streamStatus(); s.State != "paused" || s.BacklogFragments != total {
			return fmt.Errorf("status %+v; want paused with %d in the backlog", s, total)
		}
		return nil
	})
	r.proxy.Stall(2 * time.Second)
	clock.Set(tomorrow.Add(23 * time.Hour))

	// Stopped at the refused fragment, the hole told; and still so after
	// two more sessions, each of which looked at the centre (where the
	// fragments after the refused one are) and tried it again.
	var errsAtRefusal uint64
	poll.Until(t, 30*time.Second, 20*time.Millisecond, func() error {
		s := streamStatus()
		if s.State != "refused" || s.Refused == nil {
			return fmt.Errorf("status %+v; want refused", s)
		}
		errsAtRefusal = s.Errors
		return nil
	})
	poll.Until(t, 30*time.Second, 50*time.Millisecond, func() error {
		if s := streamStatus(); s.Errors < errsAtRefusal+2 || s.State != "refused" {
			return fmt.Errorf("status %+v; want two more tries of the refused fragment, still refused", s)
		}
		return nil
	})
	s := streamStatus()
	want := RefusalStatus{Fragment: refused, Sequence: refusedK + 1, Code: "MAX_FRAGMENT_SIZE_REACHED", StoredAfter: total - refusedK - 1}
	if got := *s.Refused; got.Fragment != want.Fragment || got.Sequence != want.Sequence || got.Code != want.Code || got.StoredAfter != want.StoredAfter {
		t.Errorf("the refusal in status: %+v; want %+v", got, want)
	}
	if s.RefusedFragments != 1 || s.LastConfirmed != edge[refusedK-1].FragmentNumber || !strings.Contains(s.LastError, "has a hole there") {
		t.Errorf("status %+v; want 1 refused, confirmed up to %s, the hole in the last error", s, edge[refusedK-1].FragmentNumber)
	}
	j, err := loadJournal(cfg.StateDir, "s")
	if err != nil {
		t.Fatal(err)
	}
	if j.Confirmed == nil || j.Confirmed.Number != edge[refusedK-1].FragmentNumber || len(j.Pending) != total-refusedK ||
		j.Pending[0].Number != refused || j.Refused == nil || j.Refused.Number != refused || j.RefusedTotal != 1 {
		t.Fatalf("journal: confirmed %+v, %d pending (first %+v), refused %+v, %d refused; want confirmed up to %s, the refused %s first of %d pending",
			j.Confirmed, len(j.Pending), j.Pending[0], j.Refused, j.RefusedTotal, edge[refusedK-1].FragmentNumber, refused, total-refusedK)
	}
	srv := httptest.NewServer(rep.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{
		`sensorium_replicate_refused_fragments_total{stream="s"} 1`,
		fmt.Sprintf(`sensorium_replicate_stored_past_refusal_fragments{stream="s"} %d`, total-refusedK-1),
		`sensorium_replicate_stream_up{state="refused",stream="s"} 0`,
		`sensorium_replicate_skipped_fragments{stream="s"} 0`,
	} {
		if !strings.Contains(string(body), line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	var others []string // every edge fragment but the refused one, in order
	for _, f := range edge {
		if f.FragmentNumber != refused {
			others = append(others, f.FragmentNumber)
		}
	}
	if got := centreOrigins(t, r); !slices.Equal(got, others) {
		t.Fatalf("the centre holds copies of %v; want every edge fragment but %s, once: %v", got, refused, others)
	}

	// The operator lets it go: not while the replicator runs, and only
	// once.
	if _, err := SkipRefused(cfg.StateDir, "s"); err == nil || !strings.Contains(err.Error(), "in use by another replicator") {
		t.Fatalf("skip while the replicator runs: %v", err)
	}
	stop()
	sum, err := SkipRefused(cfg.StateDir, "s")
	if err != nil || sum.Refused == nil || sum.Refused.Fragment != refused || sum.SkippedFragments != 1 {
		t.Fatalf("skip: %+v, %v", sum, err)
	}
	if _, err := SkipRefused(cfg.StateDir, "s"); err == nil || !strings.Contains(err.Error(), "not stopped at a refused fragment") {
		t.Fatalf("a second skip: %v", err)
	}
	put(total) // and the edge goes on
	rep, _ = start(t, cfg)
	poll.Until(t, 30*time.Second, 50*time.Millisecond, func() error {
		s := streamStatus()
		if s.State != "live" || s.BacklogFragments != 0 || s.Refused != nil || s.SkippedFragments != 1 {
			return fmt.Errorf("status %+v; want live, caught up, 1 skipped", s)
		}
		return nil
	})
	edge, err = replicatetest.List(context.Background(), r.edge, "s")
	if err != nil {
		t.Fatal(err)
	}
	others = append(others, edge[total].FragmentNumber)
	if got := centreOrigins(t, r); !slices.Equal(got, others) {
		t.Fatalf("after the skip the centre holds copies of %v; want %v", got, others)
	}
	if js, err := ReadJournals(cfg.StateDir); err != nil || len(js) != 1 || js[0].SkippedFragments != 1 || js[0].Refused != nil || js[0].RefusedFragments != 1 {
		t.Fatalf("journals after the skip: %+v, %v", js, err)
	}
}

// Over HTTP, a refusal ends the PutMedia session at the refused fragment:
// the fragments after it in the session are not stored, so the centre's
// copy has no hole. The copy stops at it, as over NATS, and goes on in
// order once an operator skips it.
func TestRefusedFragmentOverHTTPLeavesNoHole(t *testing.T) {
	r, edge, _ := refusalRig(t, ViaHTTP)
	refused := edge[refusedK].FragmentNumber
	cfg := r.config(t, "s")
	rep, stop := start(t, cfg)
	streamStatus := func() StreamStatus {
		if st := rep.Status().Streams; len(st) == 1 {
			return st[0]
		}
		return StreamStatus{}
	}
	poll.Until(t, 30*time.Second, 20*time.Millisecond, func() error {
		if s := streamStatus(); s.State != "refused" || s.Refused == nil {
			return fmt.Errorf("status %+v; want refused", s)
		}
		return nil
	})
	want := RefusalStatus{Fragment: refused, Sequence: refusedK + 1, Code: "MAX_FRAGMENT_SIZE_REACHED"}
	if got := *streamStatus().Refused; got.Fragment != want.Fragment || got.Sequence != want.Sequence || got.Code != want.Code || got.StoredAfter != 0 {
		t.Errorf("the refusal in status: %+v; want %+v, nothing stored after it", got, want)
	}
	var before, others []string
	for k, f := range edge {
		if k < refusedK {
			before = append(before, f.FragmentNumber)
		}
		if k != refusedK {
			others = append(others, f.FragmentNumber)
		}
	}
	if got := centreOrigins(t, r); !slices.Equal(got, before) {
		t.Fatalf("the centre holds copies of %v; want only those before the refused one: %v", got, before)
	}
	stop()
	if _, err := SkipRefused(cfg.StateDir, "s"); err != nil {
		t.Fatal(err)
	}
	_, _ = start(t, cfg)
	poll.Until(t, 30*time.Second, 50*time.Millisecond, func() error {
		if got := centreOrigins(t, r); !slices.Equal(got, others) {
			return fmt.Errorf("after the skip the centre holds copies of %v; want %v", got, others)
		}
		return nil
	})
}

// centreOrigins is the edge fragment each of the centre's fragments of s
// is a copy of, in the centre's order.
func centreOrigins(t *testing.T, r *rig) []string {
	t.Helper()
	stored, err := replicatetest.ReadAll(context.Background(), r.centre, "s")
	if err != nil {
		t.Fatal(err)
	}
	var origins []string
	for _, f := range stored {
		origins = append(origins, f.Origin)
	}
	return origins
}
