package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// needTools skips the test when a tool is missing, or fails it under CI
// (where scripts/install-test-deps.sh must have installed it).
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s missing: run scripts/install-test-deps.sh", tool)
			}
			t.Skipf("%s missing: run scripts/install-test-deps.sh", tool)
		}
	}
}

// newStream creates a stream on srv and returns an API client and a NATS
// connection for producing into it (closed when the test ends).
func newStream(t *testing.T, srv *Server, name string, retentionHours int) (*sdk.Client, *nats.Conn) {
	t.Helper()
	client := sdk.NewClient(srv.HTTPURL(), nil)
	if _, err := client.CreateStream(context.Background(), sdk.CreateStreamInput{StreamName: name, DataRetentionInHours: retentionHours}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return client, nc
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startServer runs a server on free loopback ports in a temp dir.
func startServer(t *testing.T, dir string) *Server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	srv, err := Start(context.Background(), Config{DataDir: dir, NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv
}

// call posts a JSON body to an operation and returns status, error type header and body.
func call(t *testing.T, srv *Server, op string, body any) (int, string, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case string:
		rd = bytes.NewBufferString(b)
	default:
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	resp, err := http.Post(srv.HTTPURL()+"/"+op, "application/json", rd)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), out
}

// pumpDesc is the test signal: 3 channels at 1 kHz.
var pumpDesc = &signals.Scalar{SampleRate: 1000, SampleType: signals.Float32,
	Channels: []signals.Channel{{Name: "x", Unit: "g"}, {Name: "y", Unit: "g"}, {Name: "z", Unit: "g"}}}

// sampleValue is the test signal's value of sample i of channel c: exact in float32.
func sampleValue(i int64, c int) float32 { return float32(i%100000)*0.5 + float32(c)*1000 }

// scalarFragment builds a fragment of frames 100 ms each (100 samples), frame k
// covering samples first+100k …; origin is the time of sample 0.
func scalarFragment(t *testing.T, origin int64, first int64, frames int) []byte {
	t.Helper()
	priv, err := pumpDesc.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	startNS := pumpDesc.SampleTime(origin, int(first))
	clusterMS := uint64(startNS / int64(time.Millisecond))
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, Duration: float64(frames * 100)})
	b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: signals.CodecIDScalar, CodecPrivate: priv}})
	var blocks []mkv.Block
	var s signals.Samples
	for k := 0; k < frames; k++ {
		i0 := first + int64(k)*100
		s.Reset(signals.Float32, 3, 100)
		s.Start = pumpDesc.SampleTime(origin, int(i0))
		for i := 0; i < 100; i++ {
			for c := 0; c < 3; c++ {
				s.F32[i*3+c] = sampleValue(i0+int64(i), c)
			}
		}
		data, err := codecs.AppendScalarFrame(nil, pumpDesc, &s, codecs.Plain)
		if err != nil {
			t.Fatal(err)
		}
		ms := s.Start / int64(time.Millisecond)
		blocks = append(blocks, mkv.Block{Track: 1, Timecode: int16(ms - int64(clusterMS)), Keyframe: true, Data: data})
	}
	return mkv.AppendCluster(b, clusterMS, blocks)
}

// publish sends a fragment over NATS and waits for its terminal ack event.
func publish(t *testing.T, nc *nats.Conn, stream string, data []byte, producer string, seq uint64) wire.AckEvent {
	t.Helper()
	subs := wire.NewSubjects("")
	sub, err := nc.SubscribeSync(subs.Ack(stream))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	js, _ := jetstream.New(nc)
	msg := nats.NewMsg(subs.Frag(stream))
	msg.Data = data
	msg.Header.Set(wire.HeaderProducerID, producer)
	msg.Header.Set(wire.HeaderProducerSeq, strconv.FormatUint(seq, 10))
	msg.Header.Set(wire.HeaderMsgID, wire.MsgID(stream, producer, seq, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatalf("publish: %v", err)
	}
	for {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("no ack event for %s/%d: %v", producer, seq, err)
		}
		var ev wire.AckEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.ProducerID == producer && ev.ProducerSequence == seq {
			return ev
		}
	}
}

func f32eq(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }

// produceUntil writes pump samples through w in 100-sample blocks, pausing
// between blocks, until stop is closed; then it flushes. The channel gets the
// flush's error, or the first write error. each, when set, runs after every
// block (to sample the producer's state).
func produceUntil(ctx context.Context, w *sdk.SampleWriter, pause time.Duration, stop <-chan struct{}, each func()) <-chan error {
	done := make(chan error, 1)
	go func() {
		buf := make([]float32, 300)
		for n := int64(0); ; n += 100 {
			select {
			case <-stop:
				done <- w.Flush(ctx)
				return
			default:
			}
			for k := range 100 {
				for ch := range 3 {
					buf[k*3+ch] = sampleValue(n+int64(k), ch)
				}
			}
			if err := w.WriteFloat32(ctx, buf); err != nil {
				done <- err
				return
			}
			if each != nil {
				each()
			}
			time.Sleep(pause)
		}
	}()
	return done
}
