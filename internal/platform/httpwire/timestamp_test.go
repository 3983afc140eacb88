package httpwire

import (
	"encoding/json"
	"testing"
	"time"
)

// The AWS SDKs send timestamps as epoch seconds in several spellings; each
// must land on the exact nanosecond (a float64 would lose the microseconds).
func TestTimestampParsing(t *testing.T) {
	cases := []struct {
		in   string
		want int64
	}{
		{`1732449600`, 1732449600_000_000_000},
		{`1732449600.5`, 1732449600_500_000_000},
		{`1732449600.123456789`, 1732449600_123_456_789},
		{`1.7324496001234567E9`, 1732449600_123_456_700},
		{`"2026-11-24T12:00:00.25Z"`, time.Date(2026, 11, 24, 12, 0, 0, 250_000_000, time.UTC).UnixNano()},
		{`0`, 0},
	}
	for _, tc := range cases {
		var ts Timestamp
		if err := json.Unmarshal([]byte(tc.in), &ts); err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if !ts.Set || ts.NS != tc.want {
			t.Errorf("%s → %d, want %d", tc.in, ts.NS, tc.want)
		}
	}
	for _, bad := range []string{`"yesterday"`, `true`, `1e400`, `{}`} {
		var ts Timestamp
		if err := json.Unmarshal([]byte(bad), &ts); err == nil {
			t.Errorf("%s parsed as %d", bad, ts.NS)
		}
	}
}

func TestTimestampEncoding(t *testing.T) {
	cases := []struct {
		ns   int64
		want string
	}{
		{1732449600_000_000_000, `1732449600`},
		{1732449600_500_000_000, `1732449600.5`},
		{1732449600_123_999_999, `1732449600.123`},
		{-1_500_000_000, `-1.5`},
		{0, `0`},
	}
	for _, tc := range cases {
		b, err := json.Marshal(Timestamp{NS: tc.ns, Set: true})
		if err != nil || string(b) != tc.want {
			t.Errorf("%d → %s %v, want %s", tc.ns, b, err, tc.want)
		}
	}
}
