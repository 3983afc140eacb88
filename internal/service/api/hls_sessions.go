package api

import (
	"bytes"
	"cmp"
	"slices"
	"sync"
	"time"
)

// The service's limit on streaming sessions: a stream has at most ten
// active HLS sessions, and apart from them ten active DASH sessions; when a
// session is made while ten are active, the oldest (earliest created) is
// closed, and its playlists, manifest and segments are refused from then on
// as an expired session's are (NotAuthorizedException).
//
// A session is its signed token (hls_token.go): nothing else is needed to
// serve it, so that a restart or another node of a cluster serves it. What
// a token cannot say is that ten newer sessions have closed it; that is
// this table, kept in memory per node. Per stream and protocol it holds the
// active sessions it knows (at most ten, ordered by creation) and the
// newest one it closed. Sessions are closed oldest first, so every session
// created at or before the newest closed one is closed or expired: one mark
// per stream says which tokens to refuse, however many sessions were made.
//
// The table knows the sessions this node made and those whose players have
// fetched from it. A session it does not know — made before a restart, or
// by another node — is taken in at its first GET as if made then, in its
// place by creation time: if ten newer are active it is the oldest and is
// closed at once. So after a restart the limit holds again as players come
// back; only a session closed before the restart can play again, until ten
// newer sessions of its stream have been seen. In a cluster each node keeps
// its own table: a stream's sessions are counted per node that serves them
// (docs/MEDIA-OUT.md says when that is more than one).

// maxActiveSessions is the service's limit per stream and protocol.
const maxActiveSessions = 10

// sessionSweepEvery is how often the table drops what can no longer
// matter: expired sessions, and marks older than the longest expiry.
const sessionSweepEvery = time.Minute

// sessionTableKey is one stream (its creation time too: a stream deleted
// and made again is another) and one protocol.
type sessionTableKey struct {
	stream  string
	created int64 // the stream's CreationTime, Unix ms, as the token has it
	proto   byte
}

// sessionRef is a session as the table orders it: by creation time, then
// by id (sessions of one nanosecond are ordered, if arbitrarily, the same
// way on every node).
type sessionRef struct {
	created int64 // Unix ns
	id      [sessionIDLen]byte
	expires int64 // Unix s
}

func (a sessionRef) compare(b sessionRef) int {
	if c := cmp.Compare(a.created, b.created); c != 0 {
		return c
	}
	return bytes.Compare(a.id[:], b.id[:])
}

// streamSessions is one stream's sessions of one protocol.
type streamSessions struct {
	active []sessionRef // oldest first; at most maxActiveSessions
	closed sessionRef   // the newest closed; created 0: none
}

// sessionTable is a node's table of live sessions. Its size is bounded by
// the streams that had sessions in the last maxSessionExpiry (12 h), ten
// sessions each per protocol: a sweep drops the rest.
type sessionTable struct {
	mu        sync.Mutex
	streams   map[sessionTableKey]*streamSessions
	lastSweep time.Time
}

func newSessionTable() *sessionTable {
	return &sessionTable{streams: map[sessionTableKey]*streamSessions{}}
}

// admit counts the session as active — a new one, or one the table meets
// for the first time — closing the oldest of its stream's past the limit,
// and reports whether the session may play: false when it is closed (it
// was, or it is the oldest now).
func (t *sessionTable) admit(s *hlsSession, now time.Time) bool {
	ref := sessionRef{created: s.Created, id: s.ID, expires: s.Expires}
	key := sessionTableKey{stream: s.Stream, created: s.StreamCreated, proto: s.Proto}
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.lastSweep) >= sessionSweepEvery {
		t.sweepLocked(now)
	}
	ss := t.streams[key]
	if ss == nil {
		ss = &streamSessions{}
		t.streams[key] = ss
	}
	ss.dropExpired(now)
	if ss.closed.created != 0 && ref.compare(ss.closed) <= 0 {
		return false
	}
	i, found := slices.BinarySearchFunc(ss.active, ref, sessionRef.compare)
	if found {
		return true
	}
	ss.active = slices.Insert(ss.active, i, ref)
	if len(ss.active) <= maxActiveSessions {
		return true
	}
	oldest := ss.active[0]
	ss.active = slices.Delete(ss.active, 0, 1)
	ss.closed = oldest
	return oldest.compare(ref) != 0
}

// active is how many sessions of the stream the table counts as active.
func (t *sessionTable) active(stream string, streamCreated int64, proto byte, now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	ss := t.streams[sessionTableKey{stream, streamCreated, proto}]
	if ss == nil {
		return 0
	}
	ss.dropExpired(now)
	return len(ss.active)
}

// dropExpired forgets the sessions past their expiry: they no longer count
// towards the limit (a GET of one is refused for its expiry anyway).
func (ss *streamSessions) dropExpired(now time.Time) {
	ss.active = slices.DeleteFunc(ss.active, func(r sessionRef) bool { return now.Unix() >= r.expires })
}

// sweepLocked drops the streams the table need not remember: no active
// session, and a mark so old that every session at or before it has
// expired (a session lasts at most maxSessionExpiry).
func (t *sessionTable) sweepLocked(now time.Time) {
	t.lastSweep = now
	stale := now.Add(-maxSessionExpiry * time.Second).UnixNano()
	for k, ss := range t.streams {
		ss.dropExpired(now)
		if len(ss.active) == 0 && ss.closed.created < stale {
			delete(t.streams, k)
		}
	}
}
