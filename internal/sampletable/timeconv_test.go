package sampletable

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// One converter reading a column of ISO times — runs of rows in the same
// second, seconds, days and zones changing, fractions of every length,
// now and then a time it must refuse — gives time.Parse's time for every
// one it reads, whatever the rows before it were: the second and the day
// it keeps from them are only reused for the same bytes.
func TestScanISOSequence(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	c := &timeConv{}
	base := time.Date(2026, 2, 27, 23, 59, 50, 0, time.UTC)
	zones := []string{"", "Z", "+02:00", "-0530", "+01", "-00:30"}
	zone := "Z"
	sep := byte('T')
	sec := 0
	fast := 0
	for k := 0; k < 200_000; k++ {
		switch r.IntN(50) {
		case 0:
			zone = zones[r.IntN(len(zones))]
		case 1:
			sep = " T"[r.IntN(2)]
		case 2, 3:
			sec += 1 + r.IntN(3)
		case 4:
			sec += r.IntN(200_000)
		}
		tt := base.Add(time.Duration(sec) * time.Second)
		s := tt.Format("2006-01-02") + string(sep) + tt.Format("15:04:05")
		if n := r.IntN(12); n > 0 {
			s += "." + fmt.Sprintf("%012d", r.Int64N(1e12))[:n-1]
		}
		s += zone
		switch r.IntN(200) {
		case 0:
			s = s[:17] + "61" + s[19:]
		case 1:
			s = s[:8] + "30" + s[10:]
		case 2:
			s = s[:5] + "13" + s[7:]
		}
		got, ok := c.parseISOFast(s)
		var want int64
		var werr error = fmt.Errorf("no layout")
		// The fast reader takes a space for the T with every zone form,
		// which not every layout does.
		ref := s[:10] + "T" + s[11:]
		for _, l := range isoLayouts {
			if tp, err := time.Parse(l, ref); err == nil {
				want, werr = tp.UnixNano(), nil
				break
			}
		}
		if ok && (werr != nil || got != want) {
			t.Fatalf("row %d: parseISOFast(%q) = %d; time.Parse: %d, %v", k, s, got, want, werr)
		}
		if ok {
			fast++
		}
		// In a line, with what may follow the cell.
		if ns, n, ok2 := c.scanISO(s + ",1.5\n"); ok2 != ok || ok && (n != len(s) || ns != got) {
			t.Fatalf("row %d: scanISO(%q + \",1.5\") = %d, %d, %v; parseISOFast %d, %v", k, s, ns, n, ok2, got, ok)
		}
	}
	if fast < 150_000 {
		t.Errorf("only %d of 200,000 times read without time.Parse", fast)
	}
}
