//go:build unix

package sdk_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/sdk"
)

// The kill test's producer: TestSpoolKillChild, run by the test binary
// itself in a subprocess with these variables set.
const (
	envChild  = "SENSORIUM_SPOOL_CHILD" // the spool folder
	envNATS   = "SENSORIUM_SPOOL_NATS"
	envFrames = "SENSORIUM_SPOOL_FRAMES"
	// SENSORIUM_SPOOL_KILLS sets how many times TestSpoolSurvivesSIGKILL
	// kills its producer (default 6, a few seconds; 100 takes minutes).
	envKills = "SENSORIUM_SPOOL_KILLS"

	killFrameSize = 3000
)

// killBase is the producer time of the kill test's frame 0.
var killBase = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC).UnixNano()

// The producer runs as a subprocess that is SIGKILLed again and again
// mid-stream (while it puts frames, publishes and waits for PERSISTED) and
// restarted on its spool, and the server is restarted once under it. Each
// run resumes its source where the spool says it got to (the open fragment
// of a killed process was never spooled). At the end the server holds every
// frame exactly once, in order, with its original timestamp and bytes.
func TestSpoolSurvivesSIGKILL(t *testing.T) {
	kills := 6
	if v := os.Getenv(envKills); v != "" {
		kills, _ = strconv.Atoi(v)
	}
	frames := 400 + kills*500 // a run makes 50 to 400 frames before it is killed
	srv := startSpoolServer(t)
	spoolDir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	killed := 0
	for run := 0; ; run++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envChild+"="+spoolDir, envNATS+"="+srv.natsURL(), envFrames+"="+strconv.Itoa(frames))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		progress := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				progress <- sc.Text()
			}
			close(progress)
		}()
		if killed == kills {
			done := false
			for line := range progress {
				done = done || line == "DONE"
			}
			if err := cmd.Wait(); err != nil || !done {
				t.Fatalf("the last run: %v (finished: %v)", err, done)
			}
			st := srv.srv.IngestStats()
			t.Logf("%d runs, %d killed; the server answered %d re-sends as duplicates", run+1, killed, st.Duplicates)
			break
		}
		// Kill it after it has put 5 to 40 more fragments' worth of frames.
		want, seen := 5+rng.IntN(36), 0
		poll.Until(t, time.Minute, time.Millisecond, func() error {
			for {
				select {
				case line, ok := <-progress:
					if !ok {
						return nil // it finished first: the next run checks nothing is left
					}
					if strings.HasPrefix(line, "F ") {
						seen++
					}
					if seen >= want {
						return nil
					}
					continue
				default:
				}
				return fmt.Errorf("run %d has put %d of the %d fragments to kill it after", run, seen, want)
			}
		})
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		for range progress {
		}
		killed++
		if killed == kills/2 {
			srv.restart() // re-sends must also be recognised by a restarted server
		}
	}
	if err := checkFrames(srv.readStream(), killBase, 10*ms, frames, killFrameSize); err != nil {
		t.Fatal(err)
	}
	if n := srv.fragmentCount(); n < frames/20 || n > frames/10+2*kills+2 {
		t.Fatalf("%d fragments for %d frames of 10 ms in fragments of ≥ 100 ms", n, frames)
	}
}

// TestSpoolKillChild is the producer of TestSpoolSurvivesSIGKILL: it runs
// only in the subprocess.
func TestSpoolKillChild(t *testing.T) {
	dir := os.Getenv(envChild)
	if dir == "" {
		t.Skip("the producer of TestSpoolSurvivesSIGKILL; runs in its subprocess")
	}
	frames, _ := strconv.Atoi(os.Getenv(envFrames))
	nc, err := nats.Connect(os.Getenv(envNATS), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{opaque(1)},
		MinFragmentDuration: 100 * time.Millisecond, PersistTimeout: time.Second,
		Spool: &sdk.SpoolConfig{Dir: dir, Budget: 256 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	from := 0
	if end, ok := p.SpooledThrough(); ok {
		from = int((end - killBase) / (10 * ms))
	}
	// The source's pace: 5 frames a millisecond, so that a kill finds
	// fragments on their way to the server, not yet PERSISTED.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := from; i < frames; i++ {
		if i%5 == 0 {
			<-tick.C
		}
		if err := p.PutFrame(ctx, spoolFrame(killBase, 10*ms, i, killFrameSize, i%10 == 0 || i == from)); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			fmt.Println("F", i)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatal(err)
	}
	fmt.Println("DONE")
}
