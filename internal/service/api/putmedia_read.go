package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/mkv"
)

// bodyReader remembers the first error of the request body other than its
// end, so that a failed read is told apart from bad MKV.
type bodyReader struct {
	r    io.Reader
	err  error
	last *atomic.Int64 // unix ns of the latest bytes
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.last.Store(time.Now().UnixNano())
	}
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// fragmentHeaderBytes is what a PutMedia fragment's own headers take at most
// (FragmentHeader with a session's producer id).
const fragmentHeaderBytes = 1 << 10

// blockOverhead is what a SimpleBlock adds to its frame in a cluster, at
// most: the element's id and size, the track number, timecode and flags.
const blockOverhead = 16

// run reads the MKV body cluster by cluster and publishes each as a fragment,
// then waits for the fragments still on their way to be PERSISTED.
//
// ctx is the request's, which ends when the client goes away, even if it
// sent its whole body first: ffmpeg's HTTP output closes without reading the
// acknowledgements, which resets the connection and cancels ctx while its
// last clusters are still being read. A cluster read in full is published
// all the same (pub), and the events are still written as far as they go.
func (s *putMediaSession) run(ctx context.Context, body io.Reader) {
	pub := context.WithoutCancel(ctx)
	src := &bodyReader{r: body, last: &s.lastRead}
	maxCluster := s.a.opts.MaxFragmentSize
	rd := mkv.NewReader(src, mkv.MaxElementSize(int64(maxCluster)))
	// A cluster larger than a bus message is gathered under one of the
	// server's few large-cluster slots (Options.MaxLargeClusters).
	oneMessage := wire.MaxChunkPayload(s.a.opts.NATS.MaxPayload(), fragmentHeaderBytes)
	var clusterBytes int
	large := false
	release := func() {
		if large {
			<-s.a.largeClusters
			large = false
		}
	}
	defer release()
	var info, tracks, tags []byte
	tagsDone := false // the next Tags element replaces tags instead of adding to them
	var blocks []mkv.Block
	var tc int64
	last := int64(-1) // the previous cluster's timecode
	docClusters := 0  // Clusters of the current document so far
	seq := s.firstSeq - 1
	for {
		it, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			code, msg := wire.ErrInvalidMKVData, err.Error()
			switch {
			case src.err != nil && time.Now().After(s.deadline):
				code, msg = wire.ErrMaxConnectionDuration, s.durationMessage()
			case src.err != nil: // the body itself failed: the connection, or a signed hash that does not match
				code, msg = wire.ErrStreamRead, "reading the request body: "+src.err.Error()
			case errors.Is(err, mkv.ErrTooLarge):
				code = wire.ErrMaxFragmentSize
			}
			s.fail(ctx, code, tc, msg)
			return
		}
		switch it.Kind {
		case mkv.ItemEBMLHeader:
			// A new document (GetMedia output is one per fragment): the tags
			// of the one before, such as its read's continuation token, are
			// not this one's.
			tags = tags[:0]
			docClusters = 0
		case mkv.ItemInfo:
			if it.Info.TimecodeScale != mkv.DefaultTimecodeScale {
				s.fail(ctx, wire.ErrInvalidMKVData, 0, "TimecodeScale must be 1000000 (1 ms)")
				return
			}
			if s.fragmentDocs {
				info = it.Raw // the document is the fragment: its Duration is the fragment's
				break
			}
			// A recording's Info may say its whole length (ffmpeg -t, or a
			// Matroska file copied), which would be each fragment's length:
			// a fragment's Info keeps only what holds for the fragment.
			info = mkv.AppendInfo(nil, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, MuxingApp: it.Info.MuxingApp, WritingApp: it.Info.WritingApp, Title: it.Info.Title})
		case mkv.ItemTracks:
			tracks = it.Raw
		case mkv.ItemTags:
			// Every Tags element between two clusters is the next one's
			// (GetMedia output has the producer's and the server's); with none
			// new, a cluster keeps the tags of the one before.
			if tagsDone {
				tags, tagsDone = tags[:0], false
			}
			tags = append(tags, it.Raw...)
		case mkv.ItemClusterStart:
			tc, blocks, clusterBytes = int64(it.Timecode)+s.startMS, blocks[:0], 0
			if docClusters++; docClusters > 1 && s.fragmentDocs {
				s.fail(ctx, wire.ErrInvalidMKVData, tc, headerDocuments+" is fragments, but a document has a second Cluster: each document must be one fragment")
				return
			}
			if time.Now().After(s.deadline) {
				// Ended before this cluster: nothing of it was taken, so the
				// producer re-sends it whole in its next session.
				s.fail(ctx, wire.ErrMaxConnectionDuration, tc, s.durationMessage())
				return
			}
			if tc < last {
				// Refused here, before it reaches the bus, so that the session
				// ends at it (the store would refuse it too, but only after the
				// clusters behind it were on their way).
				s.fail(ctx, wire.ErrFragmentTimecodeLesser, tc, "the cluster timecode is earlier than the previous one")
				return
			}
			last = tc
			s.send(wire.AckEvent{EventType: wire.EventBuffering, FragmentTimecode: tc})
		case mkv.ItemBlock:
			clusterBytes += len(it.Block.Data) + blockOverhead
			if clusterBytes > maxCluster {
				s.fail(ctx, wire.ErrMaxFragmentSize, tc, fmt.Sprintf("the cluster is over %d bytes, the largest fragment this server takes; close clusters sooner", maxCluster))
				return
			}
			if !large && clusterBytes > oneMessage {
				select {
				case s.a.largeClusters <- struct{}{}:
					large = true
				case <-ctx.Done():
					s.fail(ctx, wire.ErrStreamRead, tc, "the connection ended while the cluster waited for memory: "+ctx.Err().Error())
					return
				}
			}
			b := *it.Block
			b.Data = append([]byte(nil), b.Data...) // the reader reuses its buffer
			blocks = append(blocks, b)
		case mkv.ItemClusterEnd:
			tagsDone = true
			if info == nil || tracks == nil {
				s.fail(ctx, wire.ErrInvalidMKVData, tc, "a Cluster before Info and Tracks")
				return
			}
			seq++
			frag := mkv.AppendEBMLHeader(nil, "matroska")
			frag = mkv.AppendSegmentStart(frag)
			frag = append(append(append(frag, info...), tracks...), tags...)
			frag = mkv.AppendCluster(frag, uint64(tc), blocks)
			clear(blocks) // their bytes are in frag now: let a large cluster's go
			err := s.publish(pub, seq, tc, frag)
			frag = nil
			release()
			if err != nil {
				s.fail(ctx, wire.ErrInternal, tc, "the bus did not take the fragment: "+err.Error())
				return
			}
			if s.hasFailed() {
				// An ERROR ends the session, as the seed service does, once the
				// fragments already on their way have their events.
				s.waitPersisted(ctx, 30*time.Second)
				return
			}
		}
	}
	s.waitPersisted(ctx, 30*time.Second)
}

func (s *putMediaSession) durationMessage() string {
	return "the session reached its maximum duration of " + s.a.opts.MaxPutMediaDuration.String() + "; reconnect to go on"
}

// publish puts one fragment on the bus as the SDK does (message id, producer
// id, sequence, predecessor) and answers RECEIVED once the bus has it. The
// session lock is held meanwhile so that the store's PERSISTED, which may
// come back before the publish acknowledgement, is written after RECEIVED.
func (s *putMediaSession) publish(ctx context.Context, seq uint64, tc int64, frag []byte) error {
	// The session's first cluster names no predecessor: what came before
	// it, if anything, was a session before this one, which the producer
	// has seen stored (or the store answers its re-sends as duplicates).
	prev := seq - 1
	if seq == s.firstSeq {
		prev = 0
	}
	header := wire.FragmentHeader(s.stream, s.producer, seq, prev, s.attempt)
	parts, headers := wire.SplitFragment(header, frag, wire.MaxChunkPayload(s.a.opts.NATS.MaxPayload(), fragmentHeaderBytes))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open[seq] = true
	// A second per MiB besides the 10 s, for a large cluster's chunks.
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second+time.Duration(len(frag))*time.Second/(1<<20))
	defer cancel()
	for k, part := range parts {
		if _, err := s.a.js.PublishMsg(pctx, &nats.Msg{Subject: s.a.opts.Subjects.Frag(s.stream), Data: part, Header: headers[k]}); err != nil {
			delete(s.open, seq)
			return err
		}
	}
	s.writeLocked(wire.AckEvent{EventType: wire.EventReceived, FragmentTimecode: tc, ProducerID: s.eventProducer(), ProducerSequence: seq})
	return nil
}

func (s *putMediaSession) hasFailed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// waitPersisted waits until every published fragment has its terminal event.
func (s *putMediaSession) waitPersisted(ctx context.Context, limit time.Duration) {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		n := len(s.open)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-s.persist:
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		}
	}
}

// fail ends the session with an ERROR event, after the events of the
// fragments already on their way: nothing PERSISTED goes unreported, and the
// ERROR is the last event.
func (s *putMediaSession) fail(ctx context.Context, code wire.ErrorCode, tc int64, msg string) {
	s.waitPersisted(ctx, 30*time.Second)
	s.errorEvent(code, tc, msg)
}
