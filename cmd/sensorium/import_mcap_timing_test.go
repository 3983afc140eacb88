package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/mcap"
	"github.com/sensorium-io/sensorium/mcap/ros2"
	"github.com/sensorium-io/sensorium/sdk"
)

// writeLidarMCAP writes a recording like a robot's: sweeps of a 64-beam
// LIDAR at 10 Hz (x, y, z, intensity float32, ring uint16, time float32:
// Velodyne's layout) with an IMU at 200 Hz beside them, zstd chunks.
func writeLidarMCAP(tb testing.TB, path string, sweeps int) int64 {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	w, err := mcap.NewWriter(f, mcap.WriterOptions{Profile: "ros2"})
	if err != nil {
		tb.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(w.AddSchema(mcap.Schema{ID: 1, Name: ros2.PointCloud2Name, Encoding: "ros2msg", Data: []byte(ros2.PointCloud2Schema)}))
	must(w.AddSchema(mcap.Schema{ID: 2, Name: ros2.ImuName, Encoding: "ros2msg", Data: []byte(ros2.ImuSchema)}))
	must(w.AddChannel(mcap.Channel{ID: 1, SchemaID: 1, Topic: "/velodyne_points", MessageEncoding: "cdr"}))
	must(w.AddChannel(mcap.Channel{ID: 2, SchemaID: 2, Topic: "/imu", MessageEncoding: "cdr"}))
	const rings, azimuths, step = 64, 1800, 24
	fields := []ros2.PointField{{Name: "x", Offset: 0, Datatype: ros2.Float32, Count: 1}, {Name: "y", Offset: 4, Datatype: ros2.Float32, Count: 1},
		{Name: "z", Offset: 8, Datatype: ros2.Float32, Count: 1}, {Name: "intensity", Offset: 12, Datatype: ros2.Float32, Count: 1},
		{Name: "ring", Offset: 16, Datatype: ros2.Uint16, Count: 1}, {Name: "time", Offset: 20, Datatype: ros2.Float32, Count: 1}}
	data := make([]byte, rings*azimuths*step)
	t0 := time.Now().Add(-time.Hour).UnixNano()
	var buf []byte
	for s := 0; s < sweeps; s++ {
		t := t0 + int64(s)*100e6
		for a := 0; a < azimuths; a++ {
			for r := 0; r < rings; r++ {
				p := data[(a*rings+r)*step:]
				az, el := float64(a)*2*math.Pi/azimuths, (float64(r)-32)*0.006
				d := 8 + 4*math.Sin(az*3+float64(s)*0.05) + float64(r)*0.05
				binary.LittleEndian.PutUint32(p, math.Float32bits(float32(d*math.Cos(el)*math.Cos(az))))
				binary.LittleEndian.PutUint32(p[4:], math.Float32bits(float32(d*math.Cos(el)*math.Sin(az))))
				binary.LittleEndian.PutUint32(p[8:], math.Float32bits(float32(d*math.Sin(el))))
				binary.LittleEndian.PutUint32(p[12:], math.Float32bits(float32((a*7+r*13)%256)))
				binary.LittleEndian.PutUint16(p[16:], uint16(r))
				binary.LittleEndian.PutUint32(p[20:], math.Float32bits(float32(a)*55e-6))
			}
		}
		pc := ros2.PointCloud2{Header: ros2.Header{Stamp: ros2.TimeOf(t), FrameID: "velodyne"}, Height: 1, Width: rings * azimuths,
			Fields: fields, PointStep: step, RowStep: rings * azimuths * step, Data: data, IsDense: true}
		buf = ros2.AppendPointCloud2(buf[:0], &pc)
		must(w.WriteMessage(&mcap.Message{ChannelID: 1, Sequence: uint32(s), LogTime: uint64(t), PublishTime: uint64(t), Data: buf}))
		for k := 0; k < 20; k++ {
			ti := t + int64(k)*5e6
			m := ros2.Imu{Header: ros2.Header{Stamp: ros2.TimeOf(ti), FrameID: "imu"}, LinearAcceleration: ros2.Vector3{X: math.Sin(float64(k)), Z: 9.81}}
			buf = ros2.AppendImu(buf[:0], &m)
			must(w.WriteMessage(&mcap.Message{ChannelID: 2, LogTime: uint64(ti), PublishTime: uint64(ti), Data: buf}))
		}
	}
	must(w.Close())
	return int64(w.Offset())
}

// writeImageMCAP writes a camera's CompressedImage topic: n images of
// 200 KB (random bytes, as incompressible as a JPEG) at 30 Hz.
func writeImageMCAP(tb testing.TB, path string, n int) int64 {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	w, err := mcap.NewWriter(f, mcap.WriterOptions{Profile: "ros2", Compression: "lz4"})
	if err != nil {
		tb.Fatal(err)
	}
	if err := w.AddSchema(mcap.Schema{ID: 1, Name: ros2.CompressedImageName, Encoding: "ros2msg", Data: []byte(ros2.CompressedImageSchema)}); err != nil {
		tb.Fatal(err)
	}
	if err := w.AddChannel(mcap.Channel{ID: 1, SchemaID: 1, Topic: "/camera/image/compressed", MessageEncoding: "cdr"}); err != nil {
		tb.Fatal(err)
	}
	img := make([]byte, 200_000)
	x := uint64(1)
	t0 := time.Now().Add(-time.Hour).UnixNano()
	var buf []byte
	for i := 0; i < n; i++ {
		for k := range img {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			img[k] = byte(x)
		}
		t := t0 + int64(i)*33_333_333
		m := ros2.CompressedImage{Header: ros2.Header{Stamp: ros2.TimeOf(t), FrameID: "camera"}, Format: "jpeg", Data: img}
		buf = ros2.AppendCompressedImage(buf[:0], &m)
		if err := w.WriteMessage(&mcap.Message{ChannelID: 1, LogTime: uint64(t), PublishTime: uint64(t), Data: buf}); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return int64(w.Offset())
}

// BenchmarkMCAPImport measures `sensorium import FILE.mcap` to PERSISTED on
// an in-process server against peers on the same file in the same run: our
// reader alone (every record read, every CRC checked, the messages
// touched), the floor of any import; the bus alone (raw JetStream publish
// of the messages); and the SDK producer putting the messages as opaque
// frames to PERSISTED, the path the import takes without its decoding and
// mapping. It reports each in MB/s of the file and the ratios, for two recordings: LIDAR sweeps (with an IMU), which
// the import encodes with Sensorium's LIDAR codec, and camera images, which
// it stores as they are. MCAP_BENCH_SCALE multiplies the files' size
// (default 1: 20 sweeps, about 38 MB; 300 images, about 60 MB).
// MCAP_BENCH_IMPORT_ONLY=1 leaves the peers out, so that a CPU profile
// (-cpuprofile) shows the import's own costs.
func BenchmarkMCAPImport(b *testing.B) {
	scale := 1
	if s, err := strconv.Atoi(os.Getenv("MCAP_BENCH_SCALE")); err == nil && s > 0 {
		scale = s
	}
	b.Run("lidar", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "lidar.mcap")
		benchImport(b, path, writeLidarMCAP(b, path, 20*scale))
	})
	b.Run("images", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "images.mcap")
		benchImport(b, path, writeImageMCAP(b, path, 300*scale))
	})
}

func benchImport(b *testing.B, path string, size int64) {
	srv, err := server.Start(b.Context(), server.Config{DataDir: b.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	var importT, readT, pubT, sdkT time.Duration
	importOnly := os.Getenv("MCAP_BENCH_IMPORT_ONLY") == "1"
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if importOnly {
			start := time.Now()
			var stdout, stderr bytes.Buffer
			if code := run(b.Context(), []string{"import", path, "--stream-prefix", fmt.Sprintf("b%d.", i), "--endpoint", srv.HTTPURL(), "--nats", srv.NATSURL()}, &stdout, &stderr); code != 0 {
				b.Fatalf("import: exit %d: %s", code, stderr.String())
			}
			importT += time.Since(start)
			continue
		}
		start := time.Now()
		readAllMessages(b, path, nil)
		readT += time.Since(start)

		// The bus alone: every message of the file published as it is
		// to a file-backed JetStream stream of the same server, all
		// acknowledged (what the producer's fragments ride on, without
		// Sensorium's encoding, fragmenting, store and fsync).
		subject := fmt.Sprintf("mcappeer%d", i)
		if _, err := js.CreateStream(b.Context(), jetstream.StreamConfig{Name: subject, Subjects: []string{subject}, Storage: jetstream.FileStorage}); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		var pending []jetstream.PubAckFuture
		readAllMessages(b, path, func(data []byte) {
			f, err := js.PublishAsync(subject, data)
			if err != nil {
				b.Fatal(err)
			}
			pending = append(pending, f)
		})
		for _, f := range pending {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				b.Fatal(err)
			}
		}
		pubT += time.Since(start)
		js.DeleteStream(b.Context(), subject)

		// The SDK producer alone: every message put as an opaque frame
		// of one stream and waited for until PERSISTED, the path the
		// import takes without its decoding and mapping.
		sdkStream := fmt.Sprintf("sdkpeer%d", i)
		if _, err := sdk.NewClient(srv.HTTPURL(), nil).CreateStream(b.Context(), sdk.CreateStreamInput{StreamName: sdkStream, DataRetentionInHours: 1}); err != nil {
			b.Fatal(err)
		}
		track, _ := sdk.OpaqueTrack(1, "peer", "application/octet-stream")
		start = time.Now()
		p, err := sdk.NewProducer(b.Context(), nc, sdk.ProducerConfig{Stream: sdkStream, Tracks: []sdk.Track{track}, NoLive: true,
			MaxFragmentSize: sdk.MaxFragmentSizeLimit, BufferBytes: 256 << 20})
		if err != nil {
			b.Fatal(err)
		}
		var ts int64
		readAllMessages(b, path, func(data []byte) {
			ts++
			if err := p.PutOpaque(b.Context(), 1, 1_700_000_000_000_000_000+ts*1_000_000, 0, data, true); err != nil {
				b.Fatal(err)
			}
		})
		if err := p.Close(b.Context()); err != nil {
			b.Fatal(err)
		}
		sdkT += time.Since(start)

		start = time.Now()
		var stdout, stderr bytes.Buffer
		if code := run(b.Context(), []string{"import", path, "--stream-prefix", fmt.Sprintf("b%d.", i), "--endpoint", srv.HTTPURL(), "--nats", srv.NATSURL()}, &stdout, &stderr); code != 0 {
			b.Fatalf("import: exit %d: %s", code, stderr.String())
		}
		importT += time.Since(start)
	}
	mb := float64(size) * float64(b.N) / 1e6
	b.ReportMetric(mb/importT.Seconds(), "import-MB/s")
	if importOnly {
		return
	}
	b.ReportMetric(mb/readT.Seconds(), "reader-MB/s")
	b.ReportMetric(mb/pubT.Seconds(), "raw-publish-MB/s")
	b.ReportMetric(pubT.Seconds()/importT.Seconds(), "import/publish")
	b.ReportMetric(mb/sdkT.Seconds(), "sdk-opaque-MB/s")
	b.Logf("MCAP import %.0f MB/s; peers on the same %.0f MB file: our reader alone %.0f MB/s (import ×%.2f of it), raw JetStream publish of its messages %.0f MB/s (×%.2f), SDK producer putting them as opaque frames to PERSISTED %.0f MB/s (×%.2f)",
		mb/importT.Seconds(), float64(size)/1e6, mb/readT.Seconds(), readT.Seconds()/importT.Seconds(), mb/pubT.Seconds(), pubT.Seconds()/importT.Seconds(),
		mb/sdkT.Seconds(), sdkT.Seconds()/importT.Seconds())
}

// readAllMessages reads the file with our reader, passing each message's
// bytes to fn (nil: only touch them).
func readAllMessages(b *testing.B, path string, fn func([]byte)) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r, err := mcap.NewReader(f, mcap.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var sum byte
	for {
		m, err := r.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			b.Fatal(err)
		}
		if fn != nil {
			fn(m.Data)
		}
		sum += m.Data[len(m.Data)-1]
	}
}
