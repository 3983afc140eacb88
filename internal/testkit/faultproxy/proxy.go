// Package faultproxy is a TCP proxy on loopback that injects the faults a
// producer meets on real networks — connections cut or reset, a peer that
// stalls, a slow link — between a client and a server, so that tests can
// prove recovery without mocking either side.
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards every connection it accepts to a target address.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns map[*pair]struct{}
	wg    sync.WaitGroup

	stallUntil atomic.Int64 // unix ns: no byte moves before it
	cutAfter   atomic.Int64 // client→server bytes still let through before every connection is cut; < 0: off
	rate       atomic.Int64 // bytes per second per direction; 0: unlimited
	accepted   atomic.Int64
	closed     atomic.Bool
}

type pair struct{ client, server *net.TCPConn }

// Start listens on a free loopback port and forwards to target.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[*pair]struct{}{}}
	p.cutAfter.Store(-1)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's address (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Accepted is how many connections the proxy has taken.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		pr := &pair{client: c.(*net.TCPConn), server: s.(*net.TCPConn)}
		p.mu.Lock()
		p.conns[pr] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(pr, pr.server, pr.client, true)
		go p.pipe(pr, pr.client, pr.server, false)
	}
}

// pipe copies src to dst, honouring stalls, the rate and an armed cut,
// until either side ends; then it closes both. up is the client→server
// direction.
func (p *Proxy) pipe(pr *pair, dst, src *net.TCPConn, up bool) {
	defer p.wg.Done()
	defer p.drop(pr)
	buf := make([]byte, 16<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.wait(n)
			if up {
				if left, cut := p.takeCut(n); cut {
					_, _ = dst.Write(buf[:left])
					p.Cut()
					return
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// wait holds n bytes back while the proxy is stalled, and for as long as the
// rate limit asks.
func (p *Proxy) wait(n int) {
	for {
		until := p.stallUntil.Load()
		if d := time.Until(time.Unix(0, until)); until > 0 && d > 0 && !p.closed.Load() {
			time.Sleep(min(d, 10*time.Millisecond))
			continue
		}
		break
	}
	if r := p.rate.Load(); r > 0 {
		time.Sleep(time.Duration(int64(n) * int64(time.Second) / r))
	}
}

func (p *Proxy) drop(pr *pair) {
	p.mu.Lock()
	delete(p.conns, pr)
	p.mu.Unlock()
	pr.client.Close()
	pr.server.Close()
}

func (p *Proxy) each(f func(*pair)) int {
	p.mu.Lock()
	prs := make([]*pair, 0, len(p.conns))
	for pr := range p.conns {
		prs = append(prs, pr)
	}
	p.mu.Unlock()
	for _, pr := range prs {
		f(pr)
	}
	return len(prs)
}

// Cut closes every open connection cleanly (FIN), as a restarting NAT or a
// proxy timing out would; it returns how many it cut. New connections are
// still accepted.
func (p *Proxy) Cut() int {
	return p.each(func(pr *pair) { pr.client.Close(); pr.server.Close() })
}

// Reset aborts every open connection with a TCP RST.
func (p *Proxy) Reset() int {
	return p.each(func(pr *pair) {
		_ = pr.client.SetLinger(0)
		_ = pr.server.SetLinger(0)
		pr.client.Close()
		pr.server.Close()
	})
}

// CutAfter lets n more bytes pass from clients to the server and then cuts
// every connection, whatever is on the wire: a message (a fragment being
// published) arrives cut in the middle.
func (p *Proxy) CutAfter(n int64) { p.cutAfter.Store(n) }

// takeCut accounts n bytes against an armed cut; when they reach it, it
// disarms it and says how many of them may still pass.
func (p *Proxy) takeCut(n int) (int, bool) {
	for {
		left := p.cutAfter.Load()
		if left < 0 || left >= int64(n) {
			if left >= 0 && !p.cutAfter.CompareAndSwap(left, left-int64(n)) {
				continue
			}
			return n, false
		}
		if p.cutAfter.CompareAndSwap(left, -1) {
			return int(left), true
		}
	}
}

// Stall stops every byte in both directions for d, keeping the connections
// open: a peer that hangs.
func (p *Proxy) Stall(d time.Duration) { p.stallUntil.Store(time.Now().Add(d).UnixNano()) }

// SetRate limits each direction of each connection to bytesPerSecond (0: no
// limit): a slow link.
func (p *Proxy) SetRate(bytesPerSecond int64) { p.rate.Store(bytesPerSecond) }

// Close stops accepting, closes every connection and waits for the pipes.
func (p *Proxy) Close() error {
	p.closed.Store(true)
	err := p.ln.Close()
	p.Cut()
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

var _ io.Closer = (*Proxy)(nil)
