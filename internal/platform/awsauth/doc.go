// Package awsauth is AWS Signature Version 4 for Sensorium's HTTP API: the
// server verifies every request with it, and the SDK and the CLI sign theirs,
// so that the seed service's clients (the AWS SDKs, anything that signs as
// they do) work unchanged.
//
// The signing arithmetic (canonical request, string to sign, key derivation)
// is github.com/aws/smithy-go/aws-http-auth, the AWS SDK team's own signer.
// Verifying a request is signing it again: the server rebuilds the request
// from exactly the headers the client says it signed, signs it with the
// secret of the client's access key at the client's time, and compares the
// signatures in constant time. What this package owns is the rest: parsing
// the Authorization header and the presigned query string, the credential
// scope (date, region, service), the clock-skew and expiry bounds, the
// payload hash, and the shared-credentials file that holds the keys.
//
// Both forms of the signature are accepted:
//
//   - Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…
//     with X-Amz-Date (or Date). The payload hash is X-Amz-Content-Sha256 when
//     the client sends it (a hex SHA-256 or UNSIGNED-PAYLOAD) and otherwise the
//     SHA-256 of the body, which the server then reads before the operation.
//     PutMedia's body is a stream of hours, so it must say its hash up front:
//     UNSIGNED-PAYLOAD, or a hex SHA-256 that is checked when the body ends.
//   - A presigned URL: X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date,
//     X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Signature in the query string.
//     As with S3, a presigned URL covers the method, path, query and signed
//     headers but not the body: it is signed with UNSIGNED-PAYLOAD (or, as the
//     AWS SDK for Go v1 presigns a request without a body, the empty body's
//     hash). This is how a producer that cannot sign (ffmpeg's HTTP output, a
//     camera) is given a PutMedia URL.
//
// A key's section may carry a Grant (streams = and actions = lines, grant.go):
// Verify reports it with the Identity, and the HTTP API, Flight and the NATS
// logins the server derives from the keys enforce it. This package only
// parses and matches grants; it refuses nothing on their account.
//
// Streaming-signed bodies (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) and SigV4a are
// refused with a message saying so.
package awsauth
