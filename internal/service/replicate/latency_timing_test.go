package replicate

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/service/replicate/replicatetest"
	"github.com/sensorium-io/sensorium/sdk"
)

// delayProxy forwards TCP connections to target with every byte delayed by
// oneWay in each direction: a long link (it does not limit bandwidth).
type delayProxy struct {
	ln     net.Listener
	target string
	oneWay time.Duration
	wg     sync.WaitGroup
}

func startDelayProxy(tb testing.TB, target string, oneWay time.Duration) *delayProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &delayProxy{ln: ln, target: target, oneWay: oneWay}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.wg.Add(2)
			go func() { defer p.wg.Done(); p.pipe(s, c) }()
			go func() { defer p.wg.Done(); p.pipe(c, s) }()
		}
	}()
	tb.Cleanup(func() { ln.Close() })
	return p
}

func (p *delayProxy) addr() string { return p.ln.Addr().String() }

// pipe copies src to dst, each chunk leaving oneWay after it arrived.
func (p *delayProxy) pipe(dst, src net.Conn) {
	type chunk struct {
		at   time.Time
		data []byte
	}
	ch := make(chan chunk, 4096)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 64<<10)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{time.Now().Add(p.oneWay), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	for range ch { // let the reader end
	}
}

// BenchmarkCatchUpOverLatency copies a backlog to a centre 50 ms away
// (round trip) with one fragment on its way at a time and with the default
// window, in the same run.
//
//	go test ./internal/service/replicate -run '^$' -bench CatchUpOverLatency -benchtime 1x
func BenchmarkCatchUpOverLatency(b *testing.B) {
	const (
		frags = 60
		size  = 64 << 10
	)
	e := startServer(b, b.TempDir())
	defer e.Shutdown(context.Background())
	c := startServer(b, b.TempDir())
	defer c.Shutdown(context.Background())
	edge, centre := sdk.NewClient(e.HTTPURL(), nil), sdk.NewClient(c.HTTPURL(), nil)
	ctx := context.Background()
	if _, err := edge.CreateStream(ctx, sdk.CreateStreamInput{StreamName: "pump", DataRetentionInHours: 1}); err != nil {
		b.Fatal(err)
	}
	p, err := replicatetest.NewProducer(e.NATSURL(), "pump", time.Now().Add(-time.Hour).Truncate(time.Millisecond), size)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	if err := p.Put(frags, time.Minute); err != nil {
		b.Fatal(err)
	}
	proxy := startDelayProxy(b, c.NATSURL()[len("nats://"):], 25*time.Millisecond)
	run := func(prefix string, inFlight int) time.Duration {
		began := time.Now()
		r, err := New(Config{Edge: edge, Centre: centre, CentreNATS: "nats://" + proxy.addr(), Streams: []string{"pump"}, CentreNamePrefix: prefix,
			RetentionHours: 1, StateDir: b.TempDir(), Poll: 5 * time.Millisecond, Discover: time.Hour, InFlight: inFlight, Logger: testLogger(b)})
		if err != nil {
			b.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(rctx) }()
		for {
			l, err := replicatetest.List(ctx, centre, prefix+"pump")
			if err == nil && len(l) >= frags {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		<-done
		return time.Since(began)
	}
	var one, window time.Duration
	for i := 0; i < b.N; i++ {
		one += run("one"+string(rune('a'+i%26))+"-", 1)
		window += run("win"+string(rune('a'+i%26))+"-", DefaultInFlight)
	}
	mb := float64(frags*size) * float64(b.N) / 1e6
	b.ReportMetric(mb/window.Seconds(), "MB/s")
	b.ReportMetric(mb/one.Seconds(), "one-at-a-time-MB/s")
	b.ReportMetric(one.Seconds()/window.Seconds(), "×one-at-a-time")
	b.Logf("50 ms round trip, %d fragments of %d KiB: %d in flight %.2f MB/s, one at a time %.2f MB/s (%.1f×)",
		frags, size>>10, DefaultInFlight, mb/window.Seconds(), mb/one.Seconds(), one.Seconds()/window.Seconds())
}
