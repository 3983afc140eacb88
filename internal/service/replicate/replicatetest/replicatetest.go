// Package replicatetest holds what the replication tests share: a producer
// that writes test fragments into a stream over NATS, and a checker that
// reads the edge's and the centre's copies of a stream through the HTTP API
// and says whether every edge fragment is at the centre exactly once, with
// its producer timestamp, tags and bytes. The checker reads with the SDK
// and the mkv reader only, not with the replicator's own code, so that a
// bug there cannot hide itself. Only tests import it.
package replicatetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
)

// Fragment is fragment k of a test stream: four frames of random bytes
// (size in all) on one track, at origin + k×100 ms; every third carries two
// producer tags.
func Fragment(origin time.Time, k int, size int) []byte {
	rng := rand.New(rand.NewPCG(uint64(k), 7))
	tcMS := uint64(origin.Add(time.Duration(k) * 100 * time.Millisecond).UnixMilli())
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, Duration: 100})
	b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: "S_TEST/RAW"}})
	if k%3 == 0 {
		b = mkv.AppendTags(b, []mkv.SimpleTag{{Name: "batch", Value: strconv.Itoa(k)}, {Name: "line", Value: "7"}})
	}
	blocks := make([]mkv.Block, 4)
	for f := range blocks {
		data := make([]byte, size/4)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		blocks[f] = mkv.Block{Track: 1, Timecode: int16(f * 25), Keyframe: true, Data: data}
	}
	return mkv.AppendCluster(b, tcMS, blocks)
}

// Producer writes test fragments into one stream over NATS, as a producer
// would, each PERSISTED before the next; it rides out the server's restarts.
type Producer struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream string
	origin time.Time
	size   int
	subj   wire.Subjects

	mu   sync.Mutex
	next int // the next fragment k
}

// NewProducer connects to natsURL (opts log in, e.g.
// sdk.Credentials.NATSOptions); Close closes the connection.
func NewProducer(natsURL, stream string, origin time.Time, size int, opts ...nats.Option) (*Producer, error) {
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond), nats.RetryOnFailedConnect(true)}, opts...)
	nc, err := nats.Connect(natsURL, opts...)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &Producer{nc: nc, js: js, stream: stream, origin: origin, size: size, subj: wire.NewSubjects("")}, nil
}

// Close closes the producer's connection.
func (p *Producer) Close() { p.nc.Close() }

// Written is how many fragments are PERSISTED.
func (p *Producer) Written() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.next
}

// Put writes n more fragments; it fails when one gets no PERSISTED within
// timeout (each is re-sent meanwhile, under its dedupe key).
func (p *Producer) Put(n int, timeout time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; i < n; i++ {
		k := p.next
		if err := p.PutRaw(Fragment(p.origin, k, p.size), "test-producer", uint64(k+1), timeout); err != nil {
			return err
		}
		p.next++
	}
	return nil
}

// PutRaw writes one fragment as producer's fragment seq and waits for its
// PERSISTED, sending it again (same key) until timeout.
func (p *Producer) PutRaw(data []byte, producer string, seq uint64, timeout time.Duration) error {
	sub, err := p.nc.SubscribeSync(p.subj.Ack(p.stream))
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	deadline := time.Now().Add(timeout)
	for attempt := 0; ; attempt++ {
		if time.Now().After(deadline) {
			return fmt.Errorf("fragment %d of %s: no PERSISTED in %v", seq, p.stream, timeout)
		}
		m := &nats.Msg{Subject: p.subj.Frag(p.stream), Data: data, Header: wire.FragmentHeader(p.stream, producer, seq, 0, attempt)}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := p.js.PublishMsg(ctx, m)
		cancel()
		if err != nil {
			time.Sleep(50 * time.Millisecond) // the server is restarting: a pause before the next attempt
			continue
		}
		ok, err := waitPersisted(sub, seq, 3*time.Second)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	}
}

func waitPersisted(sub *nats.Subscription, seq uint64, wait time.Duration) (bool, error) {
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			return false, nil // a timeout, or the connection went: send again
		}
		var ev wire.AckEvent
		if json.Unmarshal(m.Data, &ev) != nil || ev.ProducerSequence != seq {
			continue
		}
		switch ev.EventType {
		case wire.EventPersisted:
			return true, nil
		case wire.EventError:
			return false, fmt.Errorf("fragment %d refused: %s", seq, ev.Message)
		}
	}
	return false, nil
}

// Stored is one fragment as a server holds it.
type Stored struct {
	Number   string
	Origin   string // origin_fragment_number; "" when none
	Producer int64  // ns
	Size     int64
	Tags     []mkv.SimpleTag // the producer's, the origin_ ones left out
	Body     []byte          // the document without its Tags elements
}

// List lists every fragment of stream, sorted by number.
func List(ctx context.Context, c *sdk.Client, stream string) ([]sdk.Fragment, error) {
	var all []sdk.Fragment
	in := sdk.ListFragmentsInput{Stream: sdk.ByName(stream), MaxResults: 1000}
	for {
		page, next, err := c.ListFragments(ctx, in)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if next == "" {
			break
		}
		in.NextToken = next
	}
	slices.SortFunc(all, func(a, b sdk.Fragment) int {
		if len(a.FragmentNumber) != len(b.FragmentNumber) {
			return len(a.FragmentNumber) - len(b.FragmentNumber)
		}
		return strings.Compare(a.FragmentNumber, b.FragmentNumber)
	})
	return all, nil
}

// ReadAll reads every fragment of stream with its document.
func ReadAll(ctx context.Context, c *sdk.Client, stream string) ([]Stored, error) {
	list, err := List(ctx, c, stream)
	if err != nil {
		return nil, err
	}
	var out []Stored
	for i := 0; i < len(list); i += 500 {
		batch := list[i:min(i+500, len(list))]
		nums := make([]string, len(batch))
		for j, f := range batch {
			nums[j] = f.FragmentNumber
		}
		body, err := c.GetMediaForFragmentList(ctx, sdk.ByName(stream), nums)
		if err != nil {
			return nil, err
		}
		raw, err := io.ReadAll(body)
		body.Close()
		if err != nil {
			return nil, err
		}
		docs, err := splitDocuments(raw)
		if err != nil {
			return nil, err
		}
		if len(docs) != len(batch) {
			return nil, fmt.Errorf("%s: %d documents for %d fragments", stream, len(docs), len(batch))
		}
		for j, d := range docs {
			s := Stored{Number: batch[j].FragmentNumber, Producer: batch[j].ProducerTimestamp.UnixNano(), Size: batch[j].FragmentSizeInBytes}
			number := ""
			s.Tags, s.Origin, number, s.Body, err = cutTags(d)
			if err != nil {
				return nil, err
			}
			if number != s.Number {
				return nil, fmt.Errorf("%s: document %d is fragment %q, not %s", stream, j, number, s.Number)
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// splitDocuments cuts a GetMediaForFragmentList answer at each EBML header.
func splitDocuments(raw []byte) ([][]byte, error) {
	rd := mkv.NewReader(bytes.NewReader(raw))
	var starts []int64
	for {
		it, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if it.Kind == mkv.ItemEBMLHeader {
			starts = append(starts, it.Offset)
		}
	}
	docs := make([][]byte, len(starts))
	for i, s := range starts {
		end := int64(len(raw))
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		docs[i] = raw[s:end]
	}
	return docs, nil
}

// cutTags takes the Tags elements out of a document and returns the
// producer's tags, the origin and served fragment numbers, and the rest.
func cutTags(doc []byte) (tags []mkv.SimpleTag, origin, number string, body []byte, err error) {
	rd := mkv.NewReader(bytes.NewReader(doc))
	last := int64(0)
	for {
		it, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, "", "", nil, err
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
			case tg.Name == mkv.TagFragmentNumber:
				number = tg.Value
			case tg.Name == mkv.TagOriginServerTimestamp || strings.HasPrefix(tg.Name, "AWS_KINESISVIDEO_"):
			default:
				tags = append(tags, tg)
			}
		}
	}
	return tags, origin, number, append(body, doc[last:]...), nil
}

// Compare reads the edge's and the centre's copies of a stream and says
// what differs: an edge fragment missing at the centre or there twice,
// out of order, or with another producer time, other tags or other bytes;
// or a fragment at the centre that no edge fragment explains. It returns
// how many fragments the edge holds.
func Compare(ctx context.Context, edge, centre *sdk.Client, edgeStream, centreStream string) (int, error) {
	e, err := ReadAll(ctx, edge, edgeStream)
	if err != nil {
		return 0, fmt.Errorf("read the edge's %s: %w", edgeStream, err)
	}
	c, err := ReadAll(ctx, centre, centreStream)
	if err != nil {
		return 0, fmt.Errorf("read the centre's %s: %w", centreStream, err)
	}
	var problems []string
	seen := map[string]int{}
	for _, f := range c {
		seen[f.Origin]++
	}
	for o, n := range seen {
		if n > 1 {
			problems = append(problems, fmt.Sprintf("edge fragment %q is at the centre %d times", o, n))
		}
	}
	for _, f := range e {
		if seen[f.Number] == 0 {
			problems = append(problems, fmt.Sprintf("edge fragment %s is not at the centre", f.Number))
		}
	}
	if len(problems) == 0 && len(c) != len(e) {
		problems = append(problems, fmt.Sprintf("the centre holds %d fragments, the edge %d", len(c), len(e)))
	}
	if len(problems) == 0 {
		for i := range e {
			ef, cf := e[i], c[i]
			switch {
			case cf.Origin != ef.Number:
				problems = append(problems, fmt.Sprintf("centre fragment %d (%s) comes from edge fragment %q, not %s: out of order", i, cf.Number, cf.Origin, ef.Number))
			case cf.Producer != ef.Producer:
				problems = append(problems, fmt.Sprintf("fragment %s: producer time %d at the centre, %d at the edge", ef.Number, cf.Producer, ef.Producer))
			case !bytes.Equal(cf.Body, ef.Body):
				problems = append(problems, fmt.Sprintf("fragment %s: the document differs (%d bytes without tags at the centre, %d at the edge)", ef.Number, len(cf.Body), len(ef.Body)))
			case fmt.Sprint(cf.Tags) != fmt.Sprint(ef.Tags):
				problems = append(problems, fmt.Sprintf("fragment %s: tags %v at the centre, %v at the edge", ef.Number, cf.Tags, ef.Tags))
			}
		}
	}
	if len(problems) > 0 {
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("and %d more", len(problems)-10))
		}
		return len(e), errors.New(strings.Join(problems, "; "))
	}
	return len(e), nil
}
