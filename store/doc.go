// Package store owns Sensorium's files: the catalog of streams and, per stream,
// append-only segments of checksummed fragment records with a time index by
// producer and by server timestamp.
//
// Lifecycle. Open reads the catalog, opens every stream and repairs a torn tail
// of each stream's active segment (see FORMAT.md). The ingest path calls Append
// for each fragment in bus order and then Sync once per batch: one fsync covers
// every fragment of the batch (group commit), and only then do readers see them
// and may the caller acknowledge them. An error from Append or Sync discards what
// was appended since the last Sync; the bus still holds it. A timer deletes
// whole segments past a stream's retention.
//
// The store never interprets payloads: a fragment is an opaque MKV document with
// the numbers and timestamps the ingest path derived for it. Codecs and MKV
// parsing live in the query layer. Every file access goes through vfs.FS so that
// tests can make the disk fail or crash.
//
// Deliberately not here yet: encryption at rest (the record header reserves the
// key id and nonce; key id 0 means plaintext) and replication (a cluster runs
// one store per replica, each consuming the same bus).
package store
