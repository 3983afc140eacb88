package compat

import (
	"errors"
	"testing"
	"time"

	awsv2 "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	awsv1 "github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/awserr"
	"github.com/aws/aws-sdk-go/service/kinesisvideomedia"
)

// TestRateLimits: past a rate limit the AWS SDKs see the service's
// ClientLimitExceededException (HTTP 400) as their typed error, and do not
// retry it away: the v2 SDK on DescribeStream (the control plane's rate, per
// server) and the v1 SDK on GetMedia (its rate per stream). A refused call
// takes nothing from the bucket, so a client that backs off is served again.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	// Buckets of ten seconds' worth: 10 control-plane calls, 2 GetMedia.
	s := startServerWith(t, "", "--control-plane-per-second", "1", "--getmedia-connections-per-second", "0.2")
	kv := s.client(t)
	ctx := testContext(t, 30*time.Second)
	const stream = "limited"
	createStream(t, kv, stream, "video/h264") // 1 control-plane call
	m := s.media(t, kv, stream)               // GetDataEndpoint: 2

	t.Run("GetMedia, v1 SDK", func(t *testing.T) {
		getMedia := func() error {
			out, err := m.GetMediaWithContext(ctx, &kinesisvideomedia.GetMediaInput{StreamName: awsv1.String(stream),
				StartSelector: &kinesisvideomedia.StartSelector{StartSelectorType: awsv1.String("NOW")}})
			if err == nil {
				out.Payload.Close()
			}
			return err
		}
		for i := range 2 {
			if err := getMedia(); err != nil {
				t.Fatalf("GetMedia %d of the burst: %v", i, err)
			}
		}
		err := getMedia()
		var ae awserr.RequestFailure
		if !errors.As(err, &ae) || ae.Code() != "ClientLimitExceededException" || ae.StatusCode() != 400 || ae.Message() == "" {
			t.Fatalf("a third GetMedia: %v, want ClientLimitExceededException 400 with a message", err)
		}
	})

	t.Run("DescribeStream, v2 SDK", func(t *testing.T) {
		describe := func() error {
			_, err := kv.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: awsv2.String(stream)})
			return err
		}
		var err error
		calls := 0
		for ; calls < 12 && err == nil; calls++ {
			err = describe()
		}
		if err == nil {
			t.Fatalf("%d DescribeStream calls passed at 1 per second (10 at once)", calls)
		}
		e := wantAPIError[*kvtypes.ClientLimitExceededException](t, err, 400)
		if e.ErrorMessage() == "" {
			t.Error("ClientLimitExceededException without a message")
		}
		// A token comes back every second.
		waitFor(t, 5*time.Second, describe)
	})
}
