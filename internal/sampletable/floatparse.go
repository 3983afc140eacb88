package sampletable

// parseFloatFast reads the plain decimals that loggers, spreadsheets and
// `sensorium query` write — [+-]digits[.digits][e[+-]digits] — to the same
// float64 as strconv.ParseFloat, which a CSV import spends a third of its
// time in: with at most 19 digits whose value is at most 2⁵³ and a power of
// ten within 10^±22, float64(mantissa) × or ÷ 10^k is exact up to one
// rounding, hence correctly rounded (Clinger's fast path; strconv takes it
// too, after a more general scan). ok is false for anything else (NaN, Inf,
// hex, more digits), which the caller hands to strconv.
func parseFloatFast(s string) (f float64, ok bool) {
	i := 0
	neg := false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	var mant uint64
	nd, dp := 0, 0
	dot, digit := false, false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digit = true
			if dot {
				dp--
			}
			if mant == 0 && c == '0' {
				continue // a leading zero adds no digit
			}
			if nd == 19 {
				return 0, false
			}
			mant = mant*10 + uint64(c-'0')
			nd++
			continue
		case c == '.' && !dot:
			dot = true
			continue
		}
		break
	}
	if !digit {
		return 0, false
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			eneg = s[i] == '-'
			i++
		}
		start := i
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			if exp > 10000 {
				return 0, false
			}
			exp = exp*10 + int(s[i]-'0')
		}
		if i == start {
			return 0, false
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(s) || mant > 1<<53 {
		return 0, false
	}
	f = float64(mant)
	switch e := dp + exp; {
	case mant == 0:
	case e == 0:
	case e > 0 && e <= 22:
		f *= pow10[e]
	case e < 0 && e >= -22:
		f /= pow10[-e]
	default:
		return 0, false
	}
	if neg {
		f = -f
	}
	return f, true
}

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}
