// Package mcap reads and writes MCAP files, the container format of ROS 2
// and Foxglove recordings, as its published specification defines them
// (https://mcap.dev/spec, major version 0). FORMAT.md says which records are
// read and written and how.
//
// Reader streams a file from the start: it yields each Message record with
// its Channel and Schema, descends into Chunk records (uncompressed, zstd or
// lz4) and checks every CRC the file carries — each chunk's, the data
// section's (Data End), the summary's (Footer) and each attachment's — so a
// damaged file fails with the offset of the record that is wrong. It holds
// one record (one decompressed chunk) at a time: memory is bounded by the
// largest chunk, whatever the file's size, and Options.MaxRecordSize caps it.
// ReadSummary reads the summary section of a file that can be read at any
// offset (the index readers use: Chunk Index, Statistics, Schema and Channel
// copies).
//
// Writer writes chunked, indexed files: Schema and Channel records in the
// chunk where they are first used, a Message Index per channel after each
// chunk, then a summary section with every Schema and Channel, a Chunk Index
// per chunk and a Statistics record, the Summary Offset records and the
// Footer, each CRC filled in. It holds one chunk's records in memory
// (WriterOptions.ChunkSize) and, for the summary, a few dozen bytes per
// chunk and per channel.
package mcap
