package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"time"

	"github.com/sensorium-io/sensorium/store"
)

// Filling is how a replica that lacks part of a stream gets it from one that
// has it: the stored fragments themselves, with their numbers, timestamps and
// producer keys, so that the copy is the same store the bus would have built.
// The request names a range of fragment numbers and a bus position; the
// serving replica answers once it has made durable every bus message of the
// stream's shard up to that position, so the range it sends has no hole
// (docs/CLUSTER.md, "Filling a replica").
//
// Wire format of a response body (all integers little-endian):
//
//	magic   "SNSFILL1"
//	record* u32 n | body[n] | u32 crc32c(body)      (n > 0)
//	end     u32 0
//
//	body:   u64 number | i64 server time ns | i64 producer time ns |
//	        i64 duration ns | u64 producer seq | u32 cluster offset |
//	        u16 len(producer id) | producer id | payload (the MKV fragment)
//
// A body that ends before the end marker is an error: the copy stops at the
// last whole record, and the next fill goes on from there.

const fillMagic = "SNSFILL2"

// FillPath is the HTTP path of the fill endpoint on every node's API port.
const FillPath = "/internal/v1/fill"

// FillRequest asks a replica for fragments of a stream.
type FillRequest struct {
	Stream string `json:"stream"`
	ARN    string `json:"arn"`    // the incarnation: a stream deleted and created again is another
	After  uint64 `json:"after"`  // send fragments numbered above this
	Before uint64 `json:"before"` // and below this; 0: no bound
	Shard  int    `json:"shard"`
	// Position: answer only once every message of the shard up to this bus
	// sequence is durable here (0: no wait).
	Position uint64 `json:"position"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fillHeaderLen is the fixed part of a record body.
const fillHeaderLen = 8 + 8 + 8 + 8 + 8 + 4 + 2 + 4

func appendFillRecord(dst []byte, f *store.StoredFragment) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, 0) // length, set below
	body := len(dst)
	dst = binary.LittleEndian.AppendUint64(dst, f.Number)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(f.ServerTime))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(f.ProducerTime))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(f.Duration))
	dst = binary.LittleEndian.AppendUint64(dst, f.ProducerSeq)
	dst = binary.LittleEndian.AppendUint32(dst, f.ClusterOffset)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(f.ProducerID)))
	readSize := 0 // the size readers get, when not the payload's own (packed PCM)
	if f.Size != len(f.Payload) {
		readSize = f.Size
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(readSize))
	dst = append(dst, f.ProducerID...)
	dst = append(dst, f.Payload...)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-body))
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[body:], castagnoli))
}

// errFillTruncated: the body ended before its end marker.
var errFillTruncated = errors.New("cluster: fill response ended before its end marker")

// readFill reads a fill response body, calling apply for each fragment in
// order. The fragment's payload is valid until apply returns.
func readFill(r io.Reader, maxRecord int, apply func(*store.Fragment) error) (int, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic := make([]byte, len(fillMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != fillMagic {
		return 0, fmt.Errorf("cluster: fill response does not start with %q (%v)", fillMagic, err)
	}
	var buf []byte
	var lenb [4]byte
	n := 0
	for {
		if _, err := io.ReadFull(br, lenb[:]); err != nil {
			return n, errFillTruncated
		}
		size := int(binary.LittleEndian.Uint32(lenb[:]))
		if size == 0 {
			return n, nil
		}
		if size < fillHeaderLen || size > maxRecord {
			return n, fmt.Errorf("cluster: fill record of %d bytes (at most %d)", size, maxRecord)
		}
		if cap(buf) < size+4 {
			buf = make([]byte, size+4)
		}
		buf = buf[:size+4]
		if _, err := io.ReadFull(br, buf); err != nil {
			return n, errFillTruncated
		}
		body := buf[:size]
		if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(buf[size:]) {
			return n, fmt.Errorf("cluster: fill record %d: checksum mismatch", n)
		}
		idLen := int(binary.LittleEndian.Uint16(body[44:]))
		if fillHeaderLen+idLen > size {
			return n, fmt.Errorf("cluster: fill record %d: producer id overruns the record", n)
		}
		f := &store.Fragment{
			Number:        binary.LittleEndian.Uint64(body[0:]),
			ServerTime:    int64(binary.LittleEndian.Uint64(body[8:])),
			ProducerTime:  int64(binary.LittleEndian.Uint64(body[16:])),
			Duration:      int64(binary.LittleEndian.Uint64(body[24:])),
			ProducerSeq:   binary.LittleEndian.Uint64(body[32:]),
			ClusterOffset: binary.LittleEndian.Uint32(body[40:]),
			ReadSize:      int(binary.LittleEndian.Uint32(body[46:])),
			ProducerID:    string(body[fillHeaderLen : fillHeaderLen+idLen]),
			Payload:       body[fillHeaderLen+idLen:],
		}
		if err := apply(f); err != nil {
			return n, err
		}
		n++
	}
}

// fillServer answers fill requests from this node's store.
type fillServer struct {
	st *store.Store
	// ready says whether this node may serve the stream's fragments (it is
	// a live replica of that incarnation); position is the shard's durable
	// bus position here.
	ready    func(stream, arn string) error
	position func(shard int) uint64
	maxWait  time.Duration
}

// ServeHTTP streams the fragments a FillRequest asks for.
func (s *fillServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req FillRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		http.Error(w, "cluster: bad fill request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := s.ready(req.Stream, req.ARN); err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	if req.Position > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), s.maxWait)
		err := waitFor(ctx, 5*time.Millisecond, func() bool { return s.position(req.Shard) >= req.Position })
		cancel()
		if err != nil {
			http.Error(w, fmt.Sprintf("cluster: this replica has made shard %d durable to %d, not yet to %d", req.Shard, s.position(req.Shard), req.Position), http.StatusConflict)
			return
		}
	}
	rd, err := s.st.NewReader(req.Stream)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	defer rd.Close()
	w.Header().Set("Content-Type", "application/x-sensorium-fill")
	bw := bufio.NewWriterSize(w, 1<<16)
	_, _ = bw.WriteString(fillMagic)
	var rec []byte
	from := req.After + 1
	for {
		infos, err := s.st.Fragments(req.Stream, from, 256)
		if err != nil {
			return // the body ends without its end marker: the client sees a truncated fill
		}
		for _, info := range infos {
			if req.Before != 0 && info.Number >= req.Before {
				infos = nil
				break
			}
			f, err := rd.ReadStored(info) // as stored: a replica holds the same bytes
			if errors.Is(err, store.ErrFragmentGone) {
				continue // retention removed it meanwhile: the replica would drop it too
			}
			if err != nil {
				return
			}
			rec = appendFillRecord(rec[:0], &f)
			if _, err := bw.Write(rec); err != nil {
				return
			}
			from = info.Number + 1
		}
		if len(infos) < 256 {
			break
		}
	}
	var end [4]byte
	_, _ = bw.Write(end[:])
	_ = bw.Flush()
}

// waitFor polls cond every interval until it holds or ctx ends.
func waitFor(ctx context.Context, interval time.Duration, cond func() bool) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// fillClient fetches fragments from peers.
type fillClient struct {
	http *http.Client
	// sign signs a request to a peer (the API's SigV4 when it has
	// credentials); nil: send unsigned.
	sign func(r *http.Request, body []byte) error
}

// fetch asks peer (its HTTP base URL) for req and applies each fragment.
func (c *fillClient) fetch(ctx context.Context, peer string, req FillRequest, apply func(*store.Fragment) error) (int, error) {
	body, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, peer+FillPath, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	hr.Header.Set("Content-Type", "application/json")
	if c.sign != nil {
		if err := c.sign(hr, body); err != nil {
			return 0, err
		}
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return 0, fmt.Errorf("cluster: fill %s from %s: %w", req.Stream, peer, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("cluster: fill %s from %s: %s: %s", req.Stream, peer, resp.Status, bytes.TrimSpace(msg))
	}
	n, err := readFill(resp.Body, maxFillRecord, apply)
	if err != nil {
		return n, fmt.Errorf("cluster: fill %s from %s: %w", req.Stream, peer, err)
	}
	return n, nil
}

// maxFillRecord bounds one record: the largest fragment plus its header.
const maxFillRecord = 64<<20 + fillHeaderLen + 256
