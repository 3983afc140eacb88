package sampletable

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The one-pass row reader (parseRow) and the general path read the same
// rows from lines of every shape they meet: times first, last or between
// the channels, a column that is not read, a column read as two channels,
// ISO times of every zone form and epoch times, decimals of every form,
// empty and NA cells, cells with spaces, decimal commas, CRLF, and no line
// end at the file's end; and where a file is wrong, the same error.
func TestCSVRowPathAgrees(t *testing.T) {
	defer func(b int, f bool) { fastBlockBytes, fastCSV = b, f }(fastBlockBytes, fastCSV)
	r := rand.New(rand.NewPCG(3, 4))
	digits := func(sb *strings.Builder, n int) {
		for k := 0; k < n; k++ {
			sb.WriteByte(byte('0' + r.IntN(10)))
		}
	}
	number := func(comma byte) string {
		var sb strings.Builder
		switch r.IntN(40) {
		case 0:
			return ""
		case 1:
			return "NA"
		case 2:
			return " 1.5"
		case 3:
			return "2.25 "
		case 4:
			if comma != ',' {
				return "1,75"
			}
		case 5:
			return "1e300"
		case 6:
			return "0x1p-2"
		case 7:
			return "12345678901234567890.5"
		}
		switch r.IntN(5) {
		case 0:
			sb.WriteByte('-')
		case 1:
			sb.WriteByte('+')
		}
		nd := r.IntN(5)
		digits(&sb, nd)
		if r.IntN(6) > 0 {
			sb.WriteByte('.')
			n := r.IntN(14)
			digits(&sb, n)
			nd += n
		}
		if nd == 0 {
			sb.WriteByte('7')
		}
		if r.IntN(8) == 0 {
			fmt.Fprintf(&sb, "e%d", r.IntN(50)-25)
		}
		return sb.String()
	}
	iso := func(k int) string {
		s := fmt.Sprintf("2026-11-%02d%c12:%02d:%02d", 1+k/5000, " T"[r.IntN(2)], (k/60)%60, k%60)
		if n := r.IntN(10); n > 0 {
			var sb strings.Builder
			digits(&sb, n)
			s += "." + sb.String()
		}
		return s + []string{"", "Z", "Z", "+02:00", "-0530", "+01"}[r.IntN(6)]
	}
	for _, shape := range []struct {
		name   string
		comma  byte
		header []string
		time   int // the time column, -1 for none
		opts   Options
	}{
		{"time first", ',', []string{"time", "x", "y", "z"}, 0, Options{}},
		{"time last", ',', []string{"x", "y", "time"}, 2, Options{}},
		{"time between, semicolons", ';', []string{"x", "time", "y"}, 1, Options{}},
		{"tabs, a column not read", '\t', []string{"time", "x", "note", "y"}, 0, Options{Channels: []string{"x", "y"}}},
		{"a column read twice", ',', []string{"time", "x", "y"}, 0, Options{Channels: []string{"x", "y", "x"}}},
		{"epoch times", ',', []string{"time", "x", "y"}, -2, Options{}},
		{"no time column", ',', []string{"a", "b"}, -1, Options{TimeColumn: "none", HasStart: true, Start: 1e18}},
	} {
		// bad ≥ 0: one line of the file made wrong, the bad'th way.
		for bad := -1; bad < 9; bad++ {
			var sb strings.Builder
			sb.WriteString(strings.Join(shape.header, string(shape.comma)) + "\n")
			rows := 4000 + r.IntN(8)
			for k := 0; k < rows; k++ {
				var cells []string
				for c := range shape.header {
					switch {
					case c == shape.time:
						cells = append(cells, iso(k))
					case shape.time == -2 && c == 0:
						cells = append(cells, fmt.Sprintf("%d.%06d", 1_700_000_000+k, r.IntN(1e6)))
					case shape.header[c] == "note":
						cells = append(cells, []string{"", "ok", "1.5", "a b"}[r.IntN(4)])
					default:
						cells = append(cells, number(shape.comma))
					}
				}
				line := strings.Join(cells, string(shape.comma))
				if bad >= 0 && k == rows/2 {
					sep := string(shape.comma)
					line = []string{line + sep + "1", line[:len(line)/2], "x" + line, strings.Replace(line, "2026-11-", "2026-13-", 1),
						line + "+01:3", line + "x", strings.Replace(line, sep, "\r"+sep, 1), line + "\r\r", line + "\rx"}[bad]
				}
				sb.WriteString(line)
				if k < rows-1 || r.IntN(2) == 0 {
					sb.WriteString([]string{"\n", "\n", "\r\n"}[r.IntN(3)])
				}
			}
			path := filepath.Join(t.TempDir(), "f.csv")
			if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			o := shape.opts
			o.BatchRows = 1000
			fastCSV = false
			want, werr := readRows(path, o)
			for _, block := range []int{700, 1 << 20} {
				fastCSV, fastBlockBytes = true, block
				got, err := readRows(path, o)
				if fmt.Sprint(err) != fmt.Sprint(werr) || werr == nil && got != want {
					t.Errorf("%s (bad %d, blocks of %d): the parallel path reads\n%s\n%v\nencoding/csv\n%s\n%v", shape.name, bad, block, diffLine(got, want), err, diffLine(want, got), werr)
				}
			}
			if bad < 0 && werr != nil {
				t.Errorf("%s: %v", shape.name, werr)
			}
			if bad < 0 && strings.Count(want, "\n") != rows {
				t.Errorf("%s: %d rows of %d", shape.name, strings.Count(want, "\n"), rows)
			}
		}
	}
}

// diffLine is the first line of a that differs from b.
func diffLine(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range al {
		if i >= len(bl) || al[i] != bl[i] {
			return al[i]
		}
	}
	return "(no difference)"
}
