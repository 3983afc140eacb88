// Package sdk is the Go client of Sensorium: a producer (frames in, fragments out
// over NATS JetStream, with acknowledgement events, a bounded buffer and re-sends
// after reconnects), a consumer that reads GetMedia output frame by frame and
// resumes from a continuation token, and an HTTP client for the control plane,
// the archived-media API and Arrow queries.
//
// It depends on the public packages mkv, signals and codecs only, never on the
// server's packages, so a device can link it without the server.
package sdk
