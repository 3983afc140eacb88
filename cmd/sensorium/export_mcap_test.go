package main

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// A stream that no MCAP import made — a LIDAR track and a two-channel
// scalar track put by the SDK — exports with the default layouts, and
// Foxglove's reader and ROS 2 deserialiser read it: PointCloud2 with x, y,
// z, intensity, ring and time_offset; one std_msgs/msg/Float32 topic per
// channel, a message per sample at its exact time.
func TestMCAPExportOfProducedStream(t *testing.T) {
	js := mcapJS(t)
	srv := startServer(t)
	ctx := context.Background()
	c := sdk.NewClient(srv.HTTPURL(), nil)
	if _, err := c.CreateStream(ctx, sdk.CreateStreamInput{StreamName: "rig", DataRetentionInHours: 1}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	lidar := &signals.PointCloud{Rings: 4, Resolution: 0.001}
	scalar := &signals.Scalar{SampleRate: 10, SampleType: signals.Float32, Channels: []signals.Channel{{Name: "t1", Unit: "°C"}, {Name: "t2", Unit: "°C"}}}
	lt, _ := sdk.PointCloudTrack(1, "lidar", lidar)
	st, _ := sdk.ScalarTrack(2, "temps", scalar)
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "rig", Tracks: []sdk.Track{lt, st}})
	if err != nil {
		t.Fatal(err)
	}
	origin := time.Now().Add(-time.Minute).Truncate(time.Second).UnixNano()
	var sweeps []*codecs.Sweep
	for s := 0; s < 3; s++ {
		sw := &codecs.Sweep{Time: origin + int64(s)*100e6}
		for k := 0; k < 40; k++ {
			sw.Points = append(sw.Points, codecs.Point{X: float32(k) * 0.1, Y: -float32(s), Z: 0.5, Intensity: int16(k * 3), Ring: int16(k % 4), TimeOffset: int32(k * 1000)})
		}
		sweeps = append(sweeps, sw)
		if err := p.PutPointCloud(ctx, 1, nil, sw, 100e6); err != nil {
			t.Fatal(err)
		}
	}
	w, err := sdk.NewSampleWriter(p, 2, nil, sdk.SampleWriterOptions{Origin: origin, FrameSamples: 5})
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]float32, 2*12)
	for i := range vals {
		vals[i] = float32(i) / 4
	}
	if err := w.WriteFloat32(ctx, vals); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "rig.mcap")
	if code, stderr := runCLI(t, "export", "rig", "--start", time.Unix(0, origin).Format(time.RFC3339Nano), "--end", time.Unix(0, origin+5e9).Format(time.RFC3339Nano),
		"-o", out, "--endpoint", srv.HTTPURL()); code != 0 {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	got := runNode(t, js, "read.mjs", out)
	_, rest, _ := strings.Cut(string(got), "\n")
	topics := byTopic(readLines(t, []byte(rest)))
	if len(topics) != 3 || len(topics["/rig"]) != 3 || len(topics["/rig/track2/t1"]) != 12 || len(topics["/rig/track2/t2"]) != 12 {
		t.Fatalf("topics %v", keys(topics))
	}
	for s, l := range topics["/rig"] {
		m := l.Message
		if l.t != sweeps[s].Time || l.SchemaName != "sensor_msgs/msg/PointCloud2" || m["width"].(float64) != 40 || m["point_step"].(float64) != 20 {
			t.Fatalf("sweep %d: %d %s %v", s, l.t, l.SchemaName, m["fields"])
		}
		fields, _ := json.Marshal(m["fields"])
		if !strings.Contains(string(fields), `"datatype":6,"name":"time_offset","offset":16`) {
			t.Fatalf("fields %s", fields)
		}
		data, _ := base64.StdEncoding.DecodeString(m["data"].(string))
		for k, want := range sweeps[s].Points {
			pt := data[k*20:]
			x := math.Float32frombits(binary.LittleEndian.Uint32(pt))
			if math.Abs(float64(x-want.X)) > 0.0005+1e-6 || int16(binary.LittleEndian.Uint16(pt[12:])) != want.Intensity ||
				binary.LittleEndian.Uint16(pt[14:]) != uint16(want.Ring) || binary.LittleEndian.Uint32(pt[16:]) != uint32(want.TimeOffset) {
				t.Fatalf("sweep %d point %d: % x, want %+v", s, k, pt[:20], want)
			}
		}
	}
	for ch, topic := range []string{"/rig/track2/t1", "/rig/track2/t2"} {
		for i, l := range topics[topic] {
			if l.SchemaName != "std_msgs/msg/Float32" || l.t != scalar.SampleTime(origin, i) || l.Message["data"].(float64) != float64(vals[2*i+ch]) {
				t.Fatalf("%s #%d: %s at %d = %v, want %v at %d", topic, i, l.SchemaName, l.t, l.Message["data"], vals[2*i+ch], scalar.SampleTime(origin, i))
			}
		}
	}
}
