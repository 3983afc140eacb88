// Package sampletable reads sampled signals out of table files — CSV,
// Parquet, and Arrow IPC in its file (.arrow, .feather, .ipc) and stream
// (.arrows) formats — batch by batch, and cuts them into blocks of
// evenly spaced samples (Chunker), ready for a scalar track.
//
// A table has a time column, or none (then the caller gives a start and a
// rate), and one column per channel. Whatever the file's size, memory holds
// one batch of rows and the chunks in flight: nothing reads a whole file.
//
// The rules it applies — how the time column is found and its unit told,
// how units come from headers and metadata, what an empty cell becomes, how
// irregular timestamps are split or refused — are documented for users in
// docs/IMPORT.md; the code below says why.
package sampletable
