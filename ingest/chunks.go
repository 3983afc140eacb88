package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
)

// Fragments larger than a bus message arrive as chunk messages
// (wire.SplitFragment; docs/NATS.md, "Fragments larger than a message").
// The ingester holds a fragment's chunks unacknowledged on the bus — the bus
// keeps an unacknowledged message, so a crash loses none — and keeps their
// bytes in memory up to Options.ChunkMemory; past it (many large fragments
// interleaved) it remembers only where a chunk is and reads it back from the
// bus when the fragment's last chunk comes. The fragment then goes through
// the same checks and the same one store append as any other: it is stored
// whole or not at all, numbered by its last chunk. The ingester's memory for
// this is ChunkMemory and one fragment being put together (the limit, 50 MB
// by default), whatever the number or size of the fragments on their way.

// defaultChunkPatience is how long the chunks of a fragment whose last chunk has
// not come are held after the newest of them arrived: the SDK and PutMedia
// publish a fragment's chunks one after the other, so a fragment still
// incomplete after this was cut short by its producer's crash. Its chunks
// are then dropped from the bus (a re-send comes with chunks of its own).
const defaultChunkPatience = 2 * time.Minute

// chunkKey names a fragment by its producer key.
type chunkKey struct {
	stream, producer string
	seq              uint64
	attempt          string // the message id's re-send suffix: another attempt is another set of chunks
}

// heldFragment is the chunks of one fragment held so far.
type heldFragment struct {
	count, size int
	parts       map[int]heldChunk // by index
	lastAdded   time.Time         // by the ingester's clock
}

type heldChunk struct {
	seq  uint64
	data []byte // nil when ChunkMemory was full: read back from the bus
	// reply is the delivery's acknowledgement subject ("" when read straight
	// from the stream by catchUp). Not the message itself: that would keep
	// every held chunk's bytes in memory until its fragment is joined.
	reply string
}

// ackChunk answers one held chunk's delivery: ack ("+ACK"), term ("+TERM")
// or in progress ("+WPI"), as jetstream.Msg's methods would.
func (in *Ingester) ackChunk(c heldChunk, what string) {
	if c.reply == "" || in.opts.NC == nil {
		return
	}
	if err := in.opts.NC.Publish(c.reply, []byte(what)); err != nil {
		in.log.Warn("ingest: ack a chunk", "seq", c.seq, "ack", what, "err", err)
	}
}

func replyOf(m jetstream.Msg) string {
	if m == nil {
		return ""
	}
	return m.Reply()
}

// chunkInfo is what a last chunk carries into apply.
type chunkInfo struct {
	wire.Chunk
	parts []heldChunk // indexes 1..count-1, in order; a nil m where one is missing
	held  *heldFragment
}

func keyOf(name string, m *busMsg) (chunkKey, bool) {
	pid, pseq := producerKey(m.header)
	if pid == "" {
		return chunkKey{}, false
	}
	id, _, _ := cutLast(m.header.Get(wire.HeaderMsgID), '#') // the chunk's index
	_, attempt, _ := cutLast(id, ':')
	return chunkKey{stream: name, producer: pid, seq: pseq, attempt: attempt}, true
}

// cutLast splits s at its last sep.
func cutLast(s string, sep byte) (before, after string, found bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// sortChunks handles the chunk messages of a batch before it is applied: a
// chunk that is not its fragment's last is held (results[i].held) or, when
// it cannot belong to anything the store will take, answered at once; a
// last chunk is given the places of the others (busMsg.chunk) and applied
// as its fragment. It runs on the ingester's goroutine.
func (in *Ingester) sortChunks(ctx context.Context, batch []*busMsg, results []result) {
	for i, m := range batch {
		if _, ok := m.header[wire.HeaderChunk]; !ok {
			continue
		}
		name, marker, ok := in.opts.Subjects.ParseBus(m.subject)
		if !ok || marker {
			continue // the ordinary path refuses it
		}
		c, _, err := wire.ChunkOf(m.header)
		key, keyed := keyOf(name, m)
		switch {
		case m.stale && c.Last():
			continue // applied before: acknowledged as any other
		case !m.stale && !c.Last() && in.notOurs(ctx, name, m.seq):
			// A cluster node that does not hold the stream (or not yet):
			// neither held nor answered; the last chunk gets the verdict.
			results[i] = result{stream: name}
			m.stale = true
			continue
		case err != nil || !keyed:
			if err == nil {
				err = errors.New("a chunked fragment needs " + wire.HeaderProducerID + " and " + wire.HeaderProducerSeq)
			}
			if m.stale {
				continue
			}
			if in.notOurs(ctx, name, m.seq) {
				results[i] = result{stream: name}
				m.stale = true
				continue
			}
			results[i] = in.refuseChunk(name, m, c, wire.ErrInvalidMKVData, err.Error())
			m.stale = true // answered: not applied
			continue
		case c.Size > in.opts.Limits.MaxFragmentSize:
			if m.stale {
				continue
			}
			results[i] = result{stream: name, term: true}
			if c.Last() && !in.notOurs(ctx, name, m.seq) {
				results[i] = in.refuseChunk(name, m, c, wire.ErrMaxFragmentSize,
					fmt.Sprintf("fragment is %d bytes; the limit is %d", c.Size, in.opts.Limits.MaxFragmentSize))
			}
			in.release(key)
			m.stale = true
			continue
		}
		h := in.held[key]
		if c.Last() {
			in.release(key)
			ci := &chunkInfo{Chunk: c, held: h, parts: make([]heldChunk, c.Count-1)}
			if h != nil && h.count == c.Count && h.size == c.Size {
				for idx, p := range h.parts {
					if idx < c.Count {
						ci.parts[idx-1] = p
					}
				}
			}
			m.chunk = ci
			continue
		}
		if h == nil {
			if m.stale {
				continue // its fragment was stored or given up: acknowledged as any other
			}
			if in.seen(name, key.producer, key.seq) {
				// A chunk of a fragment the store already has (its last chunk
				// was applied and the process died before this one was
				// acknowledged): nothing to hold it for.
				results[i] = result{stream: name}
				m.stale = true
				continue
			}
			h = &heldFragment{count: c.Count, size: c.Size, parts: map[int]heldChunk{}}
			in.held[key] = h
		}
		if h.count != c.Count || h.size != c.Size {
			// The same fragment cut another way: it cannot be put together.
			if !m.stale {
				results[i] = result{stream: name, term: true}
			}
			m.stale = true
			continue
		}
		part := heldChunk{seq: m.seq, reply: replyOf(m.m)}
		switch old, again := h.parts[c.Index]; {
		case again && old.data != nil:
			part.data = old.data // a redelivery of a chunk held with its bytes
		case in.heldBytes+len(m.data) <= in.opts.ChunkMemory:
			part.data = m.data
			in.heldBytes += len(m.data)
		}
		h.parts[c.Index] = part
		if !m.stale {
			h.lastAdded = in.opts.Now()
		}
		results[i] = result{stream: name, held: true}
		m.stale = true // not applied on its own
	}
}

// notOurs reports whether a cluster node leaves the stream's messages to
// other replicas (Replication.Admit says skip or unknown).
func (in *Ingester) notOurs(ctx context.Context, name string, seq uint64) bool {
	rep := in.opts.Replication
	return rep != nil && rep.Admit(ctx, in.opts.Shard, name, seq) != AdmitApply
}

func (in *Ingester) refuseChunk(name string, m *busMsg, c wire.Chunk, code wire.ErrorCode, msg string) result {
	ev := wire.ErrorEvent(code, 0, msg)
	ev.ProducerID, ev.ProducerSequence = producerKey(m.header)
	if ev.ProducerID != "" {
		in.rememberRefused(name, ev.ProducerID, ev.ProducerSequence)
	}
	return result{stream: name, event: &ev, term: true}
}

// assemble reads the chunks of m's fragment back from the bus and returns
// the fragment's bytes, or the result to answer when they cannot all be had
// (then the producer is asked to send the fragment again).
func (in *Ingester) assemble(ctx context.Context, name string, m *busMsg) ([]byte, *result) {
	ci := m.chunk
	retry := func(why string) ([]byte, *result) {
		pid, pseq := producerKey(m.header)
		prev, _ := strconv.ParseUint(m.header.Get(wire.HeaderProducerPrev), 10, 64)
		in.stats.Retries.Add(1)
		in.log.Warn("ingest: a chunked fragment cannot be put together; its producer is asked to send it again", "stream", name, "producer", pid, "sequence", pseq, "why", why)
		ev := wire.AckEvent{EventType: wire.EventRetry, ProducerID: pid, ProducerSequence: pseq, After: prev,
			Message: fmt.Sprintf("fragment %d: %s; send it again", pseq, why)}
		return nil, &result{stream: name, event: &ev, term: true}
	}
	if in.opts.Stream == nil {
		return retry("this store replica cannot read chunks back from the bus")
	}
	// One buffer, kept: a fresh one of tens of MB per fragment cost more in
	// page faults and clearing than the copy into it (a fifth of the
	// server's CPU at 45 MiB fragments). ParseFragment copies out of it.
	if cap(in.assembleBuf) < ci.Size {
		in.assembleBuf = make([]byte, 0, ci.Size)
	}
	buf := in.assembleBuf[:0]
	for idx, p := range ci.parts {
		if p.seq == 0 {
			return retry(fmt.Sprintf("chunk %d of %d did not arrive before the last", idx+1, ci.Count))
		}
		data := p.data
		if data == nil {
			raw, err := in.getMsg(ctx, p.seq)
			if err != nil {
				return retry(fmt.Sprintf("chunk %d of %d (bus message %d) cannot be read: %v", idx+1, ci.Count, p.seq, err))
			}
			data = raw.Data
		}
		if len(buf)+len(data) > ci.Size {
			return retry(fmt.Sprintf("its chunks add up to more than the %d bytes it declares", ci.Size))
		}
		buf = append(buf, data...)
	}
	if len(buf)+len(m.data) != ci.Size {
		return retry(fmt.Sprintf("its chunks add up to %d bytes, not the %d it declares", len(buf)+len(m.data), ci.Size))
	}
	return append(buf, m.data...), nil
}

// expireChunks drops the chunks of fragments whose last chunk has not come
// within Options.ChunkPatience of their newest: they are terminated on the bus, so
// that they neither hold its space nor come again. It runs on the
// ingester's goroutine.
func (in *Ingester) expireChunks(mayExpire bool) {
	now := in.opts.Now()
	for k, h := range in.held {
		if !mayExpire || now.Sub(h.lastAdded) < in.opts.ChunkPatience {
			// Still waited for: keep the bus from delivering them again
			// after its ack wait (they would only come back to be held).
			for _, p := range h.parts {
				in.ackChunk(p, "+WPI")
			}
			continue
		}
		in.release(k)
		in.stats.ChunksAbandoned.Add(int64(len(h.parts)))
		in.log.Warn("ingest: dropping the chunks of a fragment whose last chunk never came (its producer stopped part way; a re-send brings chunks of its own)",
			"stream", k.stream, "producer", k.producer, "sequence", k.seq, "chunks", len(h.parts), "of", h.count)
		for _, p := range h.parts {
			in.ackChunk(p, "+TERM")
		}
	}
}

// release forgets a fragment's held chunks (their bytes stay with whoever
// still has them: a last chunk's chunkInfo until its batch is done).
func (in *Ingester) release(k chunkKey) {
	if h := in.held[k]; h != nil {
		for _, p := range h.parts {
			in.heldBytes -= len(p.data)
		}
		delete(in.held, k)
	}
}
