package httpwire

import (
	"errors"
	"fmt"
	"net/http"
)

// APIError is an error of the HTTP API, named as the seed service names it
// (e.g. ResourceNotFoundException). The HTTP layer makes it (its own
// refusals, and the store's and the query service's errors, which it names
// in one function) and writes it as status + x-amzn-ErrorType + ErrorBody;
// the SDK client turns such a response back into an *APIError.
type APIError struct {
	Name    string // e.g. "ResourceNotFoundException"
	Message string
}

func (e *APIError) Error() string { return e.Name + ": " + e.Message }

// Is matches another *APIError with the same Name, so that
// errors.Is(err, httpwire.ErrResourceNotFound) works on any message.
func (e *APIError) Is(target error) bool {
	var t *APIError
	return errors.As(target, &t) && t.Name == e.Name
}

// Status is the HTTP status the seed service answers with for this error.
func (e *APIError) Status() int {
	if s, ok := apiStatus[e.Name]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// API error names.
const (
	InvalidArgument            = "InvalidArgumentException"
	ClientLimitExceeded        = "ClientLimitExceededException"
	AccountStreamLimitExceeded = "AccountStreamLimitExceededException"
	ResourceInUse              = "ResourceInUseException"
	ResourceNotFound           = "ResourceNotFoundException"
	NotAuthorized              = "NotAuthorizedException"
	VersionMismatch            = "VersionMismatchException"
	InvalidDevice              = "InvalidDeviceException"
	TagsPerResourceExceeded    = "TagsPerResourceExceededLimitException"
	ConnectionLimitExceeded    = "ConnectionLimitExceededException"
	InvalidEndpoint            = "InvalidEndpointException"
	NoDataRetention            = "NoDataRetentionException"
	InternalFailure            = "InternalFailure"
	UnsupportedStreamMediaType = "UnsupportedStreamMediaTypeException"
	MissingAuthenticationToken = "MissingAuthenticationTokenException"
	IncompleteSignature        = "IncompleteSignatureException"
	UnrecognizedClient         = "UnrecognizedClientException"
	InvalidSignature           = "InvalidSignatureException"
	ServiceUnavailable         = "ServiceUnavailableException"
	// AccessDenied: the request's key is not granted the operation on the
	// stream (the credentials file's streams = / actions =), as the AWS
	// services answer a call their IAM policy does not allow.
	AccessDenied = "AccessDeniedException"
)

var apiStatus = map[string]int{
	InvalidArgument:            http.StatusBadRequest,
	ClientLimitExceeded:        http.StatusBadRequest,
	AccountStreamLimitExceeded: http.StatusBadRequest,
	ResourceInUse:              http.StatusBadRequest,
	ResourceNotFound:           http.StatusNotFound,
	NotAuthorized:              http.StatusUnauthorized,
	VersionMismatch:            http.StatusBadRequest,
	InvalidDevice:              http.StatusBadRequest,
	TagsPerResourceExceeded:    http.StatusBadRequest,
	ConnectionLimitExceeded:    http.StatusBadRequest,
	InvalidEndpoint:            http.StatusBadRequest,
	NoDataRetention:            http.StatusBadRequest,
	UnsupportedStreamMediaType: http.StatusBadRequest,
	MissingAuthenticationToken: http.StatusForbidden,
	IncompleteSignature:        http.StatusBadRequest,
	UnrecognizedClient:         http.StatusForbidden,
	InvalidSignature:           http.StatusForbidden,
	InternalFailure:            http.StatusInternalServerError,
	ServiceUnavailable:         http.StatusServiceUnavailable,
	AccessDenied:               http.StatusForbidden,
}

// Sentinels for errors.Is.
var (
	ErrInvalidArgument  = &APIError{Name: InvalidArgument}
	ErrResourceInUse    = &APIError{Name: ResourceInUse}
	ErrResourceNotFound = &APIError{Name: ResourceNotFound}
	ErrVersionMismatch  = &APIError{Name: VersionMismatch}
	ErrTagsLimit        = &APIError{Name: TagsPerResourceExceeded}
	ErrStreamLimit      = &APIError{Name: AccountStreamLimitExceeded}
	ErrAccessDenied     = &APIError{Name: AccessDenied}
)

// Errorf returns an *APIError with a formatted message.
func Errorf(name, format string, args ...any) error {
	return &APIError{Name: name, Message: fmt.Sprintf(format, args...)}
}

// AsAPIError finds the *APIError in err's chain, or returns an InternalFailure
// that does not leak err's text (which may name files or hosts).
func AsAPIError(err error) *APIError {
	var e *APIError
	if errors.As(err, &e) {
		return e
	}
	return &APIError{Name: InternalFailure, Message: "internal error; the server log has the details"}
}

// ErrorBody is the JSON body of an error answer, as the AWS SDKs parse it.
// The name is also in the x-amzn-ErrorType header.
type ErrorBody struct {
	Type    string `json:"__type"`
	Message string `json:"message"` // decoding also takes "Message", as some services spell it
}
