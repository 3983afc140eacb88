package awsauth

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go/aws-http-auth/credentials"
	"github.com/aws/smithy-go/aws-http-auth/sigv4"
	v4 "github.com/aws/smithy-go/aws-http-auth/v4"
)

// Sign signs req in place (Authorization and X-Amz-Date) for the seed
// service's signing name in region. body is the whole body, which the
// signature covers; the payload hash is also sent as X-Amz-Content-Sha256.
func Sign(req *http.Request, key Key, region string, body []byte, at time.Time) error {
	sum := sha256.Sum256(body)
	return sign(req, key, region, sum[:], at, v4.SignatureTypeHeader)
}

// SignUnsignedPayload signs req in place with UNSIGNED-PAYLOAD: for a body
// that streams (PutMedia).
func SignUnsignedPayload(req *http.Request, key Key, region string, at time.Time) error {
	return sign(req, key, region, []byte(unsignedPayload), at, v4.SignatureTypeHeader)
}

// Presign adds a signature valid for expires to req's URL query, covering
// the method, the path, the query, the host and the x-amzn-* headers set on
// req (which the producer must then send as they are) but not the body
// (UNSIGNED-PAYLOAD): a URL to give to a producer that cannot sign.
func Presign(req *http.Request, key Key, region string, at time.Time, expires time.Duration) error {
	if expires < time.Second || expires > MaxPresignExpiry {
		return fmt.Errorf("awsauth: a presigned URL is valid for 1 s to %v, not %v", MaxPresignExpiry, expires)
	}
	q := req.URL.Query()
	q.Set("X-Amz-Expires", strconv.FormatInt(int64(expires/time.Second), 10))
	req.URL.RawQuery = q.Encode()
	return sign(req, key, region, []byte(unsignedPayload), at, v4.SignatureTypeQueryString)
}

func sign(req *http.Request, key Key, region string, payload []byte, at time.Time, typ v4.SignatureType) error {
	signer := sigv4.New(func(o *v4.SignerOptions) {
		o.DisableImplicitPayloadHashing = true
		o.AddPayloadHashHeader = typ == v4.SignatureTypeHeader
		o.HeaderRules = clientRules{}
	})
	err := signer.SignRequest(&sigv4.SignRequestInput{
		Request:       req,
		PayloadHash:   payload,
		Credentials:   credentials.Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey},
		Service:       Service,
		Region:        region,
		Time:          at,
		SignatureType: typ,
	})
	if err != nil {
		return fmt.Errorf("awsauth: sign %s %s: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

// clientRules sign the host, the X-Amz-* headers and the seed service's own
// x-amzn-* headers (PutMedia's stream name, timecode type and start), so that
// a signed or presigned PutMedia is bound to its stream: changing the header
// breaks the signature.
type clientRules struct{}

func (clientRules) IsSigned(h string) bool {
	return h == "host" || strings.HasPrefix(h, "x-amz-") || strings.HasPrefix(h, "x-amzn-")
}
