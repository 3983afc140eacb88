package sdk_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/store"
)

// The spool's end-to-end tests run a whole server (bus, ingester, store,
// HTTP API) on loopback and check what it stores through the API, as a user
// would: GetMedia for the frames, ListFragments for the fragments.

// spoolFrame is frame i of the spool tests' source, one every step ns from
// base and step long, its data the index and a pattern of it, so that a
// frame's bytes say which it is.
func spoolFrame(base, step int64, i, size int, key bool) sdk.Frame {
	d := make([]byte, size)
	binary.LittleEndian.PutUint64(d, uint64(i))
	for j := 8; j < size; j++ {
		d[j] = byte(i*7 + j)
	}
	return sdk.Frame{Track: 1, Timestamp: base + int64(i)*step, Duration: step, Key: key, Data: d}
}

// spoolServer is a server on fixed loopback ports, so that it can be
// restarted under its producers' feet.
type spoolServer struct {
	t        testing.TB
	dir      string
	natsAddr string
	srv      *server.Server
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startSpoolServer(t testing.TB) *spoolServer {
	s := &spoolServer{t: t, dir: t.TempDir(), natsAddr: freePort(t)}
	s.start()
	t.Cleanup(func() { s.stop() })
	if _, err := s.client().CreateStream(context.Background(), sdk.CreateStreamInput{StreamName: "s", DataRetentionInHours: 24 * 30}); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *spoolServer) start() {
	s.t.Helper()
	srv, err := server.Start(context.Background(), server.Config{DataDir: s.dir, NATSListen: s.natsAddr, HTTPListen: "127.0.0.1:0", Logger: quiet(),
		// Small segments: re-sends must be recognised after their
		// fragment's segment rotated and was sealed.
		StoreOptions: func(o *store.Options) { o.SegmentMaxBytes = 256 << 10 }})
	if err != nil {
		s.t.Fatal(err)
	}
	s.srv = srv
}

func (s *spoolServer) stop() {
	if s.srv != nil {
		_ = s.srv.Shutdown(context.Background())
		s.srv = nil
	}
}

func (s *spoolServer) restart() { s.stop(); s.start() }

func (s *spoolServer) natsURL() string { return "nats://" + s.natsAddr }

// srvConn connects to the server's NATS, reconnecting for ever.
func srvConn(t *testing.T, s *spoolServer) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.natsURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func (s *spoolServer) client() *sdk.Client { return sdk.NewClient(s.srv.HTTPURL(), nil) }

// storedFrame is a frame read back through GetMedia.
type storedFrame struct {
	ts   int64
	data []byte
}

// readStream reads every frame of stream s from the earliest.
func (s *spoolServer) readStream() []storedFrame {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rc, err := s.client().GetMedia(ctx, sdk.ByName("s"), sdk.StartEarliest(), false)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rc.Close()
	mr := sdk.NewMediaReader(rc)
	var out []storedFrame
	for {
		f, err := mr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			s.t.Fatalf("GetMedia: %v", err)
		}
		out = append(out, storedFrame{ts: f.Timestamp, data: append([]byte(nil), f.Data...)})
	}
}

// fragmentCount lists the stream's fragments through ListFragments.
func (s *spoolServer) fragmentCount() int {
	s.t.Helper()
	n, token := 0, ""
	for {
		page, next, err := s.client().ListFragments(context.Background(), sdk.ListFragmentsInput{Stream: sdk.ByName("s"), MaxResults: 1000, NextToken: token})
		if err != nil {
			s.t.Fatal(err)
		}
		n += len(page)
		if next == "" || len(page) == 0 {
			return n
		}
		token = next
	}
}

// checkFrames says whether frames are exactly frames 0…n-1 of the source,
// once each, in order, with their producer timestamps and bytes.
func checkFrames(frames []storedFrame, base, step int64, n, size int) error {
	if len(frames) != n {
		first, last := -1, -1
		if len(frames) > 0 {
			first = int(binary.LittleEndian.Uint64(frames[0].data))
			last = int(binary.LittleEndian.Uint64(frames[len(frames)-1].data))
		}
		return fmt.Errorf("the stream holds %d frames (first %d, last %d), want %d", len(frames), first, last, n)
	}
	for i, f := range frames {
		want := spoolFrame(base, step, i, size, false)
		if f.ts != want.Timestamp || !bytes.Equal(f.data, want.Data) {
			return fmt.Errorf("frame %d: timestamp %+d ns from the source's, frame index %d in the data", i, f.ts-want.Timestamp, binary.LittleEndian.Uint64(f.data))
		}
	}
	return nil
}
