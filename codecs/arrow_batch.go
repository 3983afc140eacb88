package codecs

import (
	"fmt"
	"sort"
	"sync"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/signals"
)

// BatchDecoder is an ArrowDecoder that builds record batches itself: it
// decodes each frame straight into the buffers of the batch's arrays, with no
// builder in between and no copy of the samples once decoded. The query layer
// uses it when a decoder has it; the scalar and IMU decoders do.
//
// Lifecycle: StartBatches, then AppendToBatch per frame and NewRecordBatch
// whenever a batch is wanted, then Release.
type BatchDecoder interface {
	ArrowDecoder
	// StartBatches makes the decoder build its batches in mem, each with room
	// for rows rows before it grows.
	StartBatches(mem memory.Allocator, rows int)
	// AppendToBatch decodes f and adds its rows whose times are in r to the
	// current batch; it returns how many. On error the batch is as it was.
	AppendToBatch(f Frame, r TimeRange) (int, error)
	// NewRecordBatch hands out the current batch (the caller releases it) and
	// starts the next; nil when the batch has no rows.
	NewRecordBatch() arrow.RecordBatch
	// Release frees the current batch's buffers.
	Release()
}

// columnBuffer is one column of a batch being built: values of a fixed size
// in an allocator's buffer, which the batch's array takes over.
type columnBuffer struct {
	buf  *memory.Buffer
	size int // bytes per value
}

// grow makes room for n values in all, keeping those before; it grows by
// doubling, so a batch that overruns its reserve (by the frame that crosses
// it) is copied at most once.
func (c *columnBuffer) grow(n int) {
	if need := n * c.size; need > c.buf.Cap() {
		c.buf.Reserve(max(need, 2*c.buf.Cap()))
	}
}

// tail is the room for values have … n−1, typed as T. It stays valid until
// the column grows again.
func tail[T any](c *columnBuffer, have, n int) []T {
	c.grow(n)
	b := c.buf.Buf()
	if n == have {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[have*c.size])), n-have)
}

// columnTail views the room for values have … n−1 of c as a Column of type t.
func columnTail(c *columnBuffer, t signals.SampleType, have, n int) Column {
	col := Column{Type: t}
	switch t {
	case signals.Int16:
		col.I16 = tail[int16](c, have, n)
	case signals.Int32:
		col.I32 = tail[int32](c, have, n)
	case signals.Float32:
		col.F32 = tail[float32](c, have, n)
	case signals.Float64:
		col.F64 = tail[float64](c, have, n)
	}
	return col
}

// bufferPool is the allocator of a batch decoder's column buffers. A buffer
// its batch's last reader frees (after the IPC writer sent it, typically on
// another goroutine) comes back for a later batch instead of becoming garbage
// that the next batch's allocation must zero and the collector must sweep:
// a range read allocates its first few batches and then none. A pooled buffer
// is handed out as it was left, not zeroed: the batch writes every value it
// counts and readers see only those (Arrow's writers pad with zeros of their
// own), so only the batch path may take it, never an Arrow builder.
//
// Buffers stay allocated from mem while pooled; close gives them back, and
// from then on Free passes straight to mem.
type bufferPool struct {
	mem memory.Allocator

	mu     sync.Mutex // guards free and closed
	free   [][]byte
	closed bool
}

// maxPooledBuffers bounds a pool: a few batches' columns, for the batches the
// query's pipeline holds at once.
const maxPooledBuffers = 16

func (p *bufferPool) Allocate(size int) []byte {
	p.mu.Lock()
	for i, b := range p.free {
		// Any buffer with room, but not one far larger (the first batch's,
		// before the frame length was known, may be smaller than the rest).
		if cap(b) >= size && cap(b) <= 2*size+64 {
			p.free[i] = p.free[len(p.free)-1]
			p.free = p.free[:len(p.free)-1]
			p.mu.Unlock()
			return p.mem.Reallocate(size, b) // within its capacity: no copy, and mem's accounts stay right
		}
	}
	p.mu.Unlock()
	return p.mem.Allocate(size)
}

func (p *bufferPool) Reallocate(size int, b []byte) []byte { return p.mem.Reallocate(size, b) }

func (p *bufferPool) Free(b []byte) {
	p.mu.Lock()
	if !p.closed && len(p.free) < maxPooledBuffers && cap(b) > 0 {
		p.free = append(p.free, b)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.mem.Free(b)
}

// close frees the pooled buffers; later frees go straight to mem.
func (p *bufferPool) close() {
	p.mu.Lock()
	free := p.free
	p.free, p.closed = nil, true
	p.mu.Unlock()
	for _, b := range free {
		p.mem.Free(b)
	}
}

// directBatch is the batch a scalarArrow builds itself.
type directBatch struct {
	mem      memory.Allocator // a *bufferPool
	reserve  int              // rows each batch has room for before it grows
	maxFrame int              // the most samples a frame has had: room kept beyond reserve
	rows     int              // rows in the batch
	times    columnBuffer     // timestamps, int64 ns
	cols     []columnBuffer
}

// start begins an empty batch. Its buffers have room for the reserve and
// one frame more: the caller hands a batch out once it has reached the
// reserve, so the frame that crosses it still fits and no batch is copied
// into a larger buffer (after the first, which learns the frame length).
func (b *directBatch) start(mem memory.Allocator, reserve int, schema *arrow.Schema) {
	b.mem, b.reserve, b.rows = mem, max(reserve, 1), 0
	room := b.reserve + min(b.maxFrame, b.reserve) // a giant frame grows its batch once, not every batch after it
	b.times = columnBuffer{buf: memory.NewResizableBuffer(mem), size: 8}
	b.times.buf.Reserve(room * 8)
	b.cols = b.cols[:0]
	for _, f := range schema.Fields()[1:] {
		c := columnBuffer{buf: memory.NewResizableBuffer(mem), size: f.Type.(arrow.FixedWidthDataType).Bytes()}
		c.buf.Reserve(room * c.size)
		b.cols = append(b.cols, c)
	}
}

func (b *directBatch) release() {
	if b.times.buf != nil {
		b.times.buf.Release()
		b.times.buf = nil
	}
	for i := range b.cols {
		b.cols[i].buf.Release()
	}
	b.cols = b.cols[:0]
}

// record hands the batch's buffers to a record batch of schema and starts an
// empty batch.
func (b *directBatch) record(schema *arrow.Schema) arrow.RecordBatch {
	if b.rows == 0 {
		return nil
	}
	fields := schema.Fields()
	arrays := make([]arrow.Array, 0, len(fields))
	for i, c := range append([]columnBuffer{b.times}, b.cols...) {
		c.buf.Resize(b.rows * c.size)
		data := array.NewData(fields[i].Type, b.rows, []*memory.Buffer{nil, c.buf}, nil, 0, 0)
		arrays = append(arrays, array.MakeFromData(data))
		data.Release()
	}
	rec := array.NewRecordBatch(schema, arrays, int64(b.rows))
	for _, a := range arrays {
		a.Release()
	}
	b.release()
	b.start(b.mem, b.reserve, schema)
	return rec
}

func (a *scalarArrow) StartBatches(mem memory.Allocator, rows int) {
	a.Release()
	a.pool = &bufferPool{mem: mem}
	a.batch.start(a.pool, rows, a.schema)
	a.colOf = make([]int, len(a.desc.Channels))
	for c := range a.colOf {
		a.colOf[c] = -1
	}
	for col, c := range a.chans {
		a.colOf[c] = col
	}
}

func (a *scalarArrow) Release() {
	a.batch.release()
	if a.pool != nil {
		a.pool.close()
		a.pool = nil
	}
}

func (a *scalarArrow) NewRecordBatch() arrow.RecordBatch { return a.batch.record(a.schema) }

// AppendToBatch decodes a scalar frame into the batch: the times are computed
// in place, each selected channel of a numeric frame is decoded straight into
// its column (other codecs decode interleaved and are gathered into it), and
// only a frame cut by the range's edges is moved down to its first row.
func (a *scalarArrow) AppendToBatch(f Frame, r TimeRange) (int, error) {
	h, err := ParseScalarHeaderAt(f.Data, f.Time)
	if err != nil {
		return 0, err
	}
	return a.appendToBatch(h, f.Data[h.Size:], r)
}

// appendToBatch adds the samples of a frame body (h: its codec, sample
// count and start) to the batch.
func (a *scalarArrow) appendToBatch(h ScalarHeader, body []byte, r TimeRange) (int, error) {
	b := &a.batch
	have, n := b.rows, b.rows+h.N
	// Nothing is allocated for a frame before its claimed size is checked
	// against its body: the numeric codec's bound here, the other codecs'
	// inside their decoders, which run before the columns grow.
	var t signals.SampleType
	var channels int
	if h.Codec == Numeric {
		var err error
		if t, channels, err = numericBodyShape(len(body), a.desc, h); err != nil {
			return 0, fmt.Errorf("codecs: decode scalar frame: %w", err)
		}
	} else if err := decodeScalarBody(body, a.desc, h, &a.s); err != nil {
		return 0, err
	}
	times := tail[int64](&b.times, have, n)
	if h.Codec == Numeric {
		a.scratch = resizeSlice(a.scratch, channels)
		var tails Column
		err := decodeNumericColumns(body, t, channels, h.N, func(c int) *Column {
			if col := a.colOf[c]; col >= 0 && a.scaleOf(col) == 0 {
				tails = columnTail(&b.cols[col], t, have, n)
				return &tails
			}
			a.scratch[c].Reset(t, h.N) // not returned, or scaled below
			return &a.scratch[c]
		})
		if err != nil {
			return 0, fmt.Errorf("codecs: decode scalar frame: %w", err)
		}
		for col, c := range a.chans {
			if scale := a.scaleOf(col); scale != 0 {
				scaleInto(tail[float64](&b.cols[col], have, n), &a.scratch[c], scale)
			}
		}
	} else {
		// Other codecs decode the channels interleaved (above); each is
		// gathered into its column.
		for col, c := range a.chans {
			if scale := a.scaleOf(col); scale != 0 {
				a.scratch = splitChannels(&a.s, a.scratch)
				scaleInto(tail[float64](&b.cols[col], have, n), &a.scratch[c], scale)
				continue
			}
			gatherInto(columnTail(&b.cols[col], a.desc.SampleType, have, n), &a.s, c)
		}
	}
	times = a.desc.SampleTimes(times[:0], h.Start, h.N)
	lo, hi := 0, h.N
	if !r.All {
		lo = sort.Search(h.N, func(i int) bool { return times[i] >= r.Start })
		hi = sort.Search(h.N, func(i int) bool { return times[i] >= r.End })
	}
	b.maxFrame = max(b.maxFrame, h.N) // a frame that decoded: room for the next like it
	if lo >= hi {
		return 0, nil
	}
	if lo > 0 { // the range starts inside the frame: move its rows down
		moveDown(b.times.buf.Buf(), 8, have, lo, hi)
		for i := range b.cols {
			moveDown(b.cols[i].buf.Buf(), b.cols[i].size, have, lo, hi)
		}
	}
	b.rows += hi - lo
	return hi - lo, nil
}

func (a *scalarArrow) scaleOf(col int) float64 {
	if a.scales == nil {
		return 0
	}
	return a.scales[col]
}

// moveDown moves rows have+lo … have+hi−1 of a column to have.
func moveDown(buf []byte, size, have, lo, hi int) {
	copy(buf[have*size:], buf[(have+lo)*size:(have+hi)*size])
}

// scaleInto writes a column's counts times scale.
func scaleInto(dst []float64, c *Column, scale float64) {
	switch c.Type {
	case signals.Int16:
		for i, v := range c.I16 {
			dst[i] = float64(v) * scale
		}
	case signals.Int32:
		for i, v := range c.I32 {
			dst[i] = float64(v) * scale
		}
	case signals.Float32:
		for i, v := range c.F32 {
			dst[i] = float64(v) * scale
		}
	case signals.Float64:
		for i, v := range c.F64 {
			dst[i] = v * scale
		}
	}
}

// gatherInto copies channel c of interleaved samples into dst.
func gatherInto(dst Column, s *signals.Samples, c int) {
	switch s.Type {
	case signals.Int16:
		gatherChannel(dst.I16, s.I16, s.Channels, c)
	case signals.Int32:
		gatherChannel(dst.I32, s.I32, s.Channels, c)
	case signals.Float32:
		gatherChannel(dst.F32, s.F32, s.Channels, c)
	case signals.Float64:
		gatherChannel(dst.F64, s.F64, s.Channels, c)
	}
}
