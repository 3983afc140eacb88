package api

import (
	"bytes"
	"io"
	"net/http"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/query"
	"github.com/sensorium-io/sensorium/store"
)

// Least privilege per key (awsauth.Grant): every operation is wrapped by
// authorized, which refuses with 403 AccessDeniedException a request whose
// key is not granted the operation, or names a stream outside the key's
// streams. It runs after the signature is verified and before anything
// touches a stream — the store, the bus, another cluster node — so a
// refusal says nothing of whether the stream exists. A presigned URL is
// held to the grant of the key that signed it, since Verify reports that
// key. Without --credentials there is no identity and nothing is refused.

// streamsOf names the streams a request is about. An error is the answer
// the operation itself would give to the malformed request (a bad body, a
// bad stream name): a restricted key gets that, never a pass on a request
// whose streams could not be read.
type streamsOf func(r *http.Request, body []byte) ([]string, error)

// authorized wraps an operation with its grant check.
func (a *api) authorized(action string, names streamsOf, h http.HandlerFunc) http.HandlerFunc {
	if a.opts.Auth == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		id, _ := awsauth.IdentityFrom(r.Context())
		g := id.Grant
		if g.Unrestricted() {
			h(w, r)
			return
		}
		if !g.AllowsAction(action) {
			a.deny(w, r, id, action, "", "this access key is not granted %s (its actions = line)", action)
			return
		}
		if names != nil && !g.AllStreams() {
			var body []byte
			if r.URL.Path != "/putMedia" { // its body streams; its stream is in a header
				var err error
				if body, err = readBody(w, r); err != nil {
					writeError(w, err)
					return
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			streams, err := names(r, body)
			if err != nil {
				writeError(w, err)
				return
			}
			for _, s := range streams {
				if !g.AllowsStream(s) {
					a.deny(w, r, id, action, s, "this access key is not granted %s on stream %s (its streams = line)", action, s)
					return
				}
			}
		}
		h(w, r)
	}
}

// deny answers AccessDeniedException and logs who was refused what (the
// key id and profile, never a secret).
func (a *api) deny(w http.ResponseWriter, r *http.Request, id awsauth.Identity, action, stream, format string, args ...any) {
	a.log.Warn("http: request refused", "error", httpwire.AccessDenied, "access_key", id.AccessKeyID, "profile", id.Profile,
		"action", action, "stream", stream, "path", r.URL.Path, "remote", r.RemoteAddr)
	writeError(w, httpwire.Errorf(httpwire.AccessDenied, format, args...))
}

// unrestrictedOnly guards the cluster's own routes (status, node removal,
// the fills between nodes): they span every stream, so only a key without
// a grant may call them — the key the nodes sign with (awsauth.Keys.Any).
func (a *api) unrestrictedOnly(h http.HandlerFunc) http.HandlerFunc {
	if a.opts.Auth == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if id, _ := awsauth.IdentityFrom(r.Context()); !id.Grant.Unrestricted() {
			a.deny(w, r, id, "cluster", "", "the cluster's routes take an access key without streams = or actions = lines")
			return
		}
		h(w, r)
	}
}

// bodyStream reads StreamName / StreamARN of a KVS request body (every
// control-plane and media operation names its stream so).
func bodyStream(_ *http.Request, body []byte) ([]string, error) {
	var in httpwire.StreamRef
	if err := decodeBody(body, &in); err != nil {
		return nil, err
	}
	name, err := store.ResolveName(ref(in))
	if err != nil {
		return nil, err
	}
	return []string{name}, nil
}

// headerStream reads PutMedia's stream from its headers.
func headerStream(r *http.Request, _ []byte) ([]string, error) {
	name, err := store.ResolveName(store.StreamRef{Name: r.Header.Get(headerStreamName), ARN: r.Header.Get(headerStreamARN)})
	if err != nil {
		return nil, err
	}
	return []string{name}, nil
}

// queryStreams reads the streams of a POST /v1/query body.
func queryStreams(_ *http.Request, body []byte) ([]string, error) {
	req, err := query.ParseRequest(body)
	if err != nil {
		return nil, err
	}
	return req.StreamNames(), nil
}

// grantedStreams filters a page of streams to those the request's key may
// see. ListStreams shows only those, rather than refusing the listing of a
// key whose grant covers some streams: it is how a restricted client finds
// its streams, and the others stay invisible to it, as an IAM policy's
// resource condition would have them.
func grantedStreams(r *http.Request, infos []store.StreamInfo) []store.StreamInfo {
	id, _ := awsauth.IdentityFrom(r.Context())
	if id.Grant.AllStreams() {
		return infos
	}
	out := infos[:0:0]
	for _, i := range infos {
		if id.Grant.AllowsStream(i.Name) {
			out = append(out, i)
		}
	}
	return out
}
