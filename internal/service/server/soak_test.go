package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/store"
)

// soakEnv sets the number of SIGKILLs of TestSoak; without it the test does
// not run (`make soak` sets it: 50 by default, 200 for the release check).
const soakEnv = "SENSORIUM_SOAK_KILLS"

// TestSoak ingests from several producers into several streams while the
// server is SIGKILLed and restarted again and again, then checks every
// PERSISTED fragment: present exactly once, in producer order, under the
// number and producer timestamp its PERSISTED event gave, decodable; GetMedia
// from EARLIEST must serve every stored frame and an Arrow query every stored
// sample. It prints the counts.
func TestSoak(t *testing.T) {
	kills, _ := strconv.Atoi(os.Getenv(soakEnv))
	if kills <= 0 {
		t.Skipf("set %s (make soak) to run the soak", soakEnv)
	}
	const producers = 3
	dir := t.TempDir()
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	c := startChild(t, dir, natsAddr, httpAddr)
	ctx := context.Background()
	client := sdk.NewClient(c.http, nil)
	logs := make([]*persistedLog, producers)
	prods := make([]*sdk.Producer, producers)
	stop := make(chan struct{})
	var producing []<-chan error
	for i := range producers {
		name := fmt.Sprintf("soak-%d", i)
		if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: name, DataRetentionInHours: 24}); err != nil {
			t.Fatal(err)
		}
		logs[i] = &persistedLog{persisted: map[uint64]sdk.AckEvent{}}
		prods[i] = soakProducer(t, c.url, name, time.Second, logs[i].onAck)
		producing = append(producing, producePump(t, prods[i], 3*time.Millisecond, stop)) // ~100 fragments/s: data grows, restarts stay quick
	}
	total := func() int {
		n := 0
		for _, l := range logs {
			n += l.count()
		}
		return n
	}
	start := time.Now()
	for k := 0; k < kills; k++ {
		want := total() + 10*producers
		deadline := time.Now().Add(60 * time.Second)
		for total() < want {
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: stuck at %d PERSISTED", k, total())
			}
			time.Sleep(20 * time.Millisecond)
		}
		c.kill(t)
		c = startChild(t, dir, natsAddr, httpAddr)
	}
	close(stop)
	for _, done := range producing {
		if err := <-done; err != nil {
			t.Fatalf("producing: %v", err)
		}
	}
	for i, p := range prods {
		cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		if err := p.Close(cctx); err != nil {
			t.Errorf("producer %d close: %v; stats %+v", i, err, p.Stats())
		}
		cancel()
	}
	// Every read path serves what the store holds: GetMedia from EARLIEST
	// (every frame) and an Arrow query over all time (every sample).
	served := make([]soakServed, producers)
	for i := range producers {
		served[i] = soakRead(t, c.http, fmt.Sprintf("soak-%d", i))
	}
	c.stop(t)
	n := soakCount(t, filepath.Join(dir, "store"), logs, served)
	var frames, samples int64
	for _, sv := range served {
		frames, samples = frames+sv.frames, samples+sv.samples
	}
	fmt.Printf("soak: %d SIGKILLs in %s, %d producers: acked %d, found %d, lost %d, duplicated %d, out of order %d, corrupt %d; "+
		"stored %d frames of %d samples, GetMedia served %d frames, Arrow %d samples\n",
		kills, time.Since(start).Round(time.Second), producers, n.acked, n.found, n.lost, n.dup, n.misordered, n.corrupt,
		n.frames, n.samples, frames, samples)
	if n.lost+n.dup+n.misordered+n.corrupt > 0 {
		t.Fatalf("lost %d, duplicated %d, out of order %d, corrupt %d", n.lost, n.dup, n.misordered, n.corrupt)
	}
}

// soakServed is what the read paths gave for one stream.
type soakServed struct{ frames, samples int64 }

// soakRead reads a stream back through GetMedia and an Arrow query.
func soakRead(t *testing.T, url, name string) soakServed {
	t.Helper()
	ctx := context.Background()
	client := sdk.NewClient(url, nil)
	var out soakServed
	body, err := client.GetMedia(ctx, sdk.ByName(name), sdk.StartEarliest(), false)
	if err != nil {
		t.Fatalf("GetMedia %s: %v", name, err)
	}
	mr := sdk.NewMediaReader(body)
	var s signals.Samples
	for {
		f, err := mr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("GetMedia %s, frame %d: %v", name, out.frames, err)
		}
		if err := codecs.DecodeScalarFrameAt(f.Data, f.Timestamp, pumpDesc, &s); err != nil {
			t.Fatalf("GetMedia %s, frame %d: %v", name, out.frames, err)
		}
		out.frames++
	}
	body.Close()
	// The soak producers write faster than real time from an hour ago: a
	// long soak's samples run past now (a 30-kill run reached +25 min).
	res, err := client.Query(ctx, sdk.QueryInput{Stream: name, Start: time.Unix(0, 0), End: time.Now().Add(7 * 24 * time.Hour)}, nil)
	if err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	for res.Next() {
		out.samples += res.RecordBatch().NumRows()
	}
	if err := res.Err(); err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	res.Close()
	return out
}

// soakCounts are the soak's verdict.
type soakCounts struct {
	acked, found, lost, dup, misordered, corrupt int
	frames, samples                              int64
}

// soakCount compares the stores' contents with what the producers were told
// and what the read paths served. A stored fragment is corrupt when it does
// not read or decode, or when it is not where its PERSISTED event said (its
// number, its producer timestamp).
func soakCount(t *testing.T, dir string, logs []*persistedLog, served []soakServed) (n soakCounts) {
	t.Helper()
	ring, err := store.LoadKeyring(nil, filepath.Join(filepath.Dir(dir), "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Options{Dir: dir, RetentionInterval: -1, Logger: testLogger(t), Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i, l := range logs {
		name := fmt.Sprintf("soak-%d", i)
		infos, err := st.Fragments(name, 0, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := st.NewReader(name)
		seen := map[uint64]bool{}
		var last uint64
		var frames, samples int64
		for _, info := range infos {
			f, err := r.Read(info)
			if err != nil {
				n.corrupt++
				t.Errorf("%s: fragment %d: %v", name, info.Number, err)
				continue
			}
			nf, ns, err := decodeSamples(f.Payload)
			if err != nil {
				n.corrupt++
				t.Errorf("%s: fragment %d: %v", name, info.Number, err)
			}
			frames, samples = frames+int64(nf), samples+int64(ns)
			switch {
			case seen[f.ProducerSeq]:
				n.dup++
				t.Errorf("%s: producer sequence %d stored twice", name, f.ProducerSeq)
			case f.ProducerSeq <= last:
				n.misordered++
				t.Errorf("%s: producer sequence %d stored after %d", name, f.ProducerSeq, last)
			}
			if ev, ok := l.persisted[f.ProducerSeq]; ok {
				if ev.FragmentTimecode != info.ProducerTime/int64(time.Millisecond) || !ev.Duplicate && ev.FragmentNumber != fmt.Sprint(info.Number) {
					n.corrupt++
					t.Errorf("%s: producer sequence %d stored as fragment %d at %d ms; PERSISTED said fragment %s at %d ms",
						name, f.ProducerSeq, info.Number, info.ProducerTime/int64(time.Millisecond), ev.FragmentNumber, ev.FragmentTimecode)
				}
			}
			seen[f.ProducerSeq], last = true, max(last, f.ProducerSeq)
			n.found++
		}
		r.Close()
		for seq, ev := range l.persisted {
			n.acked++
			if !seen[seq] {
				n.lost++
				t.Errorf("%s: producer sequence %d (%s) PERSISTED but not stored", name, seq, ev.FragmentNumber)
			}
		}
		if served[i].frames != frames || served[i].samples != samples {
			t.Errorf("%s: the store holds %d frames and %d samples; GetMedia served %d frames, the Arrow query %d samples",
				name, frames, samples, served[i].frames, served[i].samples)
		}
		n.frames += frames
		n.samples += samples
	}
	return n
}

// decodeSamples decodes every scalar frame of a stored fragment and counts
// frames and samples.
func decodeSamples(payload []byte) (frames, samples int, err error) {
	r := mkv.NewReader(bytes.NewReader(payload))
	var s signals.Samples
	for {
		it, err := r.Next()
		if errors.Is(err, io.EOF) {
			return frames, samples, nil
		}
		if err != nil {
			return frames, samples, err
		}
		if it.Kind == mkv.ItemBlock {
			if err := codecs.DecodeScalarFrameAt(it.Block.Data, it.Time, pumpDesc, &s); err != nil {
				return frames, samples, err
			}
			frames++
			samples += s.N
		}
	}
}

// soakProducer is a pump producer of the soak tests into stream, connected
// to urls (comma-separated: a cluster's nodes) so that it reconnects fast and
// keeps 64 MiB while it does; its events go to onAck.
func soakProducer(t *testing.T, urls, stream string, persistTimeout time.Duration, onAck func(sdk.AckEvent)) *sdk.Producer {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.ReconnectBufSize(64<<20), nats.PingInterval(500*time.Millisecond), nats.MaxPingsOutstanding(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	track, _ := sdk.ScalarTrack(1, "vibration", pumpDesc)
	p, err := sdk.NewProducer(context.Background(), nc, sdk.ProducerConfig{
		Stream: stream, Tracks: []sdk.Track{track}, OnAck: onAck, ProducerID: stream,
		MinFragmentDuration: 200 * time.Millisecond, MaxFragmentDuration: time.Second, PersistTimeout: persistTimeout,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// producePump writes the pump signal through p, pausing between blocks of
// 100 samples, until stop is closed (produceUntil).
func producePump(t *testing.T, p *sdk.Producer, pause time.Duration, stop <-chan struct{}) <-chan error {
	t.Helper()
	w, err := sdk.NewSampleWriter(p, 1, pumpDesc, sdk.SampleWriterOptions{Origin: time.Now().Add(-time.Hour).Truncate(time.Millisecond).UnixNano(), FrameSamples: 100})
	if err != nil {
		t.Fatal(err)
	}
	return produceUntil(context.Background(), w, pause, stop, nil)
}
