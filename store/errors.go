package store

import (
	"errors"
	"fmt"
)

// The store's refusals: what a caller branches on with errors.Is. Each comes
// wrapped in an *Error whose Message, a sentence for a person that names no
// file, a server may pass on to its client; the store does not know how a
// server names them (internal/service/api gives them the seed service's names
// and statuses, in one place).
var (
	// ErrInvalidArgument: a request the store refuses as it stands (a bad
	// stream name, ARN, media type, tag, retention, key id, page token, a
	// missing CurrentVersion …): nothing was changed.
	ErrInvalidArgument = errors.New("store: invalid argument")
	// ErrStreamNotFound: the stream named does not exist, no longer exists
	// (an append or a read that was under way when it was deleted), is being
	// deleted, or has another ARN than the one given.
	ErrStreamNotFound = errors.New("store: stream not found")
	// ErrFragmentNotFound: the stream exists but holds no fragment of the
	// number asked for.
	ErrFragmentNotFound = errors.New("store: fragment not found")
	// ErrStreamExists: CreateStream of a name the catalog already holds.
	ErrStreamExists = errors.New("store: stream exists")
	// ErrVersionMismatch: an update or a deletion gave a CurrentVersion that
	// is not the stream's version (another update came first).
	ErrVersionMismatch = errors.New("store: version mismatch")
	// ErrTooManyStreams: CreateStream past Options.MaxStreams.
	ErrTooManyStreams = errors.New("store: too many streams")
	// ErrTooManyTags: a stream would have more than MaxTagsPerStream tags.
	ErrTooManyTags = errors.New("store: too many tags")
	// ErrDataNotDeleted: DeleteStream took the stream out of the catalog's
	// reach but could not remove its files; the next start retries.
	ErrDataNotDeleted = errors.New("store: stream data not deleted")
)

// Error is a refusal of the store: errors.Is(err, Kind) holds for it, and
// Message says what was refused and why.
type Error struct {
	Kind    error  // one of the Err* sentinels above
	Message string // for a person; names no file
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the kind, for errors.Is.
func (e *Error) Unwrap() error { return e.Kind }

// Refuse returns an *Error of kind (one of the Err* sentinels) with a
// formatted message: for code that keeps a catalog on the store's behalf
// (the cluster's) and must refuse in the store's terms.
func Refuse(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

func refuse(kind error, format string, args ...any) error { return Refuse(kind, format, args...) }

// invalid returns an *Error of kind ErrInvalidArgument.
func invalid(format string, args ...any) error {
	return refuse(ErrInvalidArgument, format, args...)
}
