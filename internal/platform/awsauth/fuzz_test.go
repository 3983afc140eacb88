package awsauth

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
)

// The fuzz targets hold Verify and the credentials file to what an attacker
// on the network (or a careless operator) cannot break: no input panics, every
// refusal is one of the four SigV4 errors with the service's status and a
// short message that never quotes a secret, and nothing but the one genuine
// signature is ever accepted. `make fuzz` runs them; the seeds below and the
// files under testdata/fuzz are run by `go test`.

// fuzzNow is the clock of the fuzz targets' verifier; the seeds are signed
// for it.
var fuzzNow = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

const fuzzHost = "127.0.0.1:8080"

func fuzzVerifier() *Verifier {
	return &Verifier{Keys: NewKeys(goodKey, otherKey), Region: "us-east-1", Now: func() time.Time { return fuzzNow }}
}

var fuzzBody = []byte(`{"StreamName":"camera-1"}`)

// checkVerdict is the property both SigV4 targets share. carriesGenuine
// says whether the request carries the signature a valid seed was given: no
// other may be accepted.
func checkVerdict(t *testing.T, got Verified, err error, carriesGenuine bool) {
	t.Helper()
	if err == nil {
		if !carriesGenuine || got.AccessKeyID != goodKey.AccessKeyID {
			t.Fatalf("accepted a signature it was never given (key %q)", got.AccessKeyID)
		}
		return
	}
	var e *httpwire.APIError
	if !errors.As(err, &e) {
		t.Fatalf("refusal %v (%T) is not an API error", err, err)
	}
	switch e.Name {
	case httpwire.MissingAuthenticationToken, httpwire.IncompleteSignature, httpwire.UnrecognizedClient, httpwire.InvalidSignature:
	default:
		t.Fatalf("refusal named %s (%v): not one of SigV4's", e.Name, err)
	}
	if s := e.Status(); s != http.StatusBadRequest && s != http.StatusForbidden {
		t.Fatalf("%s answers %d", e.Name, s)
	}
	for _, secret := range []string{goodKey.SecretAccessKey, otherKey.SecretAccessKey} {
		if strings.Contains(e.Message, secret) {
			t.Fatalf("the refusal quotes a secret key: %q", e.Message)
		}
	}
	// Everything a request says is truncated before it is quoted, so that a
	// refusal (which is logged) stays one short line.
	if len(e.Message) > 1024 {
		t.Fatalf("refusal message of %d bytes", len(e.Message))
	}
}

func bodyHash(b []byte) BodyHash {
	return func() ([]byte, error) { s := sha256.Sum256(b); return s[:], nil }
}

func FuzzVerifyHeader(f *testing.F) {
	signed, _ := http.NewRequest(http.MethodPost, "http://"+fuzzHost+"/describeStream", bytes.NewReader(fuzzBody))
	if err := Sign(signed, goodKey, "us-east-1", fuzzBody, fuzzNow); err != nil {
		f.Fatal(err)
	}
	auth := signed.Header.Get("Authorization")
	genuine := auth[strings.LastIndex(auth, "Signature=")+len("Signature="):]
	date, sum := signed.Header.Get("X-Amz-Date"), signed.Header.Get("X-Amz-Content-Sha256")
	if _, err := fuzzVerifier().Verify(signed, bodyHash(fuzzBody)); err != nil {
		f.Fatalf("the genuine seed is refused: %v", err)
	}
	f.Add("/describeStream", auth, date, sum, "")
	f.Add("/describeStream", strings.Replace(auth, "Signature=", "Signature=0", 1), date, sum, "")
	f.Add("/describeStream", auth, "", sum, "Sat, 05 Dec 2026 12:00:00 GMT")
	f.Add("/putMedia", auth, date, unsignedPayload, "")
	f.Add("/describeStream", "AWS4-HMAC-SHA256 Credential=AKIDSENSORIUMTEST1/20261205/us-east-1/kinesisvideo/aws4_request, SignedHeaders=host, Signature=", date, sum, "")
	f.Add("/", "AWS4-ECDSA-P256-SHA256 Credential=x", date, "", "")
	f.Add("/listStreams", "AWS4-HMAC-SHA256 Credential=a/b/c/d/e,SignedHeaders=HOST;x,Signature=zz", "20261305T250000Z", "zz", "")
	f.Add("/getMedia", "AWS4-HMAC-SHA256 ,,,=,==", date, sum, "")
	f.Fuzz(func(t *testing.T, path, auth, amzDate, contentSHA, date string) {
		u, err := url.ParseRequestURI("http://" + fuzzHost + path)
		if err != nil {
			return // not a request line a client could send
		}
		r := &http.Request{Method: http.MethodPost, URL: u, Host: fuzzHost, Header: http.Header{}}
		for k, v := range map[string]string{"Authorization": auth, "X-Amz-Date": amzDate, "X-Amz-Content-Sha256": contentSHA, "Date": date} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		var body BodyHash
		if u.Path != "/putMedia" {
			body = bodyHash(fuzzBody)
		}
		got, err := fuzzVerifier().Verify(r, body)
		checkVerdict(t, got, err, strings.Contains(auth, genuine))
	})
}

func FuzzVerifyPresignedQuery(f *testing.F) {
	signed, _ := http.NewRequest(http.MethodPost, "http://"+fuzzHost+"/putMedia", nil)
	signed.Header.Set("x-amzn-stream-name", "camera-1")
	if err := Presign(signed, goodKey, "us-east-1", fuzzNow, time.Hour); err != nil {
		f.Fatal(err)
	}
	genuine := signed.URL.Query().Get("X-Amz-Signature")
	if _, err := fuzzVerifier().Verify(signed, nil); err != nil {
		f.Fatalf("the genuine seed is refused: %v", err)
	}
	f.Add("/putMedia", signed.URL.RawQuery, "camera-1")
	f.Add("/putMedia", signed.URL.RawQuery, "camera-2")
	f.Add("/putMedia", strings.Replace(signed.URL.RawQuery, "X-Amz-Expires=3600", "X-Amz-Expires=36028797018967568", 1), "camera-1")
	f.Add("/putMedia", strings.Replace(signed.URL.RawQuery, "X-Amz-Expires=3600", "X-Amz-Expires=-1", 1), "camera-1")
	f.Add("/getMedia", signed.URL.RawQuery+"&X-Amz-Signature=00", "camera-1")
	f.Add("/putMedia", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%2F%2F%2F%2F&X-Amz-Date=x&X-Amz-Expires=1&X-Amz-SignedHeaders=host&X-Amz-Signature=1", "")
	f.Add("/putMedia", "X-Amz-Credential=;;%ZZ", "")
	f.Fuzz(func(t *testing.T, path, rawQuery, stream string) {
		u, err := url.ParseRequestURI("http://" + fuzzHost + path)
		if err != nil {
			return
		}
		u.RawQuery = rawQuery
		r := &http.Request{Method: http.MethodPost, URL: u, Host: fuzzHost, Header: http.Header{}}
		if stream != "" {
			r.Header.Set("x-amzn-stream-name", stream)
		}
		got, err := fuzzVerifier().Verify(r, nil)
		checkVerdict(t, got, err, u.Query().Get("X-Amz-Signature") == genuine)
		if err == nil && (u.Path != "/putMedia" || stream != "camera-1") {
			t.Fatalf("a URL presigned for PutMedia on camera-1 was taken for %s on %q", u.Path, stream)
		}
	})
}

func FuzzCredentialsFile(f *testing.F) {
	f.Add([]byte("[camera-1]\naws_access_key_id = AKIDCAMERA1EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"))
	f.Add([]byte("[profile analytics]\nAWS_ACCESS_KEY_ID=AKIDANALYTICSEXAMPLE\naws_secret_access_key=   another/secret+key/0123456789\nregion = us-east-1\n[settings-only]\nregion = eu-west-1\n"))
	f.Add([]byte("[pumps]\naws_access_key_id = AKIDPUMPSEXAMPLE01\naws_secret_access_key = pumps-secret-0123456789\nstreams = pump-*,line.?,cam-[0-9]\nactions = PutMedia,Get*,kinesisvideo:ListFragments\n"))
	f.Add([]byte("[a]\naws_access_key_id = AKIDPUMPSEXAMPLE01\naws_secret_access_key = short\n"))
	f.Add([]byte("[a]\naws_access_key_id = AKIDPUMPSEXAMPLE01\naws_secret_access_key = pumps-secret-0123456789\nstreams = [\nactions = Put?\n"))
	f.Add([]byte("aws_access_key_id = x\n[a\n[]\n[a]\n[a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := parseKeys(data)
		if err != nil {
			// The error must not depend on what the secrets are: the same
			// file with every secret replaced by another of its length
			// fails with the very same message.
			if _, err2 := parseKeys(maskSecrets(data)); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("the error depends on a secret's value: %v; with the secrets masked: %v", err, err2)
			}
			return
		}
		if keys.Len() == 0 {
			t.Fatal("a file with no key was taken")
		}
		for _, profile := range keys.Profiles() {
			k, ok := keys.ByProfile(profile)
			if !ok {
				t.Fatalf("profile %q listed but not found", profile)
			}
			if !validAccessKeyID(k.AccessKeyID) || len(k.SecretAccessKey) < 16 {
				t.Fatalf("key %q of [%s] was taken", k.AccessKeyID, profile)
			}
			if back, ok := keys.Lookup(k.AccessKeyID); !ok || back.Profile != profile {
				t.Fatalf("key %s does not lead back to [%s]", k.AccessKeyID, profile)
			}
			// A grant is what its lines say: every stream pattern is a
			// valid glob, and every granted action is a real one.
			if g := k.Grant; g != nil {
				for _, p := range g.Streams {
					if err := checkStreamPattern(p); err != nil {
						t.Fatalf("[%s] holds a bad pattern: %v", profile, err)
					}
				}
				for a := range g.Actions {
					if !knownAction(a) {
						t.Fatalf("[%s] was granted unknown action %q", profile, a)
					}
				}
				if g.Unrestricted() {
					t.Fatalf("[%s] has streams or actions lines yet is unrestricted", profile)
				}
			}
		}
	})
}

func parseKeys(data []byte) (*Keys, error) {
	sections, err := parseINI(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return keysOf("credentials", sections)
}

// maskSecrets replaces the value of every aws_secret_access_key line by as
// many bytes of 'Q', which parseINI reads like any other value.
func maskSecrets(data []byte) []byte {
	lines := bytes.Split(data, []byte("\n"))
	for i, line := range lines {
		k, v, ok := bytes.Cut(line, []byte("="))
		if !ok || !strings.EqualFold(strings.TrimSpace(string(k)), "aws_secret_access_key") {
			continue
		}
		// The value as parseINI sees it (trimmed, with its line's trailing
		// \r and spaces) keeps its place and length.
		trimmed := bytes.TrimSpace(v)
		at := bytes.Index(v, trimmed)
		masked := append(append(bytes.Clone(v[:at]), bytes.Repeat([]byte("Q"), len(trimmed))...), v[at+len(trimmed):]...)
		lines[i] = append(append(bytes.Clone(k), '='), masked...)
	}
	return bytes.Join(lines, []byte("\n"))
}

func knownAction(a string) bool {
	for _, b := range Actions {
		if a == b {
			return true
		}
	}
	return false
}
