package query

import "testing"

func TestKVSTimestamp(t *testing.T) {
	cases := map[int64]string{
		1732449600_123_456_789: "1732449600.123",
		1732449600_000_000_000: "1732449600.000",
		999_999:                "0.000",
		-1:                     "-0.001",
		-1_500_000_000:         "-1.500",
		-1_000_000_000:         "-1.000",
	}
	for ns, want := range cases {
		if got := KVSTimestamp(ns); got != want {
			t.Errorf("KVSTimestamp(%d) = %s, want %s", ns, got, want)
		}
	}
}
