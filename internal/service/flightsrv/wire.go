package flightsrv

import (
	"fmt"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// DoGet's data messages go to gRPC without being copied. arrow-go's
// flight.Writer serialises each record batch's buffers into a bytes.Buffer
// (grown by doubling, so allocated and copied again for a large batch), and
// gRPC's proto codec copies that body once more into a pooled buffer it
// first clears: two copies and two fresh megabytes per 64 Ki-row batch,
// memory the reader's own copies then compete with for the cache. Here the
// server's codec writes the FlightData protobuf framing itself and hands gRPC
// the batch's buffers as they are (a mem.BufferSlice); every other message
// goes through the proto codec as before. The bytes on the wire are the
// protobuf encoding of the FlightData arrow-go's writer sends, to the byte
// (TestFramesAreFlightData), so any Flight client reads them.
//
// FlightData's fields, as protobuf writes them (in field-number order, each
// only when not empty; Flight.proto):
//
//	field 2    data_header  tag 0x12        varint length  the IPC Message flatbuffer
//	field 1000 data_body    tag 0xC2 0x3E   varint length  the body: each buffer padded to 8 bytes
//
// Fields 1 (flight_descriptor) and 3 (app_metadata) are never set by DoGet.
const (
	dataHeaderField = 2
	dataBodyField   = 1000
)

// smallPart is the size up to which a piece of a body is copied into the
// message's framing rather than referenced: gRPC counts references only of
// buffers above its pooling threshold (1 KiB), and copying a validity bitmap
// or a padding costs less than a reference.
const smallPart = 4 << 10

// codec is the server's gRPC codec: frames as they are, anything else
// through protobuf.
type codec struct{ proto encoding.CodecV2 }

func newCodec() codec { return codec{proto: encoding.GetCodecV2(proto.Name)} }

// Name is protobuf's: the content-subtype clients send and expect.
func (c codec) Name() string { return proto.Name }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if f, ok := v.(*frame); ok {
		return f.marshal(), nil
	}
	return c.proto.Marshal(v)
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

// frame is one FlightData message of an IPC payload (a schema, a record
// batch): its metadata and body, and the payload that owns the body's
// memory, released when gRPC has written the last byte of it (and this
// frame's own reference is dropped).
type frame struct {
	meta  []byte
	parts [][]byte // the body, in order, as IPC lays it out (paddings included)
	size  int      // of the body
	own   *payloadRef
}

// payloadRef releases an IPC payload once nothing refers to its memory. It
// is the mem.BufferPool of the body buffers handed to gRPC: gRPC "returns"
// each to the pool when it is done with it, which here drops a reference.
type payloadRef struct {
	refs atomic.Int64
	p    ipc.Payload
}

func (r *payloadRef) Get(n int) *[]byte { b := make([]byte, n); return &b }

func (r *payloadRef) Put(*[]byte) { r.release() }

func (r *payloadRef) release() {
	if r.refs.Add(-1) == 0 {
		r.p.Release()
	}
}

// newFrame frames an IPC payload, taking it over: the frame releases it.
func newFrame(p ipc.Payload) *frame {
	f := &frame{own: &payloadRef{p: p}}
	f.own.refs.Store(1)
	m := p.Meta()
	if m != nil {
		f.meta = m.Bytes()
		// The payload holds the metadata too: this reference is not needed
		// for it to live as long as the frame.
		m.Release()
	}
	_ = p.SerializeBody(f) // Write below never fails
	return f
}

// Write collects a piece of the body without copying it (ipc.Payload
// SerializeBody's writer).
func (f *frame) Write(b []byte) (int, error) {
	f.parts = append(f.parts, b)
	f.size += len(b)
	return len(b), nil
}

// len is the bytes the metering counts: header and body.
func (f *frame) len() int { return len(f.meta) + f.size }

// marshal is the message as gRPC sends it; each buffer it refers to holds a
// reference to the payload, which gRPC drops as it frees them.
func (f *frame) marshal() mem.BufferSlice {
	head := make([]byte, 0, len(f.meta)+2*binaryVarint+3)
	if len(f.meta) > 0 {
		head = protowire.AppendTag(head, dataHeaderField, protowire.BytesType)
		head = protowire.AppendVarint(head, uint64(len(f.meta)))
		head = append(head, f.meta...)
	}
	if f.size > 0 {
		head = protowire.AppendTag(head, dataBodyField, protowire.BytesType)
		head = protowire.AppendVarint(head, uint64(f.size))
	}
	out := make(mem.BufferSlice, 0, 1+len(f.parts))
	small := head
	for _, p := range f.parts {
		if len(p) <= smallPart {
			small = append(small, p...)
			continue
		}
		if len(small) > 0 {
			out = append(out, mem.SliceBuffer(small))
			small = nil
		}
		b := p[:len(p):len(p)] // gRPC pools by capacity: the buffer is exactly the piece
		f.own.refs.Add(1)
		out = append(out, mem.NewBuffer(&b, f.own))
	}
	if len(small) > 0 {
		out = append(out, mem.SliceBuffer(small))
	}
	return out
}

// binaryVarint is the most bytes a length's varint takes.
const binaryVarint = 10

// frameWriter writes a DoGet's record batches as frames: the schema first,
// then a message per batch, as flight.Writer would, but handing gRPC the
// batches' own buffers. It serves schemas without dictionaries (ipc's
// per-batch payloads carry no dictionary batches); usesFrames says which.
type frameWriter struct {
	ss      grpc.ServerStream
	schema  *arrow.Schema
	mem     memory.Allocator
	meter   func(n int) // nil: not metered
	started bool
	err     error // the first error, sticky (as ipc.Writer's)
}

// usesFrames is whether a stream of this schema can be written as frames:
// no dictionary anywhere in it (dictionary batches need the ipc.Writer's
// bookkeeping of what it sent).
func usesFrames(s *arrow.Schema) bool {
	for _, f := range s.Fields() {
		if hasDictionary(f.Type) {
			return false
		}
	}
	return true
}

func hasDictionary(t arrow.DataType) bool {
	switch t := t.(type) {
	case *arrow.DictionaryType:
		return true
	case arrow.NestedType:
		for _, f := range t.Fields() {
			if hasDictionary(f.Type) {
				return true
			}
		}
	}
	return false
}

func (w *frameWriter) send(p ipc.Payload) error {
	f := newFrame(p)
	defer f.own.release()
	if w.meter != nil {
		w.meter(f.len())
	}
	return w.ss.SendMsg(f)
}

func (w *frameWriter) start() error {
	if w.started {
		return nil
	}
	w.started = true
	return w.send(ipc.GetSchemaPayload(w.schema, w.mem))
}

// Write sends a record batch (QueryBatches' emit).
func (w *frameWriter) Write(rec arrow.RecordBatch) error {
	if w.err != nil {
		return w.err
	}
	if err := w.start(); err != nil {
		w.err = err
		return err
	}
	if !rec.Schema().Equal(w.schema) {
		w.err = fmt.Errorf("flight: a batch of schema %s in a stream of %s", rec.Schema(), w.schema)
		return w.err
	}
	p, err := ipc.GetRecordBatchPayload(rec, ipc.WithAllocator(w.mem))
	if err != nil {
		w.err = fmt.Errorf("flight: encode a record batch: %w", err)
		return w.err
	}
	if err := w.send(p); err != nil {
		w.err = err
	}
	return w.err
}

// Close sends the schema if no batch did, so that an empty answer still
// has its schema; the stream's end is the RPC's.
func (w *frameWriter) Close() error {
	if w.err != nil {
		return w.err
	}
	return w.start()
}
