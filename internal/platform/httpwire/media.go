package httpwire

// Media and archived media: GetMedia and GetMediaForFragmentList answer with
// MKV (their requests are JSON), ListFragments with JSON. PutMedia takes its
// parameters in headers and streams JSON acknowledgement events (the bus's
// AckEvent, package wire) back.

// StartSelector says where GetMedia starts, by StartSelectorType: EARLIEST,
// NOW, FRAGMENT_NUMBER (after AfterFragmentNumber), PRODUCER_TIMESTAMP or
// SERVER_TIMESTAMP (at StartTimestamp), CONTINUATION_TOKEN (after
// ContinuationToken).
type StartSelector struct {
	StartSelectorType   string    `json:"StartSelectorType"`
	AfterFragmentNumber string    `json:"AfterFragmentNumber,omitempty"`
	StartTimestamp      Timestamp `json:"StartTimestamp,omitzero"`
	ContinuationToken   string    `json:"ContinuationToken,omitempty"`
}

// GetMediaInput is GetMedia's request.
type GetMediaInput struct {
	StreamRef
	StartSelector StartSelector `json:"StartSelector"`
	// Follow is Sensorium's: false ends the response once it has caught up
	// (the seed service always follows, as an absent Follow does).
	Follow *bool `json:"Follow,omitempty"`
}

// GetMediaForFragmentListInput is GetMediaForFragmentList's request.
type GetMediaForFragmentListInput struct {
	StreamRef
	Fragments []string `json:"Fragments"` // fragment numbers, answered in this order
}

// ListFragmentsInput is ListFragments' request. Without a FragmentSelector
// every fragment is listed; MaxResults 0 is the server's default.
type ListFragmentsInput struct {
	StreamRef
	MaxResults       int               `json:"MaxResults,omitempty"`
	NextToken        string            `json:"NextToken,omitempty"`
	FragmentSelector *FragmentSelector `json:"FragmentSelector,omitempty"`
	// IncludeFragmentMetadata is Sensorium's: each listed fragment then
	// carries its metadata tags (Fragment.FragmentMetadata). Off by default,
	// since the tags are inside each stored fragment and the server reads
	// every listed one to find them; the seed service has no such field,
	// so its SDKs never send it.
	IncludeFragmentMetadata bool `json:"IncludeFragmentMetadata,omitempty"`
}

// FragmentSelector selects fragments by time: FragmentSelectorType is
// PRODUCER_TIMESTAMP or SERVER_TIMESTAMP.
type FragmentSelector struct {
	FragmentSelectorType string         `json:"FragmentSelectorType"`
	TimestampRange       TimestampRange `json:"TimestampRange"`
}

// TimestampRange is a range of time, both ends inclusive; both are required.
type TimestampRange struct {
	StartTimestamp Timestamp `json:"StartTimestamp"`
	EndTimestamp   Timestamp `json:"EndTimestamp"`
}

// Fragment is one entry of ListFragments.
type Fragment struct {
	FragmentLengthInMilliseconds int64     `json:"FragmentLengthInMilliseconds"`
	FragmentNumber               string    `json:"FragmentNumber"`
	FragmentSizeInBytes          int64     `json:"FragmentSizeInBytes"`
	ProducerTimestamp            Timestamp `json:"ProducerTimestamp"`
	ServerTimestamp              Timestamp `json:"ServerTimestamp"`
	// FragmentMetadata is Sensorium's, present only when the request set
	// IncludeFragmentMetadata and the fragment has tags: the producer's
	// metadata and, for a fragment imported from an archive (GetMedia
	// output of Kinesis Video Streams or of another Sensorium), its
	// origin_fragment_number and origin_server_timestamp. The AWS SDKs
	// ignore a field they do not know, so the shape stays theirs.
	FragmentMetadata map[string]string `json:"FragmentMetadata,omitempty"`
}

// ListFragmentsOutput is ListFragments' answer: a page, and the token of the
// next one ("" at the end).
type ListFragmentsOutput struct {
	Fragments []Fragment `json:"Fragments"`
	NextToken string     `json:"NextToken,omitempty"`
}
