package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
)

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
		return nil, httpwire.Errorf(httpwire.InvalidArgument, "request body is larger than %d bytes", maxJSONBody)
	}
	if err != nil {
		return nil, httpwire.Errorf(httpwire.InvalidArgument, "reading the request body: %v", err)
	}
	return body, nil
}

// decodeBody unmarshals a JSON body into v; an empty body leaves v as it is.
func decodeBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return httpwire.Errorf(httpwire.InvalidArgument, "request body is not valid JSON for this operation: %v", err)
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
	if rec, ok := w.(interface{ recordError(error) }); ok && e.Name == httpwire.InternalFailure {
		rec.recordError(err) // the access log says what the client is not told
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-ErrorType", e.Name)
	w.WriteHeader(e.Status())
	b, _ := json.Marshal(httpwire.ErrorBody{Type: e.Name, Message: e.Message})
	_, _ = w.Write(b)
}
