// Package store owns Sensorium's files: the catalog of streams and, per stream,
// append-only segments of checksummed, encrypted fragment records with a time
// index by producer and by server timestamp.
//
// Lifecycle. Open reads the catalog, opens every stream, repairs a torn tail
// of each stream's newest segment and seals it if a crash left it unsealed
// (Close seals it on a clean stop; see FORMAT.md): the first append after a
// start begins a new segment. The ingest path calls Append
// for each fragment in bus order and then SyncStreams once per batch: one fsync
// per stream covers every fragment of the batch (group commit), or, for a batch
// of many streams, one flush of the whole file system covers them all
// (groupsync.go); only then do readers see them and may the caller acknowledge
// them. Active segment files are kept open up to a cap (openfiles.go). An error from Append or Sync discards what
// was appended since the last Sync; the bus still holds it. A timer deletes
// whole segments past a stream's retention.
//
// Retention 0 ("live only", as the seed service means it). A stream with
// retention 0 writes nothing: each fragment gets its number and waits in an
// in-memory live buffer for GetMedia followers and live queries. The buffer
// holds at most 64 fragments, 64 MiB, and 5 minutes of server time (the seed
// service's live buffer is of that order); an older fragment is gone from
// every read, so "nothing kept" holds within five minutes even for a stream
// that receives nothing more. Raising the retention above 0 ends the live
// buffer: the first fragment the stream stores drops it, so reads stay in
// fragment-number order with no repeats. Lowering it to 0 deletes what was
// stored at the next retention pass.
//
// The store never interprets payloads: a fragment is an opaque MKV document with
// the numbers and timestamps the ingest path derived for it. Codecs and MKV
// parsing live in the query layer. Every file access goes through vfs.FS so that
// tests can make the disk fail or crash.
//
// Deliberately not here: replication (a cluster runs one store per replica,
// each consuming the same bus).
package store
