package replicate

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/testkit/poll"
)

// A clock the test moves.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) Now() time.Time       { return time.Unix(0, c.ns.Load()) }
func (c *testClock) Set(t time.Time)      { c.ns.Store(t.UnixNano()) }
func newTestClock(t time.Time) *testClock { c := &testClock{}; c.Set(t); return c }

// Outside the schedule nothing is sent and the backlog shows; when the
// window opens the backlog goes, and when it closes sending stops again.
func TestScheduleHoldsTheCopy(t *testing.T) {
	r := newRig(t, ViaNATS)
	r.createEdge(t, "s", 1)
	origin := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	p := newProducer(t, r.edgeSrv.NATSURL(), "s", origin, 1<<10)
	p.put(5)
	// The test's days are tomorrow's and the day after's, so that every
	// time the clock shows is after the fragments' server times (now): the
	// lag, by that clock, is then positive whatever the hour the test runs
	// at (from today's midday it was 0 when CI ran after 12:00 UTC).
	today := time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	clock := newTestClock(today.Add(12 * time.Hour)) // midday: closed
	cfg := r.config(t, "s")
	cfg.Schedule, _ = ParseSchedule("22:00-06:00", time.UTC)
	cfg.Now = clock.Now
	rep, _ := start(t, cfg)
	want := func(state string, backlog int64, sent uint64) func() error {
		return func() error {
			st := rep.Status()
			if len(st.Streams) != 1 {
				return fmt.Errorf("status lists %d streams", len(st.Streams))
			}
			s := st.Streams[0]
			if s.State != state || s.BacklogFragments != backlog || s.SentFragments != sent {
				return fmt.Errorf("status %+v; want state %s, backlog %d, sent %d", s, state, backlog, sent)
			}
			return nil
		}
	}
	poll.Until(t, 20*time.Second, 20*time.Millisecond, want("paused", 5, 0))
	if st := rep.Status(); st.ScheduleOpen || st.Streams[0].LagSeconds <= 0 {
		t.Errorf("paused with a backlog: schedule open %v, lag %v s", st.ScheduleOpen, st.Streams[0].LagSeconds)
	}
	p.put(3) // the backlog grows while closed
	poll.Until(t, 20*time.Second, 20*time.Millisecond, want("paused", 8, 0))
	// The same figures on /metrics.
	srv := httptest.NewServer(rep.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{
		`sensorium_replicate_backlog_fragments{stream="s"} 8`,
		`sensorium_replicate_schedule_open 0`,
		`sensorium_replicate_stream_up{state="paused",stream="s"} 0`,
		`sensorium_replicate_sent_fragments_total{stream="s"} 0`,
	} {
		if !strings.Contains(string(body), line+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", line, body)
		}
	}
	if !strings.Contains(string(body), `sensorium_replicate_lag_seconds{stream="s"} `) || strings.Contains(string(body), `sensorium_replicate_lag_seconds{stream="s"} 0`+"\n") {
		t.Errorf("/metrics: no lag while paused with a backlog:\n%s", body)
	}

	clock.Set(today.Add(22*time.Hour + 30*time.Minute)) // the night window opens
	poll.Until(t, 20*time.Second, 20*time.Millisecond, want("live", 0, 8))
	checkExactlyOnce(t, r.edge, r.centre, "s", "s")

	clock.Set(today.Add(30*time.Hour + time.Minute)) // 06:01 the next day: closed again
	p.put(2)
	poll.Until(t, 20*time.Second, 20*time.Millisecond, want("paused", 2, 8))
	if st := rep.Status(); st.Streams[0].LagSeconds != 0 && st.Streams[0].BacklogFragments == 0 {
		t.Errorf("lag without a backlog")
	}
}

// --max-rate holds the bytes per second sent to the centre: measured, with
// the same copy without a cap beside it.
func TestMaxRateIsHeld(t *testing.T) {
	if testing.Short() {
		t.Skip("measures a few seconds of copying")
	}
	const (
		frags = 40
		size  = 64 << 10
		cap   = 1 << 20 // bytes per second
	)
	r := newRig(t, ViaNATS)
	r.createEdge(t, "capped", 1)
	r.createEdge(t, "free", 1)
	origin := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	newProducer(t, r.edgeSrv.NATSURL(), "capped", origin, size).put(frags)
	newProducer(t, r.edgeSrv.NATSURL(), "free", origin, size).put(frags)
	copyOne := func(stream string, rate int64) (time.Duration, uint64) {
		cfg := r.config(t, stream)
		cfg.StateDir = t.TempDir()
		cfg.MaxRate = rate
		began := time.Now()
		rep, stop := start(t, cfg)
		r.waitCopied(t, stream, stream, 60*time.Second)
		took := time.Since(began)
		sent := rep.Status().Streams[0].SentBytes
		stop()
		return took, sent
	}
	freeTook, freeBytes := copyOne("free", 0)
	cappedTook, cappedBytes := copyOne("capped", cap)
	checkExactlyOnce(t, r.edge, r.centre, "capped", "capped")
	rate := float64(cappedBytes) / cappedTook.Seconds()
	t.Logf("capped at %d B/s: %d bytes in %v = %.0f B/s (%.2f× the cap); without a cap: %d bytes in %v = %.0f B/s",
		cap, cappedBytes, cappedTook.Round(time.Millisecond), rate, rate/cap, freeBytes, freeTook.Round(time.Millisecond), float64(freeBytes)/freeTook.Seconds())
	// The bucket lets a twentieth of a second through at once; beyond it
	// the cap holds.
	if rate > 1.1*cap {
		t.Errorf("sent %.0f B/s with a cap of %d", rate, cap)
	}
	if min := time.Duration(float64(cappedBytes-cap/20) / cap * float64(time.Second)); cappedTook < min {
		t.Errorf("the capped copy took %v; at the cap it takes at least %v", cappedTook, min)
	}
}
