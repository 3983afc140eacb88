package api

import (
	"errors"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/service/cluster"
	"github.com/sensorium-io/sensorium/query"
	"github.com/sensorium-io/sensorium/store"
)

// ErrorOf names err as the seed service does: the one place where the
// errors of the store and of the query service get the service's error name
// (and so its HTTP status). The API's own refusals (a malformed body, a
// limit, a bad signature) are *httpwire.APIError already and pass as they are.
// Anything else is an InternalFailure that does not leak err's text, which
// may name files or hosts. Arrow Flight reports the same names.
func ErrorOf(err error) *httpwire.APIError {
	if e, ok := errors.AsType[*query.RequestError](err); ok {
		return &httpwire.APIError{Name: httpwire.InvalidArgument, Message: e.Message}
	}
	if e, ok := errors.AsType[*store.Error](err); ok {
		if name := storeErrorName(e.Kind); name != "" {
			return &httpwire.APIError{Name: name, Message: e.Message}
		}
	}
	if errors.Is(err, cluster.ErrUnavailable) {
		return &httpwire.APIError{Name: httpwire.ServiceUnavailable, Message: "the cluster's catalog did not answer in time (a leader election, or too few nodes up); retry"}
	}
	if e, ok := errors.AsType[*query.FragmentError](err); ok {
		return &httpwire.APIError{Name: httpwire.InternalFailure, Message: e.Message}
	}
	return httpwire.AsAPIError(err)
}

// storeErrorName is the service's name of a kind of store error; "" for one
// it does not know.
func storeErrorName(kind error) string {
	switch kind {
	case store.ErrInvalidArgument:
		return httpwire.InvalidArgument
	case store.ErrStreamNotFound, store.ErrFragmentNotFound:
		return httpwire.ResourceNotFound
	case store.ErrStreamExists:
		return httpwire.ResourceInUse
	case store.ErrVersionMismatch:
		return httpwire.VersionMismatch
	case store.ErrTooManyStreams:
		return httpwire.AccountStreamLimitExceeded
	case store.ErrTooManyTags:
		return httpwire.TagsPerResourceExceeded
	case store.ErrDataNotDeleted:
		return httpwire.InternalFailure // its message says what to expect
	}
	return ""
}
