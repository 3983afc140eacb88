package sampletable

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// at is a row of a batch, named in an error message only when there is
// one: formatting the place of every row costs more than parsing it.
type at struct {
	b *Batch
	i int
}

func (a at) String() string { return a.b.Where(a.i) }

// absoluteFrom is the smallest time (ns since the epoch) read as absolute:
// 1973-03-03. A time column whose first value is earlier holds offsets from
// a start the user gives (--start): 0, 0.001, … seconds.
const absoluteFrom = 1e17

var unitNS = map[string]int64{"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1}

// timeConv turns a time column's values into ns since the epoch. Its unit
// and whether the column is absolute are decided on the first value and
// then hold for the whole file, so that a file is read one way throughout.
type timeConv struct {
	name     string
	unit     string // "" until decided
	factor   int64  // ns per unit
	fixed    bool   // the unit came from the user, the name or the type
	decided  bool
	relative bool
	start    int64
	hasStart bool
	iso      bool   // CSV: the cells are ISO 8601 text
	layout   string // the ISO layout that parsed the last cell
	// decimalComma: a CSV file separated by semicolons or tabs may write
	// "1,5" for 1.5.
	decimalComma bool
	day          string // parseISOFast: the date of the row before
	dayStart     int64  // and its start, s since the epoch
	// scanISO: the first 19 bytes of the row before (its date and time to
	// the second, as three words: bytes 0–7, 8–15 and 15–18), the time
	// they say (s since the epoch), and whether there is one.
	secKey  [3]uint64
	secs    int64
	hasSecs bool
}

func newTimeConv(name, unit string, o Options) *timeConv {
	c := &timeConv{name: name, start: o.Start, hasStart: o.HasStart}
	if o.TimeUnit != "" {
		unit = o.TimeUnit
	}
	if unit != "" {
		c.unit, c.factor, c.fixed = unit, unitNS[unit], true
	}
	return c
}

// detectUnit tells a numeric epoch's unit by the first value's magnitude.
func detectUnit(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e17:
		return "ns"
	case a >= 1e14:
		return "us"
	case a >= 1e11:
		return "ms"
	}
	return "s"
}

// decide settles the column's unit and whether it is relative, from its
// first value v (in the column's own numbers).
func (c *timeConv) decide(v float64, loc at) error {
	if !c.fixed {
		c.unit = detectUnit(v)
		c.factor = unitNS[c.unit]
	}
	c.relative = v*float64(c.factor) < absoluteFrom
	c.decided = true
	switch {
	case c.relative && !c.hasStart:
		return fmt.Errorf("%s: the time column %q starts at %v %s, before 1973: it looks like offsets from a start; give the start (--start) or the column's unit (--time-unit) if it is an epoch time",
			loc, c.name, v, c.unit)
	case !c.relative && c.hasStart:
		return fmt.Errorf("%s: the time column %q holds absolute times (%s); --start is for a file without a time column or with offsets from the start",
			loc, c.name, time.Unix(0, int64(v*float64(c.factor))).UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// Describe says how the column was read, for the user.
func (c *timeConv) Describe() string {
	switch {
	case c.iso:
		return fmt.Sprintf("%q (ISO 8601)", c.name)
	case c.relative:
		return fmt.Sprintf("%q (offsets in %s from --start)", c.name, c.unit)
	case c.unit != "":
		return fmt.Sprintf("%q (Unix time in %s)", c.name, c.unit)
	}
	return fmt.Sprintf("%q", c.name)
}

func (c *timeConv) base() int64 {
	if c.relative {
		return c.start
	}
	return 0
}

// fromInt converts an integer value of the column.
func (c *timeConv) fromInt(v int64, loc at) (int64, error) {
	if !c.decided {
		if err := c.decide(float64(v), loc); err != nil {
			return 0, err
		}
	}
	ns := v * c.factor
	if c.factor != 0 && ns/c.factor != v {
		return 0, fmt.Errorf("%s: time %d %s is out of range", loc, v, c.unit)
	}
	return c.base() + ns, nil
}

// fromFloat converts a floating-point value of the column.
func (c *timeConv) fromFloat(v float64, loc at) (int64, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s: the time column %q is empty or not a number", loc, c.name)
	}
	if !c.decided {
		if err := c.decide(v, loc); err != nil {
			return 0, err
		}
	}
	ns := v * float64(c.factor)
	if math.Abs(ns) >= 9.2e18 {
		return 0, fmt.Errorf("%s: time %v %s is out of range", loc, v, c.unit)
	}
	return c.base() + int64(math.Round(ns)), nil
}

// fromText converts a CSV cell: ISO 8601, or a number (read exactly, not
// through float64, which keeps only about 0.2 µs of an epoch in seconds).
func (c *timeConv) fromText(s string, loc at) (int64, error) {
	if c.decimalComma && strings.IndexByte(s, ',') >= 0 {
		s = strings.Replace(s, ",", ".", 1) // 1732449600,5 and ISO 8601's 12:00:00,5
	}
	if !c.decided {
		if _, err := parseDecimal(s, 1); err != nil {
			if _, err := c.parseISO(s); err != nil {
				return 0, fmt.Errorf("%s: the time column %q holds %q, which is neither a number nor an ISO 8601 time (2026-11-24T12:00:00.5Z)", loc, c.name, s)
			}
			if c.fixed {
				return 0, fmt.Errorf("%s: the time column %q holds ISO 8601 times; --time-unit is for numbers", loc, c.name)
			}
			c.iso, c.decided = true, true
			if c.hasStart {
				return 0, fmt.Errorf("%s: the time column %q holds absolute times (%s); --start is for a file without a time column or with offsets from the start", loc, c.name, s)
			}
		} else {
			f, _ := strconv.ParseFloat(s, 64)
			if err := c.decide(f, loc); err != nil {
				return 0, err
			}
		}
	}
	if c.iso {
		t, err := c.parseISO(s)
		if err != nil {
			return 0, fmt.Errorf("%s: the time column %q holds %q, which is not an ISO 8601 time like the rows before", loc, c.name, s)
		}
		return t, nil
	}
	ns, err := parseDecimal(s, c.factor)
	if err != nil {
		return 0, fmt.Errorf("%s: the time column %q holds %q, which is not a number like the rows before", loc, c.name, s)
	}
	return c.base() + ns, nil
}

// isoLayouts are the ISO 8601 shapes a CSV time may take; without a zone a
// time is UTC.
var isoLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02T15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999 -0700 MST",
}

func (c *timeConv) parseISO(s string) (int64, error) {
	if ns, ok := c.parseISOFast(s); ok {
		return ns, nil
	}
	if c.layout != "" {
		if t, err := time.Parse(c.layout, s); err == nil {
			return t.UnixNano(), nil
		}
	}
	for _, l := range isoLayouts {
		if t, err := time.Parse(l, s); err == nil {
			c.layout = l
			return t.UnixNano(), nil
		}
	}
	return 0, fmt.Errorf("not ISO 8601: %q", s)
}

// parseISOFast reads the common shape YYYY-MM-DD[T ]HH:MM:SS[.fff…][Z|±hh:mm|±hhmm|±hh|]
// without time.Parse, which costs a CSV of ISO times a quarter of its
// parsing; the day's start is kept from the row before. Anything else (ok
// false) goes to time.Parse.
func (c *timeConv) parseISOFast(s string) (int64, bool) {
	ns, n, ok := c.scanISO(s)
	return ns, ok && n == len(s)
}

// scanISO reads the time of parseISOFast's shape at the start of s and
// returns it with its length; the caller checks that what follows ends the
// cell.
func (c *timeConv) scanISO(s string) (ns int64, n int, ok bool) {
	if len(s) < 19 {
		return 0, 0, false
	}
	// A signal's rows share their second with the row before but for one
	// in every rate: then only the fraction and the zone are read.
	b := unsafe.Slice(unsafe.StringData(s), len(s))
	key := [3]uint64{binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:]), uint64(binary.LittleEndian.Uint32(b[15:]))}
	var secs int64
	if c.hasSecs && key == c.secKey {
		secs = c.secs
	} else {
		var ok bool
		if secs, ok = c.isoSeconds(s); !ok {
			return 0, 0, false
		}
		c.secKey, c.secs, c.hasSecs = key, secs, true
	}
	i := 19
	var frac int64
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		if len(s)-i >= 8 {
			// Eight digits at once, as scanFloat reads a fraction.
			w := binary.LittleEndian.Uint64(b[i:])
			d := w - 0x3030303030303030
			if m := (d | (w + 0x4646464646464646)) & 0x8080808080808080; m != 0 {
				k := bits.TrailingZeros64(m) >> 3
				if k > 0 {
					frac = int64(eightDigits(d << (64 - 8*k)))
				}
				i += k
			} else {
				frac = int64(eightDigits(d))
				i += 8
			}
		}
		if i-start == 8 || len(s)-start < 8 {
			for ; i < len(s) && s[i]-'0' < 10; i++ {
				frac = frac*10 + int64(s[i]-'0')
			}
		}
		nd := i - start
		if nd == 0 || nd > 9 {
			return 0, 0, false // beyond ns: time.Parse's rules
		}
		frac *= pow10i[9-nd]
	}
	off, n := isoZone(s[i:])
	if n < 0 {
		return 0, 0, false
	}
	return (secs-int64(off))*1e9 + frac, i + n, true
}

// isoSeconds reads YYYY-MM-DD[T ]HH:MM:SS at the start of s (at least 19
// bytes) as s since the epoch, the day's start kept from the row before.
func (c *timeConv) isoSeconds(s string) (int64, bool) {
	if s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	if s[:10] != c.day {
		y, ok1 := digits(s[0:4])
		mo, ok2 := digits(s[5:7])
		d, ok3 := digits(s[8:10])
		if !ok1 || !ok2 || !ok3 || mo < 1 || mo > 12 || d < 1 || d > 31 {
			return 0, false
		}
		t := time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC)
		if t.Day() != d { // 31 February
			return 0, false
		}
		c.day, c.dayStart = strings.Clone(s[:10]), t.Unix() // s may be a view of a buffer that is reused
	}
	h, ok1 := digits(s[11:13])
	mi, ok2 := digits(s[14:16])
	sec, ok3 := digits(s[17:19])
	if !ok1 || !ok2 || !ok3 || h > 23 || mi > 59 || sec > 59 {
		return 0, false
	}
	return c.dayStart + int64(h*3600+mi*60+sec), true
}

// isoZone reads the zone at the start of s: none, Z, ±hh:mm, ±hhmm or ±hh
// (DuckDB's TIMESTAMPTZ in CSV). It returns the offset in s and the zone's
// length, -1 when it is none of these.
func isoZone(s string) (off, n int) {
	if len(s) == 0 {
		return 0, 0
	}
	switch s[0] {
	case 'Z':
		return 0, 1
	case '+', '-':
	default:
		return 0, 0
	}
	if len(s) < 3 {
		return 0, -1
	}
	oh, ok1 := digits(s[1:3])
	om, ok2 := 0, true
	n = 3
	switch {
	case len(s) >= 6 && s[3] == ':':
		om, ok2 = digits(s[4:6])
		n = 6
	case len(s) >= 5 && s[3]-'0' < 10:
		om, ok2 = digits(s[3:5])
		n = 5
	}
	if !ok1 || !ok2 || oh > 23 || om > 59 {
		return 0, -1
	}
	off = oh*3600 + om*60
	if s[0] == '-' {
		off = -off
	}
	return off, n
}

var pow10i = [...]int64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000}

// digits reads a run of decimal digits.
func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// parseDecimal reads a decimal number of units ("1732449600.123456789",
// "-0.5", "1.5e3") as ns, factor ns per unit, exactly when it has no
// exponent.
func parseDecimal(s string, factor int64) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, strconv.ErrSyntax
	}
	if strings.ContainsAny(t, "eE") {
		f, err := strconv.ParseFloat(t, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f*float64(factor)) >= 9.2e18 {
			return 0, strconv.ErrSyntax
		}
		return int64(math.Round(f * float64(factor))), nil
	}
	neg := false
	if t[0] == '-' || t[0] == '+' {
		neg = t[0] == '-'
		t = t[1:]
	}
	intPart, frac, _ := strings.Cut(t, ".")
	if intPart == "" && frac == "" {
		return 0, strconv.ErrSyntax
	}
	var whole int64
	for i := 0; i < len(intPart); i++ {
		d := intPart[i]
		if d < '0' || d > '9' {
			return 0, strconv.ErrSyntax
		}
		if whole > (math.MaxInt64-9)/10 {
			return 0, strconv.ErrRange
		}
		whole = whole*10 + int64(d-'0')
	}
	if factor != 0 && whole > math.MaxInt64/factor {
		return 0, strconv.ErrRange
	}
	ns := whole * factor
	// The fraction: digits beyond the unit's ns resolution are rounded.
	scale := factor
	var fr int64
	roundUp := false
	for i := 0; i < len(frac); i++ {
		d := frac[i]
		if d < '0' || d > '9' {
			return 0, strconv.ErrSyntax
		}
		if scale >= 10 {
			scale /= 10
			fr += int64(d-'0') * scale
		} else if scale == 1 {
			roundUp = d >= '5'
			scale = 0
		}
	}
	if roundUp {
		fr++
	}
	ns += fr
	if neg {
		ns = -ns
	}
	return ns, nil
}
