package signals

import (
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every error about a malformed or out-of-range
// description, sample type or sample block, so callers can answer "invalid
// argument" without parsing messages.
var ErrInvalid = errors.New("invalid signal description")

// Kind says which kind of signal a description describes. Its values are part of
// the description format (FORMAT.md): never renumber them.
type Kind uint8

// The kinds. The numbers are part of the description format.
const (
	KindScalar     Kind = 1 // N channels sampled together at one rate
	KindIMU        Kind = 2 // accelerometer, gyroscope and optional magnetometer axes
	KindAudio      Kind = 3 // PCM audio, carried as MKV A_PCM so that players play it
	KindPointCloud Kind = 4 // LIDAR sweeps: points with x, y, z, intensity, ring, time offset …
	KindDetections Kind = 5 // RADAR scans: detections with range, azimuth, elevation, velocity, RCS, SNR
	KindArray      Kind = 6 // a 2-D array per frame: RADAR range × Doppler cube, depth or thermal image
	KindVideo      Kind = 7 // H.264 access units, passed through
	KindOpaque     Kind = 8 // bytes with a media type
)

var kindNames = map[Kind]string{
	KindScalar: "scalar", KindIMU: "imu", KindAudio: "audio", KindPointCloud: "pointcloud",
	KindDetections: "detections", KindArray: "array", KindVideo: "video", KindOpaque: "opaque",
}

// String returns the kind's name, or "kind(N)" for an unknown one.
func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// The preamble every description starts with, whatever its kind. It never
// changes: the version byte is the version of the layout of that kind after it.
const (
	descMagic      = "SNSR"
	offMagic       = 0
	offVersion     = 4
	offKind        = 5
	descPreambleSz = 6
)

// DescriptionKind reads the kind of a description from its preamble without
// parsing the rest, so a reader can pick the parser (ParseScalar, …) for it.
func DescriptionKind(b []byte) (Kind, error) {
	k, _, err := parsePreamble(b)
	if err != nil {
		return 0, fmt.Errorf("signals: description kind: %w", err)
	}
	return k, nil
}

func parsePreamble(b []byte) (kind Kind, version uint8, err error) {
	if len(b) < descPreambleSz {
		return 0, 0, fmt.Errorf("%w: %d bytes, the preamble needs %d", ErrInvalid, len(b), descPreambleSz)
	}
	if string(b[offMagic:offMagic+len(descMagic)]) != descMagic {
		return 0, 0, fmt.Errorf("%w: magic %q, want %q", ErrInvalid, b[offMagic:offMagic+len(descMagic)], descMagic)
	}
	return Kind(b[offKind]), b[offVersion], nil
}
