package codecs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/sensorium-io/sensorium/signals"
)

// A columnar frame holds a set of elements — the detections of a RADAR scan,
// the points of a LIDAR sweep, the cells of a 2-D array — as one column per
// field (FORMAT.md, "Columnar frame"). Each column is coded alone with the
// numeric codec's per-channel coding, behind a length so that a query that
// projects fields skips the others without decoding them.

// ColumnarHeaderSize is the fixed header of a columnar frame.
const ColumnarHeaderSize = 16

// ColumnarFrameVersion is the version byte of the layout below.
const ColumnarFrameVersion = 1

// ColumnarCompactVersion is the version byte of a columnar frame with a
// compact header (varints) and columns in the compact codec's bit coding:
// for frames of few elements — a RADAR scan's detections — whose fixed
// header and per-column numeric fields (an 8-byte scale, counts, layout
// bytes) cost as much as the values (FORMAT.md, "Compact columnar frame").
const ColumnarCompactVersion = 2

// Format IDs of columnar frames: byte 0, in the codec ID namespace.
const (
	FormatDetections ID = 24 // RADAR detections (signals.Detections)
	FormatArray      ID = 25 // a 2-D array (signals.Array)
	FormatPointCloud ID = 16 // a LIDAR sweep (signals.PointCloud)
)

// Column is one field's values; exactly the slice of its type is used.
type Column struct {
	Type signals.SampleType
	I16  []int16
	I32  []int32
	F32  []float32
	F64  []float64
}

// Len is the number of values.
func (c *Column) Len() int { return len(c.I16) + len(c.I32) + len(c.F32) + len(c.F64) }

// Reset makes c hold n values of type t, reusing its capacity.
func (c *Column) Reset(t signals.SampleType, n int) {
	c.Type = t
	c.I16, c.I32, c.F32, c.F64 = c.I16[:0], c.I32[:0], c.F32[:0], c.F64[:0]
	switch t {
	case signals.Int16:
		c.I16 = resizeSlice(c.I16, n)
	case signals.Int32:
		c.I32 = resizeSlice(c.I32, n)
	case signals.Float32:
		c.F32 = resizeSlice(c.F32, n)
	case signals.Float64:
		c.F64 = resizeSlice(c.F64, n)
	}
}

// CopyValue sets value j of c to value i of src (same type).
func (c *Column) CopyValue(j int, src *Column, i int) {
	switch src.Type {
	case signals.Int16:
		c.I16[j] = src.I16[i]
	case signals.Int32:
		c.I32[j] = src.I32[i]
	case signals.Float32:
		c.F32[j] = src.F32[i]
	case signals.Float64:
		c.F64[j] = src.F64[i]
	}
}

// samples views c as a one-channel block (no copy).
func (c *Column) samples() signals.Samples {
	return signals.Samples{N: c.Len(), Channels: 1, Type: c.Type, I16: c.I16, I32: c.I32, F32: c.F32, F64: c.F64}
}

// ColumnarHeader is the decoded header of a columnar frame.
type ColumnarHeader struct {
	Format  ID
	Count   int   // elements
	Time    int64 // ns since the Unix epoch (a scan's or a sweep's start)
	Version byte  // ColumnarFrameVersion, ColumnarCompactVersion, ColumnarGeometryVersion or ColumnarCompact2Version
	Size    int   // bytes of the header: the columns follow
}

// AppendColumnarFrame appends a frame of the given format holding cols (all
// of count values) to dst.
func AppendColumnarFrame(dst []byte, format ID, t int64, count int, cols []Column) ([]byte, error) {
	return appendColumnarFrame(dst, format, ColumnarFrameVersion, t, count, cols)
}

func appendColumnarFrame(dst []byte, format ID, version byte, t int64, count int, cols []Column) ([]byte, error) {
	if err := checkColumnarFrame(count, cols); err != nil {
		return dst, err
	}
	bodies, err := encodeColumns(cols, false)
	if err != nil {
		return dst, err
	}
	return appendColumnarBodies(dst, format, version, t, count, bodies), nil
}

// checkColumnarFrame checks that cols (all of count values) fit one frame.
func checkColumnarFrame(count int, cols []Column) error {
	if uint64(count) > math.MaxUint32 {
		return fmt.Errorf("codecs: columnar frame: %d elements, at most %d", count, uint64(math.MaxUint32))
	}
	total := 0
	for i := range cols {
		if n := cols[i].Len(); n != count || !cols[i].Type.Valid() {
			return fmt.Errorf("codecs: columnar frame: column %d holds %d %s values, want %d", i, n, cols[i].Type, count)
		}
		total += count * cols[i].Type.Size()
	}
	if total > MaxScalarFrameBytes {
		return fmt.Errorf("codecs: columnar frame: %d bytes of values, a frame holds at most %d", total, MaxScalarFrameBytes)
	}
	return nil
}

// parallelMinColumnValues is the values per column from which encodeColumns
// encodes columns side by side (as parallelMinSamples does channels).
const parallelMinColumnValues = 8192

// encodeColumns encodes each column with the numeric codec: a column's
// body in a frame of version 1 or 3. With parallel set and columns long
// enough, they are encoded side by side; the bodies are the same either way.
func encodeColumns(cols []Column, parallel bool) ([][]byte, error) {
	bodies := make([][]byte, len(cols))
	errs := make([]error, len(cols))
	encode := func(i int) {
		s := cols[i].samples()
		if bodies[i], errs[i] = (numeric{}).AppendEncoded(nil, &s); errs[i] != nil {
			errs[i] = fmt.Errorf("codecs: columnar frame: column %d: %w", i, errs[i])
		}
	}
	if parallel && len(cols) > 1 && cols[0].Len() >= parallelMinColumnValues && runtime.GOMAXPROCS(0) > 1 {
		// As many workers as cores, each taking the next column.
		var next atomic.Int32
		var wg sync.WaitGroup
		for range min(runtime.GOMAXPROCS(0), len(cols)) {
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < len(cols); i = int(next.Add(1)) - 1 {
					encode(i)
				}
			})
		}
		wg.Wait()
	} else {
		for i := range cols {
			encode(i)
		}
	}
	return bodies, errors.Join(errs...)
}

// columnarBodiesSize is the size of the frame appendColumnarBodies makes.
func columnarBodiesSize(bodies [][]byte) int {
	n := 16 // format, version, two reserved bytes, count, time
	for _, b := range bodies {
		n += uvarintLen(uint64(len(b))) + len(b)
	}
	return n
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// appendColumnarBodies appends a frame of version 1 or 3 from its columns'
// encoded bodies.
func appendColumnarBodies(dst []byte, format ID, version byte, t int64, count int, bodies [][]byte) []byte {
	out := append(dst, byte(format), version, 0, 0)
	out = binary.LittleEndian.AppendUint32(out, uint32(count))
	out = binary.LittleEndian.AppendUint64(out, uint64(t))
	for _, b := range bodies {
		out = binary.AppendUvarint(out, uint64(len(b)))
		out = append(out, b...)
	}
	return out
}

// appendCompactColumnarFrame appends a compact columnar frame holding cols,
// all of count values: version 4 (the compact coding's version 2) when v2
// is set, else version 2.
func appendCompactColumnarFrame(dst []byte, format ID, t int64, count int, cols []Column, v2 bool) ([]byte, error) {
	if err := checkColumns(count, cols); err != nil {
		return dst, err
	}
	version := byte(ColumnarCompactVersion)
	if v2 {
		version = ColumnarCompact2Version
	}
	out := append(dst, byte(format), version)
	out = binary.AppendUvarint(out, uint64(count))
	ms := floorMillisecond(t)
	out = binary.AppendVarint(out, ms/1e6)
	out = binary.AppendUvarint(out, uint64(t-ms))
	sc := numericPool.Get().(*numericScratch)
	defer numericPool.Put(sc)
	sc.compactScale = 0 // a column may name the scale of a column before it
	var body []byte
	for i := range cols {
		smp := cols[i].samples()
		var w bitWriter
		w.buf = body[:0]
		writeCompactChannel(&w, &smp, 0, sc, nil, v2)
		body = w.flush()
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	return out, nil
}

func checkColumns(count int, cols []Column) error {
	if uint64(count) > math.MaxUint32 {
		return fmt.Errorf("codecs: columnar frame: %d elements, at most %d", count, uint64(math.MaxUint32))
	}
	total := 0
	for i := range cols {
		if n := cols[i].Len(); n != count || !cols[i].Type.Valid() {
			return fmt.Errorf("codecs: columnar frame: column %d holds %d %s values, want %d", i, n, cols[i].Type, count)
		}
		total += count * cols[i].Type.Size()
	}
	if total > MaxScalarFrameBytes {
		return fmt.Errorf("codecs: columnar frame: %d bytes of values, a frame holds at most %d", total, MaxScalarFrameBytes)
	}
	return nil
}

// ParseColumnarHeader reads a columnar frame's header (either version).
func ParseColumnarHeader(src []byte) (ColumnarHeader, error) {
	if len(src) >= 2 && (src[1] == ColumnarCompactVersion || src[1] == ColumnarCompact2Version) {
		return parseCompactColumnarHeader(src)
	}
	if len(src) < ColumnarHeaderSize {
		return ColumnarHeader{}, fmt.Errorf("codecs: columnar frame: %w: %d bytes, the header needs %d", ErrCorrupt, len(src), ColumnarHeaderSize)
	}
	if (src[1] != ColumnarFrameVersion && src[1] != ColumnarGeometryVersion) || src[2] != 0 || src[3] != 0 {
		return ColumnarHeader{}, fmt.Errorf("codecs: columnar frame: %w: version %d, flags %#x", ErrCorrupt, src[1], binary.LittleEndian.Uint16(src[2:]))
	}
	n := uint64(binary.LittleEndian.Uint32(src[4:]))
	if n > math.MaxInt {
		return ColumnarHeader{}, fmt.Errorf("codecs: columnar frame: %w: count %d", ErrCorrupt, n)
	}
	return ColumnarHeader{Format: ID(src[0]), Count: int(n), Time: int64(binary.LittleEndian.Uint64(src[8:])),
		Version: src[1], Size: ColumnarHeaderSize}, nil
}

func parseCompactColumnarHeader(src []byte) (ColumnarHeader, error) {
	bad := func(what string) (ColumnarHeader, error) {
		return ColumnarHeader{}, fmt.Errorf("codecs: columnar frame: %w: compact header %s", ErrCorrupt, what)
	}
	at := 2
	n, k := binary.Uvarint(src[at:])
	if k <= 0 || n > math.MaxUint32 || n > math.MaxInt {
		return bad("count")
	}
	at += k
	ms, k := binary.Varint(src[at:])
	if k <= 0 || ms > math.MaxInt64/1_000_000-1 || ms < math.MinInt64/1_000_000 {
		return bad("time")
	}
	at += k
	ns, k := binary.Uvarint(src[at:])
	if k <= 0 || ns >= 1e6 {
		return bad("time")
	}
	at += k
	return ColumnarHeader{Format: ID(src[0]), Count: int(n), Time: ms*1e6 + int64(ns), Version: src[1], Size: at}, nil
}

// DecodeColumnarFrame decodes a frame of the given format whose columns have
// the given types. want, when not nil, says which columns to decode (the
// others are skipped, and their Column left empty); cols is resized to
// len(types) and reused. Errors wrap ErrCorrupt.
func DecodeColumnarFrame(src []byte, format ID, types []signals.SampleType, want []bool, cols []Column) (ColumnarHeader, []Column, error) {
	h, err := ParseColumnarHeader(src)
	if err != nil {
		return h, cols, err
	}
	if h.Format != format {
		return h, cols, fmt.Errorf("codecs: columnar frame: %w: format %d, want %d", ErrCorrupt, h.Format, format)
	}
	if h.Version == ColumnarGeometryVersion {
		return decodeGeometryFrame(src, h, types, want, cols)
	}
	return decodeColumns(src, h, types, want, cols)
}

// decodeGeometryFrame decodes a sweep frame of version 3: the columns of
// version 1 with the geometry transform's fourth column after z, which it
// turns back into x, y, z (decoding the ring column for it too).
func decodeGeometryFrame(src []byte, h ColumnarHeader, types []signals.SampleType, want []bool, cols []Column) (ColumnarHeader, []Column, error) {
	if h.Format != FormatPointCloud || len(types) < sweepFixed || types[sweepX] != signals.Int32 || types[sweepRing] != signals.Int16 {
		return h, cols, fmt.Errorf("codecs: columnar frame: %w: version %d is for sweeps", ErrCorrupt, h.Version)
	}
	types3 := append(append(append(make([]signals.SampleType, 0, len(types)+1), types[:sweepZ+1]...), signals.Int32), types[sweepZ+1:]...)
	geo := want == nil || want[sweepX] || want[sweepY] || want[sweepZ]
	var want3 []bool
	if want != nil {
		want3 = append(append(append(make([]bool, 0, len(want)+1), want[:sweepZ+1]...), geo), want[sweepZ+1:]...)
		if geo {
			want3[sweepX], want3[sweepY], want3[sweepZ], want3[sweepRing+1] = true, true, true, true
		}
	}
	h, cols, err := decodeColumns(src, h, types3, want3, cols)
	if err != nil {
		return h, cols, err
	}
	if geo {
		x, y, z := cols[sweepX].I32, cols[sweepY].I32, cols[sweepZ].I32
		if err := inverseGeometry(x, y, z, cols[sweepZ+1].I32, cols[sweepRing+1].I16, x, y, z); err != nil {
			return h, cols, err
		}
	}
	// The transform's column goes to the end, past the columns returned, and
	// keeps its own buffers there: a plain shift would leave the last slot
	// and the one before it sharing theirs, and a decode that reuses cols
	// would then write two columns into one buffer.
	g := cols[sweepZ+1]
	copy(cols[sweepZ+1:], cols[sweepZ+2:])
	cols[len(cols)-1] = g
	return h, cols[:len(types)], nil
}

// decodeColumns decodes the columns of a frame whose header is h.
func decodeColumns(src []byte, h ColumnarHeader, types []signals.SampleType, want []bool, cols []Column) (ColumnarHeader, []Column, error) {
	total := uint64(0)
	for _, t := range types {
		total += uint64(h.Count) * uint64(t.Size())
	}
	if total > MaxScalarFrameBytes {
		return h, cols, fmt.Errorf("codecs: columnar frame: %w: %d elements of %d columns exceed %d bytes", ErrCorrupt, h.Count, len(types), MaxScalarFrameBytes)
	}
	cols = resizeSlice(cols, len(types))
	body := src[h.Size:]
	desc := signals.Scalar{SampleRate: 1, Channels: []signals.Channel{{Name: "c"}}}
	var sc *numericScratch // compact columns: the scale carried from column to column
	compact := h.Version == ColumnarCompactVersion || h.Version == ColumnarCompact2Version
	if compact {
		sc = numericPool.Get().(*numericScratch)
		defer numericPool.Put(sc)
		sc.compactScale = 0
	}
	for i, t := range types {
		n, k := binary.Uvarint(body)
		if k <= 0 || n > uint64(len(body)-k) {
			return h, cols, fmt.Errorf("codecs: columnar frame: %w: column %d truncated", ErrCorrupt, i)
		}
		col := body[k : k+int(n)]
		body = body[k+int(n):]
		if want != nil && !want[i] {
			cols[i].Reset(t, 0)
			continue
		}
		desc.SampleType = t
		s := cols[i].samples()
		var err error
		if sc != nil {
			err = decodeCompactColumn(col, t, h.Count, &s, sc, h.Version == ColumnarCompact2Version)
		} else {
			err = numeric{}.Decode(col, &desc, h.Count, &s)
		}
		if err != nil {
			return h, cols, fmt.Errorf("codecs: columnar frame: column %d: %w", i, err)
		}
		cols[i] = Column{Type: t, I16: s.I16, I32: s.I32, F32: s.F32, F64: s.F64}
	}
	if len(body) != 0 {
		return h, cols, fmt.Errorf("codecs: columnar frame: %w: %d bytes after the last column", ErrCorrupt, len(body))
	}
	return h, cols, nil
}

// ColumnSizes returns the encoded size of each column of a columnar frame,
// in stored order (for benchmarks and diagnostics).
func ColumnSizes(src []byte) ([]int, error) {
	h, err := ParseColumnarHeader(src)
	if err != nil {
		return nil, err
	}
	var sizes []int
	for body := src[h.Size:]; len(body) > 0; {
		n, k := binary.Uvarint(body)
		if k <= 0 || n > uint64(len(body)-k) {
			return nil, fmt.Errorf("codecs: columnar frame: %w: column %d truncated", ErrCorrupt, len(sizes))
		}
		sizes = append(sizes, k+int(n))
		body = body[k+int(n):]
	}
	return sizes, nil
}
