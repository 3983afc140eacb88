package store

import (
	"bytes"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

// testClock is a settable clock.
type testClock struct{ t time.Time }

func (c *testClock) Now() time.Time { return c.t }

func newTestStore(t *testing.T, dir string, fsys vfs.FS, tweak func(*Options)) *Store {
	t.Helper()
	opts := Options{
		Dir:               dir,
		FS:                fsys,
		Logger:            slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		RetentionInterval: -1,
	}
	if tweak != nil {
		tweak(&opts)
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func mustCreate(t *testing.T, s *Store, name string, retentionHours int) StreamInfo {
	t.Helper()
	info, err := s.CreateStream(CreateStreamInput{Name: name, RetentionHours: retentionHours})
	if err != nil {
		t.Fatalf("CreateStream %s: %v", name, err)
	}
	return info
}

// base is an arbitrary fixed epoch for producer and server times.
var base = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).UnixNano()

// frag builds fragment n: numbers 10, 20, 30 … (not contiguous, like bus
// sequences shared by many streams), one second each.
func frag(n int, producer string) *Fragment {
	payload := []byte(fmt.Sprintf("EBML…fragment-%d…", n))
	payload = append(payload, bytes.Repeat([]byte{byte(n)}, 100+n%37)...)
	return &Fragment{
		Number:        uint64(n * 10),
		ServerTime:    base + int64(n)*int64(time.Second) + 5*int64(time.Millisecond),
		ProducerTime:  base + int64(n)*int64(time.Second),
		Duration:      int64(time.Second),
		ProducerID:    producer,
		ProducerSeq:   uint64(n),
		ClusterOffset: 3,
		Payload:       payload,
	}
}

func appendN(t *testing.T, s *Store, stream string, from, to int, syncEvery int) {
	t.Helper()
	for i := from; i <= to; i++ {
		res, err := s.Append(stream, frag(i, "p1"))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		if res.Status != Appended {
			t.Fatalf("Append %d: status %v", i, res.Status)
		}
		if syncEvery > 0 && (i-from+1)%syncEvery == 0 {
			if err := s.Sync(stream); err != nil {
				t.Fatalf("Sync: %v", err)
			}
		}
	}
	if err := s.Sync(stream); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// checkAll reads every fragment of the stream and checks it is exactly
// fragments from..to, in order, with intact payloads.
func checkAll(t *testing.T, s *Store, stream string, from, to int) {
	t.Helper()
	infos, err := s.Fragments(stream, 0, 1<<30)
	if err != nil {
		t.Fatalf("Fragments: %v", err)
	}
	if len(infos) != to-from+1 {
		t.Fatalf("have %d fragments, want %d (%d..%d)", len(infos), to-from+1, from, to)
	}
	r, err := s.NewReader(stream)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, info := range infos {
		want := frag(from+i, "p1")
		if info.Number != want.Number || info.ProducerTime != want.ProducerTime || info.Duration != want.Duration {
			t.Fatalf("fragment %d: info %+v, want number %d producer %d", i, info, want.Number, want.ProducerTime)
		}
		got, err := r.Read(info)
		if err != nil {
			t.Fatalf("Read %d: %v", info.Number, err)
		}
		if !bytes.Equal(got.Payload, want.Payload) || got.ClusterOffset != want.ClusterOffset || got.ProducerSeq != want.ProducerSeq {
			t.Fatalf("fragment %d: payload or metadata differs", info.Number)
		}
	}
}
