package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/internal/wire"
)

// APIError is an error answered by the server, named as the seed service
// names it (e.g. "ResourceNotFoundException"); errors.Is matches by name
// against the Err* sentinels below.
type APIError = wire.APIError

// Sentinels for errors.Is on client errors.
var (
	ErrResourceNotFound = wire.ErrResourceNotFound
	ErrResourceInUse    = wire.ErrResourceInUse
	ErrInvalidArgument  = wire.ErrInvalidArgument
	ErrVersionMismatch  = wire.ErrVersionMismatch
)

// Client calls a Sensorium server's HTTP API: the control plane, the media and
// archived-media operations, and Arrow queries.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a client of the server at baseURL (e.g.
// "http://127.0.0.1:8080"). hc may be nil for http.DefaultClient; it must not
// have a Timeout if GetMedia is to follow a stream.
func NewClient(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), hc: hc}
}

// post sends a JSON request and returns the response when it is 200; any
// other answer becomes an *APIError.
func (c *Client) post(ctx context.Context, op string, in any) (*http.Response, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("sdk: %s: encode: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/"+op, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("sdk: %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sdk: %s: %w", op, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeAPIError(resp)
}

func decodeAPIError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
		Msg2    string `json:"Message"`
	}
	_ = json.Unmarshal(b, &body)
	name := resp.Header.Get("x-amzn-ErrorType")
	if i := strings.IndexByte(name, ':'); i >= 0 {
		name = name[:i]
	}
	if name == "" {
		name = body.Type
	}
	msg := body.Message
	if msg == "" {
		msg = body.Msg2
	}
	if name == "" {
		name, msg = fmt.Sprintf("HTTP%d", resp.StatusCode), strings.TrimSpace(string(b))
	}
	return &APIError{Name: name, Message: msg}
}

// call posts in and decodes the JSON answer into out (nil: ignore it).
func (c *Client) call(ctx context.Context, op string, in, out any) error {
	resp, err := c.post(ctx, op, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("sdk: %s: decode response: %w", op, err)
	}
	return nil
}

// Time is a timestamp as the API encodes it: epoch seconds, fractional.
type Time struct{ time.Time }

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("sdk: timestamp %s: %w", b, err)
	}
	sec, frac := math.Modf(f)
	t.Time = time.Unix(int64(sec), int64(math.Round(frac*1000))*int64(time.Millisecond)).UTC()
	return nil
}

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	ms := t.UnixMilli()
	return []byte(fmt.Sprintf("%d.%03d", ms/1000, ms%1000)), nil
}

// StreamInfo describes a stream.
type StreamInfo struct {
	StreamName           string `json:"StreamName"`
	StreamARN            string `json:"StreamARN"`
	DeviceName           string `json:"DeviceName,omitempty"`
	MediaType            string `json:"MediaType,omitempty"`
	KmsKeyID             string `json:"KmsKeyId,omitempty"`
	Version              string `json:"Version"`
	Status               string `json:"Status"`
	CreationTime         Time   `json:"CreationTime"`
	DataRetentionInHours int    `json:"DataRetentionInHours"`
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

// CreateStream creates a stream and returns its ARN.
func (c *Client) CreateStream(ctx context.Context, in CreateStreamInput) (string, error) {
	var out struct{ StreamARN string }
	err := c.call(ctx, "createStream", in, &out)
	return out.StreamARN, err
}

// StreamRef names a stream by name or ARN (one of them).
type StreamRef struct {
	StreamName string `json:"StreamName,omitempty"`
	StreamARN  string `json:"StreamARN,omitempty"`
}

// ByName is a StreamRef by name.
func ByName(name string) StreamRef { return StreamRef{StreamName: name} }

// DescribeStream returns a stream's description.
func (c *Client) DescribeStream(ctx context.Context, ref StreamRef) (StreamInfo, error) {
	var out struct{ StreamInfo StreamInfo }
	err := c.call(ctx, "describeStream", ref, &out)
	return out.StreamInfo, err
}

// ListStreams returns a page of streams whose names begin with prefix.
func (c *Client) ListStreams(ctx context.Context, prefix string, maxResults int, nextToken string) ([]StreamInfo, string, error) {
	in := map[string]any{}
	if prefix != "" {
		in["StreamNameCondition"] = map[string]string{"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": prefix}
	}
	if maxResults > 0 {
		in["MaxResults"] = maxResults
	}
	if nextToken != "" {
		in["NextToken"] = nextToken
	}
	var out struct {
		StreamInfoList []StreamInfo
		NextToken      string
	}
	err := c.call(ctx, "listStreams", in, &out)
	return out.StreamInfoList, out.NextToken, err
}

// UpdateDataRetention changes a stream's retention by hours (negative: decrease).
func (c *Client) UpdateDataRetention(ctx context.Context, ref StreamRef, currentVersion string, changeHours int) error {
	op := "INCREASE_DATA_RETENTION"
	if changeHours < 0 {
		op, changeHours = "DECREASE_DATA_RETENTION", -changeHours
	}
	return c.call(ctx, "updateDataRetention", struct {
		StreamRef
		CurrentVersion             string
		Operation                  string
		DataRetentionChangeInHours int
	}{ref, currentVersion, op, changeHours}, nil)
}

// UpdateStream changes a stream's device name and media type ("" leaves one as it is).
func (c *Client) UpdateStream(ctx context.Context, ref StreamRef, currentVersion, deviceName, mediaType string) error {
	in := map[string]any{"CurrentVersion": currentVersion}
	addRef(in, ref)
	if deviceName != "" {
		in["DeviceName"] = deviceName
	}
	if mediaType != "" {
		in["MediaType"] = mediaType
	}
	return c.call(ctx, "updateStream", in, nil)
}

// DeleteStream deletes a stream and its data. currentVersion may be "".
func (c *Client) DeleteStream(ctx context.Context, ref StreamRef, currentVersion string) error {
	in := map[string]any{}
	addRef(in, ref)
	if currentVersion != "" {
		in["CurrentVersion"] = currentVersion
	}
	return c.call(ctx, "deleteStream", in, nil)
}

// TagStream adds or replaces tags.
func (c *Client) TagStream(ctx context.Context, ref StreamRef, tags map[string]string) error {
	in := map[string]any{"Tags": tags}
	addRef(in, ref)
	return c.call(ctx, "tagStream", in, nil)
}

// UntagStream removes tags.
func (c *Client) UntagStream(ctx context.Context, ref StreamRef, keys []string) error {
	in := map[string]any{"TagKeyList": keys}
	addRef(in, ref)
	return c.call(ctx, "untagStream", in, nil)
}

// ListTagsForStream returns a stream's tags.
func (c *Client) ListTagsForStream(ctx context.Context, ref StreamRef) (map[string]string, error) {
	var out struct{ Tags map[string]string }
	err := c.call(ctx, "listTagsForStream", ref, &out)
	return out.Tags, err
}

func addRef(m map[string]any, ref StreamRef) {
	if ref.StreamName != "" {
		m["StreamName"] = ref.StreamName
	}
	if ref.StreamARN != "" {
		m["StreamARN"] = ref.StreamARN
	}
}

// Fragment is one entry of ListFragments.
type Fragment struct {
	FragmentNumber               string
	FragmentSizeInBytes          int64
	ProducerTimestamp            Time
	ServerTimestamp              Time
	FragmentLengthInMilliseconds int64
}

// ListFragmentsInput is ListFragments' request. Without Selector every
// fragment is listed.
type ListFragmentsInput struct {
	Stream     StreamRef
	Selector   string    // "PRODUCER_TIMESTAMP" or "SERVER_TIMESTAMP"; "" for none
	Start, End time.Time // inclusive, as the seed service's TimestampRange
	MaxResults int
	NextToken  string
}

// ListFragments returns a page of fragments and the token of the next page.
func (c *Client) ListFragments(ctx context.Context, in ListFragmentsInput) ([]Fragment, string, error) {
	req := map[string]any{}
	addRef(req, in.Stream)
	if in.Selector != "" {
		req["FragmentSelector"] = map[string]any{
			"FragmentSelectorType": in.Selector,
			"TimestampRange":       map[string]any{"StartTimestamp": Time{in.Start}, "EndTimestamp": Time{in.End}},
		}
	}
	if in.MaxResults > 0 {
		req["MaxResults"] = in.MaxResults
	}
	if in.NextToken != "" {
		req["NextToken"] = in.NextToken
	}
	var out struct {
		Fragments []Fragment
		NextToken string
	}
	err := c.call(ctx, "listFragments", req, &out)
	return out.Fragments, out.NextToken, err
}

// StartSelector says where GetMedia starts (the seed service's shape).
type StartSelector struct {
	StartSelectorType   string `json:"StartSelectorType"`
	AfterFragmentNumber string `json:"AfterFragmentNumber,omitempty"`
	StartTimestamp      *Time  `json:"StartTimestamp,omitempty"`
	ContinuationToken   string `json:"ContinuationToken,omitempty"`
}

// Start selectors.
func StartEarliest() StartSelector { return StartSelector{StartSelectorType: "EARLIEST"} }
func StartNow() StartSelector      { return StartSelector{StartSelectorType: "NOW"} }
func StartAtFragment(number string) StartSelector {
	return StartSelector{StartSelectorType: "FRAGMENT_NUMBER", AfterFragmentNumber: number}
}
func StartAfterToken(token string) StartSelector {
	return StartSelector{StartSelectorType: "CONTINUATION_TOKEN", ContinuationToken: token}
}
func StartAtProducerTime(t time.Time) StartSelector {
	return StartSelector{StartSelectorType: "PRODUCER_TIMESTAMP", StartTimestamp: &Time{t}}
}
func StartAtServerTime(t time.Time) StartSelector {
	return StartSelector{StartSelectorType: "SERVER_TIMESTAMP", StartTimestamp: &Time{t}}
}

// GetMedia opens a GetMedia response: a stream of MKV chunks, to be read
// with NewMediaReader. follow=false ends it once it has caught up (a
// Sensorium extension; the seed service always follows). Close the body.
func (c *Client) GetMedia(ctx context.Context, ref StreamRef, start StartSelector, follow bool) (io.ReadCloser, error) {
	req := map[string]any{"StartSelector": start, "Follow": follow}
	addRef(req, ref)
	resp, err := c.post(ctx, "getMedia", req)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// GetMediaForFragmentList opens the chunks of the given fragments, in that order.
func (c *Client) GetMediaForFragmentList(ctx context.Context, ref StreamRef, fragments []string) (io.ReadCloser, error) {
	req := map[string]any{"Fragments": fragments}
	addRef(req, ref)
	resp, err := c.post(ctx, "getMediaForFragmentList", req)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// QueryInput is an Arrow range query.
type QueryInput struct {
	Stream   string    `json:"stream"`
	Start    time.Time `json:"-"`
	End      time.Time `json:"-"`
	Basis    string    `json:"basis,omitempty"`    // "producer" (default) or "server"
	Channels []string  `json:"channels,omitempty"` // the fields of a scalar or IMU track (an alias of Fields)
	Fields   []string  `json:"fields,omitempty"`   // the kind's fields to return (channels, point fields …); empty: all
	Layout   string    `json:"layout,omitempty"`   // "rows" (default: a row per sample, point, detection) or "frames" (a row per frame, list columns)
	Track    uint64    `json:"track,omitempty"`
	// Shape "windows" returns a row per Window of a scalar signal: its start,
	// its source fragments and a fixed-size list per channel.
	Shape string `json:"shape,omitempty"`
	// Follow keeps the query open: it returns the range's stored rows, then
	// new ones as they are stored, until End (zero: no end) or ctx ends.
	Follow    bool         `json:"follow,omitempty"`
	Window    *QueryWindow `json:"window,omitempty"`
	BatchRows int          `json:"batch_rows,omitempty"`
	// Shape "aligned" puts the Inputs on one clock: Align's rate, or the
	// sample times of its reference input (Stream is then unused).
	Inputs []QueryInputStream `json:"inputs,omitempty"`
	Align  *QueryAlign        `json:"align,omitempty"`
}

// QueryInputStream is one stream of an aligned query.
type QueryInputStream struct {
	Stream string   `json:"stream"`
	Fields []string `json:"fields,omitempty"`
	Track  uint64   `json:"track,omitempty"`
}

// QueryAlign says how an aligned query aligns its inputs: on a grid at Rate
// Hz, or (Rate 0) on the sample times of input Reference; Interpolation is
// "none", "previous" or "linear", and a value is null rather than filled
// across a gap (no sample within 1.5 sample periods).
type QueryAlign struct {
	Rate          float64 `json:"rate,omitempty"`
	Reference     int     `json:"reference,omitempty"`
	Interpolation string  `json:"interpolation"`
}

// QueryWindow is the length and hop of the windows shape, in samples.
type QueryWindow struct {
	Length int `json:"length"`
	Hop    int `json:"hop,omitempty"` // default: Length (back to back)
}

// QueryRaw runs a query and returns the Arrow IPC stream's bytes. Close it.
func (c *Client) QueryRaw(ctx context.Context, in QueryInput) (io.ReadCloser, error) {
	type wireQuery struct {
		QueryInput
		StartNS int64  `json:"start"`
		EndNS   *int64 `json:"end,omitempty"` // none: a live query without an end
	}
	q := wireQuery{QueryInput: in, StartNS: in.Start.UnixNano()}
	if !in.End.IsZero() {
		end := in.End.UnixNano()
		q.EndNS = &end
	}
	resp, err := c.post(ctx, "v1/query", q)
	if err != nil {
		return nil, err
	}
	return &trailerCheck{resp: resp}, nil
}

// trailerCheck surfaces the server's Sensorium-Error trailer, sent when a
// query fails after its stream began, as an error at the end of the body.
type trailerCheck struct{ resp *http.Response }

func (t *trailerCheck) Read(p []byte) (int, error) {
	n, err := t.resp.Body.Read(p)
	if errors.Is(err, io.EOF) {
		if msg := t.resp.Trailer.Get("Sensorium-Error"); msg != "" {
			return n, fmt.Errorf("sdk: query failed on the server: %s", msg)
		}
	}
	return n, err
}

func (t *trailerCheck) Close() error { return t.resp.Body.Close() }

// QueryResult reads the record batches of a query. Release each record you
// keep past the next call to Next; Close the result.
type QueryResult struct {
	*ipc.Reader
	body io.ReadCloser
}

// Close releases the reader and the connection.
func (q *QueryResult) Close() error {
	q.Reader.Release()
	return q.body.Close()
}

// Query runs a query and returns a reader of its record batches.
func (c *Client) Query(ctx context.Context, in QueryInput, mem memory.Allocator) (*QueryResult, error) {
	body, err := c.QueryRaw(ctx, in)
	if err != nil {
		return nil, err
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	r, err := ipc.NewReader(body, ipc.WithAllocator(mem))
	if err != nil {
		body.Close()
		return nil, fmt.Errorf("sdk: query: %w", err)
	}
	return &QueryResult{Reader: r, body: body}, nil
}
