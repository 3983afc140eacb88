package sdk

import (
	"context"
	"fmt"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/signals"
)

// Typed producers of the multi-element kinds. Each element set — a RADAR
// scan, an array, a LIDAR sweep — is one key frame, so a fragment can start
// at any of them.

// DescriptionTrack describes a track of any sensor kind from its description
// (its CodecID and CodecPrivate).
func DescriptionTrack(number uint64, name string, d signals.Description) (Track, error) {
	priv, err := d.AppendBinary(nil)
	if err != nil {
		return Track{}, fmt.Errorf("sdk: %s track: %w", d.Kind(), err)
	}
	return Track{Number: number, Name: name, CodecID: d.CodecID(), CodecPrivate: priv, Type: mkv.TrackTypeMetadata}, nil
}

// DetectionsTrack describes a track of RADAR detections.
func DetectionsTrack(number uint64, name string, d *signals.Detections) (Track, error) {
	return DescriptionTrack(number, name, d)
}

// ArrayTrack describes a track of 2-D arrays (range × Doppler maps, images).
func ArrayTrack(number uint64, name string, d *signals.Array) (Track, error) {
	return DescriptionTrack(number, name, d)
}

// PointCloudTrack describes a track of LIDAR sweeps.
func PointCloudTrack(number uint64, name string, d *signals.PointCloud) (Track, error) {
	return DescriptionTrack(number, name, d)
}

// PutRadarScan puts one scan taken at t (ns since the Unix epoch): its
// detections and, per extra field of the track's description, a column of
// len(dets) values of that field's type. period is the scan interval (the
// frame's duration; 0 if unknown). d may be nil; otherwise it must equal the
// track's description (its CodecPrivate), which is what the frame is
// encoded with. After Close it returns ErrClosed.
func (p *Producer) PutRadarScan(ctx context.Context, track uint64, d *signals.Detections, t, period int64, dets []codecs.Detection, extra []codecs.Column) error {
	const op = "put radar scan"
	own, err := trackDescription(p, op, track, d, signals.CodecIDDetections)
	if err != nil {
		return err
	}
	if len(extra) != len(own.Extra) {
		return fmt.Errorf("sdk: %s: %d extra columns; track %d declares %d extra fields", op, len(extra), track, len(own.Extra))
	}
	for i, f := range own.Extra {
		if c := &extra[i]; c.Type != f.Type || c.Len() != len(dets) {
			return fmt.Errorf("sdk: %s: extra column %d holds %d %s values; track %d's field %q needs %d %s values, one per detection",
				op, i, c.Len(), c.Type, track, f.Name, len(dets), f.Type)
		}
	}
	data, err := codecs.AppendDetectionsFrame(nil, own, t, dets, extra)
	if err != nil {
		return fmt.Errorf("sdk: %s: %w", op, err)
	}
	return p.PutFrame(ctx, Frame{Track: track, Timestamp: t, Duration: period, Key: true, Data: data})
}

// PutArray puts one array taken at t: Rows × Cols values of the track's
// element type, row-major. d may be nil; otherwise it must equal the track's
// description.
func (p *Producer) PutArray(ctx context.Context, track uint64, d *signals.Array, t, period int64, values codecs.Column) error {
	const op = "put array"
	own, err := trackDescription(p, op, track, d, signals.CodecIDArray)
	if err != nil {
		return err
	}
	data, err := codecs.AppendArrayFrame(nil, own, t, values)
	if err != nil {
		return fmt.Errorf("sdk: %s: track %d: %w", op, track, err)
	}
	return p.PutFrame(ctx, Frame{Track: track, Timestamp: t, Duration: period, Key: true, Data: data})
}

// PutPointCloud puts one LIDAR sweep; its coordinates are quantised to the
// track's resolution. Every point's ring must be below the track's Rings and
// its time_offset at least 0 (s.Time is the sweep's start). d may be nil;
// otherwise it must equal the track's description.
//
// The frame lasts period (the sweep interval: 100 ms at 10 Hz), or longer if
// the sweep needs it: at least its largest time_offset + 1 ns, so that the
// frame — and the fragment, which a query picks by its span — covers every
// point; a period of 0 (unknown) is the sweep's own extent.
func (p *Producer) PutPointCloud(ctx context.Context, track uint64, d *signals.PointCloud, s *codecs.Sweep, period int64) error {
	const op = "put point cloud"
	own, err := trackDescription(p, op, track, d, signals.CodecIDPointCloud)
	if err != nil {
		return err
	}
	var extent int64
	for i := range s.Points {
		pt := &s.Points[i]
		if pt.Ring < 0 || int(pt.Ring) >= int(own.Rings) {
			return fmt.Errorf("sdk: %s: point %d is on ring %d; track %d's LIDAR has rings 0 to %d", op, i, pt.Ring, track, own.Rings-1)
		}
		if pt.TimeOffset < 0 {
			return fmt.Errorf("sdk: %s: point %d has time_offset %d ns; offsets count from the sweep's start, so make s.Time the earliest point's time", op, i, pt.TimeOffset)
		}
		extent = max(extent, int64(pt.TimeOffset)+1)
	}
	data, err := codecs.AppendSweepFrame(nil, own, s)
	if err != nil {
		return fmt.Errorf("sdk: %s: track %d: %w", op, track, err)
	}
	return p.PutFrame(ctx, Frame{Track: track, Timestamp: s.Time, Duration: max(period, extent), Key: true, Data: data})
}

// checkTrack says whether track is the producer's and carries codecID.
func (p *Producer) checkTrack(track uint64, codecID string) error {
	t := p.tracks[track]
	if t == nil || t.CodecID != codecID {
		return fmt.Errorf("sdk: track %d is not a %s track of the producer", track, codecID)
	}
	return nil
}

// PutSamples puts one block of samples of a scalar (or IMU) track as one key
// frame, encoded with codec (codecs.Auto picks per frame). s.Start is the
// time of its first sample; s must have the track's channel count and sample
// type. d may be nil; otherwise it must equal the track's signal (for an IMU
// track, its description's Scalar()). A SampleWriter does this for a
// continuous run of samples; PutSamples is for blocks the caller has already
// cut (a DAQ's buffer, an offline file).
func (p *Producer) PutSamples(ctx context.Context, track uint64, d *signals.Scalar, s *signals.Samples, codec codecs.ID) error {
	const op = "put samples"
	own, err := p.trackScalar(op, track, d, signals.CodecIDScalar, signals.CodecIDIMU)
	if err != nil {
		return err
	}
	if s.Channels != len(own.Channels) || s.Type != own.SampleType {
		return fmt.Errorf("sdk: %s: %d channels of %s; track %d holds %d channels of %s", op, s.Channels, s.Type, track, len(own.Channels), own.SampleType)
	}
	if codec == 0 {
		codec = codecs.Auto
	}
	data, err := p.tracks[track].encodeSamples(own, s, codec)
	if err != nil {
		return fmt.Errorf("sdk: %s: track %d: %w", op, track, err)
	}
	end := own.SampleTime(s.Start, s.N)
	return p.PutFrame(ctx, Frame{Track: track, Timestamp: s.Start, Duration: end - s.Start, Key: true, Data: data})
}

// encodeSamples encodes s as a scalar frame of the track with codec, with the
// track's encoder for that codec: the numeric codec's search for what a float
// channel was counted in then runs once per track, not once per frame.
func (t *trackState) encodeSamples(desc *signals.Scalar, s *signals.Samples, codec codecs.ID) ([]byte, error) {
	t.encMu.Lock()
	defer t.encMu.Unlock()
	enc := t.encoders[codec]
	if enc == nil {
		var err error
		if enc, err = codecs.NewScalarEncoder(desc, codec); err != nil {
			return nil, err
		}
		if t.encoders == nil {
			t.encoders = map[codecs.ID]*codecs.ScalarEncoder{}
		}
		t.encoders[codec] = enc
	}
	return appendScalarFrame(enc, codec, desc.SampleRate, nil, s)
}
