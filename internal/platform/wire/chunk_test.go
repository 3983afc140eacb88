package wire

import (
	"bytes"
	"strings"
	"testing"
)

func TestSplitFragmentRoundTrip(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000) // 10,000 bytes
	for _, max := range []int{0, 10_000, 20_000, 9_999, 4096, 1000, 7} {
		h := FragmentHeader("cam", "p", 5, 4, 2)
		parts, headers := SplitFragment(h, data, max)
		var joined []byte
		ids := map[string]bool{}
		for k, part := range parts {
			if max > 0 && len(part) > max {
				t.Fatalf("max %d: chunk %d is %d bytes", max, k+1, len(part))
			}
			joined = append(joined, part...)
			c, chunked, err := ChunkOf(headers[k])
			if err != nil {
				t.Fatalf("max %d: chunk %d: %v", max, k+1, err)
			}
			if single := len(parts) == 1; chunked == single {
				t.Fatalf("max %d: %d parts, chunk header present: %v", max, len(parts), chunked)
			}
			if chunked && (c.Index != k+1 || c.Count != len(parts) || c.Size != len(data) || c.Last() != (k == len(parts)-1)) {
				t.Fatalf("max %d: chunk %d reads as %+v", max, k+1, c)
			}
			if got := headers[k][HeaderProducerPrev]; len(got) != 1 || got[0] != "4" {
				t.Fatalf("max %d: chunk %d lost the fragment's headers: %v", max, k+1, headers[k])
			}
			ids[headers[k][HeaderMsgID][0]] = true
		}
		if !bytes.Equal(joined, data) {
			t.Fatalf("max %d: the chunks do not join to the fragment", max)
		}
		if len(ids) != len(parts) {
			t.Fatalf("max %d: %d message ids for %d chunks", max, len(ids), len(parts))
		}
		if h[HeaderChunk] != nil {
			t.Fatal("SplitFragment changed the header it was given")
		}
	}
}

func TestChunkOfRefusesMalformedHeaders(t *testing.T) {
	cases := map[string][2]string{ // chunk, size
		"no slash":      {"3", "100"},
		"index 0":       {"0/3", "100"},
		"index > count": {"4/3", "100"},
		"count 1":       {"1/1", "100"},
		"count huge":    {"1/5000", "100000"},
		"not numbers":   {"a/b", "100"},
		"no size":       {"1/2", ""},
		"size < count":  {"1/3", "2"},
		"negative size": {"1/2", "-5"},
	}
	for name, v := range cases {
		h := map[string][]string{HeaderChunk: {v[0]}, HeaderFragmentSize: {v[1]}}
		if _, chunked, err := ChunkOf(h); !chunked || err == nil || !strings.Contains(err.Error(), "Sensorium-") {
			t.Errorf("%s: chunked %v, err %v", name, chunked, err)
		}
	}
	if _, chunked, err := ChunkOf(map[string][]string{}); chunked || err != nil {
		t.Errorf("a whole fragment's headers: chunked %v, err %v", chunked, err)
	}
}
