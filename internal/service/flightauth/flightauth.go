// Package flightauth protects the Arrow Flight service with the same access
// keys as the HTTP API (serve --credentials). gRPC has no SigV4, so Flight
// uses its own standard scheme, which every Flight client speaks: the client
// sends its access key id and secret as HTTP Basic credentials in a
// Handshake (pyarrow's authenticate_basic_token, arrow-go's
// AuthenticateBasicToken) and gets back a bearer token, which it sends as
// "authorization: Bearer …" on every later call. Basic credentials are also
// taken on any call, for clients that would rather not hold a token.
//
// A token is stateless: <key id>.<expiry>.<MAC>, the MAC an HMAC-SHA256 over
// the key id and expiry under a key derived from that access key's secret.
// It holds no secret, every server with the same credentials file accepts
// it (a client may read from any replica), and removing the key from the
// file revokes its tokens at the next start.
package flightauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
)

// TokenLifetime is how long a bearer token from a Handshake is valid.
const TokenLifetime = 12 * time.Hour

const handshakeMethod = "/arrow.flight.protocol.FlightService/Handshake"

// Authenticator checks the credentials of Flight calls.
type Authenticator struct {
	Keys *awsauth.Keys
	Log  *slog.Logger
	Now  func() time.Time // default time.Now
}

// IdentityFrom returns who made the call, once the interceptors passed it:
// awsauth's identity, grant included, which the Flight service authorizes
// each call against as the HTTP API does.
func IdentityFrom(ctx context.Context) (awsauth.Identity, bool) {
	return awsauth.IdentityFrom(ctx)
}

// ServerOptions are the gRPC interceptors that enforce authentication.
func (a *Authenticator) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(a.unary), grpc.ChainStreamInterceptor(a.stream)}
}

func (a *Authenticator) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Authenticator) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	id, err := a.check(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(awsauth.WithIdentity(ctx, id), req)
}

func (a *Authenticator) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if info.FullMethod == handshakeMethod {
		return a.handshake(ss)
	}
	id, err := a.check(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, &identityStream{ServerStream: ss, ctx: awsauth.WithIdentity(ss.Context(), id)})
}

type identityStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identityStream) Context() context.Context { return s.ctx }

// handshake answers Basic credentials with a bearer token, in the response
// header and trailer (clients read either), and nothing else: the service's
// own Handshake is not called.
func (a *Authenticator) handshake(ss grpc.ServerStream) error {
	scheme, cred := authorization(ss.Context())
	if !strings.EqualFold(scheme, "Basic") {
		return a.refuse(ss.Context(), handshakeMethod, "", "a Flight Handshake takes Basic credentials: the access key id and secret access key of the server's credentials file")
	}
	key, err := a.basic(cred)
	if err != nil {
		return a.refuse(ss.Context(), handshakeMethod, key.AccessKeyID, err.Error())
	}
	md := metadata.Pairs("authorization", "Bearer "+a.Token(key, a.now().Add(TokenLifetime)))
	if err := ss.SetHeader(md); err != nil {
		return err
	}
	ss.SetTrailer(md)
	return nil
}

// check accepts a bearer token or Basic credentials.
func (a *Authenticator) check(ctx context.Context, method string) (awsauth.Identity, error) {
	scheme, cred := authorization(ctx)
	var key awsauth.Key
	var err error
	switch {
	case scheme == "":
		return awsauth.Identity{}, a.refuse(ctx, method, "", "this Flight service requires authentication: Handshake with Basic credentials (access key id and secret access key) and send the bearer token it returns, or send Basic credentials on each call")
	case strings.EqualFold(scheme, "Bearer"):
		key, err = a.bearer(cred)
	case strings.EqualFold(scheme, "Basic"):
		key, err = a.basic(cred)
	default:
		err = fmt.Errorf("authorization scheme %q is not Bearer or Basic", truncate(scheme))
	}
	if err != nil {
		return awsauth.Identity{}, a.refuse(ctx, method, key.AccessKeyID, err.Error())
	}
	return awsauth.Identity{AccessKeyID: key.AccessKeyID, Profile: key.Profile, Grant: key.Grant}, nil
}

// refuse logs a refusal (the key id, never a secret) and returns its status.
func (a *Authenticator) refuse(ctx context.Context, method, keyID, reason string) error {
	if a.Log != nil {
		a.Log.Warn("flight: call refused", "method", method, "access_key", keyID, "reason", reason)
	}
	return status.Error(codes.Unauthenticated, reason)
}

func authorization(ctx context.Context) (scheme, cred string) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return "", ""
	}
	scheme, cred, _ = strings.Cut(strings.TrimSpace(vals[0]), " ")
	return scheme, strings.TrimSpace(cred)
}

// basic checks "base64(access key id:secret access key)".
func (a *Authenticator) basic(cred string) (awsauth.Key, error) {
	raw, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		raw, err = base64.RawStdEncoding.DecodeString(cred) // arrow-go sends it unpadded
	}
	if err != nil {
		return awsauth.Key{}, fmt.Errorf("Basic credentials are not base64")
	}
	id, secret, ok := strings.Cut(string(raw), ":")
	if !ok {
		return awsauth.Key{}, fmt.Errorf("Basic credentials must be access-key-id:secret-access-key")
	}
	key, known := a.Keys.Lookup(id)
	if !known {
		return awsauth.Key{AccessKeyID: id}, fmt.Errorf("access key id %s is not in this server's credentials file", truncate(id))
	}
	if !hmac.Equal([]byte(secret), []byte(key.SecretAccessKey)) {
		return awsauth.Key{AccessKeyID: id}, fmt.Errorf("the secret access key is not that of access key id %s", id)
	}
	return key, nil
}

// Token is a bearer token for key, valid until expires.
func (a *Authenticator) Token(key awsauth.Key, expires time.Time) string {
	body := key.AccessKeyID + "." + strconv.FormatInt(expires.Unix(), 10)
	return body + "." + base64.RawURLEncoding.EncodeToString(tokenMAC(key, body))
}

func tokenMAC(key awsauth.Key, body string) []byte {
	derive := hmac.New(sha256.New, []byte(key.SecretAccessKey))
	derive.Write([]byte("sensorium flight bearer token v1"))
	mac := hmac.New(sha256.New, derive.Sum(nil))
	mac.Write([]byte(body))
	return mac.Sum(nil)
}

func (a *Authenticator) bearer(token string) (awsauth.Key, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return awsauth.Key{}, fmt.Errorf("the bearer token is not one this server issued")
	}
	key, ok := a.Keys.Lookup(parts[0])
	if !ok {
		return awsauth.Key{AccessKeyID: parts[0]}, fmt.Errorf("the bearer token's access key id %s is not in this server's credentials file", truncate(parts[0]))
	}
	mac, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(mac, tokenMAC(key, parts[0]+"."+parts[1])) {
		return awsauth.Key{AccessKeyID: parts[0]}, fmt.Errorf("the bearer token is not one this server issued")
	}
	exp, _ := strconv.ParseInt(parts[1], 10, 64)
	if !a.now().Before(time.Unix(exp, 0)) {
		return awsauth.Key{AccessKeyID: parts[0]}, fmt.Errorf("the bearer token expired at %s; Handshake again", time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	return key, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
