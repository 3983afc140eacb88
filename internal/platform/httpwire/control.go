package httpwire

// The control plane: each operation is a POST to /<operation> (e.g.
// /createStream) whose JSON body is its Input, answered by its Output (or
// by {} when it has none). Field names are the seed service's. The
// server decodes a request leniently (an absent field is its zero value);
// omitempty marks what a client leaves out when it has nothing to say.

// StreamRef names a stream by name or by ARN, exactly one of them: the
// pair most operations take.
type StreamRef struct {
	StreamName string `json:"StreamName,omitempty"`
	StreamARN  string `json:"StreamARN,omitempty"`
}

// StreamInfo describes a stream (DescribeStream, ListStreams).
type StreamInfo struct {
	CreationTime         Timestamp `json:"CreationTime"`
	DataRetentionInHours int       `json:"DataRetentionInHours"`
	DeviceName           string    `json:"DeviceName,omitempty"`
	KmsKeyID             string    `json:"KmsKeyId,omitempty"`
	MediaType            string    `json:"MediaType,omitempty"`
	Status               string    `json:"Status"`
	StreamARN            string    `json:"StreamARN"`
	StreamName           string    `json:"StreamName"`
	Version              string    `json:"Version"`
}

// CreateStreamInput is CreateStream's request.
type CreateStreamInput struct {
	StreamName           string            `json:"StreamName"`
	DeviceName           string            `json:"DeviceName,omitempty"`
	MediaType            string            `json:"MediaType,omitempty"`
	KmsKeyID             string            `json:"KmsKeyId,omitempty"`
	DataRetentionInHours int               `json:"DataRetentionInHours"`
	Tags                 map[string]string `json:"Tags,omitempty"`
}

// CreateStreamOutput is CreateStream's answer.
type CreateStreamOutput struct {
	StreamARN string `json:"StreamARN"`
}

// DescribeStreamOutput is DescribeStream's answer; its request is a StreamRef.
type DescribeStreamOutput struct {
	StreamInfo StreamInfo `json:"StreamInfo"`
}

// ListStreamsInput is ListStreams' request. MaxResults absent means the
// server's default (10000); 0 is refused.
type ListStreamsInput struct {
	MaxResults          *int                 `json:"MaxResults,omitempty"`
	NextToken           string               `json:"NextToken,omitempty"`
	StreamNameCondition *StreamNameCondition `json:"StreamNameCondition,omitempty"`
}

// StreamNameCondition selects streams by name; the one operator is BeginsWith.
type StreamNameCondition struct {
	ComparisonOperator string `json:"ComparisonOperator"`
	ComparisonValue    string `json:"ComparisonValue"`
}

// BeginsWith is StreamNameCondition's operator.
const BeginsWith = "BEGINS_WITH"

// ListStreamsOutput is ListStreams' answer: a page, and the token of the next
// one ("" at the end).
type ListStreamsOutput struct {
	NextToken      string       `json:"NextToken,omitempty"`
	StreamInfoList []StreamInfo `json:"StreamInfoList"`
}

// UpdateStreamInput is UpdateStream's request; nil leaves a field as it is.
type UpdateStreamInput struct {
	StreamRef
	CurrentVersion string  `json:"CurrentVersion"`
	DeviceName     *string `json:"DeviceName,omitempty"`
	MediaType      *string `json:"MediaType,omitempty"`
}

// UpdateDataRetentionInput is UpdateDataRetention's request.
type UpdateDataRetentionInput struct {
	StreamRef
	CurrentVersion             string `json:"CurrentVersion"`
	Operation                  string `json:"Operation"` // IncreaseDataRetention or DecreaseDataRetention
	DataRetentionChangeInHours int    `json:"DataRetentionChangeInHours"`
}

// UpdateDataRetentionInput's operations.
const (
	IncreaseDataRetention = "INCREASE_DATA_RETENTION"
	DecreaseDataRetention = "DECREASE_DATA_RETENTION"
)

// DeleteStreamInput is DeleteStream's request; without CurrentVersion any
// version is deleted.
type DeleteStreamInput struct {
	StreamRef
	CurrentVersion string `json:"CurrentVersion,omitempty"`
}

// TagStreamInput is TagStream's request: tags added or replaced.
type TagStreamInput struct {
	StreamRef
	Tags map[string]string `json:"Tags"`
}

// UntagStreamInput is UntagStream's request: tag keys removed.
type UntagStreamInput struct {
	StreamRef
	TagKeyList []string `json:"TagKeyList"`
}

// ListTagsForStreamInput is ListTagsForStream's request. Every tag fits one
// page, so the server issues no NextToken.
type ListTagsForStreamInput struct {
	StreamRef
	NextToken string `json:"NextToken,omitempty"`
}

// ListTagsForStreamOutput is ListTagsForStream's answer.
type ListTagsForStreamOutput struct {
	Tags map[string]string `json:"Tags"`
}

// GetDataEndpointInput is GetDataEndpoint's request.
type GetDataEndpointInput struct {
	StreamRef
	APIName string `json:"APIName"` // a data API, e.g. GET_MEDIA
}

// GetDataEndpointOutput is GetDataEndpoint's answer.
type GetDataEndpointOutput struct {
	DataEndpoint string `json:"DataEndpoint"`
}
