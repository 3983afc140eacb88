package throttle

import (
	"context"
	"fmt"
	"io"
	"time"

	"golang.org/x/time/rate"
)

// Byte limits slow, they never refuse: a read or a write takes at most a
// burst of bytes and then waits for their tokens. Paying after the read
// lets the first burst through at full speed and keeps every later byte to
// the rate, so N bytes take at least (N - burst) / rate.

// Reader returns r read through limit lim's bucket of key (PutMediaBytes:
// the stream's, so that a producer that reconnects does not start with a
// fresh burst) at the rate the stream's tags give. Call done when the body
// is finished with, so that the bucket can be dropped when idle.
//
// When ctx ends (the request's: the client went away) the reader stops
// waiting and reads on at full speed instead of failing: what the client
// sent before it left is still in the server's buffers, and a PutMedia
// publishes every cluster it reads in full (ffmpeg closes its connection
// without reading the acknowledgements, cancelling ctx while its last
// clusters are still being read).
func (l *Limiter) Reader(ctx context.Context, lim Limit, key string, tags map[string]string, r io.Reader) (rd io.Reader, done func()) {
	rt := l.RateFor(lim, tags)
	t := l.tables[lim]
	b := t.get(key, rt, burst(lim, rt), time.Now())
	return &reader{l: l, lim: lim, b: b.lim, burst: b.burst, rate: rt, key: key, ctx: ctx, r: r}, func() { t.put(b) }
}

// Writer returns w written through a bucket of its own (GetMediaBytes is
// per connection, as the service counts it) at the rate the stream's tags
// give.
func (l *Limiter) Writer(ctx context.Context, lim Limit, key string, tags map[string]string, w io.Writer) io.Writer {
	rt := l.RateFor(lim, tags)
	bu := burst(lim, rt)
	return &writer{l: l, lim: lim, b: rate.NewLimiter(rate.Limit(rt), bu), burst: bu, rate: rt, key: key, ctx: ctx, w: w}
}

type reader struct {
	l     *Limiter
	lim   Limit
	b     *rate.Limiter
	burst int
	rate  float64
	key   string
	ctx   context.Context
	r     io.Reader
	off   bool // ctx ended: no more waits
}

func (r *reader) Read(p []byte) (int, error) {
	if r.off {
		return r.r.Read(p)
	}
	if len(p) > r.burst {
		p = p[:r.burst]
	}
	n, err := r.r.Read(p)
	if n > 0 && r.l.wait(r.ctx, r.lim, r.key, r.rate, r.b, n) != nil {
		r.off = true
	}
	return n, err
}

type writer struct {
	l     *Limiter
	lim   Limit
	b     *rate.Limiter
	burst int
	rate  float64
	key   string
	ctx   context.Context
	w     io.Writer
}

func (w *writer) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		c := p[:min(len(p), w.burst)]
		if err := w.l.wait(w.ctx, w.lim, w.key, w.rate, w.b, len(c)); err != nil {
			return written, err
		}
		n, err := w.w.Write(c)
		written += n
		if err != nil {
			return written, err
		}
		p = p[len(c):]
	}
	return written, nil
}

// wait takes n tokens, waiting for them when the bucket is short, and
// counts a wait as one slowed transfer.
func (l *Limiter) wait(ctx context.Context, lim Limit, key string, rt float64, b *rate.Limiter, n int) error {
	now := time.Now()
	res := b.ReserveN(now, n)
	if !res.OK() { // n > burst: Read and Write cut their chunks to the burst, so this is a bug
		return fmt.Errorf("throttle: %s: %d bytes exceed the burst %d", lim, n, b.Burst())
	}
	d := res.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	l.hit(lim, key, rt, d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		res.Cancel()
		return fmt.Errorf("throttle: %s: waiting for the rate limit: %w", lim, ctx.Err())
	}
}
