package query

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/store"
)

// A chunk is a stored fragment as GetMedia serves it: the fragment's own MKV
// document with the server's tags inserted before its Cluster (fragment
// number, server and producer timestamps) and after it (millis behind now, the
// continuation token), as the seed service lays them out. The fragment bytes
// are copied straight from the store; only the tags are built.

// KVSTimestamp formats a timestamp as the seed service writes it in tags:
// seconds since the Unix epoch with three decimals.
func KVSTimestamp(ns int64) string {
	ms := ns / int64(time.Millisecond)
	if ns < 0 && ns%int64(time.Millisecond) != 0 {
		ms-- // floor, not truncation toward zero
	}
	sign := ""
	if ms < 0 {
		sign, ms = "-", -ms
	}
	return fmt.Sprintf("%s%d.%03d", sign, ms/1000, ms%1000)
}

// ContinuationToken is the token after a fragment: a reader that resumes with
// it gets the fragments after that one.
func ContinuationToken(number uint64) string { return strconv.FormatUint(number, 10) }

// chunkWriter writes chunks, reusing its buffers.
type chunkWriter struct {
	w    io.Writer
	pre  []byte
	post []byte
	now  func() time.Time
}

func (c *chunkWriter) write(f store.StoredFragment) error {
	co := int(f.ClusterOffset)
	if co <= 0 || co > len(f.Payload) {
		return fmt.Errorf("query: fragment %d has cluster offset %d in %d bytes", f.Number, co, len(f.Payload))
	}
	c.pre = mkv.AppendTags(c.pre[:0], []mkv.SimpleTag{
		{Name: mkv.TagFragmentNumber, Value: strconv.FormatUint(f.Number, 10)},
		{Name: mkv.TagServerTimestamp, Value: KVSTimestamp(f.ServerTime)},
		{Name: mkv.TagProducerTimestamp, Value: KVSTimestamp(f.ProducerTime)},
	})
	behind := max(c.now().UnixNano()-f.ServerTime, 0) / int64(time.Millisecond)
	c.post = mkv.AppendTags(c.post[:0], []mkv.SimpleTag{
		{Name: mkv.TagMillisBehindNow, Value: strconv.FormatInt(behind, 10)},
		{Name: mkv.TagContinuationToken, Value: ContinuationToken(f.Number)},
	})
	// The Segment keeps its unknown size, as the seed service writes it. With
	// known sizes ffmpeg reads only the first chunks of a concatenation; with
	// unknown ones it reads every frame (and logs one line per chunk boundary).
	for _, b := range [][]byte{f.Payload[:co], c.pre, f.Payload[co:], c.post} {
		if _, err := c.w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// writeError writes a chunk that carries only an error, as the seed service
// reports a failure in the middle of a response.
func (c *chunkWriter) writeError(code string, id int, number uint64) error {
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, MuxingApp: "sensorium"})
	tags := []mkv.SimpleTag{{Name: mkv.TagErrorCode, Value: code}, {Name: mkv.TagErrorID, Value: strconv.Itoa(id)}}
	if number > 0 {
		tags = append(tags, mkv.SimpleTag{Name: mkv.TagFragmentNumber, Value: strconv.FormatUint(number, 10)})
	}
	b = mkv.AppendTags(b, tags)
	_, err := c.w.Write(b)
	return err
}
