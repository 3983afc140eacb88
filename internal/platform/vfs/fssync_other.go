//go:build !linux

package vfs

import (
	"errors"
	"fmt"
)

func (osFS) OpenFileSystem(dir string) (FileSystem, error) {
	return nil, fmt.Errorf("vfs: no syncfs on this system: %w", errors.ErrUnsupported)
}
