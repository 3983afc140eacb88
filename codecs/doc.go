// Package codecs owns how samples are encoded inside frames: the Codec
// interface, the registry that maps a codec ID to its implementation, one codec
// per file (plain.go, …), and the scalar frame format, a fixed header in front
// of a codec body (scalar_frame.go). The byte layouts are specified in
// FORMAT.md beside this file; a test checks the document against the code.
//
// It does not know MKV, NATS or the store: a frame is a byte slice to it. Signal
// descriptions and sample containers come from package signals.
//
// Every frame names its codec, so a writer may pick a different codec for each
// frame (the one that compresses that block best) and a reader needs nothing
// but the registry. Adding a codec takes one file, holding a type that
// implements Codec and an init function that Registers it, plus one row in the
// codec table of FORMAT.md (a test fails until the row is there). IDs are one
// namespace for every kind of signal and are never reused.
//
// Decoders treat their input as hostile: a corrupt or inconsistent frame is an
// error wrapping ErrCorrupt, never a panic, and a decoder allocates only what
// the length of its input justifies, so a forged sample count cannot make a
// reader allocate gigabytes.
package codecs
