package compat

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	awsv2 "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	awsv1 "github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/awserr"
	"github.com/aws/aws-sdk-go/service/kinesisvideoarchivedmedia"
)

// TestAccessDenied: a key narrowed by streams = and actions = lines, as the
// AWS SDKs see its refusals — the service's AccessDeniedException, HTTP
// 403, with a message, in the v2 and the v1 SDK — and its ListStreams,
// which shows its streams only.
func TestAccessDenied(t *testing.T) {
	t.Parallel()
	limited := keyPair{ID: "AKIA" + strings.ToUpper(randHex(t, 8)), Secret: randHex(t, 20)}
	s := startServerWith(t, fmt.Sprintf("\n[limited]\naws_access_key_id = %s\naws_secret_access_key = %s\nstreams = granted-*\nactions = DescribeStream, List*\n",
		limited.ID, limited.Secret))
	kv := s.client(t)
	createStream(t, kv, "granted-1", "video/h264")
	createStream(t, kv, "other-1", "video/h264")
	ctx := testContext(t, 60*time.Second)
	c := s.controlClient(t, limited, s.Region)

	if _, err := c.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: awsv2.String("granted-1")}); err != nil {
		t.Fatalf("DescribeStream of a granted stream: %v", err)
	}
	_, err := c.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: awsv2.String("other-1")})
	// The v2 SDK models AccessDeniedException for the signaling-channel
	// operations only: here it is a generic API error with that code.
	wantV2Code(t, err, "AccessDeniedException", http.StatusForbidden)
	_, err = c.DeleteStream(ctx, &kinesisvideo.DeleteStreamInput{StreamARN: awsv2.String(createStream(t, kv, "granted-2", "video/h264"))})
	wantV2Code(t, err, "AccessDeniedException", http.StatusForbidden)

	out, err := c.ListStreams(ctx, &kinesisvideo.ListStreamsInput{})
	if err != nil {
		t.Fatalf("ListStreams: %v", err)
	}
	var names []string
	for _, i := range out.StreamInfoList {
		names = append(names, awsv2.ToString(i.StreamName))
	}
	if !slices.Equal(names, []string{"granted-1", "granted-2"}) {
		t.Fatalf("ListStreams shows %v, want the granted streams only", names)
	}

	// The archived-media client of the v1 SDK.
	endpoint := dataEndpoint(t, kv, "other-1", kvtypes.APINameListFragments)
	am := kinesisvideoarchivedmedia.New(s.v1SessionWith(t, endpoint, limited))
	if _, err := am.ListFragmentsWithContext(ctx, &kinesisvideoarchivedmedia.ListFragmentsInput{StreamName: awsv1.String("granted-1")}); err != nil {
		t.Fatalf("v1 ListFragments of a granted stream: %v", err)
	}
	_, err = am.ListFragmentsWithContext(ctx, &kinesisvideoarchivedmedia.ListFragmentsInput{StreamName: awsv1.String("other-1")})
	rf, ok := err.(awserr.RequestFailure)
	if !ok || rf.Code() != "AccessDeniedException" || rf.StatusCode() != http.StatusForbidden || rf.Message() == "" {
		t.Fatalf("v1 ListFragments of another stream: %v, want AccessDeniedException 403 with a message", err)
	}
}
