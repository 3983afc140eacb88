// Package spool is the producer's disk spool: an append-only log of the
// fragments a producer has made and the server has not yet PERSISTED, kept in
// a folder under a byte budget, so that a producer killed or powered off
// re-sends them when it starts again.
//
// It owns the files and their format (sdk/SPOOL.md): segment files of
// fragment records, each with its length and CRC-32C; a done log of the
// sequences that need no re-send (PERSISTED, refused or dropped); a small
// metadata file with the producer id the spool belongs to. It repairs a torn
// tail on Open, fsyncs in groups through one flusher goroutine, and deletes a
// segment once all its records are done. It does not know NATS, acks or
// policies: package sdk decides what to append, what is done and what to drop.
//
// Memory: the spool keeps a few numbers per segment file and the done
// sequences above the oldest live one (as intervals), never a record's data;
// readers stream records from disk one at a time.
package spool
