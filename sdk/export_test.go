package sdk

import "github.com/sensorium-io/sensorium/internal/platform/vfs"

// SetSpoolFS makes a spool use fsys (a crashing file system in tests).
func SetSpoolFS(c *SpoolConfig, fsys vfs.FS) { c.fs = fsys }

// SendTicks is how many times p's send loop has ticked.
func SendTicks(p *Producer) int64 { return p.sendTicks.Load() }
