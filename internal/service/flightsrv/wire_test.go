package flightsrv

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// sentStream is a DoGet stream that marshals what is sent with the server's
// codec, as gRPC does, and keeps each message's buffers (free frees them, as
// gRPC does once it has written them).
type sentStream struct {
	grpc.ServerStream
	c    codec
	sent []mem.BufferSlice
}

func (s *sentStream) Context() context.Context { return context.Background() }

func (s *sentStream) SendMsg(m any) error {
	b, err := s.c.Marshal(m)
	if err != nil {
		return err
	}
	s.sent = append(s.sent, b)
	return nil
}

func (s *sentStream) free() {
	for _, b := range s.sent {
		b.Free()
	}
	s.sent = nil
}

// stockStream records the messages arrow-go's flight.Writer sends, as the
// proto codec puts them on the wire.
type stockStream struct {
	t    *testing.T
	wire [][]byte
}

func (s *stockStream) Send(d *flight.FlightData) error {
	b, err := encoding.GetCodecV2(proto.Name).Marshal(d)
	if err != nil {
		return err
	}
	s.wire = append(s.wire, b.Materialize())
	b.Free()
	return nil
}

// wireReader hands messages to flight.NewRecordReader, as a client's DoGet
// stream does.
type wireReader struct {
	msgs [][]byte
}

func (r *wireReader) Recv() (*flight.FlightData, error) {
	if len(r.msgs) == 0 {
		return nil, io.EOF
	}
	var d flight.FlightData
	if err := encoding.GetCodecV2(proto.Name).Unmarshal(mem.BufferSlice{mem.SliceBuffer(r.msgs[0])}, &d); err != nil {
		return nil, err
	}
	r.msgs = r.msgs[1:]
	return &d, nil
}

// testBatches are record batches of the shapes DoGet sends: fixed-width
// columns larger than smallPart (referenced) and smaller (copied), nulls,
// strings, lists, a slice not at offset 0, and no rows.
func testBatches(t *testing.T, mem memory.Allocator) (*arrow.Schema, []arrow.RecordBatch) {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "time", Type: arrow.FixedWidthTypes.Timestamp_ns},
		{Name: "x", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "label", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "frame", Type: arrow.ListOf(arrow.PrimitiveTypes.Int16)},
	}, nil)
	build := func(rows int) arrow.RecordBatch {
		b := array.NewRecordBuilder(mem, schema)
		defer b.Release()
		for i := range rows {
			b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(1_700_000_000_000_000_000 + int64(i)*39063))
			if i%97 == 3 {
				b.Field(1).AppendNull()
			} else {
				b.Field(1).(*array.Float32Builder).Append(float32(i) / 7)
			}
			if i%5 == 0 {
				b.Field(2).AppendNull()
			} else {
				b.Field(2).(*array.StringBuilder).Append(string(rune('a' + i%26)))
			}
			lb := b.Field(3).(*array.ListBuilder)
			lb.Append(true)
			for j := range i % 4 {
				lb.ValueBuilder().(*array.Int16Builder).Append(int16(i + j))
			}
		}
		return b.NewRecordBatch()
	}
	big, small := build(20000), build(37)
	sliced := big.NewSlice(1001, 9000)
	return schema, []arrow.RecordBatch{small, big, sliced, build(0)}
}

// DoGet's frames are, byte for byte, the protobuf FlightData messages
// arrow-go's own writer sends for the same batches, and arrow-go's reader
// reads them back as those batches. Their memory is the batches' own: it is
// released only when gRPC frees the last buffer it was handed, not when the
// batch is released after being sent.
func TestFramesAreFlightData(t *testing.T) {
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	schema, batches := testBatches(t, alloc)

	stock := &stockStream{t: t}
	sw := flight.NewRecordWriter(stock, ipc.WithSchema(schema), ipc.WithAllocator(alloc))
	ours := &sentStream{c: newCodec()}
	metered := 0
	fw := &frameWriter{ss: ours, schema: schema, mem: alloc, meter: func(n int) { metered += n }}
	for _, b := range batches {
		if err := sw.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := fw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}

	referenced := 0
	for _, m := range ours.sent {
		if len(m) > 1 {
			referenced++
		}
	}
	if referenced == 0 {
		t.Fatal("no frame handed gRPC a batch's buffers: the test does not cover the zero-copy path")
	}
	// Every batch is released, as QueryBatches does after emit returns:
	// the frames still hold their buffers, until gRPC frees them.
	held := alloc.CurrentAlloc()
	for _, b := range batches {
		b.Release()
	}
	if alloc.CurrentAlloc() == 0 {
		t.Fatalf("the batches' memory (%d bytes before) was released while gRPC still held the frames", held)
	}

	if len(ours.sent) != len(stock.wire) {
		t.Fatalf("%d messages, arrow-go's writer sent %d", len(ours.sent), len(stock.wire))
	}
	var wire [][]byte
	want := 0
	for i, m := range ours.sent {
		got := m.Materialize()
		wire = append(wire, got)
		if !bytes.Equal(got, stock.wire[i]) {
			t.Fatalf("message %d: %d bytes differ from arrow-go's %d", i, len(got), len(stock.wire[i]))
		}
		var d flight.FlightData
		if err := encoding.GetCodecV2(proto.Name).Unmarshal(mem.BufferSlice{mem.SliceBuffer(got)}, &d); err != nil {
			t.Fatal(err)
		}
		want += len(d.DataHeader) + len(d.DataBody)
	}
	if metered != want {
		t.Errorf("metered %d bytes, the messages' header and body are %d", metered, want)
	}

	rd, err := flight.NewRecordReader(&wireReader{msgs: wire}, ipc.WithAllocator(alloc))
	if err != nil {
		t.Fatal(err)
	}
	_, again := testBatches(t, alloc)
	for i := 0; rd.Next(); i++ {
		if i >= len(again) {
			t.Fatalf("more than the %d batches sent", len(again))
		}
		if !array.RecordEqual(rd.RecordBatch(), again[i]) {
			t.Errorf("batch %d read back differs", i)
		}
	}
	if err := rd.Err(); err != nil {
		t.Fatal(err)
	}
	rd.Release()
	for _, b := range again {
		b.Release()
	}
	ours.free()
}

// A stream with no batch still sends its schema, as flight.Writer's Close
// does, and a reader sees the schema and no rows.
func TestFramesEmptyStream(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Float64}}, nil)
	ours := &sentStream{c: newCodec()}
	fw := &frameWriter{ss: ours, schema: schema, mem: memory.DefaultAllocator}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	var wire [][]byte
	for _, m := range ours.sent {
		wire = append(wire, m.Materialize())
	}
	ours.free()
	rd, err := flight.NewRecordReader(&wireReader{msgs: wire})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	if !rd.Schema().Equal(schema) {
		t.Errorf("schema %s, want %s", rd.Schema(), schema)
	}
	if rd.Next() {
		t.Error("a batch in an empty stream")
	}
}

// A batch whose schema is not the stream's is refused, and the writer's
// error sticks (as ipc.Writer's).
func TestFramesRefuseAnotherSchema(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Float64}}, nil)
	other := arrow.NewSchema([]arrow.Field{{Name: "y", Type: arrow.PrimitiveTypes.Int8}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, other)
	defer b.Release()
	b.Field(0).(*array.Int8Builder).Append(1)
	rec := b.NewRecordBatch()
	defer rec.Release()
	ours := &sentStream{c: newCodec()}
	defer ours.free()
	fw := &frameWriter{ss: ours, schema: schema, mem: memory.DefaultAllocator}
	err := fw.Write(rec)
	if err == nil {
		t.Fatal("a batch of another schema was sent")
	}
	if err2 := fw.Close(); !errors.Is(err2, err) {
		t.Errorf("Close after a failed Write: %v, want the first error %v", err2, err)
	}
}

// Streams with dictionaries (the several-streams shape's stream column) keep
// arrow-go's writer, which sends their dictionary batches.
func TestUsesFrames(t *testing.T) {
	dict := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	for _, c := range []struct {
		name string
		typ  arrow.DataType
		want bool
	}{
		{"float", arrow.PrimitiveTypes.Float32, true},
		{"list", arrow.ListOf(arrow.PrimitiveTypes.Int16), true},
		{"dictionary", dict, false},
		{"list of dictionary", arrow.ListOf(dict), false},
		{"struct with a dictionary", arrow.StructOf(arrow.Field{Name: "s", Type: dict}), false},
	} {
		s := arrow.NewSchema([]arrow.Field{{Name: "time", Type: arrow.FixedWidthTypes.Timestamp_ns}, {Name: "v", Type: c.typ}}, nil)
		if got := usesFrames(s); got != c.want {
			t.Errorf("%s: usesFrames %v, want %v", c.name, got, c.want)
		}
	}
}

// Any other message (GetFlightInfo's, a relayed DoGet's FlightData) goes
// through protobuf as before.
func TestCodecPassesProtobufThrough(t *testing.T) {
	c, pc := newCodec(), encoding.GetCodecV2(proto.Name)
	in := &flight.FlightData{DataHeader: []byte{1, 2, 3}, AppMetadata: []byte("m"), DataBody: bytes.Repeat([]byte{7}, 5000)}
	got, err := c.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Free()
	want, err := pc.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Free()
	if !bytes.Equal(got.Materialize(), want.Materialize()) {
		t.Error("a FlightData marshals differently from protobuf")
	}
	var out flight.FlightData
	if err := c.Unmarshal(got, &out); err != nil || !bytes.Equal(out.DataBody, in.DataBody) {
		t.Errorf("Unmarshal: %v", err)
	}
	if c.Name() != pc.Name() {
		t.Errorf("codec name %q, want protobuf's %q", c.Name(), pc.Name())
	}
}

// The field tags wire.go's comment gives are protobuf's for FlightData's
// data_header and data_body.
func TestDocumentedTags(t *testing.T) {
	if got := protowire.AppendTag(nil, dataHeaderField, protowire.BytesType); !bytes.Equal(got, []byte{0x12}) {
		t.Errorf("data_header tag % x, the comment says 12", got)
	}
	if got := protowire.AppendTag(nil, dataBodyField, protowire.BytesType); !bytes.Equal(got, []byte{0xC2, 0x3E}) {
		t.Errorf("data_body tag % x, the comment says c2 3e", got)
	}
}
