package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	awsv2 "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	awsv1 "github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/awserr"
	credsv1 "github.com/aws/aws-sdk-go/aws/credentials"
	v4 "github.com/aws/aws-sdk-go/aws/signer/v4"
	"github.com/aws/aws-sdk-go/service/kinesisvideoarchivedmedia"
	"github.com/aws/smithy-go"
)

// TestAuth checks SigV4 verification as the SDKs and their signers see it:
// the error names and statuses of the service for a wrong secret, an
// unknown key, another region, a skewed clock, no signature, and expired or
// altered presigned URLs.
func TestAuth(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	kv := s.client(t)
	const stream = "auth-stream"
	createStream(t, kv, stream, "video/h264")
	ctx := testContext(t, 60*time.Second)
	a := &authTest{s: s, kv: kv, ctx: ctx, stream: stream,
		unknown:      keyPair{ID: "AKIA" + strings.ToUpper(randHex(t, 8)), Secret: s.Key.Secret},
		wrongSecret:  keyPair{ID: s.Key.ID, Secret: s.Other.Secret},
		describeBody: []byte(`{"StreamName":"` + stream + `"}`),
	}

	t.Run("SDK v2", a.sdkV2)
	t.Run("SDK v1", a.sdkV1)
	t.Run("unsigned", a.unsigned)
	t.Run("clock skew", a.clockSkew)
	t.Run("presigned", a.presigned)

	// The server logs the key id of a refusal, never a secret.
	for _, secret := range []string{s.Key.Secret, s.Other.Secret} {
		if strings.Contains(s.logs.String(), secret) {
			t.Error("the server log holds a secret access key")
		}
	}
}

// sdkV2 calls with the v2 SDK signing with a key of the other profile, a
// wrong secret, an unknown key and another region.
func (a *authTest) sdkV2(t *testing.T) {
	for _, tc := range []struct {
		name   string
		key    keyPair
		region string
		code   string // "" for success
	}{
		{"key of the other profile", a.s.Other, a.s.Region, ""},
		{"wrong secret", a.wrongSecret, a.s.Region, "InvalidSignatureException"},
		{"unknown access key", a.unknown, a.s.Region, "UnrecognizedClientException"},
		{"signed for another region", a.s.Key, "us-west-2", "InvalidSignatureException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := a.s.controlClient(t, tc.key, tc.region)
			_, err := c.DescribeStream(a.ctx, &kinesisvideo.DescribeStreamInput{StreamName: awsv2.String(a.stream)})
			if tc.code == "" {
				if err != nil {
					t.Fatalf("DescribeStream: %v", err)
				}
				return
			}
			wantV2Code(t, err, tc.code, http.StatusForbidden)
			// A refused call changes nothing.
			name := "refused-" + strings.ReplaceAll(tc.name, " ", "-")
			_, err = c.CreateStream(a.ctx, &kinesisvideo.CreateStreamInput{StreamName: &name})
			wantV2Code(t, err, tc.code, http.StatusForbidden)
			_, err = a.kv.DescribeStream(a.ctx, &kinesisvideo.DescribeStreamInput{StreamName: &name})
			wantAPIError[*kvtypes.ResourceNotFoundException](t, err, 404)
		})
	}
}

// sdkV1 calls ListFragments with the v1 SDK and good and bad keys.
func (a *authTest) sdkV1(t *testing.T) {
	endpoint := dataEndpoint(t, a.kv, a.stream, kvtypes.APINameListFragments)
	for _, tc := range []struct {
		name string
		key  keyPair
		code string
	}{
		{"right key", a.s.Key, ""},
		{"wrong secret", a.wrongSecret, "InvalidSignatureException"},
		{"unknown access key", a.unknown, "UnrecognizedClientException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			am := kinesisvideoarchivedmedia.New(a.s.v1SessionWith(t, endpoint, tc.key))
			_, err := am.ListFragmentsWithContext(a.ctx, &kinesisvideoarchivedmedia.ListFragmentsInput{StreamName: awsv1.String(a.stream)})
			if tc.code == "" {
				if err != nil {
					t.Fatalf("ListFragments: %v", err)
				}
				return
			}
			var rf awserr.RequestFailure
			if !errors.As(err, &rf) {
				t.Fatalf("error %v (%T), want an awserr.RequestFailure", err, err)
			}
			if rf.Code() != tc.code || rf.StatusCode() != http.StatusForbidden {
				t.Errorf("Code %q HTTP %d, want %q 403 (%v)", rf.Code(), rf.StatusCode(), tc.code, err)
			}
		})
	}
}

// unsigned posts to operations without a signature.
func (a *authTest) unsigned(t *testing.T) {
	for _, path := range []string{"/describeStream", "/listStreams", "/putMedia", "/getMedia", "/listFragments"} {
		t.Run(path, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(a.ctx, http.MethodPost, a.s.URL+path, bytes.NewReader(a.describeBody))
			req.Header.Set("x-amzn-stream-name", a.stream)
			wantRefusal(t, req, "MissingAuthenticationTokenException")
		})
	}
}

// clockSkew signs with the v1 signer at times off the server's clock.
func (a *authTest) clockSkew(t *testing.T) {
	for _, tc := range []struct {
		name string
		skew time.Duration
		code string
	}{
		{"2 minutes slow", -2 * time.Minute, ""},
		{"2 minutes fast", 2 * time.Minute, ""},
		{"10 minutes slow", -10 * time.Minute, "InvalidSignatureException"},
		{"10 minutes fast", 10 * time.Minute, "InvalidSignatureException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(a.ctx, http.MethodPost, a.s.URL+"/describeStream", nil)
			req.Header.Set("Content-Type", "application/json")
			signer := v4.NewSigner(credsv1.NewStaticCredentials(a.s.Key.ID, a.s.Key.Secret, ""))
			if _, err := signer.Sign(req, bytes.NewReader(a.describeBody), "kinesisvideo", a.s.Region, time.Now().Add(tc.skew)); err != nil {
				t.Fatal(err)
			}
			if tc.code != "" {
				wantRefusal(t, req, tc.code)
				return
			}
			wantOK(t, req)
		})
	}
}

// presigned uses URLs presigned with the v1 signer, good, expired and
// altered.
func (a *authTest) presigned(t *testing.T) {
	now := time.Now()
	listURL := a.s.presign(t, a.s.Key, a.s.URL, "/listStreams", now, time.Minute)
	unsignedURL, unsignedHeader := a.s.presignWith(t, a.s.Key, a.s.URL, "/listStreams", now, time.Minute, true)
	for _, tc := range []struct {
		name   string
		url    string
		header http.Header
		path   string // posted to, when not the URL's
		body   []byte
		code   string // "" for success
	}{
		{name: "valid, empty body", url: listURL},
		{name: "valid, UNSIGNED-PAYLOAD", url: unsignedURL, header: unsignedHeader, body: a.describeBody},
		// A presigned URL does not cover the body, as with S3.
		{name: "empty body's hash, with a body", url: listURL, body: a.describeBody},
		{name: "expired", url: a.s.presign(t, a.s.Key, a.s.URL, "/listStreams", now.Add(-10*time.Minute), time.Minute), code: "InvalidSignatureException"},
		{name: "expired PutMedia", url: a.s.presign(t, a.s.Key, a.s.URL, "/putMedia", now.Add(-10*time.Minute), time.Minute), code: "InvalidSignatureException"},
		{name: "wrong secret", url: a.s.presign(t, a.wrongSecret, a.s.URL, "/listStreams", now, time.Minute), code: "InvalidSignatureException"},
		{name: "unknown access key", url: a.s.presign(t, a.unknown, a.s.URL, "/listStreams", now, time.Minute), code: "UnrecognizedClientException"},
		{name: "another operation's URL", url: listURL, path: "/deleteStream", body: []byte(`{"StreamName":"` + a.stream + `"}`), code: "InvalidSignatureException"},
		{name: "altered signature", url: alterSignature(listURL), code: "InvalidSignatureException"},
		{name: "UNSIGNED-PAYLOAD without its signed header", url: unsignedURL, code: "InvalidSignatureException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.url
			if tc.path != "" {
				u = strings.Replace(u, "/listStreams?", tc.path+"?", 1)
			}
			req, _ := http.NewRequestWithContext(a.ctx, http.MethodPost, u, bytes.NewReader(tc.body))
			for k, v := range tc.header {
				req.Header[k] = v
			}
			req.Header.Set("x-amzn-stream-name", a.stream)
			if tc.code != "" {
				wantRefusal(t, req, tc.code)
				return
			}
			body := wantOK(t, req)
			var out struct{ StreamInfoList []struct{ StreamName string } }
			if err := json.Unmarshal(body, &out); err != nil || len(out.StreamInfoList) == 0 || out.StreamInfoList[0].StreamName != a.stream {
				t.Errorf("ListStreams through a presigned URL: %s (%v)", body, err)
			}
		})
	}
	// The refused DeleteStream left the stream.
	describe(t, a.kv, a.stream)
}

// authTest is the server and the keys TestAuth's subtests sign with.
type authTest struct {
	s            *server
	kv           *kinesisvideo.Client
	ctx          context.Context
	stream       string
	unknown      keyPair // an access key the server does not know
	wrongSecret  keyPair // the server's key id with another secret
	describeBody []byte  // a DescribeStream body for stream
}

// TestCredentialsFileMode checks serve refuses a credentials file that its
// group or others may read, exiting 2 before it serves.
func TestCredentialsFileMode(t *testing.T) {
	t.Parallel()
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			creds := filepath.Join(dir, "credentials")
			if err := os.WriteFile(creds, []byte("[a]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = secret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(creds, mode); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(testContext(t, 20*time.Second), sensoriumBin, "serve", "--data", filepath.Join(dir, "data"),
				"--http", "127.0.0.1:0", "--nats", "127.0.0.1:0", "--flight", "", "--credentials", creds)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("serve with a credentials file of mode %v: %v, want exit status 2\n%s", mode, err, out)
			}
			if !strings.Contains(string(out), "credentials") {
				t.Errorf("the refusal does not name the credentials file:\n%s", out)
			}
		})
	}
}

// wantV2Code checks a v2 SDK error's ErrorCode and HTTP status.
func wantV2Code(t *testing.T, err error, code string, status int) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T), want an API error %s", err, err, code)
	}
	if ae.ErrorCode() != code {
		t.Errorf("ErrorCode %q, want %q (%v)", ae.ErrorCode(), code, err)
	}
	if ae.ErrorMessage() == "" {
		t.Error("the error has no message")
	}
	wantStatus(t, err, status)
}

// wantRefusal sends req and checks the service's refusal: 403, the error
// name in x-amzn-ErrorType, and a JSON body with a message.
func wantRefusal(t *testing.T, req *http.Request, code string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("HTTP %d, want 403 (%s)", resp.StatusCode, body)
	}
	if got := resp.Header.Get("x-amzn-ErrorType"); got != code && !strings.HasPrefix(got, code+":") {
		t.Errorf("x-amzn-ErrorType %q, want %q (%s)", got, code, body)
	}
	var e struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Message == "" {
		t.Errorf("body %q is not JSON with a message", body)
	}
}

// wantOK sends req and wants 200; it returns the body.
func wantOK(t *testing.T, req *http.Request) []byte {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d %s: %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), body)
	}
	return body
}

// alterSignature changes the last hex digit of a presigned URL's signature.
func alterSignature(u string) string {
	i := strings.Index(u, "X-Amz-Signature=") + len("X-Amz-Signature=")
	j := i + 63
	c := byte('0')
	if u[j] == '0' {
		c = '1'
	}
	return u[:j] + string(c) + u[j+1:]
}
