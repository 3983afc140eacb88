package sampletable

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"
	"unsafe"
)

// The parallel path of CSV. Parsing text is what an import of a CSV file
// spends its time on (encoding/csv's record splitting and strconv's floats,
// about a microsecond a row for four cells), so the rows are parsed on every
// core: a reader cuts the file into blocks of whole lines and workers parse
// them into batches, handed on in file order. It splits fields at the
// separator itself, which is right only without quotes: a block with a
// quote in it, and everything after, goes to encoding/csv as before (a
// quoted field may hold a separator or a line break). Within a block, a
// line is read in one pass where it can be (parseRow): each cell is parsed
// where it starts and must end at a separator or the line's end, with no
// split into fields first; any other line goes to the general path, which
// splits it and reports what is wrong.

// fastBlockBytes is the size of the blocks the reader cuts; fastCSV turns
// the parallel path on. Variables for the tests, which compare the two
// paths on blocks of a few lines.
var (
	fastBlockBytes = 1 << 20
	fastCSV        = true
)

// fastBlock is a block of whole lines and, once parsed, its rows.
type fastBlock struct {
	data  []byte
	line  int64 // the line the block starts on
	lines int   // how many line ends it holds
	batch Batch
	err   error
	done  chan struct{}
}

// csvFast runs the reader and the workers.
type csvFast struct {
	s       *csvSource
	order   chan *fastBlock // blocks in file order, as the reader cuts them
	free    chan *fastBlock
	stop    chan struct{}
	stopped sync.Once
	slow    *csv.Reader // set by the reader when it meets a quote
	slowOff int64       // lines before the slow reader's first line
	slowErr error
	cur     *fastBlock
	curRow  int
}

// startFast starts the parallel path over br, positioned after the header
// on line line+1. workers parse blocks; blockBytes is the block size.
func (s *csvSource) startFast(br *bufio.Reader, line int64, blockBytes, workers int) {
	f := &csvFast{s: s, order: make(chan *fastBlock, 2*workers), free: make(chan *fastBlock, 2*workers+2), stop: make(chan struct{})}
	work := make(chan *fastBlock, workers)
	for i := 0; i < workers; i++ {
		// A worker's own copy, its ISO second cache its own, taken here:
		// taken in the goroutine, it raced with the caller's slow path,
		// which goes on with the original.
		tc := *s.tc0()
		go func() {
			for b := range work {
				b.err = s.parseBlock(b, &tc)
				close(b.done)
			}
		}()
	}
	direct := &drainReader{br: br, under: s.under}
	go func() {
		defer close(f.order)
		defer close(work)
		var carry []byte
		for {
			b := f.get()
			buf := append(b.data[:0], carry...)
			if cap(buf) < blockBytes+len(carry) {
				buf = append(make([]byte, 0, blockBytes+len(carry)), buf...)
			}
			n, err := io.ReadFull(direct, buf[len(buf):len(buf)+blockBytes])
			buf = buf[:len(buf)+n]
			if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
				b.data, b.line, b.err, b.done = nil, 0, fmt.Errorf("%s: %w", s.path, err), make(chan struct{})
				close(b.done)
				select {
				case f.order <- b:
				case <-f.stop:
				}
				return
			}
			eof := err != nil // the file's end
			if eof && len(buf) == 0 {
				return
			}
			cut := len(buf)
			if !eof {
				cut = bytes.LastIndexByte(buf, '\n') + 1 // 0: a line longer than a block, for the slow path
			}
			if cut == 0 || bytes.IndexByte(buf[:cut], '"') >= 0 {
				// From here on, encoding/csv: over what is left of this
				// block and the rest of the file.
				rest := append([]byte(nil), buf...)
				f.slow = s.newReader(io.MultiReader(bytes.NewReader(rest), br))
				f.slowOff = line - 1
				b.data, b.line, b.err = nil, -1, nil // a marker: switch to the slow reader
				b.done = make(chan struct{})
				close(b.done)
				select {
				case f.order <- b:
				case <-f.stop:
				}
				return
			}
			b.data, b.line, b.done = buf[:cut], line, make(chan struct{})
			carry = append(carry[:0], buf[cut:]...)
			b.lines = bytes.Count(b.data, []byte{'\n'})
			line += int64(b.lines)
			select {
			case work <- b:
			case <-f.stop:
				return
			}
			select {
			case f.order <- b:
			case <-f.stop:
				return
			}
			if eof && len(carry) == 0 {
				return
			}
		}
	}()
	s.fast = f
}

// drainReader reads what br holds, then what br reads from (under) straight
// into the caller's block, which spares copying every block through br's
// buffer. br is empty after: a switch to encoding/csv reads on through it.
type drainReader struct {
	br    *bufio.Reader
	under io.Reader
}

func (d *drainReader) Read(p []byte) (int, error) {
	if d.br.Buffered() > 0 || d.under == nil {
		return d.br.Read(p)
	}
	return d.under.Read(p)
}

// halt stops the reader and the workers.
func (f *csvFast) halt() { f.stopped.Do(func() { close(f.stop) }) }

func (f *csvFast) get() *fastBlock {
	select {
	case b := <-f.free:
		return b
	default:
		return &fastBlock{}
	}
}

// tc0 is the source's time converter, or an empty one without a time column.
func (s *csvSource) tc0() *timeConv {
	if s.tc == nil {
		return &timeConv{}
	}
	return s.tc
}

// nextFast fills b with the rows of the next block, in order.
func (s *csvSource) nextFast(b *Batch) error {
	f := s.fast
	for {
		if f.cur != nil && f.curRow < f.cur.batch.N {
			break
		}
		if f.cur != nil {
			select {
			case f.free <- f.cur:
			default:
			}
			f.cur = nil
		}
		blk, ok := <-f.order
		if !ok {
			return io.EOF
		}
		<-blk.done
		if blk.line < 0 {
			s.r, s.lineOff, s.fast = f.slow, f.slowOff, nil
			return s.nextSlow(b)
		}
		if blk.err != nil {
			f.halt()
			return blk.err
		}
		f.cur, f.curRow = blk, 0
	}
	// Hand the block's rows on, at most BatchRows at a time.
	src := &f.cur.batch
	lo := f.curRow
	hi := min(src.N, lo+s.opts.BatchRows)
	n := hi - lo
	if lo == 0 && hi == src.N {
		// The whole block: its slices change places with b's, which the
		// block is parsed into when it is reused.
		b.N, src.N = n, 0
		b.Time, src.Time = src.Time, b.Time
		b.Values, src.Values = src.Values, b.Values
		b.lines, src.lines = src.lines, b.lines
		b.first = s.rows + 1
		s.rows += int64(n)
		f.curRow = hi
		return nil
	}
	b.ensure(n, len(s.chans), s.timeCol >= 0)
	if cap(b.lines) < n {
		b.lines = make([]int64, n)
	}
	b.lines = b.lines[:n]
	copy(b.lines, src.lines[lo:hi])
	if b.Time != nil {
		copy(b.Time, src.Time[lo:hi])
	}
	for i := range b.Values {
		copy(b.Values[i], src.Values[i][lo:hi])
	}
	b.first = s.rows + 1
	s.rows += int64(n)
	f.curRow = hi
	return nil
}

// parseBlock parses a block of whole lines without quotes into b.batch.
func (s *csvSource) parseBlock(blk *fastBlock, tc *timeConv) error {
	b := &blk.batch
	b.path = s.path
	data := blk.data
	est := blk.lines + 1 // the rows it holds at most
	b.ensure(est, len(s.chans), s.timeCol >= 0)
	if cap(b.lines) < est {
		b.lines = make([]int64, est)
	}
	b.lines = b.lines[:est]
	nf := len(s.header)
	fields := make([]string, nf)
	line := blk.line - 1
	row := 0
	for len(data) > 0 {
		line++
		if n := s.parseRow(data, b, row, tc); n > 0 {
			b.lines[row] = line
			row++
			data = data[n:]
			continue
		}
		var ln []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			ln, data = data[:i], data[i+1:]
		} else {
			ln, data = data, nil
		}
		if len(ln) > 0 && ln[len(ln)-1] == '\r' {
			ln = ln[:len(ln)-1]
		}
		if len(ln) == 0 || ln[0] == '#' { // encoding/csv skips these too
			continue
		}
		// The fields, as strings that share the block's bytes: they live
		// only while this row is parsed.
		str := unsafe.String(unsafe.SliceData(ln), len(ln))
		k := 0
		for {
			i := indexByteString(str, s.comma)
			if k == nf {
				k++
				break
			}
			if i < 0 {
				fields[k] = str
				k++
				break
			}
			fields[k] = str[:i]
			str = str[i+1:]
			k++
		}
		if k != nf {
			return fmt.Errorf("%s:%d: %d fields, but the header has %d (%s)", s.path, line, countFields(ln, s.comma), nf, quoteList(s.header))
		}
		b.lines[row] = line
		if s.timeCol >= 0 {
			t, err := tc.fromText(fields[s.timeCol], at{b, row})
			if err != nil {
				return err
			}
			b.Time[row] = t
		}
		for i, c := range s.chans {
			v, err := parseCell(fields[c], s.comma != ',')
			if err != nil || (s.intLike[i] && math.IsNaN(v)) {
				return s.cellError(line, c, fieldColumn(ln, s.comma, c), fields[c], err)
			}
			b.Values[i][row] = v
		}
		row++
	}
	b.N = row
	b.lines = b.lines[:row]
	if b.Time != nil {
		b.Time = b.Time[:row]
	}
	for i := range b.Values {
		b.Values[i] = b.Values[i][:row]
	}
	return nil
}

// What a column of the file is to parseRow: a channel's index (≥ 0), the
// time, or neither.
const (
	colSkip = -1
	colTime = -2
)

// rowColumns maps the file's columns to what parseRow makes of them, or is
// nil when a column is read as two channels (parseRow then leaves every
// line to the general path).
func (s *csvSource) rowColumns() []int {
	cols := make([]int, len(s.header))
	for c := range cols {
		cols[c] = colSkip
	}
	if s.timeCol >= 0 {
		cols[s.timeCol] = colTime
	}
	for k, c := range s.chans {
		if cols[c] != colSkip {
			return nil
		}
		cols[c] = k
	}
	return cols
}

// parseRow reads the line at the start of data into row of b in one pass,
// on the common path: not a comment or an empty line, the header's number
// of fields, every channel a plain decimal that scanFloat reads (to
// strconv's float64). It returns the bytes it took, the line's end
// included, or 0 for anything else, which the general path reads again from
// the line's start (and reports, when it is wrong): what parseRow wrote of
// the row is overwritten or dropped.
func (s *csvSource) parseRow(data []byte, b *Batch, row int, tc *timeConv) int {
	cols := s.cols
	if cols == nil || data[0] == '#' || data[0] == '\n' || data[0] == '\r' {
		return 0
	}
	comma := s.comma
	last := len(cols) - 1
	p := 0
	for c, kind := range cols {
		end := p
		switch {
		case kind >= 0:
			v, n, ok := scanFloat(data[p:])
			if !ok {
				return 0
			}
			b.Values[kind][row] = v
			end += n
		case kind == colTime && tc.iso:
			// What fromText would read of the cell, as parseISOFast
			// reads it (a time it leaves to time.Parse goes to the
			// general path).
			rest := data[p:]
			t, n, ok := tc.scanISO(unsafe.String(unsafe.SliceData(rest), len(rest)))
			if !ok {
				return 0
			}
			b.Time[row] = t
			end += n
		default:
			for end < len(data) && data[end] != comma && data[end] != '\n' {
				end++
			}
			if kind == colTime {
				fe := end
				if c == last && fe > p && data[fe-1] == '\r' {
					fe-- // as the general path trims a line's CR
				}
				f := data[p:fe]
				t, err := tc.fromText(unsafe.String(unsafe.SliceData(f), len(f)), at{b, row})
				if err != nil {
					return 0
				}
				b.Time[row] = t
			}
		}
		if c < last {
			if end >= len(data) || data[end] != comma {
				return 0
			}
			p = end + 1
			continue
		}
		switch {
		case end == len(data):
			return end
		case data[end] == '\n':
			return end + 1
		case data[end] == '\r' && end+1 == len(data):
			return end + 1
		case data[end] == '\r' && data[end+1] == '\n':
			return end + 2
		}
	}
	return 0
}

func indexByteString(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func countFields(ln []byte, comma byte) int { return bytes.Count(ln, []byte{comma}) + 1 }

// fieldColumn is the character (from 1) field c of a line starts at.
func fieldColumn(ln []byte, comma byte, c int) int {
	col := 1
	for i := 0; i < c; i++ {
		j := bytes.IndexByte(ln, comma)
		if j < 0 {
			break
		}
		col += j + 1
		ln = ln[j+1:]
	}
	return col
}

// cellError says what is wrong with cell c of a line.
func (s *csvSource) cellError(line int64, c, col int, cell string, err error) error {
	what := "is not a number"
	if cell == "" || err == nil {
		what = "is empty; an integer channel has no value for a missing sample (import as --type float32 or float64, where it becomes NaN)"
	}
	return fmt.Errorf("%s:%d: column %d (%q), character %d: %q %s", s.path, line, c+1, s.header[c], col, cell, what)
}

// fastWorkers is how many goroutines parse CSV blocks.
func fastWorkers() int { return max(1, runtime.GOMAXPROCS(0)) }
