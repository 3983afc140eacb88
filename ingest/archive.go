package ingest

import (
	"strconv"
	"strings"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/mkv"
)

// Archives: a chunk of GetMedia or GetMediaForFragmentList output (the seed
// service's or Sensorium's own) is a valid fragment, and users put their
// downloads back with PutMedia or over the bus. Such a chunk carries the
// tags a server writes on read (reservedTagPrefix). They describe the
// fragment as the old server stored it, not a wish of the producer, so they
// are not refused: they are mapped (docs/NATS.md, "Archive tags").
//
//   - FRAGMENT_NUMBER and SERVER_TIMESTAMP become the producer tags
//     origin_fragment_number and origin_server_timestamp: this server numbers
//     and times the fragment anew, and the old values stay with it.
//   - PRODUCER_TIMESTAMP is dropped when it is the cluster's timecode (it
//     always is in GetMedia output): the cluster timecode stays the producer
//     time, and GetMedia writes the tag again from it. When it is not (the
//     chunk was re-timed), it is kept as origin_producer_timestamp.
//   - MILLIS_BEHIND_NOW, CONTINUATION_TOKEN, ERROR_CODE and ERROR_ID describe
//     the old read, not the fragment, and are dropped.
//
// Any other name with the prefix is refused: the producer set it on purpose,
// and a reader could not tell it from a server's tag.

// archiveTag says what becomes of one server tag found in a fragment.
type archiveTag uint8

const (
	archiveDrop          archiveTag = iota + 1 // describes the old read
	archiveOrigin                              // kept under its origin_ name
	archiveProducerCheck                       // dropped when it is the cluster's time
)

var archiveTags = map[string]archiveTag{
	mkv.TagFragmentNumber:    archiveOrigin,
	mkv.TagServerTimestamp:   archiveOrigin,
	mkv.TagProducerTimestamp: archiveProducerCheck,
	mkv.TagMillisBehindNow:   archiveDrop,
	mkv.TagContinuationToken: archiveDrop,
	mkv.TagErrorCode:         archiveDrop,
	mkv.TagErrorID:           archiveDrop,
}

// originName is the producer tag a server tag is kept as.
var originName = map[string]string{
	mkv.TagFragmentNumber:    mkv.TagOriginFragmentNumber,
	mkv.TagServerTimestamp:   mkv.TagOriginServerTimestamp,
	mkv.TagProducerTimestamp: mkv.TagOriginProducerTimestamp,
}

// isOriginTag reports whether name is one the mapping writes. They do not
// count against MaxFragmentTags: an archive may already carry the producer's
// ten tags, and re-putting this server's own GetMedia output brings them back
// as ordinary tags.
func isOriginTag(name string) bool {
	return name == mkv.TagOriginFragmentNumber || name == mkv.TagOriginServerTimestamp || name == mkv.TagOriginProducerTimestamp
}

// mapArchiveTags returns tags with the server tags mapped, and whether
// anything was mapped (when nothing was, the producer's Tags elements are
// kept byte for byte). producer is the cluster's time in ns. A tag with the
// reserved prefix that no server writes is refused.
func mapArchiveTags(tags []mkv.SimpleTag, producer int64) ([]mkv.SimpleTag, bool, *FragmentError) {
	var out, origins []mkv.SimpleTag
	mapped := false
	for _, t := range tags {
		if !strings.HasPrefix(t.Name, reservedTagPrefix) {
			out = append(out, t)
			continue
		}
		what, ok := archiveTags[t.Name]
		if !ok {
			// The seed service's reference names no code for a reserved tag
			// name. The tag is well-formed MKV but breaks the rules a
			// fragment's MKV must follow, as a bad track number or codec id
			// does, so INVALID_MKV_DATA; FRAGMENT_METADATA_LIMIT_REACHED would
			// send the producer looking for a limit it did not reach.
			return nil, false, refuse(wire.ErrInvalidMKVData, "tag name %q uses the prefix %s, which the server reserves for its own tags (%s and the like); rename the tag",
				t.Name, reservedTagPrefix, mkv.TagFragmentNumber)
		}
		mapped = true
		switch what {
		case archiveProducerCheck:
			if ns, ok := parseKVSTimestamp(t.Value); ok && absDiff(ns, producer) < int64(time.Millisecond) {
				continue
			}
			fallthrough
		case archiveOrigin:
			origins = setTag(origins, originName[t.Name], t.Value) // a later one wins, as for a repeated Tags element
		}
	}
	for _, o := range origins {
		// A fragment already imported once carries the first server's values
		// as producer tags; those stay, being the fragment's origin.
		if !hasTag(out, o.Name) {
			out = append(out, o)
		}
	}
	return out, mapped, nil
}

func setTag(tags []mkv.SimpleTag, name, value string) []mkv.SimpleTag {
	for i := range tags {
		if tags[i].Name == name {
			tags[i].Value = value
			return tags
		}
	}
	return append(tags, mkv.SimpleTag{Name: name, Value: value})
}

func hasTag(tags []mkv.SimpleTag, name string) bool {
	for _, t := range tags {
		if t.Name == name {
			return true
		}
	}
	return false
}

func absDiff(a, b int64) int64 {
	if a < b {
		return b - a
	}
	return a - b
}

// parseKVSTimestamp reads a timestamp as the seed service writes it in tags,
// seconds since the Unix epoch with a fraction ("1764966896.123"), exactly
// (a float64 would round the nanoseconds).
func parseKVSTimestamp(s string) (int64, bool) {
	sec, frac, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(sec, "-")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || len(frac) > 9 || n > (1<<63-1)/int64(time.Second) || n < -(1<<63-1)/int64(time.Second) {
		return 0, false
	}
	var f int64
	if frac != "" {
		if frac[0] == '+' || frac[0] == '-' {
			return 0, false
		}
		if f, err = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64); err != nil {
			return 0, false
		}
	}
	ns := n * int64(time.Second)
	if neg {
		return ns - f, true
	}
	return ns + f, true
}
