package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
)

// Importing an MKV file (a GetMedia download, a recording). Each Cluster
// becomes one fragment, cut as PutMedia cuts its body, and is published on
// the server's bus under a dedupe key that the file decides: a producer id
// derived from the stream and the file's identity, and the Cluster's place
// in the file as its sequence. The store answers a fragment it already
// holds under that key PERSISTED, Duplicate, at any delay; so a re-run
// after a crash — even while the killed run's last fragments are still on
// the bus, not yet stored, which no look at the stream can see — stores
// nothing twice. PutMedia cannot give that: it makes a new producer id for
// every session. docs/IMPORT.md, "MKV files", is the user's account.

const (
	// A round is the fragments put on the bus before their verdicts are
	// awaited; those without PERSISTED go again, in order, under the same
	// keys. Its bytes are held for that.
	mkvRoundFragments = 128
	mkvRoundBytes     = 32 << 20
	// mkvMaxCluster bounds one Cluster in memory; the server's own limit
	// (50 MB by default) refuses a larger fragment with its code.
	mkvMaxCluster = 64 << 20
	// mkvAckTimeout is how long a fragment may go without a verdict before
	// it is sent again; mkvGiveUp how long a round may go without progress
	// before the import stops (a re-run resumes).
	mkvAckTimeout = 30 * time.Second
	mkvGiveUp     = 5 * time.Minute
	// mkvHeaderBytes is what a fragment's own headers take at most (its
	// message id, producer id, sequences).
	mkvHeaderBytes = 1 << 10
)

// importMKV puts an MKV file into stream, resuming what an earlier run of
// the same import stored.
func importMKV(cmd *cobra.Command, c *sdk.Client, path, stream string) error {
	if stream == "" {
		return usagef("import %s: --stream is required for an MKV file", path)
	}
	viaHTTP, _ := cmd.Flags().GetBool("http")
	var nurl string
	if !viaHTTP {
		var err error
		if nurl, err = natsURLFor(cmd); err != nil {
			return err
		}
	}
	ctx := cmd.Context()
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	producer, err := mkvImportID(f, st, stream)
	if err != nil {
		return err
	}
	info, err := c.DescribeStream(ctx, sdk.ByName(stream))
	switch {
	case errors.Is(err, sdk.ErrResourceNotFound):
		return fmt.Errorf("stream %s does not exist: create it (sensorium stream create %s --retention-hours N)", stream, stream)
	case err != nil:
		return err
	case info.DataRetentionInHours == 0:
		return fmt.Errorf("stream %s keeps no data (retention 0 hours): what is imported would reach live readers and be gone; raise its retention (sensorium stream update)", stream)
	}

	body := countingReader{r: f, n: new(atomic.Int64)}
	sp := &mkvSplitter{rd: mkv.NewReader(body, mkv.MaxElementSize(mkvMaxCluster))}
	first, err := sp.next()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: no fragment to store: the file holds no Cluster", path)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	// What the stream holds from the file's first Cluster on: a prefix of
	// the file's fragments (an earlier run) is skipped, anything else there
	// refused before a byte is sent.
	held := &heldLister{ctx: ctx, c: c, stream: stream, fromMS: first.tc,
		in: sdk.ListFragmentsInput{Stream: sdk.ByName(stream), Selector: "PRODUCER_TIMESTAMP", MaxResults: 1000,
			Start: time.UnixMilli(first.tc).Add(-sdk.MaxFragmentDurationLimit - time.Second), End: time.Unix(0, 1<<62)}}
	next, skipped, readErr, err := skipHeld(ctx, c, sp, held, first)
	if err != nil {
		return fmt.Errorf("import %s into %s: %w", path, stream, err)
	}
	if next == nil && readErr == nil {
		fmt.Fprintf(cmd.OutOrStdout(), "%s: %s already holds all %d fragments of this file (an earlier import): nothing to do\n", path, stream, skipped)
		return nil
	}
	if skipped > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s already holds the first %d fragments of this file (an earlier run): resuming after them\n", path, stream, skipped)
	}

	var sender interface {
		sendAll(*mkvSplitter, *mkvFragment) (sendErr, readErr error)
	}
	var tally *mkvTally
	if !viaHTTP {
		nc, err := nats.Connect(nurl, append(natsOptions(cmd), nats.Name("sensorium-import"), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))...)
		switch {
		case err != nil && (cmd.Flags().Changed("nats") || os.Getenv("SENSORIUM_NATS") != ""):
			return fmt.Errorf("connect to NATS at %s (the server's --nats address; set it with --nats, or put the file over HTTP with --http): %w", nurl, err)
		case err != nil:
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: the server's NATS at %s does not answer (%v): putting the file with PutMedia over HTTP instead (--http), under the same dedupe key\n", path, nurl, err)
			viaHTTP = true
		default:
			defer nc.Close()
			s, err := newMKVSender(ctx, nc, stream, producer)
			if err != nil {
				return err
			}
			defer s.close()
			sender, tally = s, &s.mkvTally
		}
	}
	if viaHTTP {
		s := &mkvHTTPSender{ctx: ctx, c: c, stream: stream, producer: producer}
		sender, tally = s, &s.mkvTally
	}
	imp := &importer{name: path, stream: stream, size: st.Size(), body: body}
	imp.live = term.IsTerminal(int(os.Stderr.Fd()))
	tally.progress = imp.show
	var sendErr error
	if next != nil {
		sendErr, readErr = sender.sendAll(sp, next)
	}
	imp.endLine()
	stored := func() string {
		return fmt.Sprintf("%d fragments of it are stored in %s", skipped+tally.persisted, stream)
	}
	switch {
	case sendErr != nil:
		return fmt.Errorf("import %s into %s: %w (%s)", path, stream, sendErr, stored())
	case errors.Is(readErr, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s ends inside a Cluster (%v): cut short? %s, up to the last whole Cluster; the rest is not", path, readErr, stored())
	case readErr != nil:
		return fmt.Errorf("%s: %w (%s, up to the Cluster before; the rest is not)", path, readErr, stored())
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: %d fragments (%s) stored in %s, producer time %s to %s", path, skipped+tally.persisted, humanBytes(st.Size()), stream,
		time.UnixMilli(first.tc).UTC().Format(time.RFC3339Nano), time.UnixMilli(tally.lastTC).UTC().Format(time.RFC3339Nano))
	if again := skipped + tally.duplicates; again > 0 {
		fmt.Fprintf(cmd.OutOrStdout(), "; resumed: %d were already stored by an earlier run", again)
	}
	fmt.Fprintln(cmd.OutOrStdout())
	return nil
}

// mkvImportID is the producer id of an import of a file into a stream:
// the same for every run of the same import, another for another file. It
// hashes the stream and the file's identity — its size, its modification
// time and its first and last MiB (all of it would cost a pass over the
// file before the first byte is sent) — as the table import does: an
// edited, copied or touched file is another file. (A truncated copy and the
// whole file are two files: the whole one resumes after what the truncated
// one stored by matching its frames, skipHeld.)
func mkvImportID(f *os.File, st os.FileInfo, stream string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "sensorium import mkv v1\x00%s\x00%d\x00%d\x00", stream, st.Size(), st.ModTime().UnixNano())
	buf := make([]byte, 1<<20)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	h.Write(buf[:n])
	if st.Size() > int64(len(buf)) {
		n, err = f.ReadAt(buf, st.Size()-int64(len(buf)))
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		h.Write(buf[:n])
	}
	return "import-mkv-" + hex.EncodeToString(h.Sum(nil)[:12]), nil
}

// skipHeld matches the file's fragments, from first, with what the stream
// holds from the file's start on: the leading fragments it holds at their
// producer times are skipped. The last of them must hold the same frames as
// the file's (track, time, key flag and bytes of each): a fragment of
// another file at the same time — a different recording, another version
// of the download — is not taken for this file's, and the import is
// refused instead, as it is when the stream holds other data in the file's
// range (a stream's time only goes forward). It returns the first fragment
// to send (nil when there is none), how many it skipped, and the error
// that ended reading the file, if it ended before its end.
func skipHeld(ctx context.Context, c *sdk.Client, sp *mkvSplitter, held *heldLister, first *mkvFragment) (next *mkvFragment, skipped int, readErr, err error) {
	next = first
	var last *mkvFragment // the last skipped
	var lastHeld heldFragment
	for next != nil {
		h, ok, err := held.peek()
		if err != nil {
			return nil, 0, nil, err
		}
		if !ok {
			break
		}
		if h.ms != next.tc {
			return nil, 0, nil, fmt.Errorf("the stream's fragments in this file's time range are not this file's from its fragment %d on (the stream holds number %s at %s, the file's fragment is at %s): "+
				"data from elsewhere, or this file's fragments stored past one the server refused; a stream's time only goes forward, so the file cannot go in among them: import it into another stream",
				next.seq, h.number, time.UnixMilli(h.ms).UTC().Format(time.RFC3339Nano), time.UnixMilli(next.tc).UTC().Format(time.RFC3339Nano))
		}
		held.advance()
		last, lastHeld = next, h
		skipped++
		next, err = sp.next()
		if err != nil {
			next = nil
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
		}
	}
	if last != nil {
		got, err := storedFrames(ctx, c, held.stream, lastHeld.number)
		if err != nil {
			return nil, 0, nil, err
		}
		if got != last.frames {
			return nil, 0, nil, fmt.Errorf("the stream already holds a fragment at %s, the time of this file's fragment %d, with other frames (number %s): "+
				"it holds another file's data in this file's time range; import it into another stream",
				time.UnixMilli(last.tc).UTC().Format(time.RFC3339Nano), last.seq, lastHeld.number)
		}
	}
	return next, skipped, readErr, nil
}

// storedFrames is the frame digest (frameDigest) of a stored fragment.
func storedFrames(ctx context.Context, c *sdk.Client, stream, number string) ([32]byte, error) {
	var sum [32]byte
	rc, err := c.GetMediaForFragmentList(ctx, sdk.ByName(stream), []string{number})
	if err != nil {
		return sum, fmt.Errorf("read fragment %s of %s: %w", number, stream, err)
	}
	defer rc.Close()
	rd := mkv.NewReader(rc, mkv.MaxElementSize(mkvMaxCluster))
	h := sha256.New()
	for {
		it, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return sum, fmt.Errorf("read fragment %s of %s: %w", number, stream, err)
		}
		if it.Kind == mkv.ItemBlock {
			frameDigest(h, &it)
		}
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// frameDigest adds one frame to a fragment's digest: what a reader of the
// stream gets of it.
func frameDigest(h hash.Hash, it *mkv.Item) {
	var b [25]byte
	binary.LittleEndian.PutUint64(b[0:], it.Block.Track)
	binary.LittleEndian.PutUint64(b[8:], uint64(it.Time))
	if it.Block.Keyframe {
		b[16] = 1
	}
	binary.LittleEndian.PutUint64(b[17:], uint64(len(it.Block.Data)))
	h.Write(b[:])
	h.Write(it.Block.Data)
}

// mkvFragment is one Cluster of the file as the fragment it becomes.
type mkvFragment struct {
	seq    uint64   // its producer sequence: the Cluster's place in the file, from 1
	tc     int64    // the Cluster's timecode (ms): the fragment's producer time
	data   []byte   // the fragment's MKV document
	frames [32]byte // frameDigest of its frames
	stored bool     // PERSISTED (the HTTP sender's bookkeeping)
}

// mkvSplitter cuts an MKV file into fragments as PutMedia cuts its body
// (internal/service/api/putmedia_read.go), so that a file imported and
// the same file put with PutMedia are stored alike: each Cluster, with
// the Info and Tracks before it and the Tags between it and the Cluster
// before (a GetMedia download's server tags among them, which the server
// maps to origin_ tags).
type mkvSplitter struct {
	rd                 *mkv.Reader
	info, tracks, tags []byte
	tagsDone           bool  // the next Tags element replaces tags instead of adding to them
	last               int64 // the previous Cluster's timecode
	seq                uint64
}

// next returns the next fragment; io.EOF after the last.
func (s *mkvSplitter) next() (*mkvFragment, error) {
	var tc int64
	var blocks []mkv.Block
	h := sha256.New()
	for {
		it, err := s.rd.Next()
		if err != nil {
			return nil, err
		}
		switch it.Kind {
		case mkv.ItemEBMLHeader:
			// A new document (GetMedia output is one per fragment): the tags
			// of the one before are not this one's.
			s.tags = s.tags[:0]
		case mkv.ItemInfo:
			if it.Info.TimecodeScale != mkv.DefaultTimecodeScale {
				return nil, fmt.Errorf("the Info at byte %d has TimecodeScale %d; an import needs 1000000 (1 ms), as GetMedia writes", it.Offset, it.Info.TimecodeScale)
			}
			s.info = mkv.AppendInfo(nil, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, MuxingApp: it.Info.MuxingApp, WritingApp: it.Info.WritingApp, Title: it.Info.Title})
		case mkv.ItemTracks:
			s.tracks = it.Raw
		case mkv.ItemTags:
			if s.tagsDone {
				s.tags, s.tagsDone = s.tags[:0], false
			}
			s.tags = append(s.tags, it.Raw...)
		case mkv.ItemClusterStart:
			tc, blocks = int64(it.Timecode), blocks[:0]
			h.Reset()
			if tc < s.last {
				return nil, fmt.Errorf("the Cluster at byte %d has timecode %d ms, earlier than the one before (%d ms): a stream's time only goes forward", it.Offset, tc, s.last)
			}
			s.last = tc
		case mkv.ItemBlock:
			b := *it.Block
			b.Data = bytes.Clone(b.Data) // the reader reuses its buffer
			blocks = append(blocks, b)
			frameDigest(h, &it)
		case mkv.ItemClusterEnd:
			s.tagsDone = true
			if s.info == nil || s.tracks == nil {
				return nil, fmt.Errorf("a Cluster before Info and Tracks (byte %d)", it.Offset)
			}
			s.seq++
			d := mkv.AppendEBMLHeader(nil, "matroska")
			d = mkv.AppendSegmentStart(d)
			d = append(append(append(d, s.info...), s.tracks...), s.tags...)
			d = mkv.AppendCluster(d, uint64(tc), blocks)
			f := &mkvFragment{seq: s.seq, tc: tc, data: d}
			copy(f.frames[:], h.Sum(nil))
			return f, nil
		}
	}
}

// mkvSender puts fragments on the bus under the import's key and collects
// the store's verdicts.
type mkvSender struct {
	ctx      context.Context
	js       jetstream.JetStream
	subj     wire.Subjects
	stream   string
	producer string
	maxChunk int // the largest message payload: a larger fragment goes as chunks (wire.SplitFragment)
	acks     chan wire.AckEvent
	unsub    func()
	// base makes this run's message ids its own: the bus would drop a
	// re-send under a killed run's id (its duplicate window, 2 min) without
	// the store hearing of it, and no verdict would come.
	base     int
	sends    map[uint64]int
	runFirst uint64 // the sequence of this run's first fragment

	mkvTally
}

func newMKVSender(ctx context.Context, nc *nats.Conn, stream, producer string) (*mkvSender, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(mkvAckTimeout), jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return nil, fmt.Errorf("NATS JetStream: %w", err)
	}
	s := &mkvSender{ctx: ctx, js: js, subj: wire.NewSubjects(""), stream: stream, producer: producer,
		maxChunk: wire.MaxChunkPayload(nc.MaxPayload(), mkvHeaderBytes), acks: make(chan wire.AckEvent, 4096),
		base: int(time.Now().UnixMilli()%1_000_000_000) * 1000, sends: map[uint64]int{}}
	sub, err := nc.Subscribe(s.subj.Ack(stream), func(m *nats.Msg) {
		var ev wire.AckEvent
		if json.Unmarshal(m.Data, &ev) != nil || ev.ProducerID != producer {
			return
		}
		select {
		case s.acks <- ev:
		default: // full: the fragment's re-send after mkvAckTimeout gets it again
		}
	})
	if err == nil {
		err = nc.Flush() // subscribed before the first fragment goes
	}
	if err != nil {
		return nil, fmt.Errorf("subscribe to the acknowledgements of %s: %w", stream, err)
	}
	s.unsub = func() { _ = sub.Unsubscribe() }
	return s, nil
}

func (s *mkvSender) close() { s.unsub() }

// sendAll sends f and the rest of the file's fragments, in rounds. It
// returns why sending stopped (a refusal, the server gone too long) and,
// apart, why reading the file did (nil at its end): the fragments read
// before a bad one are sent all the same.
func (s *mkvSender) sendAll(sp *mkvSplitter, f *mkvFragment) (sendErr, readErr error) {
	next := f
	for next != nil {
		var round []*mkvFragment
		size := 0
		for next != nil && len(round) < mkvRoundFragments && (len(round) == 0 || size+len(next.data) <= mkvRoundBytes) {
			round, size = append(round, next), size+len(next.data)
			g, err := sp.next()
			next = g
			if err != nil && !errors.Is(err, io.EOF) {
				readErr = err
			}
		}
		if err := s.round(round); err != nil {
			return err, readErr
		}
	}
	return nil, readErr
}

// round puts fragments on the bus, each naming the one before it as its
// predecessor (Sensorium-Producer-Prev: after a reconnection the NATS
// client may send a later one first, which the store then answers RETRY
// instead of storing it out of order), and waits for their verdicts;
// those without PERSISTED go again, in order, under the same keys, until
// every one is stored or the server refuses one.
func (s *mkvSender) round(frags []*mkvFragment) error {
	if s.runFirst == 0 {
		s.runFirst = frags[0].seq
	}
	rd := &mkvRound{s: s, stored: map[uint64]bool{}}
	left := frags
	since := time.Now()
	for len(left) > 0 {
		rd.open = map[uint64]*mkvFragment{}
		var futs []jetstream.PubAckFuture
		for _, f := range left {
			if rd.drain(); rd.refused != nil {
				// Nothing more after a refused one: the store would keep
				// those behind it (it does not hold a fragment back for a
				// refused predecessor), past the hole.
				break
			}
			// The run's first fragment names none: what comes before it was
			// stored by an earlier run, perhaps under another file's id, and
			// nothing of this run can overtake it.
			prev := f.seq - 1
			if f.seq == s.runFirst {
				prev = 0
			}
			parts, headers := wire.SplitFragment(wire.FragmentHeader(s.stream, s.producer, f.seq, prev, s.attempt(f.seq)), f.data, s.maxChunk)
			sent := true
			for k := range parts {
				fut, err := s.js.PublishMsgAsync(&nats.Msg{Subject: s.subj.Frag(s.stream), Data: parts[k], Header: headers[k]})
				if err != nil {
					sent = false // not taken: it goes again with the rest
					break
				}
				futs = append(futs, fut)
			}
			if sent {
				rd.open[f.seq] = f
			}
		}
		for _, fut := range futs {
			select {
			case <-fut.Ok():
			case <-fut.Err(): // not on the bus: no verdict will come, and it goes again
			case <-s.ctx.Done():
				return s.ctx.Err()
			}
		}
		if err := rd.await(); err != nil {
			return err
		}
		if err := rd.refusal(); err != nil {
			return err
		}
		rest := left[:0:0]
		for _, f := range left {
			if !rd.stored[f.seq] {
				rest = append(rest, f)
			}
		}
		if len(rest) < len(left) {
			since = time.Now()
		} else if time.Since(since) > mkvGiveUp {
			return fmt.Errorf("no PERSISTED from the server for %s (fragment %d, at %s, and %d after it); a re-run resumes",
				mkvGiveUp, rest[0].seq, time.UnixMilli(rest[0].tc).UTC().Format(time.RFC3339Nano), len(rest)-1)
		}
		left = rest
	}
	return nil
}

// mkvRound is one round's verdicts.
type mkvRound struct {
	s       *mkvSender
	open    map[uint64]*mkvFragment // sent in this pass, no verdict yet
	stored  map[uint64]bool         // PERSISTED, in any pass of the round
	refused *mkvFragment            // the first the server refused
	why     wire.AckEvent           // and its ERROR
}

// drain handles the verdicts that have come, without waiting.
func (rd *mkvRound) drain() {
	for {
		select {
		case ev := <-rd.s.acks:
			rd.handle(ev)
		default:
			return
		}
	}
}

// await handles verdicts until every fragment sent has one or
// mkvAckTimeout passes (those still open then go again).
func (rd *mkvRound) await() error {
	timeout := time.NewTimer(mkvAckTimeout)
	defer timeout.Stop()
	for len(rd.open) > 0 {
		select {
		case <-rd.s.ctx.Done():
			return rd.s.ctx.Err()
		case <-timeout.C:
			return nil
		case ev := <-rd.s.acks:
			rd.handle(ev)
		}
	}
	return nil
}

func (rd *mkvRound) handle(ev wire.AckEvent) {
	s := rd.s
	f := rd.open[ev.ProducerSequence]
	if f == nil {
		return // an earlier send's second answer
	}
	switch {
	case ev.EventType == wire.EventPersisted:
		delete(rd.open, f.seq)
		rd.stored[f.seq] = true
		s.stored(f.tc, ev.Duplicate)
	case ev.EventType == wire.EventError && !ev.Retriable:
		delete(rd.open, f.seq)
		if rd.refused == nil || f.seq < rd.refused.seq {
			rd.refused, rd.why = f, ev
		}
	case ev.EventType == wire.EventRetry:
		delete(rd.open, f.seq) // its predecessor had not arrived: it goes again after it
	}
}

// refusal is the error of a round in which the server refused a
// fragment, saying how many after it the server stored all the same
// (those already on their way): the stream then lacks that one for good,
// since the store refuses a fragment older than its newest.
func (rd *mkvRound) refusal() error {
	f := rd.refused
	if f == nil {
		return nil
	}
	after := 0
	for seq := range rd.stored {
		if seq > f.seq {
			after++
		}
	}
	err := fmt.Errorf("the server refused the fragment of the Cluster at %s (the file's fragment %d): %s (%s %d)",
		time.UnixMilli(f.tc).UTC().Format(time.RFC3339Nano), f.seq, rd.why.Message, rd.why.ErrorCode, int(rd.why.ErrorID))
	if after > 0 {
		err = fmt.Errorf("%w; the %d fragments after it that were already on their way are stored, so the stream lacks that one", err, after)
	}
	return err
}

// attempt is the attempt number of the next send of seq: this run's own.
func (s *mkvSender) attempt(seq uint64) int {
	n := s.sends[seq]
	s.sends[seq]++
	return s.base + n + 1
}

// importer shows an import's progress line while stderr is a terminal.
type importer struct {
	name, stream string
	size         int64 // the file's size; 0 when unknown
	body         countingReader
	live         bool // stderr is a terminal: the progress line is redrawn
	shown        time.Time
}

func (imp *importer) show(stored int) {
	if imp.live && time.Since(imp.shown) >= 100*time.Millisecond {
		imp.shown = time.Now()
		read := humanBytes(imp.body.n.Load())
		if imp.size > 0 {
			read += " of " + humanBytes(imp.size)
		}
		fmt.Fprintf(os.Stderr, "\rimport %s → %s: %s read, %d fragments stored\x1b[K", imp.name, imp.stream, read, stored)
	}
}

// endLine clears the progress line, if one was drawn.
func (imp *importer) endLine() {
	if imp.live && !imp.shown.IsZero() {
		fmt.Fprint(os.Stderr, "\r\x1b[K")
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
