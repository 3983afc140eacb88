// Package examples holds runnable programs a user can copy; each lives in its own
// folder and imports only the SDK and the public packages. The example
// producers stream a simulated sensor (package simulate) where a real one would
// be read; examples/internal/stream is the flag and session handling they share.
package examples
