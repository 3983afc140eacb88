package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Stream statuses, as the seed service names them.
const (
	StatusActive   = "ACTIVE"
	StatusDeleting = "DELETING"
)

// Limits of the catalog, as the seed service has them.
const (
	MaxStreamNameLen    = 256
	MaxDeviceNameLen    = 128
	MaxMediaTypeLen     = 128
	MaxKMSKeyIDLen      = 2048
	MaxTagsPerStream    = 50
	MaxTagKeyLen        = 128
	MaxTagValueLen      = 256
	MaxRetentionHours   = 87600 // ten years
	DefaultStreamsLimit = 10000
)

var (
	streamNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)
	deviceNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)
	mediaTypeRE  = regexp.MustCompile(`^[\w\-\.\+]+/[\w\-\.\+]+(,[\w\-\.\+]+/[\w\-\.\+]+)*$`)
)

// StreamInfo describes a stream, with the seed service's fields.
type StreamInfo struct {
	Name           string
	ARN            string
	DeviceName     string
	MediaType      string
	KMSKeyID       string
	Version        string // changes on every update
	Status         string
	CreationTime   time.Time
	RetentionHours int // 0: live only, nothing kept
	Tags           map[string]string
}

// Retention is the stream's retention as a duration.
func (s *StreamInfo) Retention() time.Duration { return time.Duration(s.RetentionHours) * time.Hour }

// Clone returns a copy that shares nothing with s.
func (s StreamInfo) Clone() StreamInfo {
	c := s
	c.Tags = make(map[string]string, len(s.Tags))
	for k, v := range s.Tags {
		c.Tags[k] = v
	}
	return c
}

// CreateStreamInput is what CreateStream takes.
type CreateStreamInput struct {
	Name           string
	DeviceName     string
	MediaType      string
	KMSKeyID       string
	RetentionHours int
	Tags           map[string]string
}

// ValidateStreamName checks a name as the seed service does.
func ValidateStreamName(name string) error {
	if len(name) < 1 || len(name) > MaxStreamNameLen || !streamNameRE.MatchString(name) {
		return invalid("StreamName %q must be 1 to %d characters of [a-zA-Z0-9_.-]", truncate(name, 300), MaxStreamNameLen)
	}
	return nil
}

func validateDeviceName(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > MaxDeviceNameLen || !deviceNameRE.MatchString(s) {
		return invalid("DeviceName must be 1 to %d characters of [a-zA-Z0-9_.-]", MaxDeviceNameLen)
	}
	return nil
}

func validateMediaType(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > MaxMediaTypeLen || !mediaTypeRE.MatchString(s) {
		return invalid("MediaType %q is not a media type such as video/h264 or application/x-sensorium", truncate(s, 200))
	}
	return nil
}

func validateTags(existing, add map[string]string) error {
	n := len(existing)
	for k, v := range add {
		if len(k) < 1 || len(k) > MaxTagKeyLen {
			return invalid("tag key %q must be 1 to %d characters", truncate(k, 200), MaxTagKeyLen)
		}
		if len(v) > MaxTagValueLen {
			return invalid("tag value for %q is longer than %d characters", truncate(k, 200), MaxTagValueLen)
		}
		if _, ok := existing[k]; !ok {
			n++
		}
	}
	if n > MaxTagsPerStream {
		return refuse(ErrTooManyTags, "a stream can have at most %d tags", MaxTagsPerStream)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ARN returns the stream ARN in the seed service's form.
func ARN(region, account, name string, created time.Time) string {
	return fmt.Sprintf("arn:aws:kinesisvideo:%s:%s:stream/%s/%d", region, account, name, created.UnixMilli())
}

// parseARN returns the stream name of an ARN of ours.
func parseARN(arn string) (string, error) {
	const marker = ":stream/"
	if !strings.HasPrefix(arn, "arn:") {
		return "", invalid("StreamARN %q is not an ARN", truncate(arn, 300))
	}
	i := strings.Index(arn, marker)
	if i < 0 {
		return "", invalid("StreamARN %q is not a stream ARN", truncate(arn, 300))
	}
	rest := arn[i+len(marker):]
	j := strings.LastIndexByte(rest, '/')
	if j <= 0 {
		return "", invalid("StreamARN %q is not a stream ARN", truncate(arn, 300))
	}
	if _, err := strconv.ParseInt(rest[j+1:], 10, 64); err != nil {
		return "", invalid("StreamARN %q is not a stream ARN", truncate(arn, 300))
	}
	return rest[:j], nil
}

// NewVersion returns a fresh stream version: the seed service's versions are
// opaque strings that change on every update.
func NewVersion() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// streamDirName is the folder of one incarnation of a stream. A name can be 256
// bytes, past most file systems' 255-byte limit once the suffix is added, so a
// long name is cut and made unique with a hash of the whole.
func streamDirName(name string, created time.Time) string {
	const keep = 180
	if len(name) > keep {
		sum := sha256.Sum256([]byte(name))
		name = name[:keep] + "~" + hex.EncodeToString(sum[:8])
	}
	return name + "@" + strconv.FormatInt(created.UnixMilli(), 10)
}

func (s *Store) streamDir(rel string) string { return filepath.Join(s.dir, "streams", rel) }
