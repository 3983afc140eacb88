package query

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sensorium-io/sensorium/store"
)

// The service's errors say what went wrong, not how a transport names it:
// the HTTP API (internal/service/api) and Arrow Flight
// (internal/service/flightsrv) each map them, in one function, to their own
// names and codes. Besides its own, the service passes the store's refusals
// through unchanged (a *store.Error: errors.Is(err, store.ErrStreamNotFound)
// and the like), and reports a fragment the request names but the store does
// not hold as one of kind store.ErrFragmentNotFound.

// ErrInvalidRequest is what errors.Is matches for a *RequestError.
var ErrInvalidRequest = errors.New("query: invalid request")

// RequestError is a request the service refuses as it stands: a malformed
// query, a selector without its value, a shape the stream's signal cannot
// take, a signal description that changes inside the range asked for.
// Nothing was read. Message is for the client.
type RequestError struct {
	Message string
}

// Error returns the message.
func (e *RequestError) Error() string { return e.Message }

// Is reports whether target is ErrInvalidRequest.
func (e *RequestError) Is(target error) bool { return target == ErrInvalidRequest }

// invalid returns a *RequestError with a formatted message.
func invalid(format string, args ...any) error {
	return &RequestError{Message: fmt.Sprintf(format, args...)}
}

// notFound returns the store's kind of error for a fragment a request names
// (or needs, to learn a stream's signals) that the store does not hold.
func notFound(format string, args ...any) error {
	return &store.Error{Kind: store.ErrFragmentNotFound, Message: fmt.Sprintf(format, args...)}
}

// isNotFound reports whether a store lookup failed because the stream or the
// fragment is not there (the stream may have been deleted meanwhile).
func isNotFound(err error) bool {
	return errors.Is(err, store.ErrFragmentNotFound) || errors.Is(err, store.ErrStreamNotFound)
}

// FragmentError is a query that failed at one fragment, after its response
// may have begun. Message, which names the stream, the fragment number and
// the track, says what went wrong as far as a client may be told: the text
// of the cause may name files, so it stays in Err, for errors.Is and for the
// server log. A cause a client may be told as it is (a *RequestError, a
// *store.Error: the stream was deleted meanwhile) is what a transport
// reports; otherwise it is an internal failure of the server, described by
// Message.
type FragmentError struct {
	Stream  string
	Number  uint64
	Track   uint64
	Message string
	Err     error // the cause
}

func (e *FragmentError) Error() string {
	if strings.Contains(e.Message, e.Err.Error()) {
		return "query: " + e.Message
	}
	return "query: " + e.Message + " (" + e.Err.Error() + ")"
}

// Unwrap returns the cause.
func (e *FragmentError) Unwrap() error { return e.Err }

// told reports whether err carries an error a client may be told as it is.
func told(err error) (string, bool) {
	if re, ok := errors.AsType[*RequestError](err); ok {
		return re.Message, true
	}
	if se, ok := errors.AsType[*store.Error](err); ok {
		return se.Message, true
	}
	return "", false
}
