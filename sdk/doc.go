// Package sdk is the Go client of Sensorium.
//
// Producer turns frames into fragments and delivers them to a stream over NATS
// JetStream: a fragment closes at a key frame once it is MinFragmentDuration
// long, or at MaxFragmentDuration or MaxFragmentSize, or when it has been open
// MaxFragmentDuration of wall time. Every fragment stays in a byte-bounded
// buffer until the server answers PERSISTED (after its fsync) or ERROR, and is
// re-sent after failed publishes, reconnects and overdue PERSISTED events; the
// server's dedupe makes re-sends harmless. When the buffer is full, Block makes
// PutFrame wait and DropOldest drops the oldest fragments and reports them.
// Acknowledgement events reach OnAck in order: RECEIVED (the bus has it), then
// PERSISTED or ERROR. SampleWriter makes frames of a scalar signal with exact
// sample times.
//
// NewMediaReader reads GetMedia and GetMediaForFragmentList output frame by
// frame with the track and fragment metadata (number, producer and server
// timestamps, tags); Client.Follow follows a stream live and resumes from the
// continuation token after a dropped connection. Client calls the HTTP API:
// the control plane, ListFragments, GetMedia and Arrow queries.
//
// It depends on the public packages mkv, signals and codecs (and the bus
// contract in internal/wire), never on the server's packages, so a device can
// link it without the server.
package sdk
