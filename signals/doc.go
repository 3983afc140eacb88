// Package signals owns the kinds of signal Sensorium stores: their descriptions
// (the MKV CodecPrivate of a track), the Arrow schemas of query results, the
// definition of sample times, and the in-memory containers that codecs fill.
//
// It does not encode samples (package codecs does), read or write MKV (package
// mkv does) or talk to a server, and it imports nothing else of this module, so
// producers, the server and readers all share one definition of a signal.
//
// The first kind is Scalar: N channels sampled together at one rate (vibration
// axes, temperature, pressure, current). Every kind's description starts with
// the same preamble (magic, version, kind; see DescriptionKind), so a new kind
// adds a kind byte and a layout without touching the existing ones. The byte
// layouts are specified in FORMAT.md beside this file; a test keeps the two in
// step.
//
// Descriptions are validated when built or parsed. Functions that take a
// description on a hot path (Samples.Validate, the codecs) trust the rest of it
// and only check what they use, so validate once per track, not once per frame.
package signals
