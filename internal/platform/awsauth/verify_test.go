package awsauth

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
)

// The AWS Signature Version 4 test suite's get-vanilla case: an answer
// computed by AWS, independent of the signer this package uses.
func TestVerifyAWSTestSuiteGetVanilla(t *testing.T) {
	v := &Verifier{
		Keys:    NewKeys(Key{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", Profile: "suite"}),
		Region:  "us-east-1",
		Service: "service",
		Now:     func() time.Time { return time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC) },
	}
	r := httptest.NewRequest(http.MethodGet, "http://example.amazonaws.com/", nil)
	r.Header.Set("X-Amz-Date", "20150830T123600Z")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
	got, err := v.Verify(r, func() ([]byte, error) { return emptySHA256, nil })
	if err != nil {
		t.Fatalf("the suite's own signature is refused: %v", err)
	}
	if got.Profile != "suite" {
		t.Fatalf("identity %+v", got.Identity)
	}
	r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "5fa00", "5fa01", 1))
	if _, err := v.Verify(r, func() ([]byte, error) { return emptySHA256, nil }); !isAPIError(err, httpwire.InvalidSignature) {
		t.Fatalf("a changed signature: %v, want InvalidSignatureException", err)
	}
}

var (
	goodKey  = Key{AccessKeyID: "AKIDSENSORIUMTEST1", SecretAccessKey: "secret-of-the-test-key-0123456789", Profile: "camera-1"}
	otherKey = Key{AccessKeyID: "AKIDSENSORIUMTEST2", SecretAccessKey: "another-secret-key-9876543210", Profile: "other"}
)

// verifyServer is a real HTTP server on loopback whose handler verifies
// each request the way the API does and answers the verdict as JSON.
func verifyServer(t *testing.T, v *Verifier) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body BodyHash
		if r.URL.Path != "/putMedia" {
			body = func() ([]byte, error) {
				b, err := io.ReadAll(r.Body)
				sum := sha256.Sum256(b)
				return sum[:], err
			}
		}
		got, err := v.Verify(r, body)
		out := map[string]string{"profile": got.Profile, "key": got.AccessKeyID}
		if err != nil {
			e := httpwire.AsAPIError(err)
			out["error"], out["message"] = e.Name, e.Message
		} else if got.BodySHA256 != nil {
			_, rerr := io.ReadAll(CheckedBody(r.Body, got.BodySHA256))
			if rerr != nil {
				out["error"] = rerr.Error()
			}
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestVerify(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	v := &Verifier{Keys: NewKeys(goodKey, otherKey), Region: "us-east-1"}
	srv := verifyServer(t, v)
	body := []byte(`{"StreamName":"pump-1"}`)
	post := func(path string, b []byte) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(b))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	signed := func(mod func(*http.Request)) func() *http.Request {
		return func() *http.Request {
			r := post("/describeStream", body)
			if err := Sign(r, goodKey, "us-east-1", body, now); err != nil {
				t.Fatal(err)
			}
			if mod != nil {
				mod(r)
			}
			return r
		}
	}
	withBody := func(r *http.Request, b []byte) {
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	}
	cases := []struct {
		name    string
		req     func() *http.Request
		want    string // error name; "" for a good signature
		message string // part of the message
	}{
		{"signed", signed(nil), "", ""},
		{"an unsigned header added after signing", signed(func(r *http.Request) { r.Header.Set("User-Agent", "curl/8") }), "", ""},
		{"no signature", func() *http.Request { return post("/describeStream", body) }, httpwire.MissingAuthenticationToken, "Signature Version 4"},
		{"wrong secret", func() *http.Request {
			r := post("/describeStream", body)
			_ = Sign(r, Key{AccessKeyID: goodKey.AccessKeyID, SecretAccessKey: "not-the-secret-of-this-key"}, "us-east-1", body, now)
			return r
		}, httpwire.InvalidSignature, "does not match"},
		{"unknown access key", func() *http.Request {
			r := post("/describeStream", body)
			_ = Sign(r, Key{AccessKeyID: "AKIDNOBODYKNOWSME", SecretAccessKey: goodKey.SecretAccessKey}, "us-east-1", body, now)
			return r
		}, httpwire.UnrecognizedClient, "AKIDNOBODYKNOWSME"},
		{"another key's secret", func() *http.Request {
			r := post("/describeStream", body)
			_ = Sign(r, Key{AccessKeyID: otherKey.AccessKeyID, SecretAccessKey: goodKey.SecretAccessKey}, "us-east-1", body, now)
			return r
		}, httpwire.InvalidSignature, ""},
		{"body changed after signing", signed(func(r *http.Request) {
			withBody(r, []byte(`{"StreamName":"pump-2"}`))
			r.Header.Del("X-Amz-Content-Sha256")
		}), httpwire.InvalidSignature, "does not match"},
		{"body changed, hash header kept", signed(func(r *http.Request) { withBody(r, []byte(`{"StreamName":"pump-2"}`)) }), httpwire.InvalidSignature, "X-Amz-Content-Sha256"},
		{"signed header changed", signed(func(r *http.Request) { r.Header.Set("X-Amz-Date", now.Add(time.Second).Format(timeFormat)) }), httpwire.InvalidSignature, ""},
		{"path changed", signed(func(r *http.Request) { r.URL.Path = "/deleteStream" }), httpwire.InvalidSignature, ""},
		{"query added", signed(func(r *http.Request) { r.URL.RawQuery = "a=b" }), httpwire.InvalidSignature, ""},
		{"clock 6 min behind", func() *http.Request {
			r := post("/describeStream", body)
			_ = Sign(r, goodKey, "us-east-1", body, now.Add(-6*time.Minute))
			return r
		}, httpwire.InvalidSignature, "Signature expired"},
		{"clock 6 min ahead", func() *http.Request {
			r := post("/describeStream", body)
			_ = Sign(r, goodKey, "us-east-1", body, now.Add(6*time.Minute))
			return r
		}, httpwire.InvalidSignature, "not yet current"},
		{"clock 4 min behind", func() *http.Request {
			r := post("/describeStream", body)
			_ = Sign(r, goodKey, "us-east-1", body, now.Add(-4*time.Minute))
			return r
		}, "", ""},
		{"other region", func() *http.Request {
			r := post("/describeStream", body)
			_ = Sign(r, goodKey, "eu-west-1", body, now)
			return r
		}, httpwire.InvalidSignature, "region"},
		{"not SigV4", signed(func(r *http.Request) { r.Header.Set("Authorization", "Basic dXNlcjpwYXNz") }), httpwire.IncompleteSignature, "AWS4-HMAC-SHA256"},
		{"Authorization without a signature", signed(func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:strings.Index(a, ", Signature=")])
		}), httpwire.IncompleteSignature, "'Signature'"},
		{"host not signed", signed(func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "SignedHeaders=host;", "SignedHeaders=", 1))
		}), httpwire.IncompleteSignature, "host"},
		{"chunk-signed body", signed(func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") }), httpwire.InvalidSignature, "not supported"},
		{"a read body, UNSIGNED-PAYLOAD", func() *http.Request {
			r := post("/deleteStream", body)
			_ = SignUnsignedPayload(r, goodKey, "us-east-1", now)
			return r
		}, httpwire.InvalidSignature, "UNSIGNED-PAYLOAD is for PutMedia"},
		{"a huge unknown key id", func() *http.Request {
			r := post("/describeStream", body)
			_ = Sign(r, Key{AccessKeyID: "AKID" + strings.Repeat("X", 100000), SecretAccessKey: goodKey.SecretAccessKey}, "us-east-1", body, now)
			return r
		}, httpwire.UnrecognizedClient, "XXX…"},
		{"streamed body, UNSIGNED-PAYLOAD", func() *http.Request {
			r := post("/putMedia", []byte("matroska..."))
			_ = SignUnsignedPayload(r, goodKey, "us-east-1", now)
			return r
		}, "", ""},
		{"streamed body, no payload hash", func() *http.Request {
			r := post("/putMedia", []byte("matroska..."))
			_ = SignUnsignedPayload(r, goodKey, "us-east-1", now)
			r.Header.Del("X-Amz-Content-Sha256")
			return r
		}, httpwire.InvalidSignature, "UNSIGNED-PAYLOAD"},
		{"streamed body, declared hash matches", func() *http.Request {
			b := []byte("matroska...")
			r := post("/putMedia", b)
			_ = Sign(r, goodKey, "us-east-1", b, now)
			return r
		}, "", ""},
		{"streamed body, declared hash does not match", func() *http.Request {
			r := post("/putMedia", []byte("matroska..."))
			_ = Sign(r, goodKey, "us-east-1", []byte("something else"), now)
			return r
		}, ErrBodyHashMismatch.Error(), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := roundTrip(t, c.req())
			if got["error"] != c.want {
				t.Fatalf("error %q (%s), want %q", got["error"], got["message"], c.want)
			}
			if !strings.Contains(got["message"], c.message) {
				t.Fatalf("message %q lacks %q", got["message"], c.message)
			}
			if strings.Contains(got["message"], goodKey.SecretAccessKey) || strings.Contains(got["message"], otherKey.SecretAccessKey) {
				t.Fatalf("the message quotes a secret: %q", got["message"])
			}
			if c.want == "" && got["profile"] != goodKey.Profile {
				t.Fatalf("signed by %q, want %q", got["profile"], goodKey.Profile)
			}
		})
	}
}

func TestVerifyPresigned(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	v := &Verifier{Keys: NewKeys(goodKey), Region: "us-east-1"}
	srv := verifyServer(t, v)
	presigned := func(at time.Time, expires time.Duration) string {
		r, _ := http.NewRequest(http.MethodPost, srv.URL+"/putMedia", nil)
		if err := Presign(r, goodKey, "us-east-1", at, expires); err != nil {
			t.Fatal(err)
		}
		return r.URL.String()
	}
	send := func(u string, mod func(*http.Request)) map[string]string {
		r, _ := http.NewRequest(http.MethodPost, u, strings.NewReader("hours of matroska"))
		r.Header.Set("x-amzn-stream-name", "camera-1") // not signed: allowed, as with S3
		if mod != nil {
			mod(r)
		}
		return roundTrip(t, r)
	}
	cases := []struct {
		name string
		url  string
		mod  func(*http.Request)
		want string
	}{
		{"fresh", presigned(now, time.Hour), nil, ""},
		{"signed an hour ago for two", presigned(now.Add(-time.Hour), 2*time.Hour), nil, ""},
		{"expired", presigned(now.Add(-2*time.Hour), time.Hour), nil, httpwire.InvalidSignature},
		{"from the future", presigned(now.Add(10*time.Minute), time.Hour), nil, httpwire.InvalidSignature},
		{"signature changed", strings.Replace(presigned(now, time.Hour), "X-Amz-Signature=", "X-Amz-Signature=0", 1), nil, httpwire.InvalidSignature},
		{"expiry stretched", strings.Replace(presigned(now, time.Hour), "X-Amz-Expires=3600", "X-Amz-Expires=7200", 1), nil, httpwire.InvalidSignature},
		{"expiry past 7 days", strings.Replace(presigned(now, time.Hour), "X-Amz-Expires=3600", "X-Amz-Expires=604801", 1), nil, httpwire.IncompleteSignature},
		{"expiry that overflows", strings.Replace(presigned(now, time.Hour), "X-Amz-Expires=3600", "X-Amz-Expires=36028797018967568", 1), nil, httpwire.IncompleteSignature},
		{"without its signature", removeQuery(presigned(now, time.Hour), "X-Amz-Signature"), nil, httpwire.IncompleteSignature},
		{"with an Authorization header too", presigned(now, time.Hour), func(r *http.Request) { r.Header.Set("Authorization", "AWS4-HMAC-SHA256 x") }, httpwire.IncompleteSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := send(c.url, c.mod); got["error"] != c.want {
				t.Fatalf("error %q (%s), want %q", got["error"], got["message"], c.want)
			}
		})
	}
	// A presigned control-plane call: the body is read, and the signature may
	// cover it or not.
	r, _ := http.NewRequest(http.MethodPost, srv.URL+"/listStreams", nil)
	_ = Presign(r, goodKey, "us-east-1", now, time.Minute)
	r.Body = io.NopCloser(strings.NewReader(`{}`))
	if got := roundTrip(t, r); got["error"] != "" {
		t.Fatalf("presigned control-plane call: %v", got)
	}
}

func roundTrip(t *testing.T, r *http.Request) map[string]string {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func removeQuery(u, key string) string {
	p, _ := url.Parse(u)
	q := p.Query()
	q.Del(key)
	p.RawQuery = q.Encode()
	return p.String()
}

func isAPIError(err error, name string) bool {
	var e *httpwire.APIError
	return errors.As(err, &e) && e.Name == name
}

func TestCheckedBody(t *testing.T) {
	sum := sha256.Sum256([]byte("abc"))
	if _, err := io.ReadAll(CheckedBody(io.NopCloser(strings.NewReader("abc")), sum[:])); err != nil {
		t.Fatalf("matching body: %v", err)
	}
	if _, err := io.ReadAll(CheckedBody(io.NopCloser(strings.NewReader("abd")), sum[:])); !errors.Is(err, ErrBodyHashMismatch) {
		t.Fatalf("changed body: %v", err)
	}
}
