package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/sdk"
)

const (
	authKeyID  = "AKIDSENSORIUMCAM01"
	authSecret = "cam01-secret/K7MDENG+bPxRfiCYEXAMPLE"
)

// lockedBuffer collects a server's log lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startAuthServer runs a server that requires SigV4 with one access key, and
// returns it with its log.
func startAuthServer(t *testing.T) (*Server, *lockedBuffer) {
	t.Helper()
	dir := t.TempDir()
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("[camera-1]\naws_access_key_id = "+authKeyID+"\naws_secret_access_key = "+authSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	srv, err := Start(context.Background(), Config{DataDir: dir, NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		Credentials: creds, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv, logs
}

// With --credentials every operation needs a good signature: the SDK with
// the key works, without it or with a wrong secret it gets the seed
// service's 403s, and the log names the refused key but never a secret.
func TestHTTPAPIRequiresSigV4(t *testing.T) {
	srv, logs := startAuthServer(t)
	ctx := context.Background()
	signed := sdk.NewClientWithOptions(srv.HTTPURL(), sdk.ClientOptions{Credentials: &sdk.Credentials{AccessKeyID: authKeyID, SecretAccessKey: authSecret}})
	if _, err := signed.CreateStream(ctx, sdk.CreateStreamInput{StreamName: "cam", DataRetentionInHours: 1}); err != nil {
		t.Fatalf("signed CreateStream: %v", err)
	}
	if _, err := signed.DescribeStream(ctx, sdk.ByName("cam")); err != nil {
		t.Fatalf("signed DescribeStream: %v", err)
	}

	cases := []struct {
		name  string
		creds *sdk.Credentials
		want  string
	}{
		{"unsigned", nil, httpwire.MissingAuthenticationToken},
		{"wrong secret", &sdk.Credentials{AccessKeyID: authKeyID, SecretAccessKey: "not-the-secret-0123456789"}, httpwire.InvalidSignature},
		{"unknown key", &sdk.Credentials{AccessKeyID: "AKIDSOMEONEELSE001", SecretAccessKey: authSecret}, httpwire.UnrecognizedClient},
		{"other region", &sdk.Credentials{AccessKeyID: authKeyID, SecretAccessKey: authSecret, Region: "eu-west-1"}, httpwire.InvalidSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := sdk.NewClientWithOptions(srv.HTTPURL(), sdk.ClientOptions{Credentials: c.creds})
			_, err := cl.DescribeStream(ctx, sdk.ByName("cam"))
			var e *sdk.APIError
			if !errors.As(err, &e) || e.Name != c.want {
				t.Fatalf("error %v, want %s", err, c.want)
			}
			// The same through plain HTTP: status and header as the SDKs parse them.
			req, _ := http.NewRequest(http.MethodPost, srv.HTTPURL()+"/listStreams", strings.NewReader("{}"))
			if c.creds != nil {
				_ = awsauth.Sign(req, awsauth.Key{AccessKeyID: c.creds.AccessKeyID, SecretAccessKey: c.creds.SecretAccessKey}, orDefault(c.creds.Region), []byte("{}"), time.Now())
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("x-amzn-ErrorType") != c.want || !strings.Contains(string(body), `"message"`) {
				t.Fatalf("%d %s %s, want 403 %s with a message", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), body, c.want)
			}
		})
	}

	// The health check and the metrics stay open for load balancers and Prometheus.
	for _, path := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get(srv.HTTPURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
	}

	log := logs.String()
	if !strings.Contains(log, "requires AWS Signature Version 4") {
		t.Fatalf("start-up does not say the API authenticates:\n%s", log)
	}
	if !strings.Contains(log, "request refused") || !strings.Contains(log, "AKIDSOMEONEELSE001") {
		t.Fatalf("refusals are not logged with their key:\n%s", log)
	}
	if strings.Contains(log, authSecret) || strings.Contains(log, "not-the-secret") || strings.Contains(log, "Signature=") {
		t.Fatalf("the log holds a secret or a signature:\n%s", log)
	}
}

func orDefault(region string) string {
	if region == "" {
		return "us-east-1"
	}
	return region
}

// A producer that cannot sign (ffmpeg, a camera) gets a presigned PutMedia
// URL; its fragments are PERSISTED. A signed PutMedia must say its payload
// hash up front; one that declares a hash and sends something else ends in
// an ERROR once its body ends.
func TestPutMediaSigned(t *testing.T) {
	srv, _ := startAuthServer(t)
	key := awsauth.Key{AccessKeyID: authKeyID, SecretAccessKey: authSecret}
	signed := sdk.NewClientWithOptions(srv.HTTPURL(), sdk.ClientOptions{Credentials: &sdk.Credentials{AccessKeyID: authKeyID, SecretAccessKey: authSecret}})
	if _, err := signed.CreateStream(context.Background(), sdk.CreateStreamInput{StreamName: "cam", DataRetentionInHours: 1}); err != nil {
		t.Fatal(err)
	}
	now := uint64(time.Now().Add(-time.Minute).UnixMilli())
	doc := opaqueMKV
	send := func(req *http.Request) (int, string, []wire.AckEvent) {
		req.Header.Set("x-amzn-stream-name", "cam")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var evs []wire.AckEvent
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var ev wire.AckEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.EventType != "" {
				evs = append(evs, ev)
			}
		}
		return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), evs
	}
	persisted := func(evs []wire.AckEvent) int {
		n := 0
		for _, ev := range evs {
			if ev.EventType == wire.EventPersisted {
				n++
			}
		}
		return n
	}

	u, _ := http.NewRequest(http.MethodPost, srv.HTTPURL()+"/putMedia", nil)
	if err := awsauth.Presign(u, key, "us-east-1", time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, u.URL.String(), bytes.NewReader(doc(now, now+1000)))
	if status, _, evs := send(req); status != http.StatusOK || persisted(evs) != 2 {
		t.Fatalf("presigned PutMedia: %d, %+v", status, evs)
	}

	body := doc(now + 2000)
	req, _ = http.NewRequest(http.MethodPost, srv.HTTPURL()+"/putMedia", bytes.NewReader(body))
	_ = awsauth.SignUnsignedPayload(req, key, "us-east-1", time.Now())
	if status, _, evs := send(req); status != http.StatusOK || persisted(evs) != 1 {
		t.Fatalf("PutMedia signed with UNSIGNED-PAYLOAD: %d, %+v", status, evs)
	}

	req, _ = http.NewRequest(http.MethodPost, srv.HTTPURL()+"/putMedia", bytes.NewReader(doc(now+3000)))
	_ = awsauth.SignUnsignedPayload(req, key, "us-east-1", time.Now())
	req.Header.Del("X-Amz-Content-Sha256")
	if status, typ, _ := send(req); status != http.StatusForbidden || typ != httpwire.InvalidSignature {
		t.Fatalf("PutMedia signed without a payload hash: %d %s, want 403 InvalidSignatureException", status, typ)
	}

	req, _ = http.NewRequest(http.MethodPost, srv.HTTPURL()+"/putMedia", bytes.NewReader(doc(now+4000)))
	_ = awsauth.Sign(req, key, "us-east-1", []byte("what was signed"), time.Now())
	status, _, evs := send(req)
	if status != http.StatusOK || len(evs) == 0 || evs[len(evs)-1].EventType != wire.EventError || evs[len(evs)-1].ErrorID != wire.ErrStreamRead {
		t.Fatalf("PutMedia whose body does not match its signed hash: %d, %+v, want STREAM_READ_ERROR at the end", status, evs)
	}

	// Everything accepted is there, and nothing from the refused sessions.
	frags, _, err := signed.ListFragments(context.Background(), sdk.ListFragmentsInput{Stream: sdk.ByName("cam")})
	if err != nil {
		t.Fatal(err)
	}
	if len(frags) < 3 {
		t.Fatalf("%d fragments listed, want the 3 PERSISTED", len(frags))
	}
}

func TestServeRefusesReadableCredentials(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("[a]\naws_access_key_id = "+authKeyID+"\naws_secret_access_key = "+authSecret+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "data")
	_, err := Start(context.Background(), Config{DataDir: dir, NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Credentials: creds, Logger: testLogger(t)})
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("error %v, want a ConfigError asking for chmod 600", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the data folder was created before the credentials were checked")
	}
}
