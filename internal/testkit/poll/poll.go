// Package poll is how tests wait: they poll a condition that says what it
// is still waiting for, never sleep a guessed time (nats-server's checkFor
// is the model). Only tests import it.
package poll

import (
	"testing"
	"time"
)

// Until calls check every interval until it returns nil, and fails the
// test with check's last error once timeout has passed.
func Until(t testing.TB, timeout, interval time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(interval)
	}
}
