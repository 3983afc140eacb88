package sdk_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// describedProducer is a producer with a track of each kind the typed puts
// take, and their descriptions.
type describedProducer struct {
	p     *sdk.Producer
	lidar *signals.PointCloud // track 1
	imu   *signals.IMU        // track 2
	dets  *signals.Detections // track 3
	arr   *signals.Array      // track 4 is on a second producer: at most 3 tracks
	p2    *sdk.Producer
	audio *signals.Audio // p2's track 2
}

func newDescribedProducer(t *testing.T, r *rig) *describedProducer {
	t.Helper()
	d := &describedProducer{
		lidar: &signals.PointCloud{Rings: 16, Resolution: 0.001},
		imu: &signals.IMU{SampleRate: 200, SampleType: signals.Float32, Sensors: []signals.IMUSensor{
			{Type: signals.Accelerometer, Unit: "m/s²"}, {Type: signals.Gyroscope, Unit: "rad/s"}}},
		dets:  &signals.Detections{Extra: []signals.Field{{Name: "track_id", Type: signals.Int32}}},
		arr:   &signals.Array{ElemType: signals.Float32, Rows: 2, Cols: 3, Unit: "dB"},
		audio: &signals.Audio{SampleRate: 8000, SampleType: signals.Int16, Channels: []string{"mono"}},
	}
	mk := func(n uint64, desc signals.Description) sdk.Track {
		tr, err := sdk.DescriptionTrack(n, desc.Kind().String(), desc)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	it, err := sdk.IMUTrack(2, "imu", d.imu)
	if err != nil {
		t.Fatal(err)
	}
	at, err := sdk.AudioTrack(2, "mic", d.audio)
	if err != nil {
		t.Fatal(err)
	}
	cfg := sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{mk(1, d.lidar), it, mk(3, d.dets)}, NoLive: true}
	if d.p, err = sdk.NewProducer(context.Background(), r.client(), cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Tracks = []sdk.Track{mk(1, d.arr), at}
	if d.p2, err = sdk.NewProducer(context.Background(), r.client(), cfg); err != nil {
		t.Fatal(err)
	}
	return d
}

// The typed puts encode with the track's own description, parsed from its
// CodecPrivate: a different description passed with them is refused, naming
// the track, instead of storing frames that read back wrong (a LIDAR at
// 1 cm on a 1 mm track: coordinates off by ten) or not at all (2 channels on
// a 6-axis IMU track); and data that does not fit the description is refused.
func TestTypedPutsKeepToTheTrackDescription(t *testing.T) {
	r := newRig(t, false)
	d := newDescribedProducer(t, r)
	ctx := context.Background()
	sweep := func(ring int16, offset int32) *codecs.Sweep {
		return &codecs.Sweep{Time: t0, Points: []codecs.Point{{X: 1, Ring: 0}, {X: 2, Ring: ring, TimeOffset: offset}}}
	}
	imuSamples := func(ch int, typ signals.SampleType) *signals.Samples {
		s := &signals.Samples{}
		s.Reset(typ, ch, 10)
		s.Start = t0
		return s
	}
	twoChannels := &signals.Scalar{SampleRate: 200, SampleType: signals.Float32, Channels: []signals.Channel{{Name: "a"}, {Name: "b"}}}
	coarse := &signals.PointCloud{Rings: 16, Resolution: 0.01}
	sameLidar := &signals.PointCloud{Rings: 16, Resolution: 0.001} // equal, not the same pointer
	i32 := func(n int) codecs.Column { return codecs.Column{Type: signals.Int32, I32: make([]int32, n)} }
	dets := make([]codecs.Detection, 3)
	arr := codecs.Column{Type: signals.Float32, F32: make([]float32, 6)}
	cases := []struct {
		name string
		put  func() error
		want string // in the error; "" means accepted
	}{
		{"lidar, a coarser resolution", func() error { return d.p.PutPointCloud(ctx, 1, coarse, sweep(1, 0), 0) }, "track 1"},
		{"lidar, an equal description", func() error { return d.p.PutPointCloud(ctx, 1, sameLidar, sweep(1, 0), 0) }, ""},
		{"lidar, nil", func() error { return d.p.PutPointCloud(ctx, 1, nil, sweep(1, 0), 0) }, ""},
		{"lidar, ring 16 of 16", func() error { return d.p.PutPointCloud(ctx, 1, nil, sweep(16, 0), 0) }, "ring 16"},
		{"lidar, ring -1", func() error { return d.p.PutPointCloud(ctx, 1, nil, sweep(-1, 0), 0) }, "ring -1"},
		{"lidar, a negative time offset", func() error { return d.p.PutPointCloud(ctx, 1, nil, sweep(1, -5), 0) }, "time_offset"},
		{"lidar, on the imu track", func() error { return d.p.PutPointCloud(ctx, 2, nil, sweep(1, 0), 0) }, "track 2"},
		{"imu, a 2-channel description", func() error { return d.p.PutSamples(ctx, 2, twoChannels, imuSamples(2, signals.Float32), 0) }, "track 2"},
		{"imu, 2 channels of samples", func() error { return d.p.PutSamples(ctx, 2, nil, imuSamples(2, signals.Float32), 0) }, "6 channels"},
		{"imu, float64 samples", func() error { return d.p.PutSamples(ctx, 2, nil, imuSamples(6, signals.Float64), 0) }, "float32"},
		{"imu, its own signal", func() error { return d.p.PutSamples(ctx, 2, d.imu.Scalar(), imuSamples(6, signals.Float32), 0) }, ""},
		{"detections, no extra column", func() error { return d.p.PutRadarScan(ctx, 3, nil, t0, 0, dets, nil) }, "extra"},
		{"detections, a short extra column", func() error { return d.p.PutRadarScan(ctx, 3, nil, t0, 0, dets, []codecs.Column{i32(2)}) }, "track_id"},
		{"detections, a float extra column", func() error {
			return d.p.PutRadarScan(ctx, 3, nil, t0, 0, dets, []codecs.Column{{Type: signals.Float32, F32: make([]float32, 3)}})
		}, "track_id"},
		{"detections, no extra field declared", func() error {
			return d.p.PutRadarScan(ctx, 3, &signals.Detections{}, t0, 0, dets, nil)
		}, "track 3"},
		{"detections, as declared", func() error { return d.p.PutRadarScan(ctx, 3, d.dets, t0, 0, dets, []codecs.Column{i32(3)}) }, ""},
		{"array, another shape", func() error {
			return d.p2.PutArray(ctx, 1, &signals.Array{ElemType: signals.Float32, Rows: 3, Cols: 2, Unit: "dB"}, t0, 0, arr)
		}, "track 1"},
		{"array, nil", func() error { return d.p2.PutArray(ctx, 1, nil, t0, 0, arr) }, ""},
	}
	for _, tc := range cases {
		err := tc.put()
		t.Logf("%s: %v", tc.name, err)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}

	writers := []struct {
		name string
		make func() error
	}{
		{"sample writer", func() error {
			_, err := sdk.NewSampleWriter(d.p, 2, twoChannels, sdk.SampleWriterOptions{})
			return err
		}},
		{"imu writer", func() error {
			other := *d.imu
			other.SampleRate = 100
			_, err := sdk.NewIMUWriter(d.p, 2, &other, sdk.SampleWriterOptions{})
			return err
		}},
		{"pcm writer", func() error {
			_, err := sdk.NewPCMWriter(d.p2, 2, &signals.Audio{SampleRate: 16000, SampleType: signals.Int16, Channels: []string{"mono"}}, t0, 0)
			return err
		}},
	}
	for _, w := range writers {
		if err := w.make(); err == nil || !strings.Contains(err.Error(), "track 2") {
			t.Errorf("%s with another description: %v", w.name, err)
		}
	}
	if _, err := sdk.NewIMUWriter(d.p, 2, nil, sdk.SampleWriterOptions{Origin: t0}); err != nil {
		t.Errorf("imu writer with the track's description: %v", err)
	}
}

// What a typed put stores is encoded with the track's description: a sweep
// put with d nil reads back at the track's 1 mm.
func TestTypedPutUsesTheTrackDescription(t *testing.T) {
	r := newRig(t, false)
	d := newDescribedProducer(t, r)
	ctx := context.Background()
	sent := &codecs.Sweep{Time: t0, Points: []codecs.Point{{X: 1.234, Y: -0.567, Z: 0.089, Ring: 3, TimeOffset: 5}}}
	if err := d.p.PutPointCloud(ctx, 1, nil, sent, int64(100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_ = d.p.Flush(fctx)
	cancel()
	var frags []parsedFragment
	eventually(t, 5*time.Second, "the sweep on the bus", func() bool { frags = r.busFragments(); return len(frags) == 1 })
	var got codecs.Sweep
	if err := codecs.DecodeSweepFrame(frags[0].blocks[0].Data, d.lidar, &got); err != nil {
		t.Fatal(err)
	}
	p, q := got.Points[0], sent.Points[0]
	for _, c := range [][2]float32{{p.X, q.X}, {p.Y, q.Y}, {p.Z, q.Z}} {
		if math.Abs(float64(c[0]-c[1])) > 0.0005 {
			t.Fatalf("point read back as %+v, sent %+v", p, q)
		}
	}
}
