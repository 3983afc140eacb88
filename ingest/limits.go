package ingest

import "time"

// Limits bound what one fragment may be. The defaults follow the seed service
// where it has a number (tracks, metadata tags, duration) and the bus where it
// does not.
type Limits struct {
	MaxFragmentSize     int           // bytes of the MKV fragment; default 50 MB (MaxFragmentSizeDefault), the seed service's
	MaxFragmentDuration time.Duration // default 10 s… plus slack, see DefaultLimits
	MaxTracks           int           // default 3
	MaxFragmentFrames   int           // blocks per fragment; default 100000 (10 s of 10 kHz frames)
	MaxFragmentTags     int           // producer metadata tags per fragment; default 10
	MaxTagLength        int           // bytes of a tag name or value; default 1024
	// MaxClockAhead refuses a producer timestamp further ahead of the server's
	// clock than this (INVALID_PRODUCER_TIMESTAMP); default 24 h.
	MaxClockAhead time.Duration
}

// MaxFragmentSizeDefault is the seed service's fragment size limit, 50 MB.
// A fragment larger than a bus message travels as chunks (chunks.go).
const MaxFragmentSizeDefault = 50_000_000

// DefaultLimits returns the default limits.
func DefaultLimits() Limits {
	return Limits{
		MaxFragmentSize: MaxFragmentSizeDefault,
		// The seed service refuses fragments past about 10 s of timecode span;
		// producers that close at 10 s still add their last frame's duration.
		MaxFragmentDuration: 20 * time.Second,
		MaxTracks:           3,
		MaxFragmentFrames:   100_000,
		MaxFragmentTags:     10,
		MaxTagLength:        1024,
		MaxClockAhead:       24 * time.Hour,
	}
}

func (l *Limits) setDefaults() {
	d := DefaultLimits()
	if l.MaxFragmentSize <= 0 {
		l.MaxFragmentSize = d.MaxFragmentSize
	}
	if l.MaxFragmentDuration <= 0 {
		l.MaxFragmentDuration = d.MaxFragmentDuration
	}
	if l.MaxTracks <= 0 {
		l.MaxTracks = d.MaxTracks
	}
	if l.MaxFragmentFrames <= 0 {
		l.MaxFragmentFrames = d.MaxFragmentFrames
	}
	if l.MaxFragmentTags <= 0 {
		l.MaxFragmentTags = d.MaxFragmentTags
	}
	if l.MaxTagLength <= 0 {
		l.MaxTagLength = d.MaxTagLength
	}
	if l.MaxClockAhead <= 0 {
		l.MaxClockAhead = d.MaxClockAhead
	}
}
