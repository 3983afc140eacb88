package sdk

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sensorium-io/sensorium/signals"
)

// The typed puts (PutSamples, PutRadarScan, PutArray, PutPointCloud) and the
// writers (SampleWriter, IMU and PCM writers) encode frames with a track's
// description. Readers decode them with the description in the track's
// CodecPrivate, so the two must be the same: a LIDAR frame quantised at 1 cm
// on a track that says 1 mm reads back ten times too small, and a 2-channel
// frame on a 6-axis IMU track makes every query over it fail. So the
// producer parses each track's CodecPrivate once, when it is made, and the
// typed puts encode with that description; a description passed to them must
// equal it (nil means the track's own).

// describedTrack is what the producer knows of a track's frames.
type describedTrack struct {
	desc    signals.Description // nil: not a kind the SDK knows, or descErr
	descErr error               // why a known kind's CodecPrivate did not parse
	canon   []byte              // desc as AppendBinary writes it, to compare descriptions with
	// scalar is the signal of the scalar frames of a scalar or IMU track.
	scalar      *signals.Scalar
	scalarCanon []byte
}

// describe parses a track's description from its CodecPrivate. A track of a
// CodecID no kind registered (a user's own codec) has none, and can only take
// PutFrame.
func describe(t Track) describedTrack {
	d, err := signals.ParseDescription(t.CodecID, t.CodecPrivate)
	if errors.Is(err, signals.ErrUnknownCodecID) {
		return describedTrack{}
	}
	if err != nil {
		return describedTrack{descErr: err}
	}
	dt := describedTrack{desc: d}
	if dt.canon, err = d.AppendBinary(nil); err != nil {
		return describedTrack{descErr: err}
	}
	switch v := d.(type) {
	case *signals.Scalar:
		dt.scalar = v
	case *signals.IMU:
		dt.scalar = v.Scalar()
	}
	if dt.scalar != nil {
		if dt.scalarCanon, err = dt.scalar.AppendBinary(nil); err != nil {
			return describedTrack{descErr: err}
		}
	}
	return dt
}

// describedTrackOf returns the producer's track if it has one of codecIDs
// and a description.
func (p *Producer) describedTrackOf(op string, track uint64, codecIDs ...string) (*trackState, error) {
	t := p.tracks[track]
	if t == nil || !slices.Contains(codecIDs, t.CodecID) {
		return nil, fmt.Errorf("sdk: %s: track %d is not a %s track of the producer", op, track, strings.Join(codecIDs, " or "))
	}
	if t.desc == nil {
		return nil, fmt.Errorf("sdk: %s: track %d (%q): its CodecPrivate is not a valid %s description: %w", op, track, t.Name, t.CodecID, t.descErr)
	}
	return t, nil
}

// matches checks that d, a description a caller passed, encodes as canon.
func (t *trackState) matches(op string, d signals.Description, canon []byte, own any) error {
	got, err := d.AppendBinary(nil)
	if err != nil {
		return fmt.Errorf("sdk: %s: track %d (%q): %w", op, t.Number, t.Name, err)
	}
	if !bytes.Equal(got, canon) {
		return fmt.Errorf("sdk: %s: the description passed, %+v, is not track %d's (%q), %+v, which its CodecPrivate holds; "+
			"frames made with it would read back wrong: pass the track's description, or nil", op, d, t.Number, t.Name, own)
	}
	return nil
}

// trackDescription returns the description of the producer's track of one of
// codecIDs, after checking that d (when not nil) is equal to it. The typed
// puts encode with the description it returns, never with d, so a caller
// changing d later cannot change what the track holds.
func trackDescription[E any, D interface {
	*E
	signals.Description
}](p *Producer, op string, track uint64, d D, codecIDs ...string) (D, error) {
	t, err := p.describedTrackOf(op, track, codecIDs...)
	if err != nil {
		return nil, err
	}
	own, ok := t.desc.(D)
	if !ok {
		return nil, fmt.Errorf("sdk: %s: track %d (%q) holds %s, not %T", op, track, t.Name, t.desc.Kind(), d)
	}
	if d != nil && d != own {
		if err := t.matches(op, d, t.canon, own); err != nil {
			return nil, err
		}
	}
	return own, nil
}

// trackScalar is trackDescription for the tracks whose frames are scalar
// frames (scalar and IMU): d is compared with the track's scalar signal.
func (p *Producer) trackScalar(op string, track uint64, d *signals.Scalar, codecIDs ...string) (*signals.Scalar, error) {
	t, err := p.describedTrackOf(op, track, codecIDs...)
	if err != nil {
		return nil, err
	}
	if t.scalar == nil {
		return nil, fmt.Errorf("sdk: %s: track %d (%q) holds %s, not scalar frames", op, track, t.Name, t.desc.Kind())
	}
	if d != nil && d != t.scalar {
		if err := t.matches(op, d, t.scalarCanon, t.scalar); err != nil {
			return nil, err
		}
	}
	return t.scalar, nil
}
