//go:build race

package compat

// raceEnabled builds the server with the race detector too when the tests
// have it (make test's -race): a race the SDKs' traffic provokes then fails
// the test whose server it was in, since the server exits 66 instead of 0.
const raceEnabled = true
