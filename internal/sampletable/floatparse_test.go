package sampletable

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// checkScanFloat checks scanFloat on s against strconv: where it reads a
// number, strconv reads the same bytes to the same float64, to the bit.
func checkScanFloat(t *testing.T, s string) {
	t.Helper()
	got, n, ok := scanFloat([]byte(s))
	if !ok {
		return
	}
	if n <= 0 || n > len(s) {
		t.Fatalf("scanFloat(%q): length %d", s, n)
	}
	want, err := strconv.ParseFloat(s[:n], 64)
	if err != nil || math.Float64bits(got) != math.Float64bits(want) {
		t.Fatalf("scanFloat(%q) = %v (%x) over %d bytes; strconv reads %q as %v (%x), %v", s, got, math.Float64bits(got), n, s[:n], want, math.Float64bits(want), err)
	}
	if n < len(s) && s[n] >= '0' && s[n] <= '9' {
		t.Fatalf("scanFloat(%q) stops at %q, within the number", s, s[n])
	}
}

// FuzzScanFloat: scanFloat reads what strconv reads, followed by anything.
func FuzzScanFloat(f *testing.F) {
	for _, s := range []string{"0.15922189,0.1", "-0.061565638\r\n", "1.2345e-05,", "0.12345678", "0.123456789", "12345678.12345678", "9007199254740993", "5.,", ".5\n", "-0", "1e22", "1e23", "0.0000000000000000001"} {
		f.Add(s)
	}
	f.Fuzz(checkScanFloat)
}

// Random decimals of the shapes `sensorium query` and loggers write, at
// every length around the eight bytes read at once, with what a CSV line
// puts after them: scanFloat returns strconv's float64 for each.
func TestScanFloatMatchesStrconv(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	digits := func(n int) {
		for k := 0; k < n; k++ {
			b.WriteByte(byte('0' + r.IntN(10)))
		}
	}
	tails := []string{"", ",", "\n", "\r\n", ",1.5", ";", "x", "e", "e+", "e-7,", "E12", "..", " "}
	for i := 0; i < 300_000; i++ {
		b.Reset()
		switch r.IntN(4) {
		case 0:
			b.WriteByte('-')
		case 1:
			b.WriteByte('+')
		}
		digits(r.IntN(6))
		if r.IntN(8) > 0 {
			b.WriteByte('.')
			digits(r.IntN(22))
		}
		if r.IntN(6) == 0 {
			b.WriteString([]string{"e", "E", "e-", "e+"}[r.IntN(4)])
			digits(r.IntN(4))
		}
		b.WriteString(tails[r.IntN(len(tails))])
		checkScanFloat(t, b.String())
	}
	// float32 values as strconv formats them, the common case, must take
	// the fast path.
	for i := 0; i < 100_000; i++ {
		v := float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(8)-4)))
		s := strconv.FormatFloat(float64(v), 'g', -1, 32)
		got, n, ok := scanFloat([]byte(s + ","))
		if want, _ := strconv.ParseFloat(s, 64); !ok || n != len(s) || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("scanFloat(%q) = %v, %d, %v; want %v", s, got, n, ok, want)
		}
	}
}
