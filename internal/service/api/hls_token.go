package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
)

// An HLS session's token carries the whole session — the stream (and its
// creation time, so that a stream deleted and created again under the same
// name is another stream), the playback mode and range, the expiry, and
// what its first fragment said (codecs, timing) — signed with an HMAC, so
// that the server keeps no session table and any node of a cluster serves
// it. It is unguessable (a random 8-byte id, and the MAC), expires, is bound
// to its stream and parameters, and is not the caller's secret key. Its
// contents are not secret: they are the caller's own request.
//
// The one thing a token cannot carry is whether ten newer sessions of its
// stream have closed it: that is the node's session table (hls_sessions.go).
//
// Layout (all integers big-endian, then base64url without padding):
//
//	u8 version (2), id [8], u8 mode, u8 basis, u8 discontinuity, u8 display,
//	i64 start, i64 end, u32 max results, i64 expires (s), i64 created (ns),
//	i64 stream creation (ms), u64 anchor fragment, i64 origin (ns), i64 decode
//	delay (ns), i64 audio anchor (ns), u16 width, u16 height, u32 bandwidth,
//	u16 target duration (s), [8] tracks hash, u8 protocol (0 HLS, 1 DASH),
//	u16 n + stream name, u16 n + codecs, then HMAC-SHA256 of all that, its
//	first 16 bytes.
//
// Version 2 added the protocol (HLS and DASH sessions are counted apart, and
// a session plays only on its own protocol's paths) and made created ns (the
// session table orders sessions by it: the oldest of a stream is closed, and
// sessions made in one millisecond are common). A version 1 token is
// refused: its player starts a new session.
const (
	tokenVersion  = 2
	sessionIDLen  = 8
	tokenMACLen   = 16
	tracksHashLen = 8
)

// Playback modes, basis and the playlist options as the token keeps them.
const (
	modeLive byte = iota
	modeLiveReplay
	modeOnDemand
)

// The protocols of a session: its token plays on its protocol's paths only.
const (
	protoHLS byte = iota
	protoDASH
)

const (
	discontinuityAlways byte = iota
	discontinuityNever
	discontinuityOn
)

// hlsSession is a session, as its token holds it.
type hlsSession struct {
	ID             [sessionIDLen]byte
	Mode           byte
	Range          timeRange
	Discontinuity  byte
	Display        bool  // DisplayFragmentTimestamp ALWAYS
	Max            int   // MaxMediaPlaylistFragmentResults
	Expires        int64 // Unix seconds
	Created        int64 // Unix ns
	StreamCreated  int64 // the stream's CreationTime, Unix ms
	Anchor         uint64
	Origin         int64 // the anchor fragment's start on the range's basis, ns
	DecodeDelay    int64
	AudioAnchor    int64
	Width, Height  int
	Bandwidth      int
	TargetDuration int
	TracksHash     [tracksHashLen]byte
	Proto          byte // protoHLS or protoDASH
	Stream         string
	Codecs         string
}

// sessionKey is the HMAC key of the tokens. With credentials it is derived
// from the key every node of a cluster signs with (awsauth.Keys.Any; every
// node reads the same credentials file), so that any node verifies a token
// another made, and restarts keep sessions; without, a random key of this
// process (a server that checks no signature gives sessions to anyone who
// asks anyway).
func sessionKey(v *awsauth.Verifier) []byte {
	if v != nil && v.Keys != nil {
		if k, ok := v.Keys.Any(); ok {
			h := hmac.New(sha256.New, []byte("sensorium: HLS session tokens, v1"))
			h.Write([]byte(k.SecretAccessKey))
			return h.Sum(nil)
		}
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return key
}

func (s *hlsSession) encode(key []byte) string {
	b := []byte{tokenVersion}
	b = append(b, s.ID[:]...)
	b = append(b, s.Mode, byte(s.Range.basis), s.Discontinuity, boolByte(s.Display))
	for _, v := range []int64{s.Range.start, s.Range.end} {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(s.Max))
	for _, v := range []int64{s.Expires, s.Created, s.StreamCreated, int64(s.Anchor), s.Origin, s.DecodeDelay, s.AudioAnchor} {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	b = binary.BigEndian.AppendUint16(b, uint16(s.Width))
	b = binary.BigEndian.AppendUint16(b, uint16(s.Height))
	b = binary.BigEndian.AppendUint32(b, uint32(s.Bandwidth))
	b = binary.BigEndian.AppendUint16(b, uint16(s.TargetDuration))
	b = append(b, s.TracksHash[:]...)
	b = append(b, s.Proto)
	for _, str := range []string{s.Stream, s.Codecs} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(str)))
		b = append(b, str...)
	}
	return base64.RawURLEncoding.EncodeToString(append(b, tokenMAC(key, b)...))
}

func tokenMAC(key, payload []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(payload)
	return h.Sum(nil)[:tokenMACLen]
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

var errBadToken = errors.New("not a session token of this server")

// decodeSession parses a token; with verify, its MAC must be good.
func decodeSession(token string, key []byte, verify bool) (*hlsSession, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < 1+tokenMACLen || b[0] != tokenVersion {
		return nil, errBadToken
	}
	payload, mac := b[:len(b)-tokenMACLen], b[len(b)-tokenMACLen:]
	if verify && !hmac.Equal(mac, tokenMAC(key, payload)) {
		return nil, errBadToken
	}
	r := tokenReader{b: payload[1:]}
	s := &hlsSession{}
	copy(s.ID[:], r.bytes(sessionIDLen))
	flags := r.bytes(4)
	if flags != nil {
		s.Mode, s.Discontinuity, s.Display = flags[0], flags[2], flags[3] == 1
		s.Range.basis = storeBasis(flags[1])
	}
	s.Range.start, s.Range.end = int64(r.u64()), int64(r.u64())
	s.Max = int(r.u32())
	s.Expires, s.Created, s.StreamCreated = int64(r.u64()), int64(r.u64()), int64(r.u64())
	s.Anchor, s.Origin, s.DecodeDelay, s.AudioAnchor = r.u64(), int64(r.u64()), int64(r.u64()), int64(r.u64())
	s.Width, s.Height, s.Bandwidth, s.TargetDuration = int(r.u16()), int(r.u16()), int(r.u32()), int(r.u16())
	copy(s.TracksHash[:], r.bytes(tracksHashLen))
	if p := r.bytes(1); p != nil {
		s.Proto = p[0]
	}
	s.Stream, s.Codecs = string(r.bytes(int(r.u16()))), string(r.bytes(int(r.u16())))
	if r.bad || len(r.b) != 0 || s.Mode > modeOnDemand || s.Discontinuity > discontinuityOn || s.Proto > protoDASH || s.Stream == "" {
		return nil, fmt.Errorf("%w (malformed)", errBadToken)
	}
	return s, nil
}

// tokenReader reads a token's fields; past the end it marks the token bad.
type tokenReader struct {
	b   []byte
	bad bool
}

func (r *tokenReader) bytes(n int) []byte {
	if n > len(r.b) {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *tokenReader) u16() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *tokenReader) u32() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *tokenReader) u64() uint64 {
	if b := r.bytes(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}
