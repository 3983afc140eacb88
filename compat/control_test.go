package compat

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	awsv2 "github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/aws/smithy-go"
)

// wantAPIError checks that err is the v2 SDK's typed error E (a pointer
// type such as *kvtypes.ResourceNotFoundException) with HTTP status status.
func wantAPIError[E error](t *testing.T, err error, status int) E {
	t.Helper()
	var e E
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want %T", err, err, e)
	}
	wantStatus(t, err, status)
	return e
}

// wantStatus checks the HTTP status the v2 SDK saw.
func wantStatus(t *testing.T, err error, status int) {
	t.Helper()
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error %v carries no HTTP response", err)
	}
	if got := re.HTTPStatusCode(); got != status {
		t.Errorf("HTTP status %d, want %d (%v)", got, status, err)
	}
}

// arnRE is the service's stream ARN form; the last part is the creation time
// in milliseconds.
var arnRE = regexp.MustCompile(`^arn:aws:kinesisvideo:([a-z0-9-]+):([0-9]{12}):stream/([a-zA-Z0-9_.-]+)/([0-9]+)$`)

// checkARN checks an ARN's form and that it names stream in region.
func checkARN(t *testing.T, arn, region, stream string) (creationMillis int64) {
	t.Helper()
	m := arnRE.FindStringSubmatch(arn)
	if m == nil {
		t.Fatalf("StreamARN %q is not of the form arn:aws:kinesisvideo:<region>:<account>:stream/<name>/<millis>", arn)
	}
	if m[1] != region || m[3] != stream {
		t.Errorf("StreamARN %q: region %q stream %q, want %q %q", arn, m[1], m[3], region, stream)
	}
	ms, _ := strconv.ParseInt(m[4], 10, 64)
	return ms
}

// controlTest is one stream through the control plane, each operation a
// subtest in turn.
type controlTest struct {
	s         *server
	kv        *kinesisvideo.Client
	ctx       context.Context
	name, arn string
	arnMillis int64              // the creation time in the ARN
	before    time.Time          // just before CreateStream
	info      kvtypes.StreamInfo // DescribeStream's right after it
}

// TestControlPlane takes one stream through every control-plane operation
// of the v2 SDK, and the errors the service answers.
func TestControlPlane(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	kv := s.client(t)
	ctx := testContext(t, 60*time.Second)

	const name = "compat-camera.1_a"
	before := time.Now()
	created, err := kv.CreateStream(ctx, &kinesisvideo.CreateStreamInput{
		StreamName:           awsv2.String(name),
		DeviceName:           awsv2.String("front-door"),
		MediaType:            awsv2.String("video/h264"),
		DataRetentionInHours: awsv2.Int32(24),
		Tags:                 map[string]string{"site": "lab", "owner": "compat"},
	})
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	arn := awsv2.ToString(created.StreamARN)
	c := &controlTest{s: s, kv: kv, ctx: ctx, name: name, arn: arn, arnMillis: checkARN(t, arn, s.Region, name),
		before: before, info: describe(t, kv, name)}
	t.Run("DescribeStream", c.describeStream)
	t.Run("UpdateStream", c.updateStream)
	t.Run("UpdateDataRetention", c.updateDataRetention)
	t.Run("Tags", c.tags)
	t.Run("GetDataEndpoint", c.getDataEndpoint)
	t.Run("CreateStream errors", c.createErrors)
	t.Run("unknown stream", c.unknownStream)
	t.Run("DeleteStream", c.deleteStream)
}

// describeStream checks every StreamInfo field of the new stream.
func (c *controlTest) describeStream(t *testing.T) {
	if got := awsv2.ToString(c.info.StreamName); got != c.name {
		t.Errorf("StreamName %q, want %q", got, c.name)
	}
	if got := awsv2.ToString(c.info.StreamARN); got != c.arn {
		t.Errorf("StreamARN %q, want CreateStream's %q", got, c.arn)
	}
	if got := awsv2.ToString(c.info.DeviceName); got != "front-door" {
		t.Errorf("DeviceName %q, want front-door", got)
	}
	if got := awsv2.ToString(c.info.MediaType); got != "video/h264" {
		t.Errorf("MediaType %q, want video/h264", got)
	}
	if got := awsv2.ToInt32(c.info.DataRetentionInHours); got != 24 {
		t.Errorf("DataRetentionInHours %d, want 24", got)
	}
	if c.info.Status != kvtypes.StatusActive {
		t.Errorf("Status %q, want ACTIVE", c.info.Status)
	}
	if awsv2.ToString(c.info.Version) == "" {
		t.Error("Version is empty")
	}
	// The SDK parses CreationTime from the service's epoch-seconds number:
	// a wrong encoding shows as 1970 or a parse error.
	ct := awsv2.ToTime(c.info.CreationTime)
	if ct.Before(c.before.Add(-2*time.Second)) || ct.After(time.Now().Add(2*time.Second)) {
		t.Errorf("CreationTime %v, want a time between %v and now", ct, c.before)
	}
	if ct.UnixMilli() != c.arnMillis {
		t.Errorf("CreationTime %d ms, the ARN says %d ms", ct.UnixMilli(), c.arnMillis)
	}
	byARN, err := c.kv.DescribeStream(c.ctx, &kinesisvideo.DescribeStreamInput{StreamARN: &c.arn})
	if err != nil {
		t.Fatalf("DescribeStream by ARN: %v", err)
	}
	if got := awsv2.ToString(byARN.StreamInfo.StreamName); got != c.name {
		t.Errorf("DescribeStream by ARN: StreamName %q, want %q", got, c.name)
	}
}

// updateStream changes the device name and media type, then tries a stale
// version.
func (c *controlTest) updateStream(t *testing.T) {
	v0 := awsv2.ToString(describe(t, c.kv, c.name).Version)
	_, err := c.kv.UpdateStream(c.ctx, &kinesisvideo.UpdateStreamInput{
		StreamName: awsv2.String(c.name), CurrentVersion: &v0,
		DeviceName: awsv2.String("back-door"), MediaType: awsv2.String("video/h265"),
	})
	if err != nil {
		t.Fatalf("UpdateStream: %v", err)
	}
	got := describe(t, c.kv, c.name)
	if awsv2.ToString(got.DeviceName) != "back-door" || awsv2.ToString(got.MediaType) != "video/h265" {
		t.Errorf("after UpdateStream: DeviceName %q MediaType %q, want back-door video/h265",
			awsv2.ToString(got.DeviceName), awsv2.ToString(got.MediaType))
	}
	if awsv2.ToString(got.Version) == v0 {
		t.Errorf("Version %q did not change on UpdateStream", v0)
	}
	// v0 is stale now.
	_, err = c.kv.UpdateStream(c.ctx, &kinesisvideo.UpdateStreamInput{StreamARN: &c.arn, CurrentVersion: &v0, DeviceName: awsv2.String("x")})
	wantAPIError[*kvtypes.VersionMismatchException](t, err, 400)
	if d := awsv2.ToString(describe(t, c.kv, c.name).DeviceName); d != "back-door" {
		t.Errorf("a refused UpdateStream changed DeviceName to %q", d)
	}
}

// updateDataRetention raises and lowers the retention, each change with
// the version before it and then again with that stale version.
func (c *controlTest) updateDataRetention(t *testing.T) {
	for _, tc := range []struct {
		op     kvtypes.UpdateDataRetentionOperation
		change int32
		want   int32
	}{
		{kvtypes.UpdateDataRetentionOperationIncreaseDataRetention, 48, 72},
		{kvtypes.UpdateDataRetentionOperationDecreaseDataRetention, 60, 12},
	} {
		v := awsv2.ToString(describe(t, c.kv, c.name).Version)
		_, err := c.kv.UpdateDataRetention(c.ctx, &kinesisvideo.UpdateDataRetentionInput{
			StreamName: awsv2.String(c.name), CurrentVersion: &v, Operation: tc.op, DataRetentionChangeInHours: &tc.change,
		})
		if err != nil {
			t.Fatalf("UpdateDataRetention %s %d: %v", tc.op, tc.change, err)
		}
		got := describe(t, c.kv, c.name)
		if r := awsv2.ToInt32(got.DataRetentionInHours); r != tc.want {
			t.Errorf("after %s %d: DataRetentionInHours %d, want %d", tc.op, tc.change, r, tc.want)
		}
		if awsv2.ToString(got.Version) == v {
			t.Errorf("Version %q did not change on UpdateDataRetention", v)
		}
		_, err = c.kv.UpdateDataRetention(c.ctx, &kinesisvideo.UpdateDataRetentionInput{
			StreamName: awsv2.String(c.name), CurrentVersion: &v, Operation: tc.op, DataRetentionChangeInHours: awsv2.Int32(1),
		})
		wantAPIError[*kvtypes.VersionMismatchException](t, err, 400)
	}
}

// tags adds, replaces, removes and lists tags, and goes past the limit.
func (c *controlTest) tags(t *testing.T) {
	listTags := func() map[string]string {
		t.Helper()
		out, err := c.kv.ListTagsForStream(c.ctx, &kinesisvideo.ListTagsForStreamInput{StreamName: awsv2.String(c.name)})
		if err != nil {
			t.Fatalf("ListTagsForStream: %v", err)
		}
		if out.NextToken != nil {
			t.Errorf("ListTagsForStream of %d tags gave NextToken %q", len(out.Tags), *out.NextToken)
		}
		return out.Tags
	}
	if got, want := listTags(), map[string]string{"site": "lab", "owner": "compat"}; !maps.Equal(got, want) {
		t.Errorf("tags from CreateStream: %v, want %v", got, want)
	}
	if _, err := c.kv.TagStream(c.ctx, &kinesisvideo.TagStreamInput{StreamARN: &c.arn, Tags: map[string]string{"site": "roof", "env": "test"}}); err != nil {
		t.Fatalf("TagStream: %v", err)
	}
	if got, want := listTags(), map[string]string{"site": "roof", "owner": "compat", "env": "test"}; !maps.Equal(got, want) {
		t.Errorf("after TagStream: %v, want %v", got, want)
	}
	if _, err := c.kv.UntagStream(c.ctx, &kinesisvideo.UntagStreamInput{StreamName: awsv2.String(c.name), TagKeyList: []string{"owner", "absent"}}); err != nil {
		t.Fatalf("UntagStream: %v", err)
	}
	if got, want := listTags(), map[string]string{"site": "roof", "env": "test"}; !maps.Equal(got, want) {
		t.Errorf("after UntagStream: %v, want %v", got, want)
	}
	many := map[string]string{}
	for i := range 51 {
		many[fmt.Sprintf("k%02d", i)] = "v"
	}
	_, err := c.kv.TagStream(c.ctx, &kinesisvideo.TagStreamInput{StreamName: awsv2.String(c.name), Tags: many})
	wantAPIError[*kvtypes.TagsPerResourceExceededLimitException](t, err, 400)
}

// getDataEndpoint asks for every data API the SDK knows.
func (c *controlTest) getDataEndpoint(t *testing.T) {
	for _, api := range kvtypes.APIName("").Values() {
		out, err := c.kv.GetDataEndpoint(c.ctx, &kinesisvideo.GetDataEndpointInput{StreamName: awsv2.String(c.name), APIName: api})
		if err != nil {
			t.Errorf("GetDataEndpoint %s: %v", api, err)
			continue
		}
		if got := awsv2.ToString(out.DataEndpoint); got != c.s.URL {
			t.Errorf("GetDataEndpoint %s: %q, want the server's own %q", api, got, c.s.URL)
		}
	}
	_, err := c.kv.GetDataEndpoint(c.ctx, &kinesisvideo.GetDataEndpointInput{StreamName: awsv2.String(c.name), APIName: "GET_EVERYTHING"})
	wantAPIError[*kvtypes.InvalidArgumentException](t, err, 400)
}

// createErrors creates a stream that exists, and streams with bad names.
func (c *controlTest) createErrors(t *testing.T) {
	_, err := c.kv.CreateStream(c.ctx, &kinesisvideo.CreateStreamInput{StreamName: awsv2.String(c.name), DataRetentionInHours: awsv2.Int32(1)})
	wantAPIError[*kvtypes.ResourceInUseException](t, err, 400)

	for _, bad := range []string{"has space", "slash/name", "colon:name", strings.Repeat("n", 257), ""} {
		_, err := c.kv.CreateStream(c.ctx, &kinesisvideo.CreateStreamInput{StreamName: awsv2.String(bad)})
		if err == nil {
			t.Errorf("CreateStream %q succeeded", bad)
			continue
		}
		wantAPIError[*kvtypes.InvalidArgumentException](t, err, 400)
	}
	_, err = c.kv.CreateStream(c.ctx, &kinesisvideo.CreateStreamInput{StreamName: awsv2.String(strings.Repeat("n", 256))})
	if err != nil {
		t.Errorf("CreateStream of a 256-character name: %v", err)
	}
}

// unknownStream calls every operation that takes a stream on one that does
// not exist.
func (c *controlTest) unknownStream(t *testing.T) {
	const missing = "no-such-stream"
	missingARN := "arn:aws:kinesisvideo:" + c.s.Region + ":000000000000:stream/" + missing + "/1700000000000"
	calls := []struct {
		op   string
		call func() error
	}{
		{"DescribeStream", func() error {
			_, err := c.kv.DescribeStream(c.ctx, &kinesisvideo.DescribeStreamInput{StreamName: awsv2.String(missing)})
			return err
		}},
		{"DescribeStream by ARN", func() error {
			_, err := c.kv.DescribeStream(c.ctx, &kinesisvideo.DescribeStreamInput{StreamARN: &missingARN})
			return err
		}},
		{"UpdateStream", func() error {
			_, err := c.kv.UpdateStream(c.ctx, &kinesisvideo.UpdateStreamInput{StreamName: awsv2.String(missing), CurrentVersion: awsv2.String("1"), DeviceName: awsv2.String("d")})
			return err
		}},
		{"UpdateDataRetention", func() error {
			_, err := c.kv.UpdateDataRetention(c.ctx, &kinesisvideo.UpdateDataRetentionInput{StreamName: awsv2.String(missing), CurrentVersion: awsv2.String("1"),
				Operation: kvtypes.UpdateDataRetentionOperationIncreaseDataRetention, DataRetentionChangeInHours: awsv2.Int32(1)})
			return err
		}},
		{"DeleteStream", func() error {
			_, err := c.kv.DeleteStream(c.ctx, &kinesisvideo.DeleteStreamInput{StreamARN: &missingARN})
			return err
		}},
		{"TagStream", func() error {
			_, err := c.kv.TagStream(c.ctx, &kinesisvideo.TagStreamInput{StreamName: awsv2.String(missing), Tags: map[string]string{"a": "b"}})
			return err
		}},
		{"UntagStream", func() error {
			_, err := c.kv.UntagStream(c.ctx, &kinesisvideo.UntagStreamInput{StreamName: awsv2.String(missing), TagKeyList: []string{"a"}})
			return err
		}},
		{"ListTagsForStream", func() error {
			_, err := c.kv.ListTagsForStream(c.ctx, &kinesisvideo.ListTagsForStreamInput{StreamName: awsv2.String(missing)})
			return err
		}},
		{"GetDataEndpoint", func() error {
			_, err := c.kv.GetDataEndpoint(c.ctx, &kinesisvideo.GetDataEndpointInput{StreamName: awsv2.String(missing), APIName: kvtypes.APINameGetMedia})
			return err
		}},
	}
	for _, c := range calls {
		t.Run(c.op, func(t *testing.T) {
			e := wantAPIError[*kvtypes.ResourceNotFoundException](t, c.call(), 404)
			if e.ErrorMessage() == "" {
				t.Error("the error has no message")
			}
		})
	}
}

// deleteStream deletes the stream (a stale version first) and makes it anew.
func (c *controlTest) deleteStream(t *testing.T) {
	v := awsv2.ToString(describe(t, c.kv, c.name).Version)
	_, err := c.kv.DeleteStream(c.ctx, &kinesisvideo.DeleteStreamInput{StreamARN: &c.arn, CurrentVersion: awsv2.String("stale-" + v)})
	wantAPIError[*kvtypes.VersionMismatchException](t, err, 400)
	if _, err := c.kv.DeleteStream(c.ctx, &kinesisvideo.DeleteStreamInput{StreamARN: &c.arn, CurrentVersion: &v}); err != nil {
		t.Fatalf("DeleteStream: %v", err)
	}
	// The service may show DELETING for a while; then the stream is gone.
	waitFor(t, 10*time.Second, func() error {
		out, err := c.kv.DescribeStream(c.ctx, &kinesisvideo.DescribeStreamInput{StreamName: awsv2.String(c.name)})
		if err == nil {
			return fmt.Errorf("stream still there, status %s", out.StreamInfo.Status)
		}
		var nf *kvtypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return nil
		}
		t.Fatalf("DescribeStream after DeleteStream: %v", err)
		return nil
	})
	// The name is free again.
	createStream(t, c.kv, c.name, "video/h264")
}

// TestListStreams pages through streams with MaxResults and a
// BEGINS_WITH condition.
func TestListStreams(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	kv := s.client(t)
	ctx := testContext(t, 60*time.Second)

	var want []string
	for i := range 7 {
		n := fmt.Sprintf("page-%02d", i)
		want = append(want, n)
		createStream(t, kv, n, "application/octet-stream")
	}
	for _, n := range []string{"other-1", "pag", "xpage-1"} {
		createStream(t, kv, n, "application/octet-stream")
	}

	list := func(t *testing.T, max int32, prefix string) (names []string, pages int) {
		t.Helper()
		in := &kinesisvideo.ListStreamsInput{MaxResults: &max}
		if prefix != "" {
			in.StreamNameCondition = &kvtypes.StreamNameCondition{ComparisonOperator: kvtypes.ComparisonOperatorBeginsWith, ComparisonValue: &prefix}
		}
		p := kinesisvideo.NewListStreamsPaginator(kv, in)
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("ListStreams page %d: %v", pages+1, err)
			}
			pages++
			if len(out.StreamInfoList) > int(max) {
				t.Errorf("page %d has %d streams, MaxResults %d", pages, len(out.StreamInfoList), max)
			}
			for _, si := range out.StreamInfoList {
				n := awsv2.ToString(si.StreamName)
				names = append(names, n)
				checkARN(t, awsv2.ToString(si.StreamARN), s.Region, n)
				if si.CreationTime == nil || time.Since(*si.CreationTime) > time.Minute {
					t.Errorf("stream %s: CreationTime %v, want a time close to now", n, si.CreationTime)
				}
				if si.Status != kvtypes.StatusActive {
					t.Errorf("stream %s: Status %q, want ACTIVE", n, si.Status)
				}
			}
			if pages > 20 {
				t.Fatal("ListStreams does not stop paging")
			}
		}
		return names, pages
	}

	for _, tc := range []struct {
		name      string
		max       int32
		prefix    string
		want      []string
		wantPages int
	}{
		{"prefix in pages of 3", 3, "page-", want, 3},
		{"prefix in pages of 7", 7, "page-", want, 1},
		{"prefix one a page", 1, "page-0", want, 7},
		{"exact name as prefix", 10, "pag", append([]string{"pag"}, want...), 1},
		{"no match", 5, "nothing", nil, 1},
		{"all in pages of 4", 4, "", append(append([]string{"other-1", "pag"}, want...), "xpage-1"), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, pages := list(t, tc.max, tc.prefix)
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("streams %v, want %v", got, tc.want)
			}
			// The last page may come back empty after a full one, as in the service.
			if pages != tc.wantPages && pages != tc.wantPages+1 {
				t.Errorf("%d pages, want %d", pages, tc.wantPages)
			}
		})
	}

	_, err := kv.ListStreams(ctx, &kinesisvideo.ListStreamsInput{NextToken: awsv2.String("not-a-token")})
	wantAPIError[*kvtypes.InvalidArgumentException](t, err, 400)
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() != "InvalidArgumentException" {
		t.Errorf("ErrorCode %q, want InvalidArgumentException", apiErr.ErrorCode())
	}
}

// describe is DescribeStream's StreamInfo.
func describe(t *testing.T, kv *kinesisvideo.Client, name string) kvtypes.StreamInfo {
	t.Helper()
	out, err := kv.DescribeStream(context.Background(), &kinesisvideo.DescribeStreamInput{StreamName: &name})
	if err != nil {
		t.Fatalf("DescribeStream %s: %v", name, err)
	}
	return *out.StreamInfo
}

// waitFor polls f until it returns nil, failing the test after d.
func waitFor(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
