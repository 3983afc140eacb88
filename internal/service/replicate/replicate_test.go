package replicate

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/service/replicate/replicatetest"
	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/internal/testkit/faultproxy"
	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/sdk"
)

// rig is an edge and a central server on loopback, with a fault proxy in
// front of the centre's NATS, or (via ViaHTTP) of its HTTP API, which the
// replicator then writes with PutMedia.
type rig struct {
	edgeSrv, centreSrv interface {
		HTTPURL() string
		NATSURL() string
	}
	edge, centre *sdk.Client
	via          string
	viaCentre    *sdk.Client // the centre through the proxy (ViaHTTP)
	proxy        *faultproxy.Proxy
	state        string
}

// newRig starts the rig with the replicator's way to the centre (ViaNATS,
// ViaHTTP); centre changes the centre's configuration.
func newRig(t *testing.T, via string, centre ...func(*server.Config)) *rig {
	t.Helper()
	e := startServer(t, t.TempDir())
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	c := startServer(t, t.TempDir(), centre...)
	t.Cleanup(func() { _ = c.Shutdown(context.Background()) })
	target := strings.TrimPrefix(c.NATSURL(), "nats://")
	if via == ViaHTTP {
		target = strings.TrimPrefix(c.HTTPURL(), "http://")
	}
	p, err := faultproxy.Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	r := &rig{edgeSrv: e, centreSrv: c, edge: sdk.NewClient(e.HTTPURL(), nil), centre: sdk.NewClient(c.HTTPURL(), nil),
		via: via, proxy: p, state: t.TempDir()}
	r.viaCentre = r.centre
	if via == ViaHTTP {
		r.viaCentre = sdk.NewClient("http://"+p.Addr(), nil)
	}
	return r
}

func (r *rig) createEdge(t *testing.T, name string, hours int) {
	t.Helper()
	if _, err := r.edge.CreateStream(context.Background(), sdk.CreateStreamInput{StreamName: name, DataRetentionInHours: hours, MediaType: "application/x-test"}); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) config(t *testing.T, patterns ...string) Config {
	cfg := Config{Edge: r.edge, Centre: r.viaCentre, Via: r.via, Streams: patterns,
		RetentionHours: -1, StateDir: r.state, Poll: 50 * time.Millisecond, Discover: 200 * time.Millisecond,
		AckTimeout: 2 * time.Second, Logger: testLogger(t)}
	if r.via != ViaHTTP {
		cfg.CentreNATS = "nats://" + r.proxy.Addr()
	}
	return cfg
}

// start runs a replicator until the returned stop is called.
func start(t *testing.T, cfg Config) (*Replicator, func()) {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var stopped bool
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("replicator: %v", err)
		}
	}
	t.Cleanup(stop)
	return r, stop
}

// waitLive waits until the replicator's one stream is caught up: nothing
// pending, so its journal on disk has every confirmation.
func waitLive(t *testing.T, rep *Replicator) {
	t.Helper()
	poll.Until(t, 30*time.Second, 20*time.Millisecond, func() error {
		if st := rep.Status().Streams; len(st) != 1 || st[0].State != "live" || st[0].BacklogFragments != 0 {
			return fmt.Errorf("status %+v; want live with nothing pending", st)
		}
		return nil
	})
}

// waitCopied waits until the centre holds as many fragments of centre as
// the edge of edge.
func (r *rig) waitCopied(t *testing.T, edge, centre string, timeout time.Duration) {
	t.Helper()
	poll.Until(t, timeout, 50*time.Millisecond, func() error {
		e, err := listAfter(context.Background(), r.edge, edge, nil, 1000)
		if err != nil {
			return err
		}
		c, err := listAfter(context.Background(), r.centre, centre, nil, 1000)
		if err != nil {
			return err
		}
		if c.count < e.count {
			return fmt.Errorf("the centre holds %d of the edge's %d fragments of %s", c.count, e.count, edge)
		}
		return nil
	})
}

// The link to the centre is cut (cleanly, by reset, and in the middle of a
// fragment) and the replicator stopped and started again while producers
// keep writing: every edge fragment is at the centre once, in order, with
// its producer timestamp, tags and bytes; a stream that matches no pattern
// is not copied. Over the centre's NATS, and over its HTTP API only.
func TestReplicateThroughCutsAndRestarts(t *testing.T) {
	for _, via := range []string{ViaNATS, ViaHTTP} {
		t.Run(via, func(t *testing.T) { replicateThroughCuts(t, via) })
	}
}

func replicateThroughCuts(t *testing.T, via string) {
	r := newRig(t, via)
	r.createEdge(t, "pump-1", 24)
	r.createEdge(t, "pump-2", 2)
	r.createEdge(t, "other", 24)
	origin := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	p1 := newProducer(t, r.edgeSrv.NATSURL(), "pump-1", origin, 16<<10)
	p2 := newProducer(t, r.edgeSrv.NATSURL(), "pump-2", origin, 4<<10)
	other := newProducer(t, r.edgeSrv.NATSURL(), "other", origin, 1<<10)
	p1.put(30) // a backlog before the replicator starts
	other.put(3)

	cfg := r.config(t, "pump-*")
	_, stop := start(t, cfg)
	faults := []func(){
		func() { r.proxy.Cut() },
		func() { r.proxy.Reset() },
		func() { r.proxy.CutAfter(20 << 10) }, // inside a fragment on its way
		func() { r.proxy.Stall(1500 * time.Millisecond) },
	}
	for round := 0; round < 8; round++ {
		p1.put(10)
		p2.put(5)
		faults[round%len(faults)]()
		if round == 3 {
			stop() // the replicator goes away and comes back with its journal
			_, stop = start(t, cfg)
		}
	}
	r.waitCopied(t, "pump-1", "pump-1", 60*time.Second)
	r.waitCopied(t, "pump-2", "pump-2", 60*time.Second)
	n1 := checkExactlyOnce(t, r.edge, r.centre, "pump-1", "pump-1")
	n2 := checkExactlyOnce(t, r.edge, r.centre, "pump-2", "pump-2")
	if n1 != 110 || n2 != 40 {
		t.Errorf("the edge holds %d and %d fragments; the test wrote 110 and 40", n1, n2)
	}
	if _, err := r.centre.DescribeStream(context.Background(), sdk.ByName("other")); err == nil {
		t.Errorf("the stream other, which matches no pattern, was created at the centre")
	}
	info, err := r.centre.DescribeStream(context.Background(), sdk.ByName("pump-2"))
	if err != nil {
		t.Fatal(err)
	}
	if info.DataRetentionInHours != 2 || info.MediaType != "application/x-test" {
		t.Errorf("pump-2 at the centre: retention %d h, media type %q; want the edge's 2 h, application/x-test", info.DataRetentionInHours, info.MediaType)
	}
}

// The checker itself: a fragment stored twice at the centre (as a PutMedia
// re-send after a lost acknowledgement would store it, under a new
// producer id) is caught, and so is one the centre lacks.
func TestCompareCatchesDuplicatesAndGaps(t *testing.T) {
	r := newRig(t, ViaNATS)
	r.createEdge(t, "s", 1)
	origin := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	newProducer(t, r.edgeSrv.NATSURL(), "s", origin, 1<<10).put(5)
	_, stop := start(t, r.config(t, "s"))
	r.waitCopied(t, "s", "s", 30*time.Second)
	stop()
	checkExactlyOnce(t, r.edge, r.centre, "s", "s")

	// The edge's newest fragment again, as GetMedia output, under another
	// producer: the centre stores it a second time (its producer time is
	// the newest's, so the store's order check lets it by).
	list, err := replicatetest.List(context.Background(), r.edge, "s")
	if err != nil {
		t.Fatal(err)
	}
	body, err := r.edge.GetMediaForFragmentList(context.Background(), sdk.ByName("s"), []string{list[len(list)-1].FragmentNumber})
	if err != nil {
		t.Fatal(err)
	}
	chunk, _ := io.ReadAll(body)
	body.Close()
	again := newProducer(t, r.centreSrv.NATSURL(), "s", origin, 1<<10)
	if err := again.PutRaw(chunk, "someone-else", 1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := replicatetest.Compare(context.Background(), r.edge, r.centre, "s", "s"); err == nil || !strings.Contains(err.Error(), "at the centre 2 times") {
		t.Fatalf("a fragment stored twice: Compare says %v", err)
	}
	// A fragment the centre lacks: one more at the edge, no replicator.
	more := newProducer(t, r.edgeSrv.NATSURL(), "s", origin, 1<<10)
	if err := more.PutRaw(replicatetest.Fragment(origin, 100, 1<<10), "another-producer", 1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := replicatetest.Compare(context.Background(), r.edge, r.centre, "s", "s"); err == nil || !strings.Contains(err.Error(), "is not at the centre") {
		t.Fatalf("a fragment missing at the centre: Compare says %v", err)
	}
}

// The centre's stream is deleted and created again while the copy runs:
// the centre no longer knows the fragment the next one names as its
// predecessor, answers RETRY, and the replicator sends without naming it
// rather than wait forever; new fragments keep arriving.
func TestCentreStreamCreatedAgain(t *testing.T) {
	r := newRig(t, ViaNATS)
	r.createEdge(t, "s", 1)
	origin := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	p := newProducer(t, r.edgeSrv.NATSURL(), "s", origin, 1<<10)
	p.put(5)
	rep, _ := start(t, r.config(t, "s"))
	r.waitCopied(t, "s", "s", 30*time.Second)
	ctx := context.Background()
	info, err := r.centre.DescribeStream(ctx, sdk.ByName("s"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.centre.DeleteStream(ctx, sdk.StreamRef{StreamARN: info.StreamARN}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.centre.CreateStream(ctx, sdk.CreateStreamInput{StreamName: "s", DataRetentionInHours: 1}); err != nil {
		t.Fatal(err)
	}
	p.put(4)
	poll.Until(t, 60*time.Second, 50*time.Millisecond, func() error {
		l, err := replicatetest.List(ctx, r.centre, "s")
		if err != nil || len(l) != 4 {
			return fmt.Errorf("the new centre stream holds %d fragments (%v); want the 4 written since; status %+v", len(l), err, rep.Status())
		}
		return nil
	})
}

// After a crash the journal's unconfirmed fragments are sent again under
// their keys, and the centre answers those it holds as duplicates: here a
// journal whose ten fragments are all at the centre but none confirmed (and
// whose newest the look at the centre cannot match, so that only the keys
// can tell) is resumed. Sent under other keys they would be refused (older
// than the centre's newest) or stored twice. Over NATS and over HTTP.
func TestUnconfirmedResendIsDeduplicated(t *testing.T) {
	for _, via := range []string{ViaNATS, ViaHTTP} {
		t.Run(via, func(t *testing.T) { unconfirmedResend(t, via) })
	}
}

func unconfirmedResend(t *testing.T, via string) {
	r := newRig(t, via)
	r.createEdge(t, "s", 1)
	origin := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	newProducer(t, r.edgeSrv.NATSURL(), "s", origin, 2<<10).put(10)
	cfg := r.config(t, "s")
	rep, stop := start(t, cfg)
	r.waitCopied(t, "s", "s", 30*time.Second)
	waitLive(t, rep)
	stop()
	j, err := loadJournal(cfg.StateDir, "s")
	if err != nil || j == nil || j.Confirmed == nil || len(j.Pending) != 0 {
		t.Fatalf("journal after the copy: %+v, %v", j, err)
	}
	// Every fragment back to pending, as if the replicator had died before
	// any PERSISTED reached it; the newest's producer time off by 1 ns so
	// that reconcile cannot take the centre's newest as the journal's.
	var all []fragRef
	for s := uint64(1); s < j.NextSeq; s++ {
		all = append(all, fragRef{Seq: s})
	}
	list, err := replicatetest.List(context.Background(), r.edge, "s")
	if err != nil || len(list) != len(all) {
		t.Fatalf("%d edge fragments for %d sequences: %v", len(list), len(all), err)
	}
	for i, f := range list {
		all[i].Number, all[i].ServerTime, all[i].ProducerTime, all[i].Size = f.FragmentNumber, f.ServerTimestamp.UnixNano(), f.ProducerTimestamp.UnixNano(), f.FragmentSizeInBytes
	}
	all[len(all)-1].ProducerTime++
	j.Pending, j.Confirmed = all, nil
	if err := j.save(cfg.StateDir); err != nil {
		t.Fatal(err)
	}
	rep, _ = start(t, cfg)
	poll.Until(t, 30*time.Second, 20*time.Millisecond, func() error {
		st := rep.Status()
		if len(st.Streams) != 1 || st.Streams[0].State != "live" || st.Streams[0].ResentFragments != 10 {
			return fmt.Errorf("status %+v; want live after 10 re-sends", st.Streams)
		}
		return nil
	})
	checkExactlyOnce(t, r.edge, r.centre, "s", "s")
}

// A fragment the edge no longer has when it is to be sent (expired in an
// outage longer than the edge's retention) is dropped from the journal and
// counted, and the copy goes on: here the journal names a fragment number
// the edge never had.
func TestExpiredFragmentIsCountedAndSkipped(t *testing.T) {
	r := newRig(t, ViaNATS)
	r.createEdge(t, "s", 1)
	origin := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	p := newProducer(t, r.edgeSrv.NATSURL(), "s", origin, 1<<10)
	p.put(3)
	cfg := r.config(t, "s")
	rep, stop := start(t, cfg)
	r.waitCopied(t, "s", "s", 30*time.Second)
	waitLive(t, rep)
	stop()
	j, err := loadJournal(cfg.StateDir, "s")
	if err != nil || j == nil {
		t.Fatal(j, err)
	}
	j.Pending = append(j.Pending, fragRef{Seq: j.NextSeq, Number: "999999", ServerTime: j.Cursor.ServerTime, ProducerTime: j.Cursor.ProducerTime + 1})
	j.NextSeq++
	if err := j.save(cfg.StateDir); err != nil {
		t.Fatal(err)
	}
	p.put(2)
	rep, _ = start(t, cfg)
	r.waitCopied(t, "s", "s", 30*time.Second)
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		if st := rep.Status().Streams; len(st) != 1 || st[0].ExpiredFragments != 1 || st[0].State != "live" {
			return fmt.Errorf("status %+v; want live, 1 expired", st)
		}
		return nil
	})
	checkExactlyOnce(t, r.edge, r.centre, "s", "s")
	if j, _ := loadJournal(cfg.StateDir, "s"); j.Expired != 1 || len(j.Pending) != 0 {
		t.Errorf("journal after: expired %d, pending %v", j.Expired, j.Pending)
	}
}

// A journal moves between the ways to the centre: begun over NATS, with
// its last five fragments unconfirmed when the replicator stops (as if it
// died before their PERSISTED reached it), resumed over HTTP, whose
// sessions give the centre another key, then over NATS again under the
// HTTP key. Every edge fragment is at the centre once.
func TestJournalMovesBetweenNATSAndHTTP(t *testing.T) {
	r := newRig(t, ViaNATS)
	r.createEdge(t, "s", 1)
	origin := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	p := newProducer(t, r.edgeSrv.NATSURL(), "s", origin, 4<<10)
	natsCfg := r.config(t, "s")
	httpCfg := natsCfg
	httpCfg.Via, httpCfg.CentreNATS = ViaHTTP, ""
	journal := func() *journal {
		t.Helper()
		j, err := loadJournal(natsCfg.StateDir, "s")
		if err != nil || j == nil {
			t.Fatalf("journal: %+v, %v", j, err)
		}
		return j
	}

	p.put(20)
	rep, stop := start(t, natsCfg)
	r.waitCopied(t, "s", "s", 30*time.Second)
	waitLive(t, rep)
	stop()
	j := journal()
	if j.Via != ViaNATS || len(j.Pending) != 0 || j.Confirmed == nil || j.Confirmed.Seq != 20 {
		t.Fatalf("after the NATS run: journal via %q, %d pending, confirmed %+v; want nats, none, up to 20", j.Via, len(j.Pending), j.Confirmed)
	}
	list, err := replicatetest.List(context.Background(), r.edge, "s")
	if err != nil || len(list) != 20 {
		t.Fatalf("%d edge fragments: %v", len(list), err)
	}
	unconfirm(j, list, 15)
	if err := j.save(natsCfg.StateDir); err != nil {
		t.Fatal(err)
	}

	rep, stop = start(t, httpCfg)
	p.put(5)
	r.waitCopied(t, "s", "s", 30*time.Second)
	waitLive(t, rep)
	stop()
	if j := journal(); j.Via != ViaHTTP || len(j.Pending) != 0 || j.Confirmed.Seq != 25 {
		t.Fatalf("after the HTTP run: journal via %q, %d pending, confirmed %+v; want http, none, up to 25", j.Via, len(j.Pending), j.Confirmed)
	}
	checkExactlyOnce(t, r.edge, r.centre, "s", "s")
	// The five sent over HTTP back to pending, the newest's producer time
	// off by 1 ns so that the look at the centre cannot confirm them: only
	// the key can tell the NATS run that the centre holds them.
	j = journal()
	if list, err = replicatetest.List(context.Background(), r.edge, "s"); err != nil || len(list) != 25 {
		t.Fatalf("%d edge fragments: %v", len(list), err)
	}
	unconfirm(j, list, 20)
	j.Pending[len(j.Pending)-1].ProducerTime++
	if err := j.save(natsCfg.StateDir); err != nil {
		t.Fatal(err)
	}

	rep, _ = start(t, natsCfg)
	poll.Until(t, 30*time.Second, 20*time.Millisecond, func() error {
		if st := rep.Status().Streams; len(st) != 1 || st[0].State != "live" || st[0].ResentFragments != 5 {
			return fmt.Errorf("status %+v; want live after 5 re-sends", st)
		}
		return nil
	})
	p.put(5)
	r.waitCopied(t, "s", "s", 30*time.Second)
	waitLive(t, rep)
	if n := checkExactlyOnce(t, r.edge, r.centre, "s", "s"); n != 30 {
		t.Errorf("the edge holds %d fragments; the test wrote 30", n)
	}
	if j := journal(); j.Via != ViaHTTP || j.Confirmed.Seq != 30 {
		t.Errorf("after the second NATS run: journal via %q, confirmed %+v; want still http (its key), up to 30", j.Via, j.Confirmed)
	}
}

// unconfirm makes the journal's fragments after the first confirmed ones
// pending again, as if the replicator had died before their PERSISTED
// reached it; list is the edge's fragments, the journal's sequences from 1.
func unconfirm(j *journal, list []sdk.Fragment, confirmed int) {
	ref := func(k int) fragRef {
		f := list[k]
		return fragRef{Seq: uint64(k + 1), Number: f.FragmentNumber, ServerTime: f.ServerTimestamp.UnixNano(),
			ProducerTime: f.ProducerTimestamp.UnixNano(), Size: f.FragmentSizeInBytes}
	}
	j.Pending = nil
	for k := confirmed; k < len(list); k++ {
		j.Pending = append(j.Pending, ref(k))
	}
	c := ref(confirmed - 1)
	j.Confirmed = &c
}
