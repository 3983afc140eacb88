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
// # Shapes
//
// One query model serves every transport (POST /v1/query, Arrow Flight, the
// CLI); ParseRequest reads its JSON.
//
//   - samples (the default): a row per sample, detection or point, or per
//     frame with layout "frames".
//   - windows: a row per fixed-length window of a sampled signal (scalar,
//     IMU, audio): its start, the fragments its samples came from, and one
//     FixedSizeList tensor per channel. Windows sit on a grid of times from
//     an anchor (Window has the definition), so windows of different streams,
//     of a resumed query and of Flight partitions line up, and a gap drops
//     the windows it cuts without moving the ones after it.
//   - aggregate: a row of statistics (min, max, mean, RMS, count) per
//     window of the windows shape's grid, computed in the decode workers
//     (aggregate.go).
//   - aligned: several sampled streams (or tracks) on one clock — a rate
//     grid from an anchor, or a reference input's sample times — with the
//     interpolation policy the request states (none, previous, linear);
//     Align says what each gives, and a gap comes back as nulls.
//
// The windows and aligned shapes cut by the samples' own time, so they take
// basis producer only.
//
// # Streams
//
// A samples or windows query reads one stream ("stream") or several
// ("streams", of one schema): then a first column, "stream", dictionary
// encoded, names each row's stream (streams.go). The aligned shape names its
// streams in its inputs.
//
// # Reading: the decode pipeline
//
// A range is read as jobs of consecutive fragments that a few workers
// (Options.DecodeWorkers, default GOMAXPROCS as the query starts, up to 4) decode in parallel,
// ahead of the writer, each into its own record batches; the batches go out
// in fragment order (pipeline.go). Memory is bounded whatever the range — a
// few jobs in flight, a few batches each — and the work stops when the
// context ends (the client went away) or the writer fails. Batches hold about
// batch_rows rows, ending on a frame; each job's last batch holds what is left
// of it, so some batches are smaller. The first batch holds at most 48 KiB
// of rows (4096 rows of a kind with lists) and the next ones double up to
// batch_rows, and one worker decodes until the
// first batch is out, so that the first rows come within a few ms whatever
// the range.
//
// # Partitions
//
// Prepared.Partitions cuts a query into disjoint parts that together return
// exactly its rows (Arrow Flight's endpoints): by stream, then in equal time
// spans, with the cuts of a windows query halfway between grid times and
// every part keeping the query's anchor. A live query is not split in time.
//
// # Live queries and continuation
//
// With follow (and no end) a query returns the stored rows, then new ones as
// their fragments become durable, until the client goes away. Whenever it
// has caught up it hands on what it holds (a part-filled windows or aligned
// batch). A job that stops and resumes continues from what it consumed: start
// at the last row's time + 1 ns (samples), or at the next window's grid time
// with the same window anchor (windows), or the next grid time with the same
// align anchor (aligned). Rows come in fragment order, which is time order
// while the producer's clock runs forward.
//
// # GetMedia start selectors
//
// FRAGMENT_NUMBER must name a fragment the stream holds (an error of kind
// store.ErrFragmentNotFound, ResourceNotFound over HTTP, otherwise, as in the seed service, rather than an empty response or a wait
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
//
// Errors say what went wrong, not how a transport names it (see errors.go):
// a *RequestError for a request refused as it stands, the store's *store.Error
// passed through, a *FragmentError for a fragment that failed mid-query. The
// HTTP API and Arrow Flight map them to their names and codes.
package query
