package main

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/internal/testkit/faultproxy"
	"github.com/sensorium-io/sensorium/sdk"
)

// An MKV import over HTTP only (--http, or on its own when the NATS port
// that --endpoint implies does not answer) stores the file frame for frame,
// and a re-run finds it all there; a --nats that does not answer is an
// error that names --http.
func TestImportMKVOverHTTP(t *testing.T) {
	srv := startServer(t)
	ep := srv.HTTPURL()
	c := sdk.NewClient(ep, nil)
	for _, name := range []string{"cam", "auto"} {
		if _, err := c.CreateStream(context.Background(), sdk.CreateStreamInput{StreamName: name, DataRetentionInHours: 1}); err != nil {
			t.Fatal(err)
		}
	}
	const n = 40
	rec := mkvRecording(time.Now().Add(-2*time.Hour).Truncate(time.Millisecond), n, 8<<10, 5)
	file := writeMKV(t, "rec.mkv", rec)
	want := wantFrames(t, rec)

	code, stdout, stderr := runCLIOut(t, "import", file, "--stream", "cam", "--endpoint", ep, "--http")
	if code != 0 || !strings.Contains(stdout, fmt.Sprintf("%d fragments", n)) {
		t.Fatalf("--http: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if got := framesOf(t, c, "cam"); fragmentCount(c, "cam") != n || !slices.Equal(got, want) {
		t.Fatalf("--http: the stream holds %d fragments (want %d); frames equal: %v", fragmentCount(c, "cam"), n, slices.Equal(got, want))
	}
	code, stdout, stderr = runCLIOut(t, "import", file, "--stream", "cam", "--endpoint", ep, "--http")
	if code != 0 || !strings.Contains(stdout, fmt.Sprintf("already holds all %d fragments of this file", n)) {
		t.Fatalf("--http again: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// A --nats given that does not answer is the user's mistake to hear of.
	closed := closedAddr(t)
	code, stdout, stderr = runCLIOut(t, "import", file, "--stream", "auto", "--endpoint", ep, "--nats", "nats://"+closed)
	if code == 0 || !strings.Contains(stderr, "--http") {
		t.Fatalf("an unanswering --nats: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// Without --nats the port is derived from --endpoint's host (4222):
	// when nothing answers there, the import goes over HTTP on its own.
	if conn, err := net.DialTimeout("tcp", "127.0.0.1:4222", time.Second); err == nil {
		conn.Close()
		t.Logf("something listens on 127.0.0.1:4222: the fallback is not checked here")
		return
	}
	t.Setenv("SENSORIUM_NATS", "")
	code, stdout, stderr = runCLIOut(t, "import", file, "--stream", "auto", "--endpoint", ep)
	if code != 0 || !strings.Contains(stderr, "putting the file with PutMedia over HTTP instead") || !strings.Contains(stdout, fmt.Sprintf("%d fragments", n)) {
		t.Fatalf("the fallback: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if got := framesOf(t, c, "auto"); !slices.Equal(got, want) {
		t.Fatal("the fallback: the stream does not read back the file's frames")
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestImportMKVOverHTTPResumesAfterKill is TestImportMKVResumesAfterKill
// over PutMedia: the import as a subprocess with --http, its HTTP link
// slowed, SIGKILLed twice part-way, then run to the end. The killed runs'
// sessions die with clusters on their way, some published after the kill;
// the re-run's sessions carry the same dedupe key (x-sensorium-producer-id),
// so the store answers those duplicates, and every Cluster is in the stream
// exactly once, in order, frame for frame.
func TestImportMKVOverHTTPResumesAfterKill(t *testing.T) { resumeAfterKills(t, true) }

// Sessions that end part-way through a run — the server's maximum session
// duration cut short to 300 ms, on a link slowed to 512 KiB/s, so that
// every session ends with MAX_CONNECTION_DURATION_REACHED inside its round
// — are followed by others from the first fragment without PERSISTED, and
// the run ends with every Cluster stored once, in order, frame for frame.
func TestImportMKVOverHTTPAcrossSessions(t *testing.T) {
	srv, err := server.Start(context.Background(), server.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		MaxPutMediaDuration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	c := sdk.NewClient(srv.HTTPURL(), nil)
	if _, err := c.CreateStream(context.Background(), sdk.CreateStreamInput{StreamName: "rec", DataRetentionInHours: 1}); err != nil {
		t.Fatal(err)
	}
	proxy, err := faultproxy.Start(strings.TrimPrefix(srv.HTTPURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	proxy.SetRate(512 << 10)
	const n = 60
	rec := mkvRecording(time.Now().Add(-3*time.Hour).Truncate(time.Millisecond), n, 16<<10, 4)
	file := writeMKV(t, "rec.mkv", rec)
	code, stdout, stderr := runCLIOut(t, "import", file, "--stream", "rec", "--endpoint", "http://"+proxy.Addr(), "--http")
	if code != 0 || !strings.Contains(stdout, fmt.Sprintf("%d fragments", n)) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	want := wantFrames(t, rec)
	if got := framesOf(t, c, "rec"); fragmentCount(c, "rec") != n || !slices.Equal(got, want) {
		t.Fatalf("the stream holds %d fragments (want %d) and reads back %d frames (want %d); equal: %v", fragmentCount(c, "rec"), n, len(got), len(want), slices.Equal(got, want))
	}
	t.Logf("%s", strings.TrimSpace(stdout))
}
