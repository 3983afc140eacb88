// Package wire holds the bus contract that producers and the server share: NATS
// subject names, message headers, the acknowledgement event and its error codes.
//
// It is the one place these names are spelled, so that the SDK (which must not
// import server packages) and the ingest path cannot drift apart. The same layout
// is documented for non-Go clients in docs/NATS.md; a test checks the two agree.
//
// It owns names and shapes only: no I/O, no NATS connection, not even the NATS
// client's types, so that packages which need only the names (query) do not
// link the client. The HTTP API's contract is package httpwire's.
package wire

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// DefaultPrefix is the first token of every Sensorium subject.
const DefaultPrefix = "sensorium"

// Subject kinds: the second token of a subject.
const (
	KindFrag = "frag" // JetStream: one message per fragment (the ingest bus)
	KindLive = "live" // core NATS: one message per frame, as frames are made
	KindAck  = "ack"  // core NATS: JSON AckEvent per fragment and state
)

// SubjectToken turns a stream name into its subject token. Stream names may hold
// '.', which NATS reads as a token separator, so each '.' becomes '~' (a character
// stream names cannot hold, so the mapping is reversible).
func SubjectToken(stream string) string {
	return strings.ReplaceAll(stream, ".", "~")
}

// StreamFromToken reverses SubjectToken.
func StreamFromToken(token string) string {
	return strings.ReplaceAll(token, "~", ".")
}

// Subjects names the subjects of one prefix.
type Subjects struct {
	Prefix string
	// Shards is how many JetStream streams the bus is cut into (a cluster's;
	// docs/CLUSTER.md, "The bus"). 0 or 1: one bus stream that takes
	// Frag subjects as they are. More: producers still publish on Frag
	// subjects, and the NATS server maps each to its shard's subject
	// (ShardMapping), so that one stream's fragments stay on one shard, in
	// order.
	Shards int
}

// NewSubjects returns the subjects under prefix, or under DefaultPrefix when it is empty.
func NewSubjects(prefix string) Subjects {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return Subjects{Prefix: prefix}
}

// Frag is the JetStream subject a stream's fragments are published to.
func (s Subjects) Frag(stream string) string { return s.subject(KindFrag, stream) }

// Live is the core NATS subject a stream's frames are published to.
func (s Subjects) Live(stream string) string { return s.subject(KindLive, stream) }

// Ack is the core NATS subject a stream's acknowledgement events are published to.
func (s Subjects) Ack(stream string) string { return s.subject(KindAck, stream) }

// FragWildcard matches every stream's fragments: the bus stream's subject filter.
func (s Subjects) FragWildcard() string { return s.Prefix + "." + KindFrag + ".>" }

// BusStream is the name of the JetStream stream that carries fragments
// (of the unsharded bus; BusShard names a shard's).
func (s Subjects) BusStream() string {
	return strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(s.Prefix)) + "_FRAG"
}

// KindBus is the second token of a shard's subjects.
const KindBus = "bus"

// Sharded reports whether the bus is cut into several streams.
func (s Subjects) Sharded() bool { return s.Shards > 1 }

// BusShard is the name of shard k's JetStream stream (BusStream when the
// bus is not sharded).
func (s Subjects) BusShard(k int) string {
	if !s.Sharded() {
		return s.BusStream()
	}
	return s.BusStream() + "_" + strconv.Itoa(k)
}

// ShardWildcard is the subject filter of shard k's stream.
func (s Subjects) ShardWildcard(k int) string {
	if !s.Sharded() {
		return s.FragWildcard()
	}
	return s.Prefix + "." + KindBus + "." + strconv.Itoa(k) + ".>"
}

// ShardMapping is the NATS subject mapping that sends each Frag subject to
// its shard: source and destination as nats-server's `mappings` take them.
func (s Subjects) ShardMapping() (src, dst string) {
	return s.Prefix + "." + KindFrag + ".*",
		s.Prefix + "." + KindBus + ".{{partition(" + strconv.Itoa(s.Shards) + ",1)}}.{{wildcard(1)}}"
}

// ShardOf is the shard of a stream: nats-server's partition function (FNV-1a
// of the subject token, modulo the shard count), so that the server's
// mapping and this agree (TestShardOfMatchesNATS).
func (s Subjects) ShardOf(stream string) int {
	if !s.Sharded() {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(SubjectToken(stream)))
	return int(h.Sum32() % uint32(s.Shards))
}

// markerToken ends the subject of a stream's creation marker.
const markerToken = "created"

// Marker is the bus subject of a stream's creation marker: the server's own
// message, published when the stream is created in a cluster, so that each
// store replica meets it before the stream's first fragment (a producer,
// allowed Frag subjects only, cannot publish it).
func (s Subjects) Marker(stream string) string {
	if !s.Sharded() {
		return s.Frag(stream) + "." + markerToken
	}
	return s.Prefix + "." + KindBus + "." + strconv.Itoa(s.ShardOf(stream)) + "." + SubjectToken(stream) + "." + markerToken
}

// StreamOfFrag returns the stream name of a fragment subject, or false when the
// subject is not one. A shard's subject counts as a fragment subject.
func (s Subjects) StreamOfFrag(subject string) (string, bool) {
	name, marker, ok := s.ParseBus(subject)
	return name, ok && !marker
}

// ParseBus reads a bus subject: the stream it is about, and whether it is
// the stream's creation marker rather than a fragment.
func (s Subjects) ParseBus(subject string) (stream string, marker, ok bool) {
	var rest string
	if p := s.Prefix + "." + KindFrag + "."; strings.HasPrefix(subject, p) {
		rest = subject[len(p):]
	} else if p := s.Prefix + "." + KindBus + "."; strings.HasPrefix(subject, p) {
		i := strings.IndexByte(subject[len(p):], '.')
		if i <= 0 {
			return "", false, false
		}
		rest = subject[len(p)+i+1:]
	} else {
		return "", false, false
	}
	tok, suffix, dotted := strings.Cut(rest, ".")
	if tok == "" || (dotted && suffix != markerToken) {
		return "", false, false
	}
	return StreamFromToken(tok), dotted, true
}

func (s Subjects) subject(kind, stream string) string {
	return s.Prefix + "." + kind + "." + SubjectToken(stream)
}

// Fragment message headers (on Frag subjects).
const (
	// HeaderMsgID is JetStream's dedupe header: a retried publish with the same id
	// inside the bus's duplicate window is stored once.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderProducerID names the producer instance. With HeaderProducerSeq it is the
	// store's own dedupe key, which holds beyond the bus's duplicate window.
	HeaderProducerID = "Sensorium-Producer-Id"
	// HeaderProducerSeq is the producer's fragment sequence, decimal, from 1.
	HeaderProducerSeq = "Sensorium-Producer-Seq"
	// HeaderProducerPrev is the producer sequence of the fragment this one must
	// follow; absent or 0 means no constraint. If that fragment has been neither
	// stored nor refused, the server does not apply this one and answers RETRY:
	// fragments lost in a crash must not be overtaken by later ones that
	// survived in a client's write buffer.
	HeaderProducerPrev = "Sensorium-Producer-Prev"
)

// HeaderStreamARN is on a stream's creation marker (Marker): the ARN of the
// incarnation it was created as.
const HeaderStreamARN = "Sensorium-Stream-Arn"

// Live frame message headers (on Live subjects). The payload is the codec frame.
const (
	HeaderTimestamp = "Sensorium-Timestamp" // producer timestamp, ns since the Unix epoch, decimal
	HeaderDuration  = "Sensorium-Duration"  // frame duration in ns, decimal
	HeaderTrack     = "Sensorium-Track"     // track number, decimal
	HeaderKey       = "Sensorium-Key"       // "1" for a key frame, else "0"
	HeaderCodecID   = "Sensorium-Codec-Id"  // the track's MKV CodecID
)

// MsgID is the Nats-Msg-Id of a producer's fragment. It names the stream:
// JetStream dedupes ids across the whole bus, and one producer id may feed
// several streams (a gateway's), whose sequences start at 1 each — without
// the stream, the second stream's fragments would be dropped as duplicates.
// attempt 0 is the first publish; a later attempt gets a fresh id so that the
// bus stores it again and the store (which dedupes on producer id and
// sequence) answers PERSISTED again, which the bus alone would swallow.
func MsgID(stream, producerID string, seq uint64, attempt int) string {
	if attempt == 0 {
		return fmt.Sprintf("%s/%s:%d", stream, producerID, seq)
	}
	return fmt.Sprintf("%s/%s:%d:r%d", stream, producerID, seq, attempt)
}

// PutMediaProducerPrefix is put before the producer id a PutMedia session
// gives (x-sensorium-producer-id) to make its producer id on the bus: the
// ids PutMedia clients choose live apart from those of the NATS producers
// (the SDK's, the replicator's), so that a client allowed to put into a
// stream cannot take another producer's id there and have that producer's
// fragments answered as duplicates. The events name the id as given.
const PutMediaProducerPrefix = "pm."

// FragmentHeader returns the headers of a producer's fragment message on its
// Frag subject: the message id (MsgID), the producer id and sequence, and,
// when prev is not 0, the producer sequence this fragment must follow. The
// SDK's producer and the HTTP PutMedia gateway both publish through it, so
// that the store's dedupe and ordering see one protocol. The map is a
// nats.Header (assignable to nats.Msg.Header), spelt without the NATS client.
func FragmentHeader(stream, producerID string, seq, prev uint64, attempt int) map[string][]string {
	h := map[string][]string{
		HeaderMsgID:       {MsgID(stream, producerID, seq, attempt)},
		HeaderProducerID:  {producerID},
		HeaderProducerSeq: {strconv.FormatUint(seq, 10)},
	}
	if prev > 0 {
		h[HeaderProducerPrev] = []string{strconv.FormatUint(prev, 10)}
	}
	return h
}
