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
// Writers encode a track through a ScalarEncoder, which remembers what each
// float channel was counted in (its scale, offset or decimal step) from frame
// to frame, so that only a signal that changes pays for the search; every
// frame still carries its own mapping.
//
// Besides the numeric codec, three layouts serve signals it does not fit:
//
//   - lossless-audio (audio.go, audio_blocks.go, audio_lpc.go,
//     audio_rangecoder.go): LPC prediction in blocks, stereo decorrelation
//     and an adaptive range coder, for PCM audio — EncodeAudioFrame and
//     DecodeAudioFrame turn a PCM track's frames into self-contained
//     compressed frames and back to the very bytes — and for any integer
//     scalar track a linear predictor suits.
//   - compact (compact.go, and its version 2, compact2.go, which writers
//     use): short frames of slow signals, whose fixed header and
//     per-channel fields would cost more than the values; its start counts
//     from the block time, so a reader needs it (DecodeScalarFrameAt).
//     RADAR scans use the same coding per column in a compact columnar
//     frame (version 4; version 2 in the first coding).
//   - the sweep geometry (sweep_geometry.go, columnar version 3): LIDAR
//     points coded as range and offset from the direction the beam is
//     expected to point, instead of x, y, z each from its predecessor.
//
// Readers accept every version a writer ever made; writers pick, per frame,
// the layout that is smallest.
//
// Queries decode frames into Arrow (ArrowDecoder, one per kind of signal,
// registered like the codecs). The scalar, IMU and audio decoders are
// BatchDecoders too: they build each record batch themselves and decode
// every channel straight into its array's buffer, with no builder in between
// and no copy once decoded. The multi-element kinds (detections, points)
// gather their rows into builders, since a sweep's points are stored ring by
// ring and come back in the producer's order.
//
// Decoders treat their input as hostile: a corrupt or inconsistent frame is an
// error wrapping ErrCorrupt, never a panic, and a decoder allocates only what
// the length of its input justifies, so a forged sample count cannot make a
// reader allocate gigabytes.
package codecs
