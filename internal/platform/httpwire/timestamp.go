package httpwire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Timestamp is a point in time on the wire. In requests it accepts what the
// AWS SDKs send (epoch seconds as a JSON number, possibly fractional or in
// exponent form) and, for people with curl, an RFC 3339 string. In responses it
// is epoch seconds with millisecond precision, as the seed service answers.
type Timestamp struct {
	NS  int64 // ns since the Unix epoch
	Set bool  // false: absent (or null) in a request
}

// At is the Timestamp of ns nanoseconds since the Unix epoch.
func At(ns int64) Timestamp { return Timestamp{NS: ns, Set: true} }

// UnmarshalJSON implements json.Unmarshaler.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("timestamp %q is neither epoch seconds nor RFC 3339", s)
		}
		t.NS, t.Set = tm.UnixNano(), true
		return nil
	}
	ns, err := epochSecondsToNS(string(b))
	if err != nil {
		return err
	}
	t.NS, t.Set = ns, true
	return nil
}

// epochSecondsToNS converts decimal epoch seconds exactly (a float64 would
// lose the microseconds of a present-day timestamp).
func epochSecondsToNS(s string) (int64, error) {
	f, _, err := big.ParseFloat(s, 10, 200, big.ToNearestEven)
	if err != nil {
		return 0, fmt.Errorf("timestamp %q is not a number of seconds", s)
	}
	f.Mul(f, big.NewFloat(1e9).SetPrec(200))
	i, _ := f.Int(nil)
	if !i.IsInt64() {
		return 0, fmt.Errorf("timestamp %q is out of range", s)
	}
	return i.Int64(), nil
}

// MarshalJSON implements json.Marshaler: the seed service's precision is the
// millisecond, so the time is floored to it and printed as seconds without
// trailing zeros (1732449600.5, not 1732449600.500). GetMedia's MKV tags
// print the same floor with three decimals (query.KVSTimestamp).
func (t Timestamp) MarshalJSON() ([]byte, error) {
	ms := t.NS / int64(time.Millisecond)
	if t.NS < 0 && t.NS%int64(time.Millisecond) != 0 {
		ms-- // floor, not truncation toward zero
	}
	sign := ""
	if ms < 0 {
		sign, ms = "-", -ms
	}
	s := fmt.Sprintf("%s%d.%03d", sign, ms/1000, ms%1000)
	return []byte(strings.TrimRight(strings.TrimRight(s, "0"), ".")), nil
}

// IsZero reports whether t is absent, for omitzero.
func (t Timestamp) IsZero() bool { return !t.Set }
