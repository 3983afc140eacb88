package signals

import (
	"fmt"
	"sort"
	"sync"
)

// Description is what a track's frames hold: one value per track, carried in
// the track's MKV CodecPrivate (except for kinds whose CodecPrivate belongs to
// an established codec, such as H.264's avcC, whose description is derived
// from it). Every kind implements it; readers get one from ParseDescription.
type Description interface {
	// Kind is the kind of signal.
	Kind() Kind
	// CodecID is the MKV CodecID of tracks of this description.
	CodecID() string
	// AppendBinary appends the track's CodecPrivate bytes.
	AppendBinary(dst []byte) ([]byte, error)
	// Validate checks the description; descriptions from ParseDescription are valid.
	Validate() error
}

// DescriptionParser parses the description of a track from its CodecID and
// CodecPrivate. It must treat private as hostile: reject, never panic, never
// allocate more than its length justifies.
type DescriptionParser func(codecID string, private []byte) (Description, error)

var parsers = struct {
	sync.RWMutex
	m map[string]DescriptionParser
}{m: map[string]DescriptionParser{}}

// RegisterCodecID makes ParseDescription parse tracks of codecID with p. Each
// kind registers its CodecIDs in an init function; registering one twice panics
// (it is a programming error caught by any test).
func RegisterCodecID(codecID string, p DescriptionParser) {
	parsers.Lock()
	defer parsers.Unlock()
	if _, dup := parsers.m[codecID]; dup {
		panic("signals: CodecID " + codecID + " registered twice")
	}
	parsers.m[codecID] = p
}

// ParseDescription returns the description of a track. A CodecID no kind
// registered is an error wrapping ErrUnknownCodecID.
func ParseDescription(codecID string, private []byte) (Description, error) {
	parsers.RLock()
	p := parsers.m[codecID]
	parsers.RUnlock()
	if p == nil {
		return nil, fmt.Errorf("signals: %w: %q", ErrUnknownCodecID, codecID)
	}
	d, err := p(codecID, private)
	if err != nil {
		return nil, fmt.Errorf("signals: track %s: %w", codecID, err)
	}
	return d, nil
}

// KnownCodecIDs lists the CodecIDs ParseDescription understands, sorted.
func KnownCodecIDs() []string {
	parsers.RLock()
	defer parsers.RUnlock()
	out := make([]string, 0, len(parsers.m))
	for id := range parsers.m {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// ErrUnknownCodecID means no kind handles a track's CodecID.
var ErrUnknownCodecID = fmt.Errorf("no signal kind for this CodecID")

// Kind implements Description.
func (d *Scalar) Kind() Kind { return KindScalar }

// CodecID implements Description.
func (d *Scalar) CodecID() string { return CodecIDScalar }

func init() {
	RegisterCodecID(CodecIDScalar, func(_ string, b []byte) (Description, error) { return ParseScalar(b) })
}
