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
