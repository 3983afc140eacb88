// Package replicate copies chosen streams from an edge Sensorium server to a
// central one, fragment by fragment, exactly once at the centre, whatever
// either side or the link between them does: `sensorium replicate`.
//
// It reads the edge over its HTTP API (ListStreams, ListFragments,
// GetMediaForFragmentList, SigV4-signed when the edge wants it) and writes
// the centre over its NATS bus, on the fragment subject, as any producer
// does, with the store's own dedupe key (Sensorium-Producer-Id and
// Sensorium-Producer-Seq) on every fragment; or (Config.Via "http", for a
// site whose only way out is HTTPS) in PutMedia sessions over the centre's
// HTTP API that name the same key in Sensorium's headers (centre_http.go).
// The centre's control plane (DescribeStream, CreateStream, ListFragments)
// is its HTTP API.
//
// Exactly once. Each replicated stream has a journal in the state folder
// (journal.go, docs/REPLICATION.md) that assigns every edge fragment a
// producer sequence, and is on disk (fsync) before the fragment is sent.
// After a crash of the replicator, the centre or the link, the journal's
// unconfirmed fragments are sent again under the same keys, and the
// centre's store answers a fragment it already holds (or is about to apply
// from its bus) with PERSISTED and Duplicate instead of storing it twice,
// a window no look at the centre's fragments could close. The
// journal is checked against what the centre holds at start (the newest
// fragment's origin_fragment_number), so a journal that lags the centre
// never re-sends what the centre's dedupe may have forgotten.
//
// Several fragments of a stream are on their way at once, each naming its
// predecessor (Sensorium-Producer-Prev), so that a link with a long round
// trip is kept busy and the centre still stores them in the edge's order.
// A fragment the centre refuses stops the stream's copy at it (round.go,
// settleRefusal): the centre stores the ones after it already sent, so its
// copy may have a hole there, which the journal records and status and the
// metrics tell; nothing is confirmed past it until the centre takes it or
// an operator skips it (SkipRefused).
// Optionally (decimate.go) a stream's sampled signals reach the centre at a
// fraction of their rate, as block means on a grid counted from the epoch.
//
// The package owns the copy; it does not own either server's storage, the
// command line (cmd/sensorium/replicate.go) or the wire formats it uses
// (internal/platform/wire, mkv).
package replicate
