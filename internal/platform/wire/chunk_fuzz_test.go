package wire

import (
	"bytes"
	"strconv"
	"testing"
)

// FuzzChunkOf feeds chunk headers as a producer (or a damaged message) may
// write them: ChunkOf never panics, and what it accepts is within its
// bounds — the ingester sizes its assembly from it.
func FuzzChunkOf(f *testing.F) {
	for _, seed := range [][2]string{
		{"1/2", "2000000"}, {"2/2", "2000000"}, {"4096/4096", "4096"}, {"0/2", "10"}, {"3/2", "10"},
		{"1/4097", "99999999"}, {"1/2", "1"}, {"1/2", "-5"}, {"/", ""}, {"1/2/3", "10"}, {"+1/ 2", "10"}, {"", "10"},
		{"1/99999999999999999999", "10"}, {"１/2", "10"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, chunk, size string) {
		c, ok, err := ChunkOf(map[string][]string{HeaderChunk: {chunk}, HeaderFragmentSize: {size}})
		if chunk == "" {
			if ok || err != nil {
				t.Fatalf("no chunk header: ok %v, %v", ok, err)
			}
			return
		}
		if !ok {
			t.Fatal("a chunk header present was not seen")
		}
		if err != nil {
			return
		}
		if c.Count < 2 || c.Count > MaxChunks || c.Index < 1 || c.Index > c.Count || c.Size < c.Count {
			t.Fatalf("%q, %q accepted as %+v", chunk, size, c)
		}
	})
}

// FuzzSplitFragment checks SplitFragment's contract for any fragment size
// and message limit: the parts, in order, are the fragment; each fits the
// limit (and ChunkTarget); each chunk's headers read back through ChunkOf
// with its place, the count and the whole size; and each has a message id of
// its own.
func FuzzSplitFragment(f *testing.F) {
	f.Add(10, 100)
	f.Add(3<<20+1, 1<<20)
	f.Add(5<<20, 8<<20)
	f.Add(2<<20, 1000)
	f.Fuzz(func(t *testing.T, size, maxMessage int) {
		if size < 0 || size > 8<<20 || maxMessage < 1 || maxMessage > 16<<20 || (size+maxMessage-1)/maxMessage > MaxChunks {
			t.Skip()
		}
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*7 + i>>8)
		}
		header := FragmentHeader("s", "p", 3, 2, 0)
		parts, headers := SplitFragment(header, data, maxMessage)
		if len(parts) != len(headers) || len(parts) == 0 {
			t.Fatalf("%d parts, %d headers", len(parts), len(headers))
		}
		if !bytes.Equal(bytes.Join(parts, nil), data) {
			t.Fatal("the parts are not the fragment")
		}
		if len(parts) == 1 {
			if _, ok, _ := ChunkOf(headers[0]); ok || len(data) > maxMessage {
				t.Fatalf("one part of %d bytes (limit %d) marked as a chunk: %v", len(data), maxMessage, ok)
			}
			return
		}
		ids := map[string]bool{}
		for i, p := range parts {
			if len(p) > maxMessage || len(p) > ChunkTarget || len(p) == 0 {
				t.Fatalf("chunk %d is %d bytes (limit %d)", i+1, len(p), maxMessage)
			}
			c, ok, err := ChunkOf(headers[i])
			if !ok || err != nil || c.Index != i+1 || c.Count != len(parts) || c.Size != size {
				t.Fatalf("chunk %d reads back as %+v, %v, %v", i+1, c, ok, err)
			}
			id := headers[i][HeaderMsgID][0]
			if ids[id] || headers[i][HeaderProducerSeq][0] != strconv.Itoa(3) {
				t.Fatalf("chunk %d: message id %q seen before, or the producer headers were lost", i+1, id)
			}
			ids[id] = true
		}
	})
}
