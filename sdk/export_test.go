package sdk

import "github.com/sensorium-io/sensorium/internal/platform/vfs"

// SetSpoolFS makes a spool use fsys (a crashing file system in tests).
func SetSpoolFS(c *SpoolConfig, fsys vfs.FS) { c.fs = fsys }
