package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// echoServer echoes lines back.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, msg string) (string, error) {
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return line, err
}

func TestProxyFaults(t *testing.T) {
	p, err := Start(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := roundTrip(c, "hello"); err != nil || got != "hello\n" {
		t.Fatalf("through the proxy: %q, %v", got, err)
	}

	// Stall: nothing moves for the stall, then everything does.
	p.Stall(300 * time.Millisecond)
	start := time.Now()
	if got, err := roundTrip(c, "late"); err != nil || got != "late\n" || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("stall: %q after %s, %v", got, time.Since(start), err)
	}

	// Slow: 2 KiB at 8 KiB/s takes a while.
	p.SetRate(8 << 10)
	start = time.Now()
	big := make([]byte, 2<<10)
	for i := range big {
		big[i] = 'x'
	}
	if got, err := roundTrip(c, string(big)); err != nil || len(got) != len(big)+1 || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("slow: %d bytes after %s, %v", len(got), time.Since(start), err)
	}
	p.SetRate(0)

	// Reset: the client sees a reset connection.
	if n := p.Reset(); n != 1 {
		t.Fatalf("reset %d connections", n)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) {
		t.Fatalf("after a reset, read: %v", err)
	}

	// Cut: a new connection works, and is closed by Cut.
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(c2, "again"); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	_ = c2.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil {
		t.Fatal("a cut connection still reads")
	}
	if p.Accepted() != 2 {
		t.Errorf("accepted %d connections, want 2", p.Accepted())
	}
}

// CutAfter lets exactly n more client bytes through, then cuts the
// connection in the middle of whatever was being sent.
func TestCutAfter(t *testing.T) {
	got := make(chan int, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- int(n)
	}()
	p, err := Start(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the 100 bytes pass before the cut is armed
	p.CutAfter(1000)
	for i := 0; i < 100; i++ { // 7,000 bytes in 70-byte writes: the cut falls inside one
		if _, err := c.Write(make([]byte, 70)); err != nil {
			break
		}
	}
	select {
	case n := <-got:
		if n != 1100 {
			t.Fatalf("the server got %d bytes, want 100 + 1000", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the connection was not cut")
	}
}
