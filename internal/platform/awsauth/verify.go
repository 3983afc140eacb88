package awsauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go/aws-http-auth/credentials"
	"github.com/aws/smithy-go/aws-http-auth/sigv4"
	v4 "github.com/aws/smithy-go/aws-http-auth/v4"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
)

// Service is the signing name of the seed service, for every one of its APIs
// (control plane, media, archived media).
const Service = "kinesisvideo"

// DefaultMaxSkew is how far a request's signing time may be from the server's
// clock, either way, as the AWS services allow.
const DefaultMaxSkew = 5 * time.Minute

// MaxPresignExpiry is the longest X-Amz-Expires a presigned URL may ask, as
// with the AWS services: 7 days.
const MaxPresignExpiry = 7 * 24 * time.Hour

const (
	algorithm       = "AWS4-HMAC-SHA256"
	timeFormat      = "20060102T150405Z"
	dateFormat      = "20060102"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	scopeTerminator = "aws4_request"
)

// emptySHA256 is the SHA-256 of an empty body.
var emptySHA256 = sha256.New().Sum(nil)

// Verifier checks the SigV4 signature of requests against a set of keys.
type Verifier struct {
	Keys    *Keys
	Region  string        // the region requests must be signed for
	Service string        // the signing name; default Service
	MaxSkew time.Duration // default DefaultMaxSkew
	Now     func() time.Time
}

// Identity is who signed a request.
type Identity struct {
	AccessKeyID string
	Profile     string // the credentials file's section of the key
	Grant       *Grant // what the key may do; nil: everything
}

// Verified is the outcome of a good signature.
type Verified struct {
	Identity
	// BodySHA256, when not nil, is the hash the client declared for a body
	// that Verify did not read (a streamed one): wrap the body with
	// CheckedBody so that a body that does not match fails at its end.
	BodySHA256 []byte
}

// BodyHash reads a request's whole body and returns its SHA-256; Verify
// calls it only when the signature covers a hash the client did not declare.
type BodyHash func() ([]byte, error)

// Verify checks r's signature. body is nil for an operation whose body
// streams (PutMedia): such a request must declare its payload hash. The
// error is a *httpwire.APIError named as the AWS services name it
// (MissingAuthenticationTokenException, IncompleteSignatureException,
// UnrecognizedClientException, InvalidSignatureException), whose message
// holds no secret; the Identity is filled in as far as the request said it,
// for the log line of a refusal.
func (v *Verifier) Verify(r *http.Request, body BodyHash) (Verified, error) {
	s, err := parseSignature(r)
	if err != nil {
		return Verified{}, err
	}
	out := Verified{Identity: Identity{AccessKeyID: truncate(s.keyID)}}
	key, ok := v.Keys.Lookup(s.keyID)
	if !ok {
		return out, httpwire.Errorf(httpwire.UnrecognizedClient, "The security token included in the request is invalid: access key id %q is not in this server's credentials file", truncate(s.keyID))
	}
	out.Profile, out.Grant = key.Profile, key.Grant
	if err := v.checkScope(s); err != nil {
		return out, err
	}
	if err := v.checkTime(s); err != nil {
		return out, err
	}
	payloads, streamSum, err := payloadHashes(r, s, body)
	if err != nil {
		return out, err
	}
	for _, host := range hostsOf(r) {
		for _, p := range payloads {
			want, err := v.sign(r, s, key, host, p)
			if err != nil {
				return out, httpwire.Errorf(httpwire.InternalFailure, "verifying the signature: %v", err)
			}
			if hmac.Equal([]byte(want), []byte(s.signature)) {
				out.BodySHA256 = streamSum
				return out, nil
			}
		}
	}
	return out, httpwire.Errorf(httpwire.InvalidSignature, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
}

// signature is what a request says about its own signature.
type signature struct {
	presigned     bool
	keyID         string
	date, region  string // of the credential scope
	service, term string
	signedHeaders []string
	signature     string
	at            time.Time
	expires       time.Duration // presigned only
}

func parseSignature(r *http.Request) (signature, error) {
	q := r.URL.Query()
	auth := r.Header.Get("Authorization")
	presigned := q.Has("X-Amz-Signature") || q.Has("X-Amz-Credential") || q.Has("X-Amz-Algorithm")
	switch {
	case auth != "" && presigned:
		return signature{}, httpwire.Errorf(httpwire.IncompleteSignature, "the request has both an Authorization header and a presigned query string; send one")
	case auth != "":
		return parseHeader(r, auth)
	case presigned:
		return parseQuery(q)
	}
	return signature{}, httpwire.Errorf(httpwire.MissingAuthenticationToken, "Missing Authentication Token: this server requires AWS Signature Version 4 (an Authorization header or a presigned URL)")
}

func parseHeader(r *http.Request, auth string) (signature, error) {
	alg, rest, _ := strings.Cut(auth, " ")
	if err := checkAlgorithm(alg); err != nil {
		return signature{}, err
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return signature{}, httpwire.Errorf(httpwire.IncompleteSignature, "Authorization header field %q is not key=value", truncate(f))
		}
		fields[k] = val
	}
	s := signature{}
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if fields[k] == "" {
			return signature{}, httpwire.Errorf(httpwire.IncompleteSignature, "Authorization header requires a '%s' parameter", k)
		}
	}
	if err := s.setCredential(fields["Credential"]); err != nil {
		return signature{}, err
	}
	if err := s.setSignedHeaders(fields["SignedHeaders"]); err != nil {
		return signature{}, err
	}
	s.signature = fields["Signature"]
	switch d := r.Header.Get("X-Amz-Date"); {
	case d != "":
		t, err := time.Parse(timeFormat, d)
		if err != nil {
			return signature{}, httpwire.Errorf(httpwire.IncompleteSignature, "X-Amz-Date %q is not in the form 20060102T150405Z", truncate(d))
		}
		s.at = t
	case r.Header.Get("Date") != "":
		t, err := http.ParseTime(r.Header.Get("Date"))
		if err != nil {
			return signature{}, httpwire.Errorf(httpwire.IncompleteSignature, "Date header %q is not an HTTP date", truncate(r.Header.Get("Date")))
		}
		s.at = t.UTC()
	default:
		return signature{}, httpwire.Errorf(httpwire.IncompleteSignature, "a signed request needs an X-Amz-Date (or Date) header")
	}
	return s, nil
}

func parseQuery(q map[string][]string) (signature, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		if get(k) == "" {
			return signature{}, httpwire.Errorf(httpwire.IncompleteSignature, "a presigned URL requires the query parameter %s", k)
		}
	}
	if err := checkAlgorithm(get("X-Amz-Algorithm")); err != nil {
		return signature{}, err
	}
	s := signature{presigned: true, signature: get("X-Amz-Signature")}
	if err := s.setCredential(get("X-Amz-Credential")); err != nil {
		return signature{}, err
	}
	if err := s.setSignedHeaders(get("X-Amz-SignedHeaders")); err != nil {
		return signature{}, err
	}
	t, err := time.Parse(timeFormat, get("X-Amz-Date"))
	if err != nil {
		return signature{}, httpwire.Errorf(httpwire.IncompleteSignature, "X-Amz-Date %q is not in the form 20060102T150405Z", truncate(get("X-Amz-Date")))
	}
	s.at = t
	secs, err := strconv.ParseInt(get("X-Amz-Expires"), 10, 64)
	if err != nil || secs < 1 || secs > int64(MaxPresignExpiry/time.Second) {
		return signature{}, httpwire.Errorf(httpwire.IncompleteSignature, "X-Amz-Expires %q must be a whole number of seconds from 1 to %d", truncate(get("X-Amz-Expires")), int64(MaxPresignExpiry/time.Second))
	}
	s.expires = time.Duration(secs) * time.Second
	return s, nil
}

func checkAlgorithm(alg string) error {
	switch alg {
	case algorithm:
		return nil
	case "AWS4-ECDSA-P256-SHA256":
		return httpwire.Errorf(httpwire.IncompleteSignature, "Signature Version 4A (AWS4-ECDSA-P256-SHA256) is not supported; sign with AWS4-HMAC-SHA256")
	}
	return httpwire.Errorf(httpwire.IncompleteSignature, "unsupported signing algorithm %q; sign with AWS Signature Version 4 (AWS4-HMAC-SHA256)", truncate(alg))
}

// setCredential parses <key id>/<date>/<region>/<service>/aws4_request.
func (s *signature) setCredential(c string) error {
	parts := strings.Split(c, "/")
	if len(parts) != 5 || parts[0] == "" {
		return httpwire.Errorf(httpwire.IncompleteSignature, "Credential %q is not <access key id>/<date>/<region>/<service>/aws4_request", truncate(c))
	}
	s.keyID, s.date, s.region, s.service, s.term = parts[0], parts[1], parts[2], parts[3], parts[4]
	return nil
}

func (s *signature) setSignedHeaders(h string) error {
	s.signedHeaders = strings.Split(h, ";")
	host := false
	for _, n := range s.signedHeaders {
		if n == "" || n != strings.ToLower(n) {
			return httpwire.Errorf(httpwire.IncompleteSignature, "SignedHeaders %q must be lower-case header names separated by ';'", truncate(h))
		}
		host = host || n == "host"
	}
	if !host {
		return httpwire.Errorf(httpwire.IncompleteSignature, "SignedHeaders must include host")
	}
	return nil
}

func (v *Verifier) service() string {
	if v.Service == "" {
		return Service
	}
	return v.Service
}

func (v *Verifier) checkScope(s signature) error {
	switch {
	case s.term != scopeTerminator:
		return httpwire.Errorf(httpwire.IncompleteSignature, "Credential should be scoped with a valid terminator: 'aws4_request', not %q", truncate(s.term))
	case s.service != v.service():
		return httpwire.Errorf(httpwire.InvalidSignature, "Credential should be scoped to correct service: '%s', not %q", v.service(), truncate(s.service))
	case s.region != v.Region:
		return httpwire.Errorf(httpwire.InvalidSignature, "Credential should be scoped to a valid region: this server's region is '%s' (serve --region), the request is signed for %q", v.Region, truncate(s.region))
	case s.date != s.at.Format(dateFormat):
		return httpwire.Errorf(httpwire.InvalidSignature, "Credential should be scoped to the request's date %s, not %q", s.at.Format(dateFormat), truncate(s.date))
	}
	return nil
}

func (v *Verifier) checkTime(s signature) error {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	t := now().UTC()
	at := s.at.Format(timeFormat)
	switch {
	case s.at.After(t.Add(skew)):
		return httpwire.Errorf(httpwire.InvalidSignature, "Signature not yet current: %s is still later than %s (%s + %v of clock skew); check the client's clock", at, t.Add(skew).Format(timeFormat), t.Format(timeFormat), skew)
	case s.presigned && t.After(s.at.Add(s.expires)):
		return httpwire.Errorf(httpwire.InvalidSignature, "Signature expired: the presigned URL was valid from %s for %v, it is now %s", at, s.expires, t.Format(timeFormat))
	case !s.presigned && s.at.Before(t.Add(-skew)):
		return httpwire.Errorf(httpwire.InvalidSignature, "Signature expired: %s is now earlier than %s (%s - %v of clock skew); check the client's clock", at, t.Add(-skew).Format(timeFormat), t.Format(timeFormat), skew)
	}
	return nil
}

// payloadHashes are the payload hashes the signature may cover, and the hash
// a streamed body must be checked against at its end.
func payloadHashes(r *http.Request, s signature, body BodyHash) (candidates [][]byte, streamSum []byte, err error) {
	declared := r.Header.Get("X-Amz-Content-Sha256")
	actual := func() ([]byte, error) {
		h, err := body()
		if err != nil {
			return nil, httpwire.Errorf(httpwire.InvalidArgument, "reading the request body: %v", err)
		}
		return h, nil
	}
	switch {
	case declared == unsignedPayload && body != nil && !s.presigned:
		// A body the server reads whole must be covered: an unsigned one
		// could be replaced (another stream named) by anyone replaying it.
		return nil, nil, httpwire.Errorf(httpwire.InvalidSignature, "UNSIGNED-PAYLOAD is for PutMedia's streamed body; sign this request's body (its SHA-256)")
	case declared == unsignedPayload:
		return [][]byte{[]byte(unsignedPayload)}, nil, nil
	case strings.HasPrefix(declared, "STREAMING-"):
		return nil, nil, httpwire.Errorf(httpwire.InvalidSignature, "X-Amz-Content-Sha256 %s (chunk-signed bodies) is not supported; sign with UNSIGNED-PAYLOAD or the body's SHA-256", truncate(declared))
	case declared != "":
		sum, herr := hex.DecodeString(declared)
		if herr != nil || len(sum) != sha256.Size {
			return nil, nil, httpwire.Errorf(httpwire.IncompleteSignature, "X-Amz-Content-Sha256 %q is neither a hex SHA-256 nor UNSIGNED-PAYLOAD", truncate(declared))
		}
		if body == nil {
			return [][]byte{sum}, sum, nil
		}
		got, err := actual()
		if err != nil {
			return nil, nil, err
		}
		if !hmac.Equal(got, sum) {
			return nil, nil, httpwire.Errorf(httpwire.InvalidSignature, "the SHA-256 of the request body does not match X-Amz-Content-Sha256")
		}
		return [][]byte{sum}, nil, nil
	case s.presigned && body == nil:
		return [][]byte{[]byte(unsignedPayload), emptySHA256}, nil, nil
	case s.presigned:
		got, err := actual()
		if err != nil {
			return nil, nil, err
		}
		return [][]byte{got, []byte(unsignedPayload), emptySHA256}, nil, nil
	case body == nil:
		return nil, nil, httpwire.Errorf(httpwire.InvalidSignature, "%s streams its body, so its signature cannot cover a hash computed at the end: sign it with X-Amz-Content-Sha256 set to UNSIGNED-PAYLOAD or to the body's SHA-256, or presign the URL", r.URL.Path)
	}
	got, err := actual()
	if err != nil {
		return nil, nil, err
	}
	return [][]byte{got}, nil, nil
}

// hostsOf is the Host the client may have signed: as sent, and without a
// default port, which the AWS SDKs leave out of what they sign.
func hostsOf(r *http.Request) []string {
	h := r.Host
	for _, p := range []string{":80", ":443"} {
		if strings.HasSuffix(h, p) {
			return []string{h, strings.TrimSuffix(h, p)}
		}
	}
	return []string{h}
}

// headerRules signs exactly the headers the client signed.
type headerRules map[string]bool

func (h headerRules) IsSigned(name string) bool { return h[name] }

// sign signs a copy of r the way the client said it signed r, and returns
// the signature.
func (v *Verifier) sign(r *http.Request, s signature, key Key, host string, payload []byte) (string, error) {
	u := *r.URL
	u.Scheme, u.Host = "", ""
	if s.presigned {
		q := u.Query()
		q.Del("X-Amz-Signature")
		u.RawQuery = q.Encode()
	}
	c := &http.Request{Method: r.Method, URL: &u, Host: host, Header: http.Header{}}
	rules := headerRules{}
	for _, name := range s.signedHeaders {
		rules[name] = true
		canon := textproto.CanonicalMIMEHeaderKey(name)
		vals := r.Header.Values(canon)
		switch {
		case name == "host":
			continue // the signer writes it from c.Host
		case len(vals) == 0 && name == "content-length" && r.ContentLength >= 0:
			vals = []string{strconv.FormatInt(r.ContentLength, 10)}
		case len(vals) == 0 && name == "transfer-encoding" && len(r.TransferEncoding) > 0:
			vals = []string{strings.Join(r.TransferEncoding, ",")}
		}
		for _, val := range vals {
			c.Header.Add(canon, strings.Join(strings.Fields(val), " "))
		}
	}
	typ := v4.SignatureTypeHeader
	if s.presigned {
		typ = v4.SignatureTypeQueryString
	}
	signer := sigv4.New(func(o *v4.SignerOptions) {
		o.HeaderRules = rules
		o.DisableImplicitPayloadHashing = true
	})
	err := signer.SignRequest(&sigv4.SignRequestInput{
		Request:       c,
		PayloadHash:   payload,
		Credentials:   credentials.Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey},
		Service:       s.service,
		Region:        s.region,
		Time:          s.at,
		SignatureType: typ,
	})
	if err != nil {
		return "", err
	}
	if s.presigned {
		return c.URL.Query().Get("X-Amz-Signature"), nil
	}
	_, sig, ok := strings.Cut(c.Header.Get("Authorization"), "Signature=")
	if !ok {
		return "", errors.New("the signer wrote no signature")
	}
	return sig, nil
}

// ErrBodyHashMismatch ends a streamed body that does not hash to the
// X-Amz-Content-Sha256 it was signed with.
var ErrBodyHashMismatch = errors.New("awsauth: the request body does not match the SHA-256 in X-Amz-Content-Sha256 it was signed with")

// CheckedBody returns body, which fails with ErrBodyHashMismatch at its end
// when what it held does not hash to sum.
func CheckedBody(body io.ReadCloser, sum []byte) io.ReadCloser {
	return &checkedBody{ReadCloser: body, want: sum, h: sha256.New()}
}

type checkedBody struct {
	io.ReadCloser
	want []byte
	h    interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func (b *checkedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.h.Write(p[:n])
	if err == io.EOF && !hmac.Equal(b.h.Sum(nil), b.want) {
		return n, ErrBodyHashMismatch
	}
	return n, err
}

// truncate bounds what a request said, quoted back in an error.
func truncate(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("%.64s…", s)
	}
	return s
}
