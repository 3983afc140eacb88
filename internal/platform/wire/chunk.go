package wire

import (
	"fmt"
	"strconv"
	"strings"
)

// A fragment larger than one bus message (the NATS server's max_payload,
// 8 MiB on the embedded server) goes on its Frag subject as a run of chunk
// messages: the fragment's bytes cut in order, each message carrying the
// fragment's producer headers and HeaderChunk. The store takes the fragment
// when the last chunk arrives, from all of them at once, so it is stored
// whole or not at all; its fragment number and server timestamp are the last
// chunk's. docs/NATS.md, "Fragments larger than a message", is the contract.
const (
	// HeaderChunk is "<index>/<count>" on each chunk of a fragment sent in
	// count messages, index from 1. Absent: the message is the whole fragment.
	HeaderChunk = "Sensorium-Chunk"
	// HeaderFragmentSize is the whole fragment's size in bytes, decimal, on
	// every chunk: the server refuses an oversize fragment at its first chunk.
	HeaderFragmentSize = "Sensorium-Fragment-Size"
)

// MaxChunks bounds a fragment's chunk count: with the smallest max_payload
// NATS allows a fragment of the largest size could need more, but no real
// set-up does, and the bound keeps a damaged header from making the server
// expect millions of messages.
const MaxChunks = 4096

// ChunkHeaderBytes is what a chunk message's headers may take besides the
// fragment's own (FragmentHeader's): a chunk's payload is at most
// max_payload less both.
const ChunkHeaderBytes = 128

// Chunk is where one message stands in a chunked fragment.
type Chunk struct {
	Index, Count int // Index from 1; Index == Count is the last
	Size         int // the whole fragment's bytes
}

// Last reports whether c is the fragment's last chunk.
func (c Chunk) Last() bool { return c.Index == c.Count }

// ChunkOf reads a fragment message's chunk headers. ok is false for a
// message that is a whole fragment; err says what is wrong with headers
// that are present but malformed.
func ChunkOf(h map[string][]string) (c Chunk, ok bool, err error) {
	v := first(h, HeaderChunk)
	if v == "" {
		return Chunk{}, false, nil
	}
	is, ns, cut := strings.Cut(v, "/")
	i, ierr := strconv.Atoi(is)
	n, nerr := strconv.Atoi(ns)
	if !cut || ierr != nil || nerr != nil || n < 2 || n > MaxChunks || i < 1 || i > n {
		return Chunk{}, true, fmt.Errorf("%s is %q: want <index>/<count>, 1 ≤ index ≤ count, 2 ≤ count ≤ %d", HeaderChunk, v, MaxChunks)
	}
	size, err := strconv.Atoi(first(h, HeaderFragmentSize))
	if err != nil || size < n {
		return Chunk{}, true, fmt.Errorf("%s is %q: want the whole fragment's size in bytes, at least one per chunk", HeaderFragmentSize, first(h, HeaderFragmentSize))
	}
	return Chunk{Index: i, Count: n, Size: size}, true, nil
}

func first(h map[string][]string, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// ChunkMsgID is the Nats-Msg-Id of chunk index of the fragment whose own
// message id is fragmentID: each chunk is deduped on its own, so a re-send
// of a fragment cut short by a crash adds only the chunks the bus lacks.
func ChunkMsgID(fragmentID string, index int) string {
	return fragmentID + "#" + strconv.Itoa(index)
}

// SplitFragment gives the messages that carry a fragment: the fragment
// itself with header (FragmentHeader's) when it fits maxMessage bytes
// (MaxChunkPayload), else chunks of ChunkTarget bytes or maxMessage if
// smaller, each with a copy of header with its own message id and the chunk
// headers. The chunks are slices of data, not copies.
func SplitFragment(header map[string][]string, data []byte, maxMessage int) (parts [][]byte, headers []map[string][]string) {
	if maxMessage <= 0 || len(data) <= maxMessage {
		return [][]byte{data}, []map[string][]string{header}
	}
	maxChunk := min(maxMessage, ChunkTarget)
	n := (len(data) + maxChunk - 1) / maxChunk
	size := strconv.Itoa(len(data))
	id := first(header, HeaderMsgID)
	for i := range n {
		lo, hi := i*maxChunk, min((i+1)*maxChunk, len(data))
		h := make(map[string][]string, len(header)+2)
		for k, v := range header {
			h[k] = v
		}
		if id != "" {
			h[HeaderMsgID] = []string{ChunkMsgID(id, i+1)}
		}
		h[HeaderChunk] = []string{strconv.Itoa(i+1) + "/" + strconv.Itoa(n)}
		h[HeaderFragmentSize] = []string{size}
		parts = append(parts, data[lo:hi])
		headers = append(headers, h)
	}
	return parts, headers
}

// ChunkTarget is the size of the chunks a fragment larger than a message is
// cut into, when the server's max_payload allows. JetStream copies a large
// message several times on its way (into the client's read buffer, its
// file store's block, the consumer's delivery), and the server's CPU per
// byte grows with the message: 45 MiB fragments against a `sensorium serve`
// of their own went at 102–119 MB/s in 1 MiB chunks (11–14 CPU s per GB),
// 47–64 MB/s in 4 MiB chunks (18–22 s per GB) and 22–25 MB/s in 8 MiB ones;
// 256 KiB chunks were no faster than 1 MiB.
const ChunkTarget = 1 << 20

// MaxChunkPayload is the largest fragment a bus of the given max_payload
// carries in one message beside headerBytes of fragment headers:
// SplitFragment's maxMessage.
func MaxChunkPayload(maxPayload int64, headerBytes int) int {
	return int(maxPayload) - headerBytes - ChunkHeaderBytes
}
