package wire

// EventType is the state an AckEvent reports, named as the seed service names it.
type EventType string

// Event types.
const (
	EventBuffering EventType = "BUFFERING" // first bytes of a fragment arrived (PutMedia)
	EventReceived  EventType = "RECEIVED"  // the bus has the fragment
	EventPersisted EventType = "PERSISTED" // the store has it on disk, after fsync
	EventError     EventType = "ERROR"     // refused; ErrorId says why
	EventIdle      EventType = "IDLE"      // keep-alive while no data flows (PutMedia)
	// EventRetry is Sensorium's: the fragment was not applied because the one it
	// must follow (HeaderProducerPrev) has not arrived; re-send it after that one.
	EventRetry EventType = "RETRY"
)

// AckEvent is one acknowledgement: the JSON object published on Ack subjects and
// streamed by PutMedia. The first four fields are the seed service's; the rest
// are Sensorium's and are omitted when empty.
type AckEvent struct {
	EventType        EventType `json:"EventType"`
	FragmentTimecode int64     `json:"FragmentTimecode"` // producer timecode of the fragment, ms
	FragmentNumber   string    `json:"FragmentNumber,omitempty"`
	ErrorID          ErrorCode `json:"ErrorId,omitempty"`

	ErrorCode        string `json:"ErrorCode,omitempty"` // the name of ErrorID
	Message          string `json:"Message,omitempty"`   // a sentence for a person
	ProducerID       string `json:"ProducerId,omitempty"`
	ProducerSequence uint64 `json:"ProducerSequence,omitempty"`
	ServerTimestamp  int64  `json:"ServerTimestamp,omitempty"` // ms since the Unix epoch
	// Duplicate is true when the store already had this fragment (a re-send after
	// a lost acknowledgement); the event still means the fragment is durable.
	Duplicate bool `json:"Duplicate,omitempty"`
	// After is the producer sequence a RETRY is waiting for.
	After uint64 `json:"After,omitempty"`
	// Retained is false on the server-side RECEIVED event of a stream whose
	// retention is 0: the fragment reached live readers and will not be stored, so
	// no PERSISTED follows. It is absent on every other event.
	Retained *bool `json:"Retained,omitempty"`
	// Retriable marks an ERROR that does not end the fragment: the producer
	// keeps it and sends it again, and a later event (PERSISTED) follows.
	// The SDK reports so when the bus refuses fragments while the server's
	// disk is full (ARCHIVAL_ERROR).
	Retriable bool `json:"Retriable,omitempty"`
}

// Terminal reports whether no further event will follow for this fragment: the
// producer can forget it.
func (e *AckEvent) Terminal() bool {
	switch e.EventType {
	case EventPersisted:
		return true
	case EventError:
		return !e.Retriable
	case EventReceived:
		return e.Retained != nil && !*e.Retained
	}
	return false
}

// ErrorCode is a numeric acknowledgement error code, as the seed service numbers them.
type ErrorCode int

// Error codes.
const (
	ErrStreamRead               ErrorCode = 4000
	ErrMaxFragmentSize          ErrorCode = 4001
	ErrMaxFragmentDuration      ErrorCode = 4002
	ErrMaxConnectionDuration    ErrorCode = 4003
	ErrFragmentTimecodeLesser   ErrorCode = 4004
	ErrMoreThanAllowedTracks    ErrorCode = 4005
	ErrInvalidMKVData           ErrorCode = 4006
	ErrInvalidProducerTimestamp ErrorCode = 4007
	ErrStreamNotActive          ErrorCode = 4008
	ErrFragmentMetadataLimit    ErrorCode = 4009
	ErrTrackNumberMismatch      ErrorCode = 4010
	ErrFramesMissingForTrack    ErrorCode = 4011
	ErrKMSKeyAccessDenied       ErrorCode = 4500
	ErrKMSKeyDisabled           ErrorCode = 4501
	ErrKMSKeyValidation         ErrorCode = 4502
	ErrKMSKeyUnavailable        ErrorCode = 4503
	ErrKMSKeyInvalidUsage       ErrorCode = 4504
	ErrKMSKeyInvalidState       ErrorCode = 4505
	ErrKMSKeyNotFound           ErrorCode = 4506
	ErrKMSKeyDeleted            ErrorCode = 4507
	ErrInternal                 ErrorCode = 5000
	ErrArchival                 ErrorCode = 5001
)

var errorNames = map[ErrorCode]string{
	ErrStreamRead:               "STREAM_READ_ERROR",
	ErrMaxFragmentSize:          "MAX_FRAGMENT_SIZE_REACHED",
	ErrMaxFragmentDuration:      "MAX_FRAGMENT_DURATION_REACHED",
	ErrMaxConnectionDuration:    "MAX_CONNECTION_DURATION_REACHED",
	ErrFragmentTimecodeLesser:   "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS",
	ErrMoreThanAllowedTracks:    "MORE_THAN_ALLOWED_TRACKS_FOUND",
	ErrInvalidMKVData:           "INVALID_MKV_DATA",
	ErrInvalidProducerTimestamp: "INVALID_PRODUCER_TIMESTAMP",
	ErrStreamNotActive:          "STREAM_NOT_ACTIVE",
	ErrFragmentMetadataLimit:    "FRAGMENT_METADATA_LIMIT_REACHED",
	ErrTrackNumberMismatch:      "TRACK_NUMBER_MISMATCH",
	ErrFramesMissingForTrack:    "FRAMES_MISSING_FOR_TRACK",
	ErrKMSKeyAccessDenied:       "KMS_KEY_ACCESS_DENIED",
	ErrKMSKeyDisabled:           "KMS_KEY_DISABLED",
	ErrKMSKeyValidation:         "KMS_KEY_VALIDATION_ERROR",
	ErrKMSKeyUnavailable:        "KMS_KEY_UNAVAILABLE",
	ErrKMSKeyInvalidUsage:       "KMS_KEY_INVALID_USAGE",
	ErrKMSKeyInvalidState:       "KMS_KEY_INVALID_STATE",
	ErrKMSKeyNotFound:           "KMS_KEY_NOT_FOUND",
	ErrKMSKeyDeleted:            "KMS_KEY_DELETED",
	ErrInternal:                 "INTERNAL_ERROR",
	ErrArchival:                 "ARCHIVAL_ERROR",
}

// String returns the code's name, e.g. "INVALID_MKV_DATA".
func (c ErrorCode) String() string {
	if n, ok := errorNames[c]; ok {
		return n
	}
	return "UNKNOWN_ERROR"
}

// ErrorEvent builds an ERROR event with both the code and its name.
func ErrorEvent(code ErrorCode, timecodeMS int64, msg string) AckEvent {
	return AckEvent{EventType: EventError, FragmentTimecode: timecodeMS, ErrorID: code, ErrorCode: code.String(), Message: msg}
}
