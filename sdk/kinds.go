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
// detections and, per extra field of d, a column of len(dets) values. period
// is the scan interval (the frame's duration; 0 if unknown).
func (p *Producer) PutRadarScan(ctx context.Context, track uint64, d *signals.Detections, t, period int64, dets []codecs.Detection, extra []codecs.Column) error {
	if err := p.checkTrack(track, signals.CodecIDDetections); err != nil {
		return err
	}
	data, err := codecs.AppendDetectionsFrame(nil, d, t, dets, extra)
	if err != nil {
		return fmt.Errorf("sdk: put radar scan: %w", err)
	}
	return p.PutFrame(ctx, Frame{Track: track, Timestamp: t, Duration: period, Key: true, Data: data})
}

// PutArray puts one array taken at t: Rows × Cols values, row-major.
func (p *Producer) PutArray(ctx context.Context, track uint64, d *signals.Array, t, period int64, values codecs.Column) error {
	if err := p.checkTrack(track, signals.CodecIDArray); err != nil {
		return err
	}
	data, err := codecs.AppendArrayFrame(nil, d, t, values)
	if err != nil {
		return fmt.Errorf("sdk: put array: %w", err)
	}
	return p.PutFrame(ctx, Frame{Track: track, Timestamp: t, Duration: period, Key: true, Data: data})
}

// PutPointCloud puts one LIDAR sweep; its coordinates are quantised to d's
// resolution. period is the sweep interval (100 ms at 10 Hz).
func (p *Producer) PutPointCloud(ctx context.Context, track uint64, d *signals.PointCloud, s *codecs.Sweep, period int64) error {
	if err := p.checkTrack(track, signals.CodecIDPointCloud); err != nil {
		return err
	}
	data, err := codecs.AppendSweepFrame(nil, d, s)
	if err != nil {
		return fmt.Errorf("sdk: put point cloud: %w", err)
	}
	return p.PutFrame(ctx, Frame{Track: track, Timestamp: s.Time, Duration: period, Key: true, Data: data})
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
// time of its first sample. A SampleWriter does this for a continuous run of
// samples; PutSamples is for blocks the caller has already cut (a DAQ's
// buffer, an offline file).
func (p *Producer) PutSamples(ctx context.Context, track uint64, d *signals.Scalar, s *signals.Samples, codec codecs.ID) error {
	t := p.tracks[track]
	if t == nil || (t.CodecID != signals.CodecIDScalar && t.CodecID != signals.CodecIDIMU) {
		return fmt.Errorf("sdk: put samples: track %d is not a scalar or IMU track of the producer", track)
	}
	if codec == 0 {
		codec = codecs.Auto
	}
	data, err := codecs.AppendScalarFrame(nil, d, s, codec)
	if err != nil {
		return fmt.Errorf("sdk: put samples: %w", err)
	}
	end := d.SampleTime(s.Start, s.N)
	return p.PutFrame(ctx, Frame{Track: track, Timestamp: s.Start, Duration: end - s.Start, Key: true, Data: data})
}
