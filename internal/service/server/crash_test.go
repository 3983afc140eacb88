package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/store"
)

// child is a server running as a subprocess of the test binary.
type child struct {
	cmd       *exec.Cmd
	http, url string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startChild(t *testing.T, dir, natsAddr, httpAddr string) *child {
	t.Helper()
	c, err := spawnChild(t, 60*time.Second, childEnv+"="+dir, childEnv+"_NATS="+natsAddr, childEnv+"_HTTP="+httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// spawnChild runs this test binary as a child server with env added to its
// environment (runChild reads it) and waits until it says it serves. It
// does not fail the test itself, so that nodes of a cluster can be started
// from several goroutines at once.
func spawnChild(t *testing.T, timeout time.Duration, env ...string) (*child, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = testWriter{t}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY ") {
				ready <- sc.Text()
			}
		}
		close(ready)
	}()
	select {
	case line, ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			return nil, fmt.Errorf("child server exited before it was ready: %v", cmd.ProcessState)
		}
		f := strings.Fields(line)
		return &child{cmd: cmd, http: f[1], url: f[2]}, nil
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("child server not ready within %v", timeout)
	}
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
}

func (c *child) stop(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("clean shutdown: %v", err)
	}
}

// persistedLog records what the producer was told.
type persistedLog struct {
	mu        sync.Mutex
	persisted map[uint64]sdk.AckEvent // producer sequence → PERSISTED event
	errors    []sdk.AckEvent          // ERRORs that ended a fragment
	retriable []sdk.AckEvent          // ERRORs after which the fragment is sent again
}

func (l *persistedLog) onAck(ev sdk.AckEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch ev.EventType {
	case sdk.EventPersisted:
		if _, seen := l.persisted[ev.ProducerSequence]; !seen || !ev.Duplicate {
			l.persisted[ev.ProducerSequence] = ev
		}
	case sdk.EventError:
		if ev.Retriable {
			l.retriable = append(l.retriable, ev)
		} else {
			l.errors = append(l.errors, ev)
		}
	}
}

func (l *persistedLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.persisted)
}

// TestCrashLosesNothingPersisted runs the server as a subprocess, streams into
// it, and SIGKILLs it mid-stream several times. Every fragment the producer
// was told is PERSISTED must then be stored exactly once, in order, readable,
// with its timestamps; nothing half-written may be served.
func TestCrashLosesNothingPersisted(t *testing.T) {
	if testing.Short() {
		t.Skip("crash loop: not in -short")
	}
	dir := t.TempDir()
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	c := startChild(t, dir, natsAddr, httpAddr)
	client := sdk.NewClient(c.http, nil)
	ctx := context.Background()
	if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: "crash", DataRetentionInHours: 24}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(c.url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.ReconnectBufSize(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	log := &persistedLog{persisted: map[uint64]sdk.AckEvent{}}
	track, _ := sdk.ScalarTrack(1, "vibration", pumpDesc)
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{
		Stream: "crash", Tracks: []sdk.Track{track}, OnAck: log.onAck,
		MinFragmentDuration: 200 * time.Millisecond, MaxFragmentDuration: time.Second, PersistTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	origin := time.Now().Add(-time.Hour).Truncate(time.Millisecond).UnixNano()
	w, err := sdk.NewSampleWriter(p, 1, pumpDesc, sdk.SampleWriterOptions{Origin: origin, FrameSamples: 100})
	if err != nil {
		t.Fatal(err)
	}
	// Produce in the background, as fast as the buffer allows: fragments
	// every ~0.5 ms, so the kills land mid-write.
	stop := make(chan struct{})
	produced := produceUntil(ctx, w, 200*time.Microsecond, stop, nil)
	const rounds = 6
	midFlight := 0 // kills that caught fragments on their way to PERSISTED
	for round := 0; round < rounds; round++ {
		want := log.count() + 25
		deadline := time.Now().Add(60 * time.Second)
		for log.count() < want {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: stuck at %d PERSISTED", round, log.count())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if p.Stats().Buffered > 0 {
			midFlight++
		}
		c.kill(t)
		c = startChild(t, dir, natsAddr, httpAddr)
	}
	if midFlight == 0 {
		t.Fatal("no kill caught a fragment in flight; the test proves nothing")
	}
	close(stop)
	if err := <-produced; err != nil {
		t.Fatalf("producing: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	// A kill can lose fragment k inside the dying server while k+1 waits in
	// the client's write buffer and lands first after the reconnect; the
	// server answers RETRY for k+1 and the producer re-sends it after k. So
	// every fragment ends PERSISTED, none refused.
	if err := p.Close(cctx); err != nil {
		t.Fatalf("producer close: %v; ERROR events: %+v", err, log.errors)
	}
	if len(log.errors) > 0 {
		t.Fatalf("ERROR events: %+v", log.errors)
	}
	checkServedByGetMedia(t, c.http, "crash")
	c.stop(t)
	checkStoredExactlyOnce(t, filepath.Join(dir, "store"), "crash", log)
	st := p.Stats()
	if int64(log.count()) != st.Fragments {
		t.Fatalf("%d fragments made, %d PERSISTED", st.Fragments, log.count())
	}
	t.Logf("%d fragments PERSISTED across %d SIGKILLs (%d with fragments in flight); %d re-sends, %d held back for a lost predecessor; all present exactly once, in order",
		log.count(), rounds, midFlight, st.Resent, st.Retries)
}

// checkServedByGetMedia reads the whole stream back and decodes every frame.
func checkServedByGetMedia(t *testing.T, url, stream string) {
	t.Helper()
	body, err := sdk.NewClient(url, nil).GetMedia(context.Background(), sdk.ByName(stream), sdk.StartEarliest(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	mr := sdk.NewMediaReader(body)
	var s signals.Samples
	frames := 0
	for {
		f, err := mr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("GetMedia after crashes, frame %d: %v", frames, err)
		}
		if err := codecs.DecodeScalarFrameAt(f.Data, f.Timestamp, pumpDesc, &s); err != nil {
			t.Fatalf("GetMedia after crashes, frame %d: %v", frames, err)
		}
		frames++
	}
	if frames == 0 {
		t.Fatal("GetMedia served no frames")
	}
}

func checkStoredExactlyOnce(t *testing.T, dir, stream string, log *persistedLog) {
	t.Helper()
	ring, err := store.LoadKeyring(nil, filepath.Join(filepath.Dir(dir), "keyring.json")) // the server's default place
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Options{Dir: dir, RetentionInterval: -1, Logger: testLogger(t), Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	infos, err := st.Fragments(stream, 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := st.NewReader(stream)
	defer r.Close()
	seen := map[uint64]uint64{} // producer seq → fragment number
	var lastSeq uint64
	for _, info := range infos {
		f, err := r.Read(info)
		if err != nil {
			t.Fatalf("fragment %d unreadable: %v", info.Number, err)
		}
		if n, dup := seen[f.ProducerSeq]; dup {
			t.Fatalf("producer sequence %d stored twice: fragments %d and %d", f.ProducerSeq, n, info.Number)
		}
		if f.ProducerSeq <= lastSeq {
			t.Fatalf("out of order: producer sequence %d after %d", f.ProducerSeq, lastSeq)
		}
		lastSeq = f.ProducerSeq
		seen[f.ProducerSeq] = info.Number
		if _, err := decodeFrames(f.Payload); err != nil {
			t.Fatalf("fragment %d: %v", info.Number, err)
		}
		if ev, ok := log.persisted[f.ProducerSeq]; ok {
			if ev.FragmentTimecode != info.ProducerTime/int64(time.Millisecond) {
				t.Fatalf("fragment %d: producer time %d, PERSISTED said %d", info.Number, info.ProducerTime, ev.FragmentTimecode)
			}
			if !ev.Duplicate && ev.FragmentNumber != fmt.Sprint(info.Number) {
				t.Fatalf("producer sequence %d: stored as %d, PERSISTED said %s", f.ProducerSeq, info.Number, ev.FragmentNumber)
			}
		}
	}
	for seq := range log.persisted {
		if _, ok := seen[seq]; !ok {
			t.Fatalf("LOST: producer sequence %d was PERSISTED but is not stored", seq)
		}
	}
}

// decodeFrames decodes every scalar frame of a stored fragment.
func decodeFrames(payload []byte) (int, error) {
	r := mkv.NewReader(strings.NewReader(string(payload)))
	var s signals.Samples
	n := 0
	for {
		it, err := r.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if it.Kind == mkv.ItemBlock {
			if err := codecs.DecodeScalarFrameAt(it.Block.Data, it.Time, pumpDesc, &s); err != nil {
				return n, err
			}
			n++
		}
	}
}
