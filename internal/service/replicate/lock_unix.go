//go:build unix

package replicate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockState takes an exclusive lock on the state folder, so that two
// replicators never share journals: each would re-send the other's
// fragments under its own view of the sequences.
func lockState(dir string) (func(), error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("replicate: lock state folder: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("replicate: state folder %s is in use by another replicator", dir)
		}
		return nil, fmt.Errorf("replicate: lock state folder %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
