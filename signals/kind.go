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

// The kinds. Later kinds (IMU, audio, LIDAR, RADAR, video) take the next values.
const KindScalar Kind = 1

// String returns the kind's name, or "kind(N)" for an unknown one.
func (k Kind) String() string {
	switch k {
	case KindScalar:
		return "scalar"
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
