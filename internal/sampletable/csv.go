package sampletable

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/sensorium-io/sensorium/signals"
)

// CSV is read with the standard library's encoding/csv rather than
// arrow-go's csv reader: a bad cell must be reported with its line and
// column, and Arrow's reader keeps neither (its errors are strconv's, and a
// short row is ErrMismatchFields with no place). Cells are parsed straight
// into the batch's columns, with no Arrow arrays in between.

type csvSource struct {
	f        *os.File
	path     string
	size     int64
	read     *countReader
	br       *bufio.Reader
	under    io.Reader // what br reads: the file, or its decompressor
	comma    byte
	r        *csv.Reader // the slow path: encoding/csv
	lineOff  int64       // lines before the slow reader's first (when it starts mid-file)
	fast     *csvFast    // the parallel path, while it runs
	tried    bool        // whether the parallel path was considered
	dataLine int64       // the line after the header's
	closeZ   func()      // releases a zstd decoder
	opts     Options
	header   []string
	timeCol  int
	chans    []int
	cols     []int  // parseRow's view of the columns (rowColumns)
	intLike  []bool // the channel's type is an integer type: empty cells are refused
	tc       *timeConv
	rows     int64
	eof      bool
}

// countReader counts the bytes read from the file (compressed, for a
// compressed file), which the parallel path's reader goroutine reads while
// the caller's asks for the progress.
type countReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func openCSV(t *Table, o Options) error {
	f, err := os.Open(t.Path)
	if err != nil {
		return err
	}
	s := &csvSource{f: f, opts: o}
	if st, err := f.Stat(); err == nil {
		s.size = st.Size()
	}
	s.read = &countReader{r: f}
	var src io.Reader = s.read
	switch compression(t.Path) {
	case ".gz":
		zr, err := gzip.NewReader(s.read)
		if err != nil {
			f.Close()
			return fmt.Errorf("%s: gzip: %w", t.Path, err)
		}
		src = zr
	case ".zst":
		zr, err := zstd.NewReader(s.read, zstd.WithDecoderConcurrency(1))
		if err != nil {
			f.Close()
			return fmt.Errorf("%s: zstd: %w", t.Path, err)
		}
		s.closeZ = zr.Close
		src = zr
	}
	br := bufio.NewReaderSize(src, 1<<20)
	// The separator: a comma, unless the header line has none and has
	// semicolons or tabs (European spreadsheets, .tsv).
	comma := ','
	if peek, _ := br.Peek(64 << 10); len(peek) > 0 {
		line := peek
		if i := bytes.IndexByte(peek, '\n'); i >= 0 {
			line = peek[:i]
		}
		switch {
		case bytes.IndexByte(line, ',') >= 0:
		case bytes.IndexByte(line, '\t') >= 0:
			comma = '\t'
		case bytes.IndexByte(line, ';') >= 0:
			comma = ';'
		}
		// A UTF-8 byte order mark (Excel writes one) is not part of the first name.
		if bytes.HasPrefix(peek, []byte("\xef\xbb\xbf")) {
			_, _ = br.Discard(3)
		}
	}
	s.path, s.br, s.under, s.comma = t.Path, br, src, byte(comma)
	r := s.newReader(br)
	r.FieldsPerRecord = 0
	s.r = r
	hdr, err := r.Read()
	switch {
	case errors.Is(err, io.EOF):
		s.close()
		return fmt.Errorf("%s: the file is empty: a CSV file needs a header line of column names", t.Path)
	case err != nil:
		s.close()
		return fmt.Errorf("%s: header: %w", t.Path, err)
	}
	names := make([]string, len(hdr))
	units := make([]string, len(hdr))
	numeric := 0
	for i, h := range hdr {
		names[i], units[i] = splitUnit(h)
		if _, err := strconv.ParseFloat(names[i], 64); err == nil {
			numeric++
		}
		if names[i] == "" {
			s.close()
			return fmt.Errorf("%s:1: column %d has no name in the header line", t.Path, i+1)
		}
	}
	if numeric == len(hdr) {
		s.close()
		return fmt.Errorf("%s:1: the first line holds numbers, not column names: a CSV file needs a header line (time,x,y,z)", t.Path)
	}
	s.header = names
	r.FieldsPerRecord = len(hdr)
	hl, _ := r.FieldPos(len(hdr) - 1)
	s.dataLine = int64(hl) + 1
	timeCol, chans, err := pickColumns(t.Path, names, func(int) bool { return false }, o)
	if err != nil {
		s.close()
		return err
	}
	s.timeCol, s.chans = timeCol, chans
	s.cols = s.rowColumns()
	if timeCol >= 0 {
		t.TimeName = names[timeCol]
		s.tc = newTimeConv(names[timeCol], unitFromName(names[timeCol], units[timeCol]), o)
		s.tc.decimalComma = comma != ','
	}
	t.Channels = make([]signals.Channel, len(chans))
	for i, c := range chans {
		t.Channels[i] = signals.Channel{Name: names[c], Unit: units[c]}
	}
	if err := applyUnits(t.Path, t.Channels, o.Units); err != nil {
		s.close()
		return err
	}
	t.Type = o.Type
	if t.Type == 0 {
		t.Type = signals.Float64
	}
	s.intLike = make([]bool, len(chans))
	for i := range chans {
		s.intLike[i] = t.Type == signals.Int16 || t.Type == signals.Int32
	}
	t.src = s
	return nil
}

// TimeConv describes how the table's time column is read, once a batch has
// been read ("" before, or without a time column).
func (t *Table) TimeConv() string {
	var tc *timeConv
	switch s := t.src.(type) {
	case *csvSource:
		tc = s.tc
	case *arrowSource:
		tc = s.tc
	}
	if tc == nil || !tc.decided {
		return ""
	}
	return tc.Describe()
}

// newReader is encoding/csv over r with the file's separator. It reads
// straight from r when r is a bufio.Reader (encoding/csv wraps only other
// readers), so that after the header the parallel path reads on from the
// first data line.
func (s *csvSource) newReader(r io.Reader) *csv.Reader {
	cr := csv.NewReader(r)
	cr.Comma = rune(s.comma)
	cr.ReuseRecord = true
	cr.Comment = '#'
	cr.FieldsPerRecord = len(s.header)
	return cr
}

func (s *csvSource) next(b *Batch) error {
	if !s.tried {
		s.tried = true
		if fastCSV && s.decideTime() {
			s.startFast(s.br, s.dataLine, fastBlockBytes, fastWorkers())
		}
	}
	if s.fast != nil {
		return s.nextFast(b)
	}
	return s.nextSlow(b)
}

// decideTime settles how the time column is read from the first data line,
// before the parallel path's workers each take a copy of it. It reports
// whether the parallel path may run: not when the first line has a quote,
// is not there, or fails (the slow path then reports it with its place).
func (s *csvSource) decideTime() bool {
	peek, _ := s.br.Peek(64 << 10)
	line := s.dataLine
	for len(peek) > 0 {
		i := bytes.IndexByte(peek, '\n')
		if i < 0 {
			return false // no whole line in sight
		}
		ln := bytes.TrimSuffix(peek[:i], []byte{'\r'})
		peek = peek[i+1:]
		if len(ln) == 0 || ln[0] == '#' {
			line++
			continue
		}
		if bytes.IndexByte(ln, '"') >= 0 {
			return false
		}
		if s.timeCol < 0 {
			return true
		}
		fields := bytes.Split(ln, []byte{s.comma})
		if len(fields) != len(s.header) {
			return false
		}
		dummy := &Batch{lines: []int64{line}, path: s.path}
		_, err := s.tc.fromText(string(fields[s.timeCol]), at{dummy, 0})
		if err != nil {
			s.tc.decided = false
			return false
		}
		return true
	}
	return false
}

func (s *csvSource) nextSlow(b *Batch) error {
	if s.eof {
		return io.EOF
	}
	n := s.opts.BatchRows
	b.ensure(n, len(s.chans), s.timeCol >= 0)
	if cap(b.lines) < n {
		b.lines = make([]int64, n)
	}
	b.lines = b.lines[:n]
	b.first = s.rows + 1
	row := 0
	for row < n {
		rec, err := s.r.Read()
		if errors.Is(err, io.EOF) {
			s.eof = true
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				if errors.Is(pe.Err, csv.ErrFieldCount) {
					return fmt.Errorf("%s:%d: %d fields, but the header has %d (%s)", b.path, int64(pe.StartLine)+s.lineOff, len(rec), len(s.header), quoteList(s.header))
				}
				return fmt.Errorf("%s:%d: column %d: %v", b.path, int64(pe.Line)+s.lineOff, pe.Column, pe.Err)
			}
			return fmt.Errorf("%s: %w", b.path, err)
		}
		line, _ := s.r.FieldPos(0)
		b.lines[row] = int64(line) + s.lineOff
		if s.timeCol >= 0 {
			t, err := s.tc.fromText(rec[s.timeCol], at{b, row})
			if err != nil {
				return err
			}
			b.Time[row] = t
		}
		for i, c := range s.chans {
			v, err := parseCell(rec[c], s.comma != ',')
			if err != nil || (s.intLike[i] && math.IsNaN(v)) {
				l, col := s.r.FieldPos(c)
				return s.cellError(int64(l)+s.lineOff, c, col, rec[c], err)
			}
			b.Values[i][row] = v
		}
		row++
	}
	s.rows += int64(row)
	b.N = row
	b.lines = b.lines[:row]
	if b.Time != nil {
		b.Time = b.Time[:row]
	}
	for i := range b.Values {
		b.Values[i] = b.Values[i][:row]
	}
	if row == 0 {
		return io.EOF
	}
	return nil
}

// parseCell reads a numeric cell; an empty cell, NA, N/A or null is NaN.
// With decimalComma (a file separated by semicolons or tabs, as spreadsheets
// in much of Europe write it) "1,5" is 1.5.
func parseCell(s string, decimalComma bool) (float64, error) {
	if v, ok := parseFloatFast(s); ok {
		return v, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err == nil {
		return v, nil
	}
	if decimalComma && strings.Count(s, ",") == 1 && !strings.Contains(s, ".") {
		if v, err2 := strconv.ParseFloat(strings.TrimSpace(strings.Replace(s, ",", ".", 1)), 64); err2 == nil {
			return v, nil
		}
	}
	switch strings.TrimSpace(s) {
	case "", "NA", "N/A", "na", "n/a", "null", "NULL", "None", "nan", "NaN":
		return math.NaN(), nil
	}
	if v, err2 := strconv.ParseFloat(strings.TrimSpace(s), 64); err2 == nil {
		return v, nil
	}
	return 0, err
}

func (s *csvSource) progress() (int64, int64) { return s.read.n.Load(), s.size }

func (s *csvSource) close() error {
	if f := s.fast; f != nil {
		s.fast = nil
		f.halt()
		for b := range f.order { // let the reader and the workers finish
			<-b.done
		}
	}
	if s.closeZ != nil {
		s.closeZ()
	}
	return s.f.Close()
}
