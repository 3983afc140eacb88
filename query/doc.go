// Package query is the read path: ListFragments, GetMedia (with live follow),
// GetMediaForFragmentList, and Arrow range queries. It reads fragments from the
// store, rewrites them into chunks with the seed service's MKV tags, and decodes
// frames with package codecs into Arrow record batches.
//
// It never writes to the store.
//
// # Time ranges
//
// ListFragments takes the seed service's TimestampRange, both ends inclusive.
// Its timestamps are seconds with a millisecond fraction, and listings report
// times floored to the millisecond while the store keeps ns, so an end on a
// whole millisecond covers that whole millisecond: an end copied from a listed
// ServerTimestamp or ProducerTimestamp includes that fragment.
//
// An Arrow query (POST /v1/query, Arrow Flight) takes start inclusive and end
// exclusive, and a basis:
//
//   - basis "producer" (the default) selects rows by their own time: the
//     producer's clock, to the sample. The range cuts inside fragments and
//     frames.
//   - basis "server" selects whole fragments by their server timestamp (when
//     the bus accepted them) in [start, end), and returns every row of each
//     fragment selected. The time column is still the producer's time of each
//     row, never the server time: server time says which fragments, producer
//     time says when each sample was taken. So the rows returned may lie
//     outside [start, end), and two back-to-back server-time ranges split the
//     data at a fragment boundary with no row lost or repeated.
//
// # GetMedia start selectors
//
// FRAGMENT_NUMBER must name a fragment the stream holds (ResourceNotFound
// otherwise, as in the seed service, rather than an empty response or a wait
// for a number that may never come); so must every number given to
// GetMediaForFragmentList.
//
// # Errors in a query
//
// A query is validated, and its schema fixed, before any row is read
// (PrepareQuery), so a bad request is a clean error. A fragment that fails
// later (a frame that does not decode, a damaged record) ends the query with
// an error naming the stream, fragment number and track. Query writes nothing
// before the first record batch, so a failure before it can still be answered
// with an error status; after it, the IPC stream ends without its end-of-stream
// marker, so a reader reads on to the end of the body and finds the error the
// transport adds there (HTTP: the Sensorium-Error trailer) instead of stopping
// at a marker that says the answer is complete.
package query
