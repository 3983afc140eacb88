package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/sdk"
)

// TestManyStreams is issue 15's "many streams" in the small: 300 streams on
// one server, a few fragments each through SDK producers that share a few
// NATS connections. Every fragment is PERSISTED and reads back byte for
// byte, ListStreams pages through every stream exactly once in order, and
// the process's open files do not grow with the number of streams: past the
// store's cap on open segment files, idle streams' files are closed.
// (`make bench`'s `-only streams` section measures the same at 10,000.)
func TestManyStreams(t *testing.T) {
	const (
		streams   = 300
		fragments = 2 // per stream
		frames    = 4 // per fragment
		conns     = 4
		maxOpen   = 64 // the store's cap on open segment files, well below streams
	)
	srv, err := Start(context.Background(), Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		Logger: testLogger(t), MaxOpenSegments: maxOpen})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	ctx := context.Background()
	client := sdk.NewClient(srv.HTTPURL(), nil)
	ncs := make([]*nats.Conn, conns)
	for i := range ncs {
		if ncs[i], err = nats.Connect(srv.NATSURL()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ncs[i].Close)
	}
	names := make([]string, streams)
	for i := range names {
		names[i] = fmt.Sprintf("many-%03d", i)
	}
	// Open files from here on are the streams' doing: the server, its bus
	// and the connections are up.
	before := openFileCount(t)

	forEach(t, names, func(i int, name string) error {
		_, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: name, DataRetentionInHours: 24})
		return err
	})
	frame := func(stream, k int) []byte { return bytes.Repeat([]byte{byte(stream), byte(k)}, 512) }
	base := time.Now().Add(-time.Hour).Truncate(time.Second).UnixNano()
	forEach(t, names, func(i int, name string) error {
		track, err := sdk.OpaqueTrack(1, "payload", "application/octet-stream")
		if err != nil {
			return err
		}
		var persisted int
		p, err := sdk.NewProducer(ctx, ncs[i%conns], sdk.ProducerConfig{Stream: name, Tracks: []sdk.Track{track},
			MinFragmentDuration: time.Second, MaxFragmentDuration: 2 * time.Second, MaxFragmentSize: 16 << 10, BufferBytes: 64 << 10, NoLive: true,
			OnAck: func(ev sdk.AckEvent) {
				if ev.EventType == sdk.EventPersisted {
					persisted++ // OnAck runs on one goroutine, and Close waits for it
				}
			}})
		if err != nil {
			return err
		}
		// Frames 250 ms apart: each fragment closes at the next one's first frame.
		for k := range fragments * frames {
			f := sdk.Frame{Track: 1, Timestamp: base + int64(k)*int64(250*time.Millisecond), Duration: int64(250 * time.Millisecond), Key: true, Data: frame(i, k)}
			if err := p.PutFrame(ctx, f); err != nil {
				return err
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := p.Close(cctx); err != nil {
			return err
		}
		if persisted != fragments {
			return fmt.Errorf("%d of %d fragments PERSISTED", persisted, fragments)
		}
		return nil
	})

	// Every fragment reads back, frame for frame (each stream's segment
	// file is reopened to read it: most were closed past the cap).
	forEach(t, names, func(i int, name string) error {
		body, err := client.GetMedia(ctx, sdk.ByName(name), sdk.StartEarliest(), false)
		if err != nil {
			return err
		}
		defer body.Close()
		mr := sdk.NewMediaReader(body)
		k := 0
		for ; ; k++ {
			f, err := mr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if k >= fragments*frames || !bytes.Equal(f.Data, frame(i, k)) {
				return fmt.Errorf("GetMedia: frame %d is not the one put", k)
			}
		}
		if k != fragments*frames {
			return fmt.Errorf("GetMedia: %d frames, want %d", k, fragments*frames)
		}
		return nil
	})

	// ListStreams: every stream exactly once, in order, page by page.
	var listed []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > streams {
			t.Fatal("ListStreams does not end")
		}
		page, next, err := client.ListStreams(ctx, "", 64, token)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page {
			listed = append(listed, s.StreamName)
		}
		if token = next; token == "" {
			break
		}
	}
	if fmt.Sprint(listed) != fmt.Sprint(names) {
		t.Fatalf("ListStreams listed %d streams, want the %d created, in order, once each", len(listed), len(names))
	}

	if before < 0 {
		t.Log("open files not checked: no /proc/self/fd here")
		return
	}
	// Without the cap each stream that stored data keeps its active
	// segment file open (300 here); with it, at most maxOpen, plus what
	// reads and HTTP connections have open for a moment.
	const bound = maxOpen + 50
	poll.Until(t, 5*time.Second, 50*time.Millisecond, func() error {
		if grew := openFileCount(t) - before; grew > bound {
			return fmt.Errorf("open files grew by %d with %d streams, want at most %d", grew, streams, bound)
		}
		return nil
	})
}

// forEach runs fn for every name, 16 at a time, and fails the test with the
// first error.
func forEach(t *testing.T, names []string, fn func(i int, name string) error) {
	t.Helper()
	errs := make([]error, len(names))
	work := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range work {
				if err := fn(i, names[i]); err != nil {
					errs[i] = fmt.Errorf("%s: %w", names[i], err)
				}
			}
		})
	}
	for i := range names {
		work <- i
	}
	close(work)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// openFileCount is the number of files this process has open, or -1 where
// /proc/self/fd does not say.
func openFileCount(t *testing.T) int {
	t.Helper()
	if runtime.GOOS != "linux" {
		return -1
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}
