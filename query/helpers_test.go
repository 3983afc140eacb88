package query

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/store"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// newTestService opens a real store in a temp dir with one stream (retention
// 1 h) and returns it with a Service reading it.
func newTestService(t testing.TB, stream string) (*store.Store, *Service) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := store.Open(store.Options{Dir: t.TempDir(), Logger: log, RetentionInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.CreateStream(store.CreateStreamInput{Name: stream, RetentionHours: 1}); err != nil {
		t.Fatal(err)
	}
	return st, New(Options{Store: st, Logger: log})
}

// testDesc is the test signal: one float32 channel at 1 kHz.
var testDesc = &signals.Scalar{SampleRate: 1000, SampleType: signals.Float32, Channels: []signals.Channel{{Name: "x"}}}

// testFragment builds fragment number of `frames` frames of 100 samples (100
// ms) each, the first at producer time start (a whole ms); sample i of the
// fragment has the value first+i. A corrupt fragment's last frame is garbage.
func testFragment(t *testing.T, number uint64, start, server int64, first, frames int, corrupt bool) *store.Fragment {
	t.Helper()
	priv, err := testDesc.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	clusterMS := uint64(start / int64(time.Millisecond))
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, Duration: float64(frames * 100)})
	b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: signals.CodecIDScalar, CodecPrivate: priv}})
	clusterAt := len(b)
	var blocks []mkv.Block
	var s signals.Samples
	for k := range frames {
		s.Reset(signals.Float32, 1, 100)
		s.Start = start + int64(k)*int64(100*time.Millisecond)
		for i := range 100 {
			s.F32[i] = float32(first + k*100 + i)
		}
		data, err := codecs.AppendScalarFrame(nil, testDesc, &s, codecs.Plain)
		if err != nil {
			t.Fatal(err)
		}
		if corrupt && k == frames-1 {
			data = []byte{0xde, 0xad, 0xbe, 0xef}
		}
		blocks = append(blocks, mkv.Block{Track: 1, Timecode: int16(k * 100), Keyframe: true, Data: data})
	}
	return &store.Fragment{
		Number: number, ServerTime: server, ProducerTime: start, Duration: int64(frames) * int64(100*time.Millisecond),
		ClusterOffset: uint32(clusterAt), Payload: mkv.AppendCluster(b, clusterMS, blocks),
	}
}

func appendAll(t *testing.T, st *store.Store, stream string, frags ...*store.Fragment) {
	t.Helper()
	for _, f := range frags {
		if _, err := st.Append(stream, f); err != nil {
			t.Fatalf("append %d: %v", f.Number, err)
		}
	}
	if err := st.Sync(stream); err != nil {
		t.Fatal(err)
	}
}
