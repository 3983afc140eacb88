package codecs

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// registry maps IDs to codecs. Readers look a codec up for every frame, so the
// table is copy-on-write: Lookup is one atomic load and an index, with no lock
// and no allocation; Register (rare, mostly at init) copies the 4 KiB table.
type registry struct {
	mu    sync.Mutex                 // serialises writers
	table atomic.Pointer[[256]Codec] // never modified once stored
}

// builtin holds the codecs of this build; the package functions use it.
var builtin registry

// maxCodecID is the largest ID of a scalar codec: FORMAT.md ("Codecs") keeps
// 6 to 15 for further scalar codecs and gives 16 and up to the frame formats
// of the other kinds (16 a LIDAR sweep, 24 detections, 25 an array) and 255
// to Auto, so that byte 0 of any frame says what it is.
const maxCodecID ID = 15

// Register adds c to the registry. It fails on a nil codec, on ID 0, on an ID
// above 15 (the frame formats of other kinds, and Auto), on an empty name and
// when the ID or the name is taken. The built-in codecs register themselves in
// init.
func Register(c Codec) error { return builtin.register(c) }

// Lookup returns the codec registered under id, or an error wrapping
// ErrUnknownCodec. It does not allocate when the codec exists.
func Lookup(id ID) (Codec, error) { return builtin.lookup(id) }

// LookupName returns the codec registered under name, for flags and
// configuration.
func LookupName(name string) (Codec, error) { return builtin.lookupName(name) }

// Registered returns the registered codecs in ID order.
func Registered() []Codec { return builtin.all() }

func (r *registry) register(c Codec) error {
	if c == nil {
		return fmt.Errorf("codecs: register: nil codec")
	}
	id, name := c.ID(), c.Name()
	if id == 0 {
		return fmt.Errorf("codecs: register %q: id 0 is reserved, it is not a codec", name)
	}
	if id > maxCodecID {
		return fmt.Errorf("codecs: register %q: id %d is not a scalar codec's: scalar codecs take 1 to %d; 16 and up name frame formats of other kinds, 255 is auto", name, id, maxCodecID)
	}
	if name == "" {
		return fmt.Errorf("codecs: register id %d: empty name", id)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var next [256]Codec
	if old := r.table.Load(); old != nil {
		next = *old
	}
	if prev := next[id]; prev != nil {
		return fmt.Errorf("codecs: register %q: id %d is taken by %q", name, id, prev.Name())
	}
	for _, prev := range next {
		if prev != nil && prev.Name() == name {
			return fmt.Errorf("codecs: register id %d: name %q is taken by id %d", id, name, prev.ID())
		}
	}
	next[id] = c
	r.table.Store(&next)
	return nil
}

func (r *registry) lookup(id ID) (Codec, error) {
	if t := r.table.Load(); t != nil && t[id] != nil {
		return t[id], nil
	}
	return nil, fmt.Errorf("codecs: lookup id %d: %w", id, ErrUnknownCodec)
}

func (r *registry) lookupName(name string) (Codec, error) {
	for _, c := range r.all() {
		if c.Name() == name {
			return c, nil
		}
	}
	return nil, fmt.Errorf("codecs: lookup %q: %w", name, ErrUnknownCodec)
}

func (r *registry) all() []Codec {
	var out []Codec
	if t := r.table.Load(); t != nil {
		for _, c := range t {
			if c != nil {
				out = append(out, c)
			}
		}
	}
	return out
}
