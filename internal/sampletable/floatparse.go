package sampletable

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// parseFloatFast reads the plain decimals that loggers, spreadsheets and
// `sensorium query` write — [+-]digits[.digits][e[+-]digits] — to the same
// float64 as strconv.ParseFloat, which a CSV import would otherwise spend a
// third of its time in. ok is false for anything else (NaN, Inf, hex, more
// digits), which the caller hands to strconv.
func parseFloatFast(s string) (f float64, ok bool) {
	f, n, ok := scanFloat(unsafe.Slice(unsafe.StringData(s), len(s)))
	return f, ok && n == len(s)
}

// scanFloat reads the plain decimal at the start of b —
// [+-]digits[.digits][e[+-]digits] — and returns its value and length; the
// caller checks that what follows ends the cell. With at most 19 digits
// whose value is at most 2⁵³ and a power of ten within 10^±22,
// float64(mantissa) × or ÷ 10^k is exact up to one rounding, hence correctly
// rounded, hence the float64 strconv.ParseFloat returns (Clinger's fast
// path; strconv takes it too, after a more general scan). ok is false for
// anything else, which the caller hands to strconv. It never reads b beyond
// its length.
func scanFloat(b []byte) (f float64, n int, ok bool) {
	i := 0
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		i++
	}
	var mant uint64
	start := i
	for ; i < len(b) && b[i]-'0' < 10; i++ {
		mant = mant*10 + uint64(b[i]-'0')
	}
	nd := i - start // leading zeros too: past 19, mant may have overflowed
	frac := 0
	if i < len(b) && b[i] == '.' {
		i++
		start = i
		// The fraction's first eight bytes at once where they are there
		// (SWAR, as in simdjson and fast_float): no branch per digit on
		// how many there are, which varies from cell to cell.
		if len(b)-i >= 8 {
			w := binary.LittleEndian.Uint64(b[i:])
			d := w - 0x3030303030303030
			// A byte's top bit is set where it is below '0' (w - '0'
			// borrows) or above '9' (w + 0x46 carries into it). Borrows and
			// carries reach only bytes above the first non-digit, so the
			// lowest set bit marks it.
			if m := (d | (w + 0x4646464646464646)) & 0x8080808080808080; m != 0 {
				if k := bits.TrailingZeros64(m) >> 3; k > 0 {
					// The k digits, moved to the top of the word (the bytes
					// below them zero), read as eight.
					mant = mant*pow10u[k&7] + eightDigits(d<<(64-8*k))
					i += k
				}
				goto fracDone
			}
			mant = mant*1e8 + eightDigits(d)
			i += 8
		}
		for ; i < len(b) && b[i]-'0' < 10; i++ {
			mant = mant*10 + uint64(b[i]-'0')
		}
	fracDone:
		frac = i - start
		nd += frac
	}
	if nd == 0 || nd > 19 || mant > 1<<53 {
		return 0, 0, false
	}
	exp := 0
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '-' || b[i] == '+') {
			eneg = b[i] == '-'
			i++
		}
		start := i
		for ; i < len(b) && b[i]-'0' < 10; i++ {
			if exp > 10000 {
				return 0, 0, false
			}
			exp = exp*10 + int(b[i]-'0')
		}
		if i == start {
			return 0, 0, false
		}
		if eneg {
			exp = -exp
		}
	}
	f = float64(mant)
	switch e := exp - frac; {
	case mant == 0:
	case e == 0:
	case e > 0 && e <= 22:
		f *= pow10[e]
	case e < 0 && e >= -22:
		f /= pow10[-e]
	default:
		return 0, 0, false
	}
	if neg {
		f = -f
	}
	return f, i, true
}

// eightDigits is the value of eight decimal digits, one a byte (0–9, the
// first in the lowest byte).
func eightDigits(d uint64) uint64 {
	d = d*10 + d>>8 // each even byte: two digits' value
	d = ((d&0x000000ff000000ff)*(100+(1000000<<32)) + (d>>16&0x000000ff000000ff)*(1+(10000<<32))) >> 32
	return d & 0xffffffff
}

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

var pow10u = [...]uint64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000}
