package replicate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// testLogger logs at warning level, or at $SENSORIUM_TEST_LOG's.
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	_ = level.UnmarshalText([]byte(os.Getenv("SENSORIUM_TEST_LOG")))
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

// startServer runs a real server on loopback ports with its data in dir.
func startServer(t testing.TB, dir string) *server.Server {
	t.Helper()
	srv, err := server.Start(context.Background(), server.Config{DataDir: dir, NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	return srv
}

// testFragment is fragment k of a test stream: a few frames of random
// bytes on one track, at origin + k×100 ms, every third with user tags.
func testFragment(origin time.Time, k int, size int) []byte {
	rng := rand.New(rand.NewPCG(uint64(k), 7))
	tcMS := uint64(origin.Add(time.Duration(k) * 100 * time.Millisecond).UnixMilli())
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, Duration: 100})
	b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: "S_TEST/RAW"}})
	if k%3 == 0 {
		b = mkv.AppendTags(b, []mkv.SimpleTag{{Name: "batch", Value: strconv.Itoa(k)}, {Name: "line", Value: "7"}})
	}
	var blocks []mkv.Block
	for f := 0; f < 4; f++ {
		data := make([]byte, size/4)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		blocks = append(blocks, mkv.Block{Track: 1, Timecode: int16(f * 25), Keyframe: true, Data: data})
	}
	return mkv.AppendCluster(b, tcMS, blocks)
}

// edgeProducer writes test fragments into a stream of the edge over NATS,
// as a producer would, and waits for each PERSISTED.
type edgeProducer struct {
	t      testing.TB
	nc     *nats.Conn
	js     jetstream.JetStream
	stream string
	origin time.Time
	size   int
	next   int // the next fragment k
	subj   wire.Subjects
	mu     sync.Mutex
}

func newEdgeProducer(t testing.TB, natsURL, stream string, origin time.Time, size int) *edgeProducer {
	t.Helper()
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &edgeProducer{t: t, nc: nc, js: js, stream: stream, origin: origin, size: size, subj: wire.NewSubjects("")}
}

// put writes n more fragments, each PERSISTED before the next.
func (p *edgeProducer) put(n int) {
	p.t.Helper()
	if err := p.tryPut(n); err != nil {
		p.t.Fatal(err)
	}
}

func (p *edgeProducer) tryPut(n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	sub, err := p.nc.SubscribeSync(p.subj.Ack(p.stream))
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	if err := p.nc.Flush(); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		k := p.next
		seq := uint64(k + 1)
		for attempt := 0; ; attempt++ {
			if attempt > 20 {
				return fmt.Errorf("fragment %d of %s: no PERSISTED", k, p.stream)
			}
			m := &nats.Msg{Subject: p.subj.Frag(p.stream), Data: testFragment(p.origin, k, p.size),
				Header: wire.FragmentHeader(p.stream, "test-producer", seq, 0, attempt)}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := p.js.PublishMsg(ctx, m)
			cancel()
			if err != nil {
				continue
			}
			if ok, err := waitPersisted(sub, seq); err != nil {
				return err
			} else if ok {
				break
			}
		}
		p.next++
	}
	return nil
}

func waitPersisted(sub *nats.Subscription, seq uint64) (bool, error) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m, err := sub.NextMsg(time.Until(deadline))
		if errors.Is(err, nats.ErrTimeout) {
			return false, nil
		}
		if err != nil {
			return false, nil
		}
		var ev wire.AckEvent
		if json.Unmarshal(m.Data, &ev) != nil || ev.ProducerSequence != seq {
			continue
		}
		switch ev.EventType {
		case wire.EventPersisted:
			return true, nil
		case wire.EventError:
			return false, fmt.Errorf("edge refused fragment %d: %s", seq, ev.Message)
		}
	}
	return false, nil
}

// storedFragment is one fragment as a server holds it, for comparison.
type storedFragment struct {
	number, origin string
	producer       int64
	size           int64
	tags           []mkv.SimpleTag // producer tags, the origin_ ones left out
	body           []byte          // the document with every Tags element cut out
}

// readAll lists every fragment of stream on c with its document.
func readAll(t testing.TB, c *sdk.Client, stream string) []storedFragment {
	t.Helper()
	ctx := context.Background()
	l, err := listAfter(ctx, c, stream, nil, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(l.frags)) != l.count {
		t.Fatalf("%d fragments, more than one listing holds", l.count)
	}
	var out []storedFragment
	for i := 0; i < len(l.frags); i += 1000 {
		batch := l.frags[i:min(i+1000, len(l.frags))]
		nums := make([]string, len(batch))
		for j, f := range batch {
			nums[j] = f.Number
		}
		j := 0
		err := fetchChunks(ctx, c, stream, nums, func(ch chunk) error {
			sf := storedFragment{number: ch.number, producer: batch[j].ProducerTime, size: batch[j].Size}
			j++
			sf.tags, sf.origin, sf.body = splitTags(t, ch.data)
			out = append(out, sf)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// splitTags cuts the Tags elements out of a document and returns the
// producer's tags, the origin_fragment_number, and the rest of the bytes.
func splitTags(t testing.TB, doc []byte) ([]mkv.SimpleTag, string, []byte) {
	rd := mkv.NewReader(bytes.NewReader(doc))
	var tags []mkv.SimpleTag
	origin := ""
	var body []byte
	last := int64(0)
	for {
		it, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read document: %v", err)
		}
		if it.Kind != mkv.ItemTags {
			continue
		}
		body = append(body, doc[last:it.Offset]...)
		last = it.Offset + it.Size
		for _, tg := range it.Tags {
			switch {
			case tg.Name == mkv.TagOriginFragmentNumber:
				origin = tg.Value
			case tg.Name == mkv.TagOriginServerTimestamp || len(tg.Name) > 17 && tg.Name[:17] == "AWS_KINESISVIDEO_":
			default:
				tags = append(tags, tg)
			}
		}
	}
	body = append(body, doc[last:]...)
	return tags, origin, body
}

// checkExactlyOnce compares the centre's stream with the edge's: every
// edge fragment is there once (by origin_fragment_number), in order, with
// its producer timestamp, its tags and its bytes, and nothing else is.
func checkExactlyOnce(t testing.TB, edge, centre *sdk.Client, edgeStream, centreStream string) int {
	t.Helper()
	e := readAll(t, edge, edgeStream)
	c := readAll(t, centre, centreStream)
	seen := map[string]int{}
	for _, f := range c {
		seen[f.origin]++
	}
	for o, n := range seen {
		if n > 1 {
			t.Errorf("edge fragment %s is at the centre %d times", o, n)
		}
	}
	if len(c) != len(e) {
		t.Fatalf("the centre holds %d fragments of %s, the edge %d", len(c), centreStream, len(e))
	}
	for i := range e {
		ef, cf := e[i], c[i]
		if cf.origin != ef.number {
			t.Fatalf("centre fragment %d (%s) comes from edge fragment %q; want %s", i, cf.number, cf.origin, ef.number)
		}
		if cf.producer != ef.producer {
			t.Errorf("fragment %s: producer time %d at the centre, %d at the edge", ef.number, cf.producer, ef.producer)
		}
		if !bytes.Equal(cf.body, ef.body) {
			t.Errorf("fragment %s: the centre's document (%d bytes without tags) is not the edge's (%d)", ef.number, len(cf.body), len(ef.body))
		}
		if fmt.Sprint(cf.tags) != fmt.Sprint(ef.tags) {
			t.Errorf("fragment %s: tags %v at the centre, %v at the edge", ef.number, cf.tags, ef.tags)
		}
	}
	return len(e)
}
