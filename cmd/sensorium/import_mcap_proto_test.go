package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/mcap"
	"github.com/sensorium-io/sensorium/mcap/ros2"
	"github.com/sensorium-io/sensorium/sdk"
)

// appendProtoBytes appends protobuf field num as length-delimited bytes.
func appendProtoBytes(b []byte, num int, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(num)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// foxglove.CompressedVideo in protobuf, as Foxglove's SDKs write it, is
// imported as H.264 video and exported as foxglove_msgs/msg/CompressedVideo
// in CDR with the same access units (this test needs no Node: our reader
// reads the export).
func TestMCAPImportProtobufVideo(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "sdk", "testdata", "h264-baseline.h264"))
	if err != nil {
		t.Fatal(err)
	}
	aus, _, err := sdk.SplitAnnexB(raw)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "proto.mcap")
	var buf bytes.Buffer
	w, err := mcap.NewWriter(&buf, mcap.WriterOptions{Compression: "lz4"})
	if err != nil {
		t.Fatal(err)
	}
	// The schema's FileDescriptorSet is not read (the field numbers are
	// Foxglove's); any bytes stand for it here.
	w.AddSchema(mcap.Schema{ID: 1, Name: "foxglove.CompressedVideo", Encoding: "protobuf", Data: []byte("descriptor set")})
	w.AddChannel(mcap.Channel{ID: 1, SchemaID: 1, Topic: "/cam/h264", MessageEncoding: "protobuf"})
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second).UnixNano() + 777
	var frames [][]byte
	for i, au := range aus {
		annex, _ := annexB(nil, au.Data, 4)
		frames = append(frames, annex)
		ts := t0 + int64(i)*40e6
		stamp := binary.AppendUvarint([]byte{0x08}, uint64(ts/1e9))
		stamp = append(stamp, 0x10)
		stamp = binary.AppendUvarint(stamp, uint64(ts%1e9))
		var m []byte
		m = appendProtoBytes(m, 1, stamp)
		m = appendProtoBytes(m, 2, []byte("cam"))
		m = appendProtoBytes(m, 3, annex)
		m = appendProtoBytes(m, 4, []byte("h264"))
		if err := w.WriteMessage(&mcap.Message{ChannelID: 1, LogTime: uint64(ts), PublishTime: uint64(ts), Data: m}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t)
	if code, stderr := runCLI(t, "import", in, "--stream-prefix", "p.", "--endpoint", srv.HTTPURL(), "--nats", srv.NATSURL()); code != 0 {
		t.Fatalf("import: exit %d: %s", code, stderr)
	}
	out := filepath.Join(dir, "out.mcap")
	if code, stderr := runCLI(t, "export", "p.cam.h264", "--start", time.Unix(0, t0-1e9).Format(time.RFC3339Nano), "--end", time.Unix(0, t0+10e9).Format(time.RFC3339Nano),
		"-o", out, "--endpoint", srv.HTTPURL()); code != 0 {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := mcap.NewReader(f, mcap.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ; ; n++ {
		m, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ch := r.Channel(m.ChannelID)
		if s := r.Schema(ch.SchemaID); ch.Topic != "/cam/h264" || ch.MessageEncoding != "cdr" || s.Name != ros2.CompressedVideoName || s.Encoding != "ros2msg" {
			t.Fatalf("channel %+v schema %s %s", ch, s.Name, s.Encoding)
		}
		v, err := ros2.DecodeCompressedVideo(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		want := t0 + int64(n)*40e6
		if !bytes.Equal(v.Data, frames[n]) || v.Format != "h264" || v.FrameID != "cam" || int64(m.LogTime) != want/1e6*1e6 {
			t.Fatalf("frame %d: %d bytes at %d, want %d bytes at %d", n, len(v.Data), m.LogTime, len(frames[n]), want/1e6*1e6)
		}
	}
	if n != len(frames) {
		t.Fatalf("%d frames exported, want %d", n, len(frames))
	}
}
