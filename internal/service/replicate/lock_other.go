//go:build !unix

package replicate

// lockState is not enforced where flock is missing: run one replicator
// per state folder.
func lockState(dir string) (func(), error) { return func() {}, nil }
