package sdk

import "github.com/sensorium-io/sensorium/internal/platform/vfs"

// SetSpoolFS makes a spool use fsys (a crashing file system in tests).
func SetSpoolFS(c *SpoolConfig, fsys vfs.FS) { c.fs = fsys }

// SendTicks is how many times p's send loop has ticked.
func SendTicks(p *Producer) int64 { return p.sendTicks.Load() }

// LoseEvents makes p lose the acknowledgement events lose returns true for,
// as a connection whose events core NATS drops would.
func LoseEvents(p *Producer, lose func(AckEvent) bool) { p.loseEvent.Store(&lose) }
