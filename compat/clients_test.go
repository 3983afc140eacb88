package compat

import (
	"context"
	"net/http"
	"testing"

	awsv2 "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	credsv2 "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	awsv1 "github.com/aws/aws-sdk-go/aws"
	credsv1 "github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/session"
	"github.com/aws/aws-sdk-go/service/kinesisvideoarchivedmedia"
	"github.com/aws/aws-sdk-go/service/kinesisvideomedia"
)

// fileKey reads the "compat" profile of the server's credentials file with
// the v2 SDK's own shared-credentials parser (never the environment), so the
// file the server was given is one the SDK reads too.
func (s *server) fileKey(t *testing.T) keyPair {
	t.Helper()
	sc, err := config.LoadSharedConfigProfile(context.Background(), "compat", func(o *config.LoadSharedConfigOptions) {
		o.CredentialsFiles = []string{s.CredentialsFile}
		o.ConfigFiles = []string{}
	})
	if err != nil {
		t.Fatalf("the v2 SDK does not read %s: %v", s.CredentialsFile, err)
	}
	k := keyPair{ID: sc.Credentials.AccessKeyID, Secret: sc.Credentials.SecretAccessKey}
	if k != s.Key {
		t.Fatalf("the v2 SDK read key %s from the credentials file, want %s", k.ID, s.Key.ID)
	}
	return k
}

// controlClient is a v2 kinesisvideo client for the server, signing with key
// for region. It makes one attempt per call: the tests want the server's
// first answer.
func (s *server) controlClient(t *testing.T, key keyPair, region string) *kinesisvideo.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(region),
		config.WithCredentialsProvider(credsv2.NewStaticCredentialsProvider(key.ID, key.Secret, "")),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
		config.WithRetryMaxAttempts(1),
	)
	if err != nil {
		t.Fatal(err)
	}
	return kinesisvideo.NewFromConfig(cfg, func(o *kinesisvideo.Options) {
		o.BaseEndpoint = awsv2.String(s.URL)
	})
}

// client is the v2 control-plane client with the server's own key.
func (s *server) client(t *testing.T) *kinesisvideo.Client {
	return s.controlClient(t, s.fileKey(t), s.Region)
}

// v1Session is a v1 SDK session for endpoint (a data endpoint from
// GetDataEndpoint), signing with the server's key; no retries.
func (s *server) v1Session(t *testing.T, endpoint string) *session.Session {
	return s.v1SessionWith(t, endpoint, s.Key)
}

// v1SessionWith is a v1 SDK session signing with key.
func (s *server) v1SessionWith(t *testing.T, endpoint string, key keyPair) *session.Session {
	t.Helper()
	sess, err := session.NewSessionWithOptions(session.Options{
		Config: awsv1.Config{
			Region:      awsv1.String(s.Region),
			Endpoint:    awsv1.String(endpoint),
			Credentials: credsv1.NewStaticCredentials(key.ID, key.Secret, ""),
			MaxRetries:  awsv1.Int(0),
			// A client of its own: with $AWS_CA_BUNDLE set the v1 SDK installs
			// its CA pool in the session's client, which is otherwise the
			// shared http.DefaultClient (a data race between sessions).
			HTTPClient: &http.Client{},
		},
		SharedConfigState: session.SharedConfigDisable,
		SharedConfigFiles: []string{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return sess
}

// dataEndpoint asks the control plane for api's endpoint on stream.
func dataEndpoint(t *testing.T, kv *kinesisvideo.Client, stream string, api kvtypes.APIName) string {
	t.Helper()
	out, err := kv.GetDataEndpoint(context.Background(), &kinesisvideo.GetDataEndpointInput{StreamName: &stream, APIName: api})
	if err != nil {
		t.Fatalf("GetDataEndpoint %s %s: %v", stream, api, err)
	}
	return awsv2.ToString(out.DataEndpoint)
}

// archivedMedia is a v1 archived-media client at stream's LIST_FRAGMENTS endpoint.
func (s *server) archivedMedia(t *testing.T, kv *kinesisvideo.Client, stream string) *kinesisvideoarchivedmedia.KinesisVideoArchivedMedia {
	return kinesisvideoarchivedmedia.New(s.v1Session(t, dataEndpoint(t, kv, stream, kvtypes.APINameListFragments)))
}

// media is a v1 media client at stream's GET_MEDIA endpoint.
func (s *server) media(t *testing.T, kv *kinesisvideo.Client, stream string) *kinesisvideomedia.KinesisVideoMedia {
	return kinesisvideomedia.New(s.v1Session(t, dataEndpoint(t, kv, stream, kvtypes.APINameGetMedia)))
}

// createStream makes a stream keeping data for a day.
func createStream(t *testing.T, kv *kinesisvideo.Client, name, mediaType string) string {
	t.Helper()
	out, err := kv.CreateStream(context.Background(), &kinesisvideo.CreateStreamInput{
		StreamName: &name, MediaType: &mediaType, DataRetentionInHours: awsv2.Int32(24),
	})
	if err != nil {
		t.Fatalf("CreateStream %s: %v", name, err)
	}
	return awsv2.ToString(out.StreamARN)
}
