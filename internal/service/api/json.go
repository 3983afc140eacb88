package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/query"
)

// Timestamp is a point in time on the wire. In requests it accepts what the
// AWS SDKs send (epoch seconds as a JSON number, possibly fractional or in
// exponent form) and, for people with curl, an RFC 3339 string. In responses it
// is epoch seconds with millisecond precision, as the seed service answers.
type Timestamp struct {
	NS  int64 // ns since the Unix epoch
	Set bool
}

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

// MarshalJSON implements json.Marshaler.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	// The seed service's precision is the millisecond: floor to it, then print
	// seconds, trimming trailing zeros.
	s := query.KVSTimestamp(t.NS)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return []byte(s), nil
}

func ts(ns int64) Timestamp { return Timestamp{NS: ns, Set: true} }

// maxJSONBody bounds control-plane request bodies.
const maxJSONBody = 1 << 20

// decode reads a JSON request body into v. An empty body is an empty object.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	return decodeBody(body, v)
}

// readBody reads a request body of at most maxJSONBody bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, wire.Errorf(wire.InvalidArgument, "request body is larger than %d bytes", maxJSONBody)
	}
	if err != nil {
		return nil, wire.Errorf(wire.InvalidArgument, "reading the request body: %v", err)
	}
	return body, nil
}

// decodeBody unmarshals a JSON body into v; an empty body leaves v as it is.
func decodeBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return wire.Errorf(wire.InvalidArgument, "request body is not valid JSON for this operation: %v", err)
	}
	return nil
}

// writeJSON answers 200 with v.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if v == nil {
		v = struct{}{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, fmt.Errorf("api: encode response: %w", err))
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// writeError answers an error the way the AWS SDKs parse it: the status of
// the error's name, x-amzn-ErrorType, and a JSON body with the type and message.
func writeError(w http.ResponseWriter, err error) {
	e := ErrorOf(err)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-ErrorType", e.Name)
	w.WriteHeader(e.Status())
	b, _ := json.Marshal(map[string]string{"__type": e.Name, "message": e.Message})
	_, _ = w.Write(b)
}
