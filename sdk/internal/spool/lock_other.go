//go:build !unix

package spool

// lockDir is a no-op where flock(2) is missing: the caller must not run two
// producers on one spool.
func lockDir(string) (func() error, error) { return func() error { return nil }, nil }
