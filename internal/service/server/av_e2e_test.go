package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// getMediaFile writes a stream's whole GetMedia output to a file.
func getMediaFile(t *testing.T, client *sdk.Client, stream string) string {
	t.Helper()
	body, err := client.GetMedia(context.Background(), sdk.ByName(stream), sdk.StartEarliest(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	path := filepath.Join(t.TempDir(), stream+".mkv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, body); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// 16 kHz audio sent through the SDK plays: ffprobe sees 16-bit PCM at 16 kHz
// in GetMedia's output, ffmpeg decodes it to exactly the samples sent, and a
// query returns them with their exact times.
func TestAudioEndToEnd(t *testing.T) {
	needTools(t, "ffmpeg", "ffprobe")
	srv := startServer(t, "")
	ctx := context.Background()
	client, nc := newStream(t, srv, "mic-1", 1)
	desc := &signals.Audio{SampleRate: 16000, SampleType: signals.Int16, Channels: []string{"mono"}}
	track, err := sdk.AudioTrack(1, "microphone", desc)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "mic-1", Tracks: []sdk.Track{track}, MinFragmentDuration: time.Second, MaxFragmentDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	origin := time.Now().Add(-time.Minute).Truncate(time.Second).UnixNano() + 7_654_321 // cut to a millisecond by the writer
	w, err := sdk.NewPCMWriter(p, 1, desc, origin, 0)
	if err != nil {
		t.Fatal(err)
	}
	sent := make([]int16, 16000*33/10) // 3.3 s
	for i := range sent {
		x := float64(i) / 16000
		sent[i] = int16(8000*math.Sin(2*math.Pi*120*x) + 3000*math.Sin(2*math.Pi*1470*x) + float64(i%7*40))
	}
	if err := w.WriteInt16(ctx, sent); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatal(err)
	}
	path := getMediaFile(t, client, "mic-1")
	out, err := exec.Command("ffprobe", "-v", "error", "-show_streams", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var probe struct {
		Streams []struct {
			CodecName  string `json:"codec_name"`
			SampleRate string `json:"sample_rate"`
			Channels   int    `json:"channels"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &probe); err != nil || len(probe.Streams) != 1 {
		t.Fatalf("ffprobe: %s (%v)", out, err)
	}
	if s := probe.Streams[0]; s.CodecName != "pcm_s16le" || s.SampleRate != "16000" || s.Channels != 1 {
		t.Fatalf("ffprobe sees %+v, want pcm_s16le at 16000 Hz, mono", s)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "s16le", "-")
	cmd.Stderr = &stderr
	pcm, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, stderr.Bytes())
	}
	if len(pcm) != 2*len(sent) {
		t.Fatalf("ffmpeg decoded %d samples, %d were sent (stderr: %s)", len(pcm)/2, len(sent), stderr.Bytes())
	}
	for i, v := range sent {
		if got := int16(binary.LittleEndian.Uint16(pcm[2*i:])); got != v {
			t.Fatalf("ffmpeg's sample %d = %d, sent %d", i, got, v)
		}
	}

	// Arrow: exact times from a millisecond-aligned origin.
	o := origin - origin%int64(time.Millisecond)
	sc := desc.Scalar()
	lo, hi := 1234, 50000
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	res, err := client.Query(ctx, sdk.QueryInput{Stream: "mic-1", Start: time.Unix(0, sc.SampleTime(o, lo)), End: time.Unix(0, sc.SampleTime(o, hi))}, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	i := lo
	for res.Next() {
		rec := res.RecordBatch()
		tc, v := rec.Column(0).(*array.Timestamp), rec.Column(1).(*array.Int16)
		for r := 0; r < int(rec.NumRows()); r++ {
			if int64(tc.Value(r)) != sc.SampleTime(o, i) || v.Value(r) != sent[i] {
				t.Fatalf("row %d: time %d value %d, want %d and %d", i, tc.Value(r), v.Value(r), sc.SampleTime(o, i), sent[i])
			}
			i++
		}
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if i != hi {
		t.Fatalf("query returned samples %d..%d, want %d..%d", lo, i, lo, hi)
	}
}

// An H.264 clip made by ffmpeg (libx264, an IDR every 2 s) and split with
// SplitAnnexB comes back from GetMedia as Matroska that ffprobe decodes to
// the same number of frames, and a query returns every access unit as sent.
func TestH264EndToEnd(t *testing.T) {
	needLibx264(t)
	_, aus, avcC := h264Clip(t, "testsrc=size=320x240:rate=25", 6, 50, 0)
	if len(aus) != 150 || !aus[0].Key || !aus[50].Key || aus[1].Key {
		t.Fatalf("%d access units (key: %v %v %v), want 150 with an IDR every 50", len(aus), aus[0].Key, aus[50].Key, aus[1].Key)
	}
	srv := startServer(t, "")
	ctx := context.Background()
	client, nc := newStream(t, srv, "cam-1", 1)
	track, err := sdk.H264Track(1, "camera", avcC, 320, 240)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "cam-1", Tracks: []sdk.Track{track}, MinFragmentDuration: 2 * time.Second, MaxFragmentDuration: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	origin := time.Now().Add(-time.Minute).Truncate(time.Second).UnixNano()
	for i, au := range aus {
		if err := p.PutH264(ctx, 1, origin+int64(i)*40_000_000, 40_000_000, au.Data, au.Key); err != nil {
			t.Fatal(err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatal(err)
	}
	path := getMediaFile(t, client, "cam-1")
	var stderr bytes.Buffer
	cmd := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe: %v: %s", err, stderr.Bytes())
	}
	if got := strings.TrimSpace(string(out)); got != "h264,320,240,150" {
		t.Fatalf("ffprobe: %q, want h264,320,240,150 (stderr: %s)", got, stderr.Bytes())
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	res, err := client.Query(ctx, sdk.QueryInput{Stream: "cam-1", Start: time.Unix(0, origin), End: time.Unix(0, origin+int64(time.Minute))}, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	n := 0
	for res.Next() {
		rec := res.RecordBatch()
		key, data := rec.Column(1).(*array.Boolean), rec.Column(2).(*array.Binary)
		for r := 0; r < int(rec.NumRows()); r++ {
			if !bytes.Equal(data.Value(r), aus[n].Data) || key.Value(r) != aus[n].Key {
				t.Fatalf("access unit %d differs", n)
			}
			n++
		}
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(aus) {
		t.Fatalf("query returned %d access units, %d were sent", n, len(aus))
	}
}

// Opaque frames come back byte for byte with their media type.
func TestOpaqueEndToEnd(t *testing.T) {
	srv := startServer(t, "")
	ctx := context.Background()
	client, nc := newStream(t, srv, "events", 1)
	track, err := sdk.OpaqueTrack(1, "events", "application/json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "events", Tracks: []sdk.Track{track}})
	if err != nil {
		t.Fatal(err)
	}
	origin := time.Now().Add(-time.Minute).Truncate(time.Millisecond).UnixNano()
	var sent [][]byte
	for i := 0; i < 40; i++ {
		b := []byte(`{"event":"valve","open":` + strings.Repeat("1", i%5+1) + `}`)
		if err := p.PutOpaque(ctx, 1, origin+int64(i)*int64(100*time.Millisecond), 0, b, true); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, b)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatal(err)
	}
	res, err := client.Query(ctx, sdk.QueryInput{Stream: "events", Start: time.Unix(0, origin), End: time.Unix(0, origin+int64(time.Hour))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if mt, _ := res.Schema().Field(2).Metadata.GetValue("sensorium.media_type"); mt != "application/json" {
		t.Errorf("media type %q", mt)
	}
	n := 0
	for res.Next() {
		rec := res.RecordBatch()
		data := rec.Column(2).(*array.Binary)
		for r := 0; r < int(rec.NumRows()); r++ {
			if !bytes.Equal(data.Value(r), sent[n]) {
				t.Fatalf("frame %d = %q, sent %q", n, data.Value(r), sent[n])
			}
			n++
		}
	}
	if err := res.Err(); err != nil || n != len(sent) {
		t.Fatalf("%d frames returned, %d sent (%v)", n, len(sent), err)
	}
}
