package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
)

// BenchmarkIngestRawPublish measures the server's ingest path (bus → store →
// fsync → PERSISTED) for 256 KiB fragments published with plain JetStream,
// without the SDK: b.SetBytes makes `go test -bench` print MB/s.
func BenchmarkIngestRawPublish(b *testing.B) {
	srv, err := Start(context.Background(), Config{DataDir: b.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: testLogger(&testing.T{})})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	ctx := context.Background()
	if _, err := sdk.NewClient(srv.HTTPURL(), nil).CreateStream(ctx, sdk.CreateStreamInput{StreamName: "b", DataRetentionInHours: 1}); err != nil {
		b.Fatal(err)
	}
	nc, _ := nats.Connect(srv.NATSURL())
	defer nc.Close()
	js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(64))
	frame := make([]byte, 32<<10)
	subs := wire.NewSubjects("")
	acks := make(chan struct{}, 1<<16)
	sub, _ := nc.Subscribe(subs.Ack("b"), func(*nats.Msg) { acks <- struct{}{} })
	defer sub.Unsubscribe()
	base := uint64(time.Now().Add(-time.Hour).UnixMilli())
	payload := func(i int) []byte {
		buf := mkv.AppendEBMLHeader(nil, "matroska")
		buf = mkv.AppendSegmentStart(buf)
		buf = mkv.AppendInfo(buf, mkv.Info{Duration: 80})
		buf = mkv.AppendTracks(buf, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: "S_X"}})
		var blocks []mkv.Block
		for f := 0; f < 8; f++ {
			blocks = append(blocks, mkv.Block{Track: 1, Timecode: int16(f * 10), Keyframe: true, Data: frame})
		}
		return mkv.AppendCluster(buf, base+uint64(i*80), blocks)
	}
	p0 := payload(0)
	b.SetBytes(int64(len(p0)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg := nats.NewMsg(subs.Frag("b"))
		msg.Data = payload(i)
		msg.Header.Set(wire.HeaderMsgID, fmt.Sprint("m", i))
		if _, err := js.PublishMsgAsync(msg); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	for i := 0; i < b.N; i++ {
		select {
		case <-acks:
		case <-time.After(30 * time.Second):
			si, _ := js.Stream(ctx, subs.BusStream())
			info, _ := si.Info(ctx)
			b.Fatalf("only %d of %d acks; ingest %+v; bus %+v", i, b.N, srv.IngestStats(), info.State)
		}
	}
}
