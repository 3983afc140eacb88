package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
)

// APIError is an error answered by the server, named as the seed service
// names it (e.g. "ResourceNotFoundException"); errors.Is matches by name
// against the Err* sentinels below.
type APIError = httpwire.APIError

// Sentinels for errors.Is on client errors.
var (
	ErrResourceNotFound = httpwire.ErrResourceNotFound
	ErrResourceInUse    = httpwire.ErrResourceInUse
	ErrInvalidArgument  = httpwire.ErrInvalidArgument
	ErrVersionMismatch  = httpwire.ErrVersionMismatch
)

// Client calls a Sensorium server's HTTP API: the control plane, the media and
// archived-media operations, and Arrow queries.
type Client struct {
	base    string
	hc      *http.Client
	timeout time.Duration // ClientOptions.Timeout resolved; 0: none
	creds   *Credentials
}

// Credentials sign a client's requests with AWS Signature Version 4, for a
// server started with --credentials: an access key of its credentials file.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	// Region is the server's --region, which the signature is scoped to;
	// default us-east-1.
	Region string
}

// NATSOptions log a NATS connection in as this key, for a server whose NATS
// authenticates (a credentials file with grants, or --nats-auth): the access
// key id and secret as user and password, and the key's own inbox prefix
// (_INBOX_<key id>), the only inboxes the server lets the key read, so that
// a Producer's publish acknowledgements reach it and no one else.
//
//	nc, err := nats.Connect(url, creds.NATSOptions()...)
func (c *Credentials) NATSOptions() []nats.Option {
	return []nats.Option{nats.UserInfo(c.AccessKeyID, c.SecretAccessKey), nats.CustomInboxPrefix("_INBOX_" + c.AccessKeyID)}
}

// Defaults of ClientOptions.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultDialTimeout = 10 * time.Second
)

// LoadCredentials finds the key to sign with the way the AWS CLI does:
// profile (or $AWS_PROFILE) of the shared credentials file
// ($AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials), or
// $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY, or the [default] profile;
// the region is $AWS_REGION (or $AWS_DEFAULT_REGION). It returns nil, nil
// when none is configured (a server without --credentials takes unsigned
// requests), and an error for a profile that was asked for and is not there.
func LoadCredentials(profile string) (*Credentials, error) {
	key, ok, err := awsauth.ClientKey(profile)
	if err != nil || !ok {
		return nil, err
	}
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = os.Getenv("AWS_DEFAULT_REGION")
	}
	return &Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey, Region: region}, nil
}

// ClientOptions configure a Client.
type ClientOptions struct {
	// HTTPClient sends the requests. nil: a client whose transport dials with
	// DialTimeout. It must not have a Timeout of its own if GetMedia is to
	// follow a stream (http.Client.Timeout also cuts a streaming body).
	HTTPClient *http.Client
	// Timeout bounds every call, so that a server that accepts a connection
	// but never answers cannot hang the caller. A control-plane call
	// (CreateStream, ListStreams, ListFragments …) must be answered in full
	// within it. A streaming call (GetMedia, GetMediaForFragmentList, Query)
	// must get its response headers within it; once the body streams, only
	// ctx ends it, so a followed GetMedia or a long or live query is never
	// cut off. (The server sends a query's headers with its first batch, or
	// within 2 s when that is slow in coming, and a live query's at once.)
	// 0: DefaultTimeout; negative: none.
	Timeout time.Duration
	// DialTimeout bounds connecting to the server (TCP and TLS) when
	// HTTPClient is nil. 0: DefaultDialTimeout; negative: none.
	DialTimeout time.Duration
	// Credentials, when set, sign every request (AWS Signature Version 4,
	// service kinesisvideo); nil: requests go unsigned.
	Credentials *Credentials
}

// NewClient returns a client of the server at baseURL (e.g.
// "http://127.0.0.1:8080") with the default timeouts. hc may be nil; see
// ClientOptions.HTTPClient.
func NewClient(baseURL string, hc *http.Client) *Client {
	return NewClientWithOptions(baseURL, ClientOptions{HTTPClient: hc})
}

// NewClientWithOptions returns a client of the server at baseURL.
func NewClientWithOptions(baseURL string, o ClientOptions) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), hc: o.HTTPClient, timeout: o.Timeout, creds: o.Credentials}
	switch {
	case c.timeout == 0:
		c.timeout = DefaultTimeout
	case c.timeout < 0:
		c.timeout = 0
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: transportFor(o.DialTimeout)}
	}
	return c
}

// defaultTransport is shared by the clients with the default dial timeout,
// as http.DefaultTransport is, so that a program that makes a Client per call
// (the CLI does) reuses connections instead of leaking idle ones.
var defaultTransport = sync.OnceValue(func() *http.Transport { return newTransport(DefaultDialTimeout) })

func transportFor(dial time.Duration) *http.Transport {
	switch {
	case dial == 0 || dial == DefaultDialTimeout:
		return defaultTransport()
	case dial < 0:
		dial = 0
	}
	return newTransport(dial)
}

func newTransport(dial time.Duration) *http.Transport {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok { // a program replaced it: start from the documented defaults
		t = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true, MaxIdleConns: 100,
			IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second, ExpectContinueTimeout: time.Second}
	}
	t = t.Clone()
	t.DialContext = (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext
	if dial > 0 {
		t.TLSHandshakeTimeout = dial
	}
	return t
}

// TimeoutError is a call that the server did not answer within
// ClientOptions.Timeout. errors.Is(err, context.DeadlineExceeded) holds.
type TimeoutError struct {
	Op    string        // the API operation, e.g. "listStreams"
	URL   string        // where it was sent
	After time.Duration // the timeout that ran out
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("sdk: %s: no answer from %s within %v", e.Op, e.URL, e.After)
}

// Timeout reports true, as a net.Error that timed out does.
func (e *TimeoutError) Timeout() bool { return true }

// Unwrap makes errors.Is(err, context.DeadlineExceeded) true.
func (e *TimeoutError) Unwrap() error { return context.DeadlineExceeded }

// HTTPError is an answer other than 200 that carries no API error type (no
// x-amzn-ErrorType header and no __type in a JSON body): the answer of
// something that is not a Sensorium server — a wrong endpoint, a proxy in
// between — rather than an *APIError of the server.
type HTTPError struct {
	Op         string // the API operation, e.g. "listStreams"
	URL        string // where it was sent
	StatusCode int
	Status     string // e.g. "404 Not Found"
	Body       string // the start of the body, on one line; may be ""
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("sdk: %s: %s answered %s without an API error type", e.Op, e.URL, e.Status)
	if e.Body == "" {
		return s + " (empty body)"
	}
	return s + ": " + e.Body
}

// post sends a JSON request and returns the response when it is 200; any
// other answer becomes an *APIError (or an *HTTPError). The response headers
// must arrive within the client's timeout; the response's body then streams
// for as long as ctx lasts, and closing it releases what post set up.
func (c *Client) post(ctx context.Context, op string, in any) (*http.Response, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("sdk: %s: encode: %w", op, err)
	}
	url := c.base + "/" + op
	if c.timeout <= 0 {
		return c.send(ctx, op, url, body)
	}
	// A timer rather than http.Transport.ResponseHeaderTimeout: it works with
	// any HTTPClient and it covers the dial and the request too.
	tctx, cancel := context.WithCancelCause(ctx)
	te := &TimeoutError{Op: op, URL: url, After: c.timeout}
	timer := time.AfterFunc(c.timeout, func() { cancel(te) })
	resp, err := c.send(tctx, op, url, body)
	if !timer.Stop() { // the timer fired: the headers came too late or not at all
		if err == nil {
			resp.Body.Close()
		}
		cancel(nil)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("sdk: %s: %w", op, ctx.Err())
		}
		return nil, te
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: func() { cancel(nil) }}
	return resp, nil
}

func (c *Client) send(ctx context.Context, op, url string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("sdk: %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.creds != nil {
		region := c.creds.Region
		if region == "" {
			region = "us-east-1"
		}
		key := awsauth.Key{AccessKeyID: c.creds.AccessKeyID, SecretAccessKey: c.creds.SecretAccessKey}
		if err := awsauth.Sign(req, key, region, body, time.Now()); err != nil {
			return nil, fmt.Errorf("sdk: %s: %w", op, err)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sdk: %s: %w", op, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeAPIError(resp, op, url)
}

// cancelOnClose releases a streaming call's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func decodeAPIError(resp *http.Response, op, url string) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body httpwire.ErrorBody
	_ = json.Unmarshal(b, &body)
	name := resp.Header.Get("x-amzn-ErrorType")
	if i := strings.IndexByte(name, ':'); i >= 0 {
		name = name[:i]
	}
	if name == "" {
		name = body.Type
	}
	if name == "" {
		status := resp.Status
		if status == "" {
			status = strings.TrimSpace(fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode)))
		}
		return &HTTPError{Op: op, URL: url, StatusCode: resp.StatusCode, Status: status, Body: snippet(b, 200)}
	}
	return &APIError{Name: name, Message: body.Message}
}

// snippet is the start of b on one line, for an error message.
func snippet(b []byte, n int) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}

// call posts in and decodes the JSON answer into out (nil: ignore it). The
// whole answer must come within the client's timeout.
func (c *Client) call(ctx context.Context, op string, in, out any) error {
	var te *TimeoutError
	if c.timeout > 0 {
		te = &TimeoutError{Op: op, URL: c.base + "/" + op, After: c.timeout}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.timeout, te)
		defer cancel()
	}
	err := c.decode(ctx, op, in, out)
	if err != nil && te != nil && context.Cause(ctx) == error(te) {
		return te
	}
	return err
}

func (c *Client) decode(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("sdk: %s: encode: %w", op, err)
	}
	resp, err := c.send(ctx, op, c.base+"/"+op, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err := io.Copy(io.Discard, resp.Body)
		if err != nil {
			return fmt.Errorf("sdk: %s: read response: %w", op, err)
		}
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("sdk: %s: decode the answer of %s (%s, %s): %w", op, resp.Request.URL, resp.Status, resp.Header.Get("Content-Type"), err)
	}
	return nil
}

// Time is a timestamp as the API encodes it: epoch seconds, fractional.
type Time struct{ time.Time }

// timeOf is the Time of a timestamp of the wire; zero when it was absent.
func timeOf(t httpwire.Timestamp) Time {
	if !t.Set {
		return Time{}
	}
	return Time{time.Unix(0, t.NS).UTC()}
}

// wireTime is t on the wire.
func wireTime(t time.Time) httpwire.Timestamp { return httpwire.At(t.UnixNano()) }

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

// StreamInfo describes a stream. Its JSON is the API's (httpwire.StreamInfo).
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

func streamInfoOf(in httpwire.StreamInfo) StreamInfo {
	return StreamInfo{
		StreamName: in.StreamName, StreamARN: in.StreamARN, DeviceName: in.DeviceName, MediaType: in.MediaType,
		KmsKeyID: in.KmsKeyID, Version: in.Version, Status: in.Status, CreationTime: timeOf(in.CreationTime),
		DataRetentionInHours: in.DataRetentionInHours,
	}
}

func streamInfosOf(in []httpwire.StreamInfo) []StreamInfo {
	if in == nil {
		return nil
	}
	out := make([]StreamInfo, len(in))
	for i, s := range in {
		out[i] = streamInfoOf(s)
	}
	return out
}

// CreateStreamInput is CreateStream's request (httpwire.CreateStreamInput,
// field for field).
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
	var out httpwire.CreateStreamOutput
	err := c.call(ctx, "createStream", httpwire.CreateStreamInput(in), &out)
	return out.StreamARN, err
}

// StreamRef names a stream by name or ARN (one of them): httpwire.StreamRef,
// field for field.
type StreamRef struct {
	StreamName string `json:"StreamName,omitempty"`
	StreamARN  string `json:"StreamARN,omitempty"`
}

// ByName is a StreamRef by name.
func ByName(name string) StreamRef { return StreamRef{StreamName: name} }

// DescribeStream returns a stream's description.
func (c *Client) DescribeStream(ctx context.Context, ref StreamRef) (StreamInfo, error) {
	var out httpwire.DescribeStreamOutput
	err := c.call(ctx, "describeStream", httpwire.StreamRef(ref), &out)
	return streamInfoOf(out.StreamInfo), err
}

// ListStreams returns a page of streams whose names begin with prefix.
func (c *Client) ListStreams(ctx context.Context, prefix string, maxResults int, nextToken string) ([]StreamInfo, string, error) {
	in := httpwire.ListStreamsInput{NextToken: nextToken}
	if prefix != "" {
		in.StreamNameCondition = &httpwire.StreamNameCondition{ComparisonOperator: httpwire.BeginsWith, ComparisonValue: prefix}
	}
	if maxResults > 0 {
		in.MaxResults = &maxResults
	}
	var out httpwire.ListStreamsOutput
	err := c.call(ctx, "listStreams", in, &out)
	return streamInfosOf(out.StreamInfoList), out.NextToken, err
}

// UpdateDataRetention changes a stream's retention by hours (negative: decrease).
func (c *Client) UpdateDataRetention(ctx context.Context, ref StreamRef, currentVersion string, changeHours int) error {
	op := httpwire.IncreaseDataRetention
	if changeHours < 0 {
		op, changeHours = httpwire.DecreaseDataRetention, -changeHours
	}
	return c.call(ctx, "updateDataRetention", httpwire.UpdateDataRetentionInput{
		StreamRef: httpwire.StreamRef(ref), CurrentVersion: currentVersion, Operation: op, DataRetentionChangeInHours: changeHours,
	}, nil)
}

// UpdateStream changes a stream's device name and media type ("" leaves one as it is).
func (c *Client) UpdateStream(ctx context.Context, ref StreamRef, currentVersion, deviceName, mediaType string) error {
	in := httpwire.UpdateStreamInput{StreamRef: httpwire.StreamRef(ref), CurrentVersion: currentVersion}
	if deviceName != "" {
		in.DeviceName = &deviceName
	}
	if mediaType != "" {
		in.MediaType = &mediaType
	}
	return c.call(ctx, "updateStream", in, nil)
}

// DeleteStream deletes a stream and its data. currentVersion may be "".
func (c *Client) DeleteStream(ctx context.Context, ref StreamRef, currentVersion string) error {
	return c.call(ctx, "deleteStream", httpwire.DeleteStreamInput{StreamRef: httpwire.StreamRef(ref), CurrentVersion: currentVersion}, nil)
}

// TagStream adds or replaces tags.
func (c *Client) TagStream(ctx context.Context, ref StreamRef, tags map[string]string) error {
	return c.call(ctx, "tagStream", httpwire.TagStreamInput{StreamRef: httpwire.StreamRef(ref), Tags: tags}, nil)
}

// UntagStream removes tags.
func (c *Client) UntagStream(ctx context.Context, ref StreamRef, keys []string) error {
	return c.call(ctx, "untagStream", httpwire.UntagStreamInput{StreamRef: httpwire.StreamRef(ref), TagKeyList: keys}, nil)
}

// ListTagsForStream returns a stream's tags.
func (c *Client) ListTagsForStream(ctx context.Context, ref StreamRef) (map[string]string, error) {
	var out httpwire.ListTagsForStreamOutput
	err := c.call(ctx, "listTagsForStream", httpwire.ListTagsForStreamInput{StreamRef: httpwire.StreamRef(ref)}, &out)
	return out.Tags, err
}

// GetDataEndpoint returns the URL to send a data API's calls for a stream
// to (apiName as the seed service names them: PUT_MEDIA, GET_MEDIA,
// LIST_FRAGMENTS …). A cluster node answers a node that holds the stream.
func (c *Client) GetDataEndpoint(ctx context.Context, ref StreamRef, apiName string) (string, error) {
	var out httpwire.GetDataEndpointOutput
	err := c.call(ctx, "getDataEndpoint", httpwire.GetDataEndpointInput{StreamRef: httpwire.StreamRef(ref), APIName: apiName}, &out)
	return out.DataEndpoint, err
}

// Fragment is one entry of ListFragments.
type Fragment struct {
	FragmentNumber               string
	FragmentSizeInBytes          int64
	ProducerTimestamp            Time
	ServerTimestamp              Time
	FragmentLengthInMilliseconds int64
}

// FragmentWithMetadata is a fragment as ListFragmentsWithMetadata lists it.
type FragmentWithMetadata struct {
	Fragment
	// Metadata is the fragment's metadata tags: the producer's, and for a
	// fragment imported from an archive origin_fragment_number and
	// origin_server_timestamp (docs/NATS.md, "Archive tags"); nil for a
	// fragment without tags.
	Metadata map[string]string
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
	out, next, err := c.listFragments(ctx, in, false)
	var frags []Fragment
	if out != nil {
		frags = make([]Fragment, 0, len(out))
	}
	for _, f := range out {
		frags = append(frags, f.Fragment)
	}
	return frags, next, err
}

// ListFragmentsWithMetadata is ListFragments with each fragment's metadata
// tags (Sensorium's IncludeFragmentMetadata). The server reads every listed
// fragment to find them, so a page costs about what
// GetMediaForFragmentList of it would: list without them when the tags are
// not needed.
func (c *Client) ListFragmentsWithMetadata(ctx context.Context, in ListFragmentsInput) ([]FragmentWithMetadata, string, error) {
	return c.listFragments(ctx, in, true)
}

func (c *Client) listFragments(ctx context.Context, in ListFragmentsInput, metadata bool) ([]FragmentWithMetadata, string, error) {
	req := httpwire.ListFragmentsInput{StreamRef: httpwire.StreamRef(in.Stream), MaxResults: max(in.MaxResults, 0), NextToken: in.NextToken,
		IncludeFragmentMetadata: metadata}
	if in.Selector != "" {
		req.FragmentSelector = &httpwire.FragmentSelector{
			FragmentSelectorType: in.Selector,
			TimestampRange:       httpwire.TimestampRange{StartTimestamp: wireTime(in.Start), EndTimestamp: wireTime(in.End)},
		}
	}
	var out httpwire.ListFragmentsOutput
	err := c.call(ctx, "listFragments", req, &out)
	var frags []FragmentWithMetadata
	if out.Fragments != nil {
		frags = make([]FragmentWithMetadata, 0, len(out.Fragments))
	}
	for _, f := range out.Fragments {
		frags = append(frags, FragmentWithMetadata{Fragment: Fragment{
			FragmentNumber: f.FragmentNumber, FragmentSizeInBytes: f.FragmentSizeInBytes,
			ProducerTimestamp: timeOf(f.ProducerTimestamp), ServerTimestamp: timeOf(f.ServerTimestamp),
			FragmentLengthInMilliseconds: f.FragmentLengthInMilliseconds,
		}, Metadata: f.FragmentMetadata})
	}
	return frags, out.NextToken, err
}

// StartSelector says where GetMedia starts (the seed service's shape,
// httpwire.StartSelector).
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
	sel := httpwire.StartSelector{
		StartSelectorType: start.StartSelectorType, AfterFragmentNumber: start.AfterFragmentNumber, ContinuationToken: start.ContinuationToken,
	}
	if start.StartTimestamp != nil {
		sel.StartTimestamp = wireTime(start.StartTimestamp.Time)
	}
	resp, err := c.post(ctx, "getMedia", httpwire.GetMediaInput{StreamRef: httpwire.StreamRef(ref), StartSelector: sel, Follow: &follow})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// GetMediaForFragmentList opens the chunks of the given fragments, in that order.
func (c *Client) GetMediaForFragmentList(ctx context.Context, ref StreamRef, fragments []string) (io.ReadCloser, error) {
	resp, err := c.post(ctx, "getMediaForFragmentList", httpwire.GetMediaForFragmentListInput{StreamRef: httpwire.StreamRef(ref), Fragments: fragments})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// QueryInput is an Arrow range query.
type QueryInput struct {
	Stream string `json:"stream,omitempty"`
	// Streams reads several streams of one schema (samples and windows
	// shapes) instead of Stream; a first column, "stream", names each row's.
	Streams  []string  `json:"streams,omitempty"`
	Start    time.Time `json:"-"`
	End      time.Time `json:"-"`
	Basis    string    `json:"basis,omitempty"`    // "producer" (default) or "server"
	Channels []string  `json:"channels,omitempty"` // the fields of a scalar or IMU track (an alias of Fields)
	Fields   []string  `json:"fields,omitempty"`   // the kind's fields to return (channels, point fields …); empty: all
	Layout   string    `json:"layout,omitempty"`   // "rows" (default: a row per sample, point, detection) or "frames" (a row per frame, list columns)
	Track    uint64    `json:"track,omitempty"`
	// Shape "windows" returns a row per Window of a sampled signal (scalar,
	// IMU, audio): its start, its source fragments and a fixed-size list per
	// channel. Shape "aggregate" returns a row of statistics per Window:
	// its grid time, its sample count and, per channel, the Aggregates
	// (min, max, mean, rms; empty: all) as columns named channel_statistic.
	Shape string `json:"shape,omitempty"`
	// Aggregates are the statistics of the aggregate shape.
	Aggregates []string `json:"aggregates,omitempty"`
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
// Hz, or (Rate 0) on the sample times of input Reference. Interpolation is
// "none" (a sample exactly at the grid time), "previous" (the latest sample,
// held for one sample period) or "linear" (between two samples at most 1.5
// sample periods apart); anything else is null, never filled across a gap.
type QueryAlign struct {
	Rate          float64 `json:"rate,omitempty"`
	Reference     int     `json:"reference,omitempty"`
	Interpolation string  `json:"interpolation"`
	// Anchor is a time of the rate grid (zero: the query's start): a job
	// that resumes passes the same one to stay on the same grid.
	Anchor time.Time `json:"-"`
}

// MarshalJSON implements json.Marshaler (Anchor as ns, when set).
func (a QueryAlign) MarshalJSON() ([]byte, error) {
	type plain QueryAlign
	return json.Marshal(struct {
		plain
		Anchor *int64 `json:"anchor,omitempty"`
	}{plain(a), nsOrNil(a.Anchor)})
}

// QueryWindow is the length and hop of the windows shape, in samples.
// Windows start on a grid: Anchor + k·Hop sample periods.
type QueryWindow struct {
	Length int `json:"length"`
	Hop    int `json:"hop,omitempty"` // default: Length (back to back)
	// Anchor is the start of window 0 of the grid (zero: the query's
	// start); a job that resumes passes its first query's Anchor so that
	// its windows are the same ones.
	Anchor time.Time `json:"-"`
	// StartsBefore ends the windows returned at those starting before it
	// (zero: the query's end).
	StartsBefore time.Time `json:"-"`
}

// MarshalJSON implements json.Marshaler (the times as ns, when set).
func (w QueryWindow) MarshalJSON() ([]byte, error) {
	type plain QueryWindow
	return json.Marshal(struct {
		plain
		Anchor       *int64 `json:"anchor,omitempty"`
		StartsBefore *int64 `json:"starts_before,omitempty"`
	}{plain(w), nsOrNil(w.Anchor), nsOrNil(w.StartsBefore)})
}

func nsOrNil(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ns := t.UnixNano()
	return &ns
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
	resp, err := c.post(ctx, "v1/query", q) // see ClientOptions.Timeout
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
